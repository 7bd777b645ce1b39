-- The dialer: accounts that send voice broadcasts / campaigns, their do-not-call lists, jobs,
-- one row per call (the durable queue), and per-trunk pacing shared by every worker.

CREATE TABLE dialer_accounts (
    id bigserial PRIMARY KEY,
    account_id text NOT NULL UNIQUE CHECK (account_id ~ '^[0-9a-f]{24}$'),
    name text NOT NULL DEFAULT '',
    secret_hash text NOT NULL,
    webhook_secret text NOT NULL CHECK (length(webhook_secret) >= 16),
    timezone text NOT NULL DEFAULT 'UTC',
    -- Calls start only while hours_from <= minute of the local day < hours_until.
    hours_from integer NOT NULL DEFAULT 0 CHECK (hours_from BETWEEN 0 AND 1440),
    hours_until integer NOT NULL DEFAULT 1440 CHECK (hours_until BETWEEN 0 AND 1440),
    max_destinations integer NOT NULL DEFAULT 10000 CHECK (max_destinations > 0),
    -- A test account may call this one number only, one destination per job.
    test_number text CHECK (test_number ~ '^[0-9]{7,15}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dialer_dnc (
    account_pk bigint NOT NULL REFERENCES dialer_accounts (id) ON DELETE CASCADE,
    number text NOT NULL CHECK (number ~ '^[0-9]{3,20}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_pk, number)
);

CREATE TABLE dialer_jobs (
    id uuid PRIMARY KEY,
    account_pk bigint NOT NULL REFERENCES dialer_accounts (id) ON DELETE CASCADE,
    kind text NOT NULL,
    client_job_id text,
    state text NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'paused', 'cancelled', 'done')),
    content jsonb NOT NULL,
    sender_id text,
    callback_url text,
    enable_menu_response boolean NOT NULL DEFAULT false,
    amd text NOT NULL DEFAULT 'off' CHECK (amd IN ('off', 'after_beep', 'skip_machine')),
    max_attempts integer NOT NULL DEFAULT 1 CHECK (max_attempts BETWEEN 1 AND 10),
    retry_delay double precision NOT NULL DEFAULT 60 CHECK (retry_delay >= 0),
    ring_timeout integer NOT NULL DEFAULT 30 CHECK (ring_timeout BETWEEN 1 AND 300),
    meta jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX dialer_jobs_account ON dialer_jobs (account_pk, created_at);

-- The queue. A call is claimed (state 'dialing', channel id chosen, lease) in a committed
-- transaction before it is originated; a worker that dies leaves it 'dialing' with a lease
-- that runs out, and the next worker settles it from what Asterisk still knows.
CREATE TABLE dialer_calls (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES dialer_jobs (id) ON DELETE CASCADE,
    message_id text NOT NULL UNIQUE CHECK (message_id ~ '^[0-9]{20}$'),
    custom_id text,
    number text NOT NULL CHECK (number ~ '^[0-9]{3,20}$'),
    content jsonb,
    meta jsonb NOT NULL DEFAULT '{}',
    trunk text NOT NULL,
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'dialing', 'done', 'cancelled', 'deleted')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    channel_id text,
    worker text,
    lease_until timestamptz,
    started_at timestamptz,
    ring_at timestamptz,
    answer_at timestamptz,
    hang_at timestamptz,
    outcome text,
    cause integer,
    cause_name text,
    keypress text,
    amd text,
    duration integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, custom_id)
);
CREATE INDEX dialer_calls_due ON dialer_calls (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX dialer_calls_dialing ON dialer_calls (trunk, lease_until) WHERE state = 'dialing';
CREATE INDEX dialer_calls_job ON dialer_calls (job_id, state);

-- Pacing per trunk, shared by every worker: the next moment a call may start on it.
CREATE TABLE dialer_trunks (
    name text PRIMARY KEY,
    next_slot timestamptz NOT NULL DEFAULT now()
);

-- Claim the next call due on a trunk, for one worker, in one statement (its own transaction):
-- the trunk's row lock serialises claims of every worker, so the pace (one call per 1/cps
-- seconds: a token bucket holding one token) and the cap on calls at once hold across
-- workers. Returns {"wait": seconds} before the next slot, {"full": n} at the cap, NULL when
-- nothing is due, else {"call": the call row now 'dialing' with its channel id, "dnc": bool}.
CREATE FUNCTION dialer_claim(p_trunk text, p_cps double precision, p_channels integer,
                             p_worker text, p_lease double precision, p_prefix text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    slot timestamptz;
    busy integer;
    picked bigint;
    claimed jsonb;
BEGIN
    INSERT INTO dialer_trunks (name) VALUES (p_trunk) ON CONFLICT DO NOTHING;
    SELECT next_slot INTO slot FROM dialer_trunks WHERE name = p_trunk FOR UPDATE;
    IF slot > clock_timestamp() THEN
        RETURN jsonb_build_object('wait', extract(epoch FROM slot - clock_timestamp()));
    END IF;
    SELECT count(*) INTO busy FROM dialer_calls WHERE trunk = p_trunk AND state = 'dialing';
    IF busy >= p_channels THEN
        RETURN jsonb_build_object('full', busy);
    END IF;
    SELECT c.id INTO picked
      FROM dialer_calls c
      JOIN dialer_jobs j ON j.id = c.job_id
      JOIN dialer_accounts a ON a.id = j.account_pk
     WHERE c.state = 'queued' AND c.trunk = p_trunk AND c.next_attempt_at <= clock_timestamp()
       AND j.state = 'active'
       AND (SELECT CASE WHEN a.hours_from <= a.hours_until
                        THEN m >= a.hours_from AND m < a.hours_until
                        ELSE m >= a.hours_from OR m < a.hours_until END
              FROM (SELECT (extract(hour FROM clock_timestamp() AT TIME ZONE a.timezone) * 60
                            + extract(minute FROM clock_timestamp() AT TIME ZONE a.timezone)
                           )::integer AS m) local_time)
     ORDER BY c.next_attempt_at, c.id
     LIMIT 1
     FOR UPDATE OF c SKIP LOCKED;
    IF picked IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE dialer_trunks
       SET next_slot = greatest(next_slot, clock_timestamp()) + make_interval(secs => 1 / p_cps)
     WHERE name = p_trunk;
    UPDATE dialer_calls c
       SET state = 'dialing', attempts = c.attempts + 1, worker = p_worker,
           lease_until = clock_timestamp() + make_interval(secs => p_lease),
           channel_id = p_prefix || c.message_id || '-' || (c.attempts + 1),
           started_at = clock_timestamp(), ring_at = NULL, answer_at = NULL, hang_at = NULL,
           outcome = NULL, cause = NULL, cause_name = NULL, keypress = NULL, amd = NULL,
           duration = 0, updated_at = clock_timestamp()
     WHERE c.id = picked
    RETURNING to_jsonb(c.*) INTO claimed;
    RETURN jsonb_build_object(
        'call', claimed,
        'dnc', EXISTS (SELECT 1 FROM dialer_dnc d JOIN dialer_jobs j ON j.account_pk = d.account_pk
                        WHERE j.id = (claimed ->> 'job_id')::uuid
                          AND d.number = claimed ->> 'number'));
END
$$;
