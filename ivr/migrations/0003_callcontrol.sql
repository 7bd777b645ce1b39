-- Programmable call control (EnableX-style voice API): applications with their credentials and
-- numbers, the calls they drive, and the recordings taken on those calls.

CREATE TABLE cc_applications (
    id              bigserial PRIMARY KEY,
    app_id          text NOT NULL UNIQUE CHECK (app_id ~ '^[A-Za-z0-9]{16,64}$'),
    app_key_hash    text NOT NULL,               -- argon2id of the app key
    webhook_secret  text NOT NULL CHECK (length(webhook_secret) >= 32),  -- signs webhooks
    name            text NOT NULL DEFAULT '',
    webhook_url     text NOT NULL CHECK (webhook_url ~ '^https?://'),
    greeting        text CHECK (greeting ~ '^[A-Za-z0-9_/-]{1,128}$'),  -- a prompt name
    accept_timeout  integer NOT NULL DEFAULT 10 CHECK (accept_timeout BETWEEN 1 AND 120),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- A dedicated number (pin NULL) routes every call it receives to one application; a shared
-- number serves several, the caller's PIN telling them apart. A number is either dedicated or
-- shared: `shared` is part of both unique keys, and the foreign key below makes every row of a
-- number agree with the number's kind in cc_number_kinds. An application's numbers are the
-- only caller ids it may present on outbound calls.
CREATE TABLE cc_number_kinds (
    number  text PRIMARY KEY CHECK (number ~ '^\+?[0-9]{2,15}$'),
    shared  boolean NOT NULL,
    UNIQUE (number, shared)
);
CREATE TABLE cc_numbers (
    number          text NOT NULL,
    shared          boolean NOT NULL,
    pin             text CHECK (pin ~ '^[0-9]{4,10}$'),
    application_id  bigint NOT NULL REFERENCES cc_applications (id) ON DELETE CASCADE,
    FOREIGN KEY (number, shared) REFERENCES cc_number_kinds (number, shared),
    CHECK (shared = (pin IS NOT NULL))
);
CREATE UNIQUE INDEX cc_numbers_dedicated ON cc_numbers (number) WHERE NOT shared;
CREATE UNIQUE INDEX cc_numbers_pin ON cc_numbers (number, pin) WHERE shared;
CREATE UNIQUE INDEX cc_numbers_shared_once ON cc_numbers (number, application_id);
CREATE INDEX cc_numbers_application ON cc_numbers (application_id);

CREATE TABLE cc_calls (
    voice_id        uuid PRIMARY KEY,
    application_id  bigint NOT NULL REFERENCES cc_applications (id) ON DELETE CASCADE,
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    from_number     text NOT NULL,
    to_number       text NOT NULL,
    channel_id      text NOT NULL UNIQUE,
    state           text NOT NULL CHECK (state IN ('initiated', 'ringing', 'incomingcall',
                                                   'connected', 'disconnected', 'failed')),
    owner_ref       text,
    event_url       text CHECK (event_url ~ '^https?://'),
    cause           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    answered_at     timestamptz,
    ended_at        timestamptz,
    CHECK ((state IN ('disconnected', 'failed')) = (ended_at IS NOT NULL))
);
CREATE INDEX cc_calls_application ON cc_calls (application_id, created_at);
CREATE INDEX cc_calls_live ON cc_calls (created_at) WHERE ended_at IS NULL;

-- recording_name is the application's own name for a take: unique per application.
CREATE TABLE cc_recordings (
    recording_id    uuid PRIMARY KEY,
    application_id  bigint NOT NULL REFERENCES cc_applications (id) ON DELETE CASCADE,
    voice_id        uuid NOT NULL REFERENCES cc_calls (voice_id) ON DELETE CASCADE,
    recording_name  text NOT NULL CHECK (recording_name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    asterisk_name   text NOT NULL UNIQUE,        -- opaque: never contains '/'
    format          text NOT NULL CHECK (format IN ('wav', 'wav49', 'mp3')),  -- mp3: from wav
    mixed           boolean NOT NULL,            -- both legs of a bridged call
    state           text NOT NULL DEFAULT 'started'
                    CHECK (state IN ('started', 'completed', 'failed')),
    duration        real,
    created_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    UNIQUE (application_id, recording_name)
);
CREATE INDEX cc_recordings_call ON cc_recordings (voice_id);
