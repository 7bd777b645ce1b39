-- The phone side of the recorder: how long a take may run, when silence ends it, how short a
-- take is thrown away; take history with each take's fate; PIN failures for rate limits.
ALTER TABLE voice_recorders
    ADD COLUMN max_take_seconds integer NOT NULL DEFAULT 300
        CHECK (max_take_seconds BETWEEN 5 AND 3600),
    ADD COLUMN silence_seconds integer NOT NULL DEFAULT 10
        CHECK (silence_seconds BETWEEN 0 AND 60),
    ADD COLUMN min_take_seconds integer NOT NULL DEFAULT 1
        CHECK (min_take_seconds BETWEEN 0 AND 60);

-- pending: stored, the caller is reviewing it; accepted: the recording's audio (or was);
-- discarded: re-recorded or skipped. Files stay in storage as history either way.
ALTER TABLE takes
    ADD COLUMN status text NOT NULL DEFAULT 'accepted'
        CHECK (status IN ('pending', 'accepted', 'discarded')),
    ADD COLUMN kept_on_hangup boolean NOT NULL DEFAULT false,
    ADD COLUMN duration_ms integer NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    ADD COLUMN channel_id text;

CREATE TABLE pin_failures (
    id               bigserial PRIMARY KEY,
    phone_number_id  bigint NOT NULL REFERENCES phone_numbers (id) ON DELETE CASCADE,
    caller_id        text NOT NULL DEFAULT '',
    failed_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pin_failures_number ON pin_failures (phone_number_id, failed_at);
CREATE INDEX pin_failures_caller ON pin_failures (caller_id, failed_at) WHERE caller_id <> '';
