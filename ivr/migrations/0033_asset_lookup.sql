-- A protected list's or recording's access password, kept a second way for searches (issue
-- #20, Argon2 amplification): Argon2id of the password with a salt made from its voice
-- recorder's key, the same for every object of that recorder, so one search computes it once
-- and compares it with every row instead of verifying one hash per row. NULL for rows made
-- before this migration (a search checks at most a few of those the slow way).
ALTER TABLE recording_lists ADD COLUMN access_lookup bytea;
ALTER TABLE recordings ADD COLUMN access_lookup bytea;
