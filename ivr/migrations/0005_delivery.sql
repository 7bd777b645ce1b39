-- Delivery: the outbox every callback and upload goes through (written in the same transaction
-- as the state change it reports), the recorder options that feed it, each take's upload state,
-- and stored audio that a retention period deleted.

-- A recorder signs its callbacks with its own secret (returned once, when made or rotated);
-- events are rendered in its callback_format; uploads go by upload_method with an optional
-- "Name: value" header; link_ttl_seconds makes wav_url / mp3_url signed links that expire.
-- gen_random_uuid() draws from the server's strong random source: two make 244 random bits.
ALTER TABLE voice_recorders
    ADD COLUMN callback_secret text NOT NULL
        DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
        CHECK (length(callback_secret) BETWEEN 16 AND 200),
    ADD COLUMN callback_format text NOT NULL DEFAULT 'xml'
        CHECK (callback_format IN ('xml', 'json')),
    ADD COLUMN upload_method text NOT NULL DEFAULT 'put' CHECK (upload_method IN ('put', 'post')),
    ADD COLUMN upload_auth_header text
        CHECK (upload_auth_header ~ '^[A-Za-z0-9-]{1,64}: [^\r\n]+$'
               AND length(upload_auth_header) <= 4100),
    ADD COLUMN link_ttl_seconds integer CHECK (link_ttl_seconds BETWEEN 60 AND 604800),
    ADD CONSTRAINT callback_url_http CHECK (callback_url ~ '^https?://');
ALTER TABLE recording_sessions
    ADD CONSTRAINT session_callback_url_http CHECK (callback_url ~ '^https?://');

-- An accepted take on a recorder with storage=upload is uploaded: pending, then uploaded or
-- failed. Retention deletes a take's files and says when.
ALTER TABLE takes
    ADD COLUMN upload_state text CHECK (upload_state IN ('pending', 'uploaded', 'failed')),
    ADD COLUMN upload_bytes bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_deleted_at timestamptz;
CREATE INDEX takes_with_audio ON takes (created_at)
    WHERE audio_deleted_at IS NULL AND (has_wav_file OR has_mp3_file);

-- A recording whose audio the retention period deleted stays "recorded" without files.
ALTER TABLE recordings ADD COLUMN audio_deleted_at timestamptz;
ALTER TABLE recordings DROP CONSTRAINT recordings_check1;
ALTER TABLE recordings ADD CONSTRAINT recordings_audio_or_deleted
    CHECK (state IN ('unrecorded', 'recording') OR has_wav_file OR has_mp3_file
           OR audio_deleted_at IS NOT NULL);

-- One row per delivery: a callback (body) or an upload (file_path). Rows of one stream (a
-- session, a recording's uploads) are delivered in id order; a row is claimed by one worker
-- at a time (lease_until), and a worker that dies leaves it claimable once the lease runs out.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    event_id         uuid NOT NULL UNIQUE,
    kind             text NOT NULL CHECK (kind IN ('callback', 'upload')),
    event_type       text NOT NULL CHECK (event_type ~ '^[a-z_]+(\.[a-z_]+)+$'),
    stream           text NOT NULL,
    owner            text NOT NULL,              -- whose deliveries: "recorder:7"
    subject          text,                       -- what settles with it: "take:42"
    url              text NOT NULL CHECK (url ~ '^https?://'),
    method           text NOT NULL CHECK (method IN ('POST', 'PUT')),
    content_type     text NOT NULL,
    body             bytea,
    file_path        text,
    headers          jsonb NOT NULL DEFAULT '{}',
    signing_secret   text,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    give_up_at       timestamptz NOT NULL,
    lease_until      timestamptz,
    leased_by        text,
    last_status      integer,
    last_error       text,
    bytes_sent       bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    settled_at       timestamptz,
    CHECK ((body IS NULL) <> (file_path IS NULL)),
    CHECK ((state = 'pending') = (settled_at IS NULL))
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_stream_pending ON outbox (stream, id) WHERE state = 'pending';
CREATE INDEX outbox_owner ON outbox (owner, id);
CREATE INDEX outbox_subject ON outbox (subject) WHERE subject IS NOT NULL;
CREATE INDEX outbox_settled ON outbox (settled_at) WHERE state <> 'pending';
