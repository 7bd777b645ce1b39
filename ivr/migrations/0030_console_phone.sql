-- The console phone's SIP accounts (docs/console.md, The phone): one per call a developer
-- places from the console, pushed into Asterisk's memory for a few minutes. The password is not
-- kept here (only Asterisk and the browser have it); the row says whose the account is and
-- until when, so that the engine removes it from Asterisk once it expires, even after a
-- restart of the engine. Removed rows are deleted a day later.
CREATE TABLE console_phone_accounts (
    name          text PRIMARY KEY CHECK (name ~ '^webrtc-[0-9a-f]{16}$'),
    developer_id  bigint REFERENCES developers (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    removed_at    timestamptz
);
CREATE INDEX console_phone_accounts_due ON console_phone_accounts (expires_at)
    WHERE removed_at IS NULL;
CREATE INDEX console_phone_accounts_developer ON console_phone_accounts (developer_id)
    WHERE removed_at IS NULL;
