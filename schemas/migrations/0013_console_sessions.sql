-- citybrain:mode all
-- The console's sign-ins: a token exchanged for an HttpOnly session cookie. Only the
-- cookie's SHA-256 is kept; the CSRF token is sent back in a header on every change.
CREATE TABLE console_sessions (
    session_hash  text PRIMARY KEY,
    token_id      text NOT NULL REFERENCES api_tokens (token_id),
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
