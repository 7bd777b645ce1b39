-- XML campaigns (seed 004, VoiceShot outbound posts) on top of the dialer (0008): an account's
-- menus (campaigns, named by menuid), the calls each post sent (the client's callid for a
-- dialer call), and the account's sound files.

CREATE TABLE campaign_menus (
    id bigserial PRIMARY KEY,
    account_pk bigint NOT NULL REFERENCES dialer_accounts (id) ON DELETE CASCADE,
    menuid text NOT NULL CHECK (menuid ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$'),
    name text NOT NULL DEFAULT '',
    -- Call Events (answer, key press, hang-up) and Call Summaries are posted here as XML.
    events_url text,
    summary_url text,
    sender_id text CHECK (sender_id ~ '^[0-9]{7,15}$'),
    keypress boolean NOT NULL DEFAULT false,
    -- answering-machine detection: play after the beep, or skip machines (ivr/dialer)
    amd text NOT NULL DEFAULT 'off' CHECK (amd IN ('off', 'after_beep', 'skip_machine')),
    max_attempts integer NOT NULL DEFAULT 1 CHECK (max_attempts BETWEEN 1 AND 10),
    retry_delay double precision NOT NULL DEFAULT 60 CHECK (retry_delay >= 0),
    ring_timeout integer NOT NULL DEFAULT 30 CHECK (ring_timeout BETWEEN 1 AND 300),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_pk, menuid)
);

-- One row per call a post sent; the call itself (state, outcome, times) is the dialer's row.
CREATE TABLE campaign_calls (
    message_id text PRIMARY KEY REFERENCES dialer_calls (message_id) ON DELETE CASCADE,
    menu_pk bigint NOT NULL REFERENCES campaign_menus (id) ON DELETE CASCADE,
    job_id uuid NOT NULL REFERENCES dialer_jobs (id) ON DELETE CASCADE,
    callid text NOT NULL,
    promptids integer[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_calls_menu ON campaign_calls (menu_pk, callid);
CREATE INDEX campaign_calls_job ON campaign_calls (job_id);

-- The name is a key only; the audio (converted to 8 kHz mono) is <data>/campaigns/sounds/
-- <token>.wav.
CREATE TABLE campaign_sounds (
    account_pk bigint NOT NULL REFERENCES dialer_accounts (id) ON DELETE CASCADE,
    filename text NOT NULL CHECK (filename ~ '^[a-z0-9][a-z0-9_.-]{0,59}\.wav$'),
    token text NOT NULL UNIQUE CHECK (token ~ '^[0-9a-f]{32}$'),
    seconds double precision NOT NULL,
    bytes bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_pk, filename)
);
