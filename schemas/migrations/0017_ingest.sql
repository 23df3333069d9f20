-- citybrain:mode all
-- 0017 ingest: vendors POST a feed's records to /ingest/v1/{feed} with an ingest token
-- (role `ingest`: one vendor, the token's label, and one feed, its `feed`), and the
-- Idempotency-Key of each ingestion request is kept with the answer it got: the same key
-- with the same body is answered again without writing again. Rows older than
-- CITYBRAIN_INGEST_IDEMPOTENCY_HOURS are removed by the database maintenance.
ALTER TABLE api_tokens ADD COLUMN feed text;      -- for role ingest: the feed it may write
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('department', 'operations', 'open311', 'ingest'));
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_feed_check
    CHECK ((role = 'ingest') = (feed IS NOT NULL));
CREATE INDEX api_tokens_feed_idx ON api_tokens (feed, label)
    WHERE revoked_at IS NULL AND feed IS NOT NULL;

CREATE TABLE ingest_requests (
    token_id         text NOT NULL REFERENCES api_tokens (token_id),
    idempotency_key  text NOT NULL,
    body_sha256      text NOT NULL,               -- of the content type and the body
    request_id       text NOT NULL,               -- the first request's id
    state            text NOT NULL DEFAULT 'in_flight'
                     CHECK (state IN ('in_flight', 'done')),
    status           integer,                     -- the answer's status, once done
    answer           text,                        -- the answer's JSON body, once done
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    PRIMARY KEY (token_id, idempotency_key)
);
CREATE INDEX ingest_requests_started_idx ON ingest_requests (started_at);
