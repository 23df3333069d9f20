-- 0005 api: the department API's tokens and deadline extensions, and the Open311 requests
-- citizens' apps submitted (their personal data stays in personal_contacts, as for every
-- event).

-- citybrain:mode all
CREATE TABLE api_tokens (
    token_id      text PRIMARY KEY,             -- the public part of the token
    role          text NOT NULL CHECK (role IN ('department', 'operations', 'open311')),
    department    text,                         -- for role department
    label         text NOT NULL DEFAULT '',
    token_hash    text NOT NULL,                -- SHA-256 of the secret part, hex
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CHECK ((role = 'department') = (department IS NOT NULL))
);
CREATE INDEX api_tokens_department_idx ON api_tokens (department) WHERE revoked_at IS NULL;

CREATE TABLE deadline_extensions (
    extension_id        text PRIMARY KEY,
    dispatch_id         text NOT NULL REFERENCES dispatches ON DELETE CASCADE,
    department          text NOT NULL,
    requested_deadline  timestamptz NOT NULL,
    reason              text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'denied')),
    requested_at        timestamptz NOT NULL DEFAULT now(),
    decided_at          timestamptz,
    decided_by          text
);
CREATE INDEX deadline_extensions_pending_idx ON deadline_extensions (status, requested_at);

CREATE TABLE open311_requests (
    service_request_id  text PRIMARY KEY,
    service_code        text NOT NULL,
    description         text,
    address             text,
    lat                 double precision,
    long                double precision,
    media_url           text,
    requested_at        timestamptz NOT NULL,
    api_token_id        text,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX open311_requests_time_idx ON open311_requests (requested_at DESC);
