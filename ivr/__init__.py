"""ivr: a self-hosted telephony IVR engine on Asterisk ARI."""

__version__ = "0.1.0"
