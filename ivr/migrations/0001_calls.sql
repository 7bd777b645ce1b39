-- Every call the engine handles, written when it enters and when it leaves, so operators see
-- calls in progress and a process that dies leaves a trail (ended_at stays NULL until resync).
CREATE TABLE calls (
    id           bigserial PRIMARY KEY,
    channel_id   text NOT NULL UNIQUE,
    direction    text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    caller_id    text NOT NULL DEFAULT '',
    dialed       text NOT NULL DEFAULT '',
    flow         text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,
    outcome      text
);
CREATE INDEX calls_live ON calls (started_at) WHERE ended_at IS NULL;
