-- API tokens a developer can see and revoke (the console's Account page): each has an id to
-- name it by, a name, an expiry, and when it was last used (written at most once a minute per
-- token, not on every request). A token made before this migration expires 90 days after it.
-- Changing the password deletes every token of the developer (service_accounts.py).
ALTER TABLE developer_tokens
    ADD COLUMN id bigserial UNIQUE,
    ADD COLUMN name text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now() + interval '90 days',
    ADD COLUMN last_used_at timestamptz;
