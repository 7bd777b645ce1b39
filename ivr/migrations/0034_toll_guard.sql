-- Toll-fraud guards on every outbound path (issue #20 item 3, ivr/telephony/toll.py): an
-- account's own limits where the operator set them (else the IVR_TOLL_* defaults), and every
-- refusal, for the consoles and the operator to see. `kind` is the calling account's kind:
-- 'app' (a call-control application, by app id) or 'dialer' (a dialer account, by account
-- id: broadcasts and campaigns).
CREATE TABLE toll_limits (
    kind        text NOT NULL CHECK (kind IN ('app', 'dialer')),
    account     text NOT NULL,
    countries   text[],          -- ISO 3166 codes; NULL: the default
    prefixes    text[],          -- E.164 prefixes (digits) allowed besides the countries
    premium     boolean,         -- premium-rate numbers allowed
    concurrent  integer CHECK (concurrent > 0),
    per_day     integer CHECK (per_day > 0),
    PRIMARY KEY (kind, account)
);

CREATE TABLE toll_alerts (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL,
    account     text NOT NULL,
    number      text NOT NULL DEFAULT '',
    reason      text NOT NULL,
    code        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX toll_alerts_account ON toll_alerts (kind, account, created_at DESC);

-- Calls each account was let place, for its daily limit (rows older than a day are swept).
CREATE TABLE toll_ledger (
    kind        text NOT NULL,
    account     text NOT NULL,
    calls       integer NOT NULL CHECK (calls > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX toll_ledger_account ON toll_ledger (kind, account, created_at);
