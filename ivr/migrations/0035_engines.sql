-- The engines of a pool (docs/scale-out.md), each beating here every few seconds: one that
-- has stopped beating is dead, and the one survivor that deletes its row takes its calls over
-- (resumes its recorder sessions, hangs up the rest, ends what was left).
CREATE TABLE engines (
    app      text PRIMARY KEY,  -- its Stasis app, IVR_ARI_APP.IVR_ENGINE_ID
    seen_at  timestamptz NOT NULL DEFAULT now()
);
