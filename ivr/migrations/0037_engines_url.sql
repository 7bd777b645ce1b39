-- Where each engine of a pool answers HTTP (its IVR_PUBLIC_URL): a call-control request for a
-- call another engine runs is passed on to it (docs/scale-out.md).
ALTER TABLE engines ADD COLUMN url text;
