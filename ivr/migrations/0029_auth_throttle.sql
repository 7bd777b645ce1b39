-- Failed password checks, counted per key (issue #20): an account of one kind
-- ("vr:alice", "dialer:ACME", "list:<id>") and a client address ("addr:203.0.113.9"). Kept in
-- Postgres, not in memory, so a restarted engine or a second one sees the same counts and
-- locks. Rows whose last failure is older than the window are stale and swept by the throttle.
CREATE TABLE auth_throttle (
    key           text PRIMARY KEY CHECK (length(key) <= 300),
    failures      integer NOT NULL CHECK (failures > 0),
    last_failure  timestamptz NOT NULL DEFAULT now(),
    locked_until  timestamptz
);
CREATE INDEX auth_throttle_last_failure ON auth_throttle (last_failure);
