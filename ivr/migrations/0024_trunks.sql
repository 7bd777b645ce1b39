-- Carrier SIP trunks (issue #19, `ivr trunk add|list|show|remove`): one row each, from which
-- ivr/provision/trunks/pjsip.py generates the trunk's pjsip objects (generated/
-- pjsip_trunks.conf, applied with a reload). The password is needed in clear for pjsip's userpass auth; nothing prints it.
CREATE TABLE trunks (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    host text NOT NULL,
    port integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    transport text NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls')),
    username text NOT NULL DEFAULT '',  -- digest credentials ('' for an IP-authenticated trunk)
    password text NOT NULL DEFAULT '',
    realm text NOT NULL DEFAULT '',
    register boolean NOT NULL DEFAULT false,
    match text[] NOT NULL DEFAULT '{}',  -- addresses / CIDRs the carrier's calls come from
    caller_id text NOT NULL DEFAULT '',  -- E.164, what outbound calls show by default
    id_style text NOT NULL DEFAULT 'from' CHECK (id_style IN ('from', 'pai', 'rpid')),
    from_domain text NOT NULL DEFAULT '',
    codecs text[] NOT NULL DEFAULT '{ulaw,alaw}',
    did_from text NOT NULL DEFAULT 'ruri' CHECK (did_from IN ('ruri', 'to')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT register OR username <> '')
);
