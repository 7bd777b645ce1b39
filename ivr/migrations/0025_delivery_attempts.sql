-- The console's webhook inspector (docs/console.md): one row per delivery attempt, written by
-- the worker in the transaction that settles or reschedules the outbox row. It keeps what the
-- outbox row only summarises (last_status, last_error): the request's headers (secrets
-- redacted: Authorization, cookies, a recorder's upload header), and the answer's status,
-- headers and the first 2 KiB of its body, with when it started and how long it took.
-- A row goes with its outbox row (purged 7 days after delivery); older attempts of a row
-- retried for longer are purged on the same schedule.
CREATE TABLE outbox_attempts (
    id                bigserial PRIMARY KEY,
    outbox_id         bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    attempt           integer NOT NULL,           -- as sent in X-IVR-Attempt
    started_at        timestamptz NOT NULL,
    duration_ms       integer NOT NULL CHECK (duration_ms >= 0),
    request_headers   jsonb NOT NULL DEFAULT '[]',  -- [[name, value], ...]
    response_status   integer,                      -- none: no answer (see error)
    response_headers  jsonb NOT NULL DEFAULT '[]',
    response_body     bytea CHECK (length(response_body) <= 2048),
    response_bytes    bigint,                       -- the whole body's length
    error             text
);
CREATE INDEX outbox_attempts_row ON outbox_attempts (outbox_id, id);
CREATE INDEX outbox_attempts_age ON outbox_attempts (started_at);
