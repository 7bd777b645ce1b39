"""Programmable call control: inbound and outbound calls driven over REST and webhooks
(EnableX voice API shapes), live call recording (also in the VoipNow UAPI form)."""
