-- Take quality (issue #27, ivr/media/quality.py): each take's figures and verdict as measured
-- when it was recorded (NULL for takes from before, or audio that could not be read), and each
-- voice recorder's limits for an ok take and what the phone side does with one that is not.
ALTER TABLE takes ADD COLUMN quality jsonb;
ALTER TABLE voice_recorders
    ADD COLUMN quality_check boolean NOT NULL DEFAULT true,
    ADD COLUMN quality_keep_anyway boolean NOT NULL DEFAULT true,
    ADD COLUMN quality_min_speech_seconds double precision NOT NULL DEFAULT 0.3,
    ADD COLUMN quality_min_loudness_lufs double precision NOT NULL DEFAULT -40,
    ADD COLUMN quality_max_clipped_ratio double precision NOT NULL DEFAULT 0.01,
    ADD COLUMN quality_min_snr_db double precision NOT NULL DEFAULT 12;
