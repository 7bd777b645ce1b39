-- What a restarted engine needs to finish what a dead one left: the channel a session's
-- caller is on, and which Asterisk recording each take came from (so none is imported twice).
ALTER TABLE recording_sessions ADD COLUMN channel_id text;
ALTER TABLE takes ADD COLUMN asterisk_name text;
CREATE UNIQUE INDEX takes_asterisk_name ON takes (asterisk_name) WHERE asterisk_name IS NOT NULL;
CREATE INDEX recording_sessions_in_call ON recording_sessions (state)
    WHERE state IN ('called', 'recording');
