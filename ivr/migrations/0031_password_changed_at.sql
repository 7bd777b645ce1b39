-- Sessions do not outlive the password (issue #20): a console sign-in or an API token made
-- before the developer's password last changed no longer opens anything, whichever face
-- changed it (/vr ChangePassword, /v1, the console). Rows from before this migration count as
-- never changed.
ALTER TABLE developers
    ADD COLUMN password_changed_at timestamptz NOT NULL DEFAULT '-infinity';
