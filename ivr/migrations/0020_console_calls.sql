-- The console's call log (/console/calls) finds a developer's calls through the sessions their
-- callers voiced: recorder -> session (channel_id, set when the caller gets in) -> calls. The
-- index is written once per call (when the caller gets in), never per event.
CREATE INDEX recording_sessions_calls ON recording_sessions (recorder_id, channel_id)
    WHERE channel_id IS NOT NULL;
