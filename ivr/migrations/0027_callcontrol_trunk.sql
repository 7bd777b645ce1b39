-- Call control leaves by a carrier trunk (issue #19): an application may name the trunk
-- (`ivr trunk add NAME`) its outbound calls and second legs are dialled through, as
-- PJSIP/NUMBER@trunk-NAME; NULL keeps the engine's default (the loopback trunk, ivr-loopback).
ALTER TABLE cc_applications ADD COLUMN trunk text CHECK (trunk ~ '^[a-z0-9][a-z0-9-]{0,31}$');
