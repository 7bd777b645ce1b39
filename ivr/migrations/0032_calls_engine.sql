-- Which engine of a pool runs the call (its Stasis app, IVR_ARI_APP.IVR_ENGINE_ID): a call
-- offered to every engine (StasisBroadcast) leaves no trace of its winner in Asterisk, and
-- an engine restarting must know which unowned channels were its own (docs/scale-out.md).
ALTER TABLE calls ADD COLUMN engine text;
