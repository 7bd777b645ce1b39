-- Client addresses a dialer account takes campaign documents from without credentials
-- (VoiceShot authorised callers by address). One address belongs to at most one account:
-- a document without credentials names its account by its address alone, so the networks
-- of all accounts may not overlap (the exclusion constraint holds even for two updates at
-- once). An account's own networks are collapsed before they are written.
CREATE TABLE dialer_allow_from (
    account_pk bigint NOT NULL REFERENCES dialer_accounts (id) ON DELETE CASCADE,
    net cidr NOT NULL,
    PRIMARY KEY (account_pk, net),
    EXCLUDE USING gist (net inet_ops WITH &&)
);
