"""The public SIP edge (docs/security.md): the fail2ban jail with its nftables ban
(`ivr edge up|down|status`); the development certificate for SIP over TLS is
provision/sip_cert.py (`ivr edge cert`)."""
