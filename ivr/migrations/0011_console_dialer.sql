-- The console's dialer section: one row per browser signed in as a dialer account, kept apart
-- from the developers' sign-ins. The cookie holds a random token; only its SHA-256 is kept,
-- with the CSRF token every form of that sign-in must carry.
CREATE TABLE console_dialer_sessions (
    token_hash    bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    account_pk    bigint NOT NULL REFERENCES dialer_accounts (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX console_dialer_sessions_account ON console_dialer_sessions (account_pk);
CREATE INDEX console_dialer_sessions_expiry ON console_dialer_sessions (expires_at);
