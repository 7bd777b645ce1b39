"""The public SIP edge (docs/security.md): the fail2ban jail with its nftables ban, and the
development certificate for SIP over TLS."""
