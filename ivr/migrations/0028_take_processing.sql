-- Kept takes processed for listening (issue #27 item 3, ivr/media/quality.py `process`): the
-- silence at both ends trimmed (a short pad kept) and the loudness brought to a target without
-- clipping; the take as recorded stays beside it (take-N.original.wav). Per voice recorder.
ALTER TABLE voice_recorders
    ADD COLUMN trim_silence boolean NOT NULL DEFAULT true,
    ADD COLUMN normalize_lufs double precision DEFAULT -16
        CHECK (normalize_lufs IS NULL OR normalize_lufs BETWEEN -40 AND -6);
