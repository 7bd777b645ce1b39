-- The VoiceRecorder feature (MyVox 1.11): developers, their recorders, the operator's phone
-- numbers, recording lists, recordings with their takes, recording sessions.
-- Constraints carry the rules so that no code path can leave a bad state behind.

CREATE TABLE developers (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$'),
    password_hash  text NOT NULL,
    email          text NOT NULL DEFAULT '',
    name           text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- MyVox: "Developer usernames cannot be changed after the account is created".
CREATE FUNCTION developers_username_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.username <> OLD.username THEN
        RAISE EXCEPTION 'a developer username cannot be changed' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER developers_username_fixed BEFORE UPDATE OF username ON developers
    FOR EACH ROW EXECUTE FUNCTION developers_username_fixed();

-- Bearer tokens for /v1; only a SHA-256 of the token is kept.
CREATE TABLE developer_tokens (
    token_hash    bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    developer_id  bigint NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX developer_tokens_developer ON developer_tokens (developer_id);

-- The operator's numbers (`ivr number add`).
CREATE TABLE phone_numbers (
    id                bigserial PRIMARY KEY,
    phone_number_key  text NOT NULL UNIQUE CHECK (phone_number_key ~ '^[A-Za-z0-9_-]{1,64}$'),
    number            text NOT NULL UNIQUE CHECK (number ~ '^\+?[0-9]{2,15}$'),
    display_number    text NOT NULL,
    country           text NOT NULL DEFAULT 'US' CHECK (country ~ '^[A-Z]{2}$'),
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE voice_recorders (
    id                  bigserial PRIMARY KEY,
    developer_id        bigint NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
    recorder_key        text NOT NULL UNIQUE CHECK (recorder_key ~ '^[A-Za-z0-9_-]{1,64}$'),
    name                text NOT NULL DEFAULT '',
    audio_format        text NOT NULL DEFAULT 'wav' CHECK (audio_format IN ('wav', 'mp3', 'both')),
    storage             text NOT NULL DEFAULT 'local' CHECK (storage IN ('local', 'upload')),
    upload_url          text,
    retention_days      integer CHECK (retention_days BETWEEN 1 AND 36500),
    password_required   boolean NOT NULL DEFAULT false,
    password_hash       text,
    prompt_set          text NOT NULL DEFAULT 'default' CHECK (prompt_set ~ '^[a-z0-9_-]{1,32}$'),
    initiation          text NOT NULL DEFAULT 'api' CHECK (initiation IN ('api', 'call')),
    identification      text NOT NULL DEFAULT 'none'
                        CHECK (identification IN ('none', 'caller_id', 'access_code', 'both')),
    lookup_mode         text NOT NULL DEFAULT 'lookup'
                        CHECK (lookup_mode IN ('lookup', 'lookup_else_create', 'create')),
    touchtone_prompt    boolean NOT NULL DEFAULT false,
    touchtone_length    integer CHECK (touchtone_length BETWEEN 1 AND 32),
    pin_length          integer NOT NULL DEFAULT 6 CHECK (pin_length BETWEEN 4 AND 10),
    pin_ttl_seconds     integer NOT NULL DEFAULT 900 CHECK (pin_ttl_seconds BETWEEN 60 AND 604800),
    callback_url        text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT upload_url_required CHECK (storage = 'local' OR upload_url IS NOT NULL),
    CONSTRAINT recorder_password_required
        CHECK (NOT password_required OR password_hash IS NOT NULL),
    CONSTRAINT touchtone_length_required CHECK (NOT touchtone_prompt OR touchtone_length IS NOT NULL)
);
CREATE INDEX voice_recorders_developer ON voice_recorders (developer_id);

-- A number may serve many API-initiated recorders (the PIN tells sessions apart); a number
-- dedicated to a call-initiated recorder serves that recorder only.
CREATE TABLE recorder_numbers (
    recorder_id      bigint NOT NULL REFERENCES voice_recorders (id) ON DELETE CASCADE,
    phone_number_id  bigint NOT NULL REFERENCES phone_numbers (id) ON DELETE RESTRICT,
    dedicated        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (recorder_id, phone_number_id)
);
CREATE UNIQUE INDEX recorder_numbers_dedicated ON recorder_numbers (phone_number_id)
    WHERE dedicated;
CREATE INDEX recorder_numbers_number ON recorder_numbers (phone_number_id);

-- Custom prompt audio uploaded for a recorder (UploadPrompt); the file lives in data_dir.
CREATE TABLE recorder_prompts (
    recorder_id   bigint NOT NULL REFERENCES voice_recorders (id) ON DELETE CASCADE,
    prompt_name   text NOT NULL CHECK (prompt_name ~ '^[a-z0-9_]{1,32}$'),
    play_key      text NOT NULL UNIQUE CHECK (play_key ~ '^[A-Z0-9]{20}$'),
    size_bytes    bigint NOT NULL CHECK (size_bytes > 0),
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recorder_id, prompt_name)
);

CREATE TABLE recording_lists (
    id                    bigserial PRIMARY KEY,
    recorder_id           bigint NOT NULL REFERENCES voice_recorders (id) ON DELETE CASCADE,
    list_key              text NOT NULL CHECK (list_key ~ '^[A-Za-z0-9_-]{1,64}$'),
    name                  text,
    meta_data_1           text,
    meta_data_2           text,
    meta_data_3           text,
    caller_id             text CHECK (caller_id ~ '^\+?[0-9]{2,15}$'),
    access_code           text CHECK (access_code ~ '^[0-9]{1,32}$'),
    access_password_hash  text,
    update_password_hash  text,
    delete_password_hash  text,
    max_recordings        integer CHECK (max_recordings >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    accessed_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (recorder_id, list_key)
);
CREATE INDEX recording_lists_caller ON recording_lists (recorder_id, caller_id);
CREATE INDEX recording_lists_access_code ON recording_lists (recorder_id, access_code);

CREATE TABLE recordings (
    id                    bigserial PRIMARY KEY,
    list_id               bigint NOT NULL REFERENCES recording_lists (id) ON DELETE CASCADE,
    recording_key         text NOT NULL CHECK (recording_key ~ '^[A-Za-z0-9_-]{1,64}$'),
    sequence              integer NOT NULL CHECK (sequence >= 1),
    name                  text,
    meta_data_1           text,
    meta_data_2           text,
    meta_data_3           text,
    state                 text NOT NULL DEFAULT 'unrecorded'
                          CHECK (state IN ('unrecorded', 'recording', 'recorded', 'rerecord')),
    play_key              text NOT NULL UNIQUE CHECK (play_key ~ '^[A-Z0-9]{20}$'),
    recording_length      integer NOT NULL DEFAULT 0 CHECK (recording_length >= 0),
    has_wav_file          boolean NOT NULL DEFAULT false,
    has_mp3_file          boolean NOT NULL DEFAULT false,
    caller_id             text CHECK (caller_id ~ '^\+?[0-9]{2,15}$'),
    touchtone_input       text CHECK (touchtone_input ~ '^[0-9*#]{1,32}$'),
    access_code           text CHECK (access_code ~ '^[0-9]{1,32}$'),
    access_password_hash  text,
    update_password_hash  text,
    delete_password_hash  text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    accessed_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (list_id, recording_key),
    -- Deferred so that a renumbering UPDATE may pass through duplicates inside a transaction.
    CONSTRAINT recordings_sequence_unique UNIQUE (list_id, sequence) DEFERRABLE INITIALLY DEFERRED,
    -- "recorded" and "rerecord" mean audio exists; "unrecorded" means none does.
    CHECK (state IN ('recording', 'recorded', 'rerecord') OR NOT (has_wav_file OR has_mp3_file)),
    CHECK (state IN ('unrecorded', 'recording') OR has_wav_file OR has_mp3_file)
);

CREATE TABLE recording_sessions (
    id                    bigserial PRIMARY KEY,
    session_key           text NOT NULL UNIQUE CHECK (session_key ~ '^[A-Z0-9]{10}$'),
    recorder_id           bigint NOT NULL REFERENCES voice_recorders (id) ON DELETE CASCADE,
    list_id               bigint NOT NULL REFERENCES recording_lists (id) ON DELETE CASCADE,
    pin                   text NOT NULL CHECK (pin ~ '^\+?[0-9]{2,15}$'),
    caller_id             text CHECK (caller_id ~ '^\+?[0-9]{2,15}$'),
    state                 text NOT NULL DEFAULT 'created'
                          CHECK (state IN ('created', 'called', 'recording', 'ended', 'expired')),
    current_recording_id  bigint REFERENCES recordings (id) ON DELETE SET NULL,
    callback_url          text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    called_at             timestamptz,
    ended_at              timestamptz,
    CHECK (caller_id IS NULL OR pin = caller_id),
    CHECK ((state IN ('ended', 'expired')) = (ended_at IS NOT NULL)),
    CHECK (state = 'created' OR state = 'expired' OR called_at IS NOT NULL)
);
CREATE INDEX recording_sessions_live ON recording_sessions (expires_at)
    WHERE state IN ('created', 'called', 'recording');

-- The PIN a live session answers to on each of its recorder's numbers.
CREATE TABLE session_pins (
    session_id       bigint NOT NULL REFERENCES recording_sessions (id) ON DELETE CASCADE,
    phone_number_id  bigint NOT NULL REFERENCES phone_numbers (id) ON DELETE CASCADE,
    pin              text NOT NULL,
    live             boolean NOT NULL DEFAULT true,
    PRIMARY KEY (session_id, phone_number_id)
);
CREATE UNIQUE INDEX session_pins_live ON session_pins (phone_number_id, pin) WHERE live;

-- Recordings selected for a session; a recording is locked by at most one live session.
CREATE TABLE session_recordings (
    session_id    bigint NOT NULL REFERENCES recording_sessions (id) ON DELETE CASCADE,
    recording_id  bigint NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    live          boolean NOT NULL DEFAULT true,
    PRIMARY KEY (session_id, recording_id)
);
CREATE UNIQUE INDEX session_recordings_live ON session_recordings (recording_id) WHERE live;

-- Every take a caller records; the recording points at the one the caller accepted.
CREATE TABLE takes (
    id                bigserial PRIMARY KEY,
    recording_id      bigint NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    session_id        bigint REFERENCES recording_sessions (id) ON DELETE SET NULL,
    take_number       integer NOT NULL CHECK (take_number >= 1),
    length_seconds    integer NOT NULL DEFAULT 0 CHECK (length_seconds >= 0),
    has_wav_file      boolean NOT NULL DEFAULT false,
    has_mp3_file      boolean NOT NULL DEFAULT false,
    caller_id         text,
    touchtone_input   text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (recording_id, take_number)
);
ALTER TABLE recordings ADD COLUMN accepted_take_id bigint REFERENCES takes (id) ON DELETE SET NULL;

-- A session that ends or expires releases its PINs and its recordings in the same statement,
-- whoever ends it (the API, the phone flow, the expiry sweep); recordings waiting to be
-- re-recorded keep their audio and go back to "recorded".
CREATE FUNCTION recording_sessions_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IN ('ended', 'expired') AND OLD.state NOT IN ('ended', 'expired') THEN
        UPDATE session_pins SET live = false WHERE session_id = NEW.id AND live;
        UPDATE recordings r
           SET state = CASE WHEN r.has_wav_file OR r.has_mp3_file THEN 'recorded'
                            ELSE 'unrecorded' END,
               updated_at = now()
          FROM session_recordings sr
         WHERE sr.session_id = NEW.id AND sr.live AND sr.recording_id = r.id
           AND r.state IN ('rerecord', 'recording');
        UPDATE session_recordings SET live = false WHERE session_id = NEW.id AND live;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER recording_sessions_release AFTER UPDATE OF state ON recording_sessions
    FOR EACH ROW EXECUTE FUNCTION recording_sessions_release();

-- /v1 Idempotency-Key: the first answer to a key is replayed; the same key with another
-- request is refused.
CREATE TABLE idempotency_keys (
    developer_id    bigint NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
    idem_key        text NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL,
    response_status integer,
    response_body   bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (developer_id, idem_key)
);
