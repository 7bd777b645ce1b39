-- Call-control applications and dialer accounts may belong to a developer (issue #22): their
-- calls then show in that developer's console call log, beside the recorder calls. NULL: an
-- operator's application or account, seen by no developer. Deleting the developer keeps the
-- application or account (its credentials still work) and only unlinks it.
ALTER TABLE cc_applications
    ADD COLUMN developer_id bigint REFERENCES developers (id) ON DELETE SET NULL;
CREATE INDEX cc_applications_developer ON cc_applications (developer_id)
    WHERE developer_id IS NOT NULL;
ALTER TABLE dialer_accounts
    ADD COLUMN developer_id bigint REFERENCES developers (id) ON DELETE SET NULL;
CREATE INDEX dialer_accounts_developer ON dialer_accounts (developer_id)
    WHERE developer_id IS NOT NULL;
