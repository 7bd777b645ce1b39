-- The developers' console: one row per signed-in browser. The cookie holds a random token;
-- only its SHA-256 is kept, with the CSRF token every form of that sign-in must carry.
CREATE TABLE console_sessions (
    token_hash    bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    developer_id  bigint NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX console_sessions_developer ON console_sessions (developer_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
