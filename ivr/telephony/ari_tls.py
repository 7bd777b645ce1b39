"""How the engine trusts ARI over https:// and wss://: the certificate is verified against
IVR_ARI_CA_FILE (the system's CAs without it), or its SHA-256 fingerprint is pinned with
IVR_ARI_CERT_SHA256 (a self-signed certificate then needs no CA). Every ARI session, the REST
calls and the event websockets alike, is built here."""

from __future__ import annotations

import ssl

import aiohttp

from ivr.settings import Settings

_HINT = {
    aiohttp.ServerFingerprintMismatch:
        "ARI's certificate does not match IVR_ARI_CERT_SHA256 (the pinned fingerprint)",
    aiohttp.ClientConnectorCertificateError:
        "ARI's certificate is not trusted: check IVR_ARI_CA_FILE (the CA that signed it) and "
        "that it names the host of IVR_ARI_URL",
}


def ari_ssl(settings: Settings) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    """What aiohttp's `ssl=` gets for ARI (True, the default checks, for a plain http:// URL:
    it is never used there)."""
    net = settings.network
    if not settings.ari_url.startswith("https:"):
        return True
    if net.ari_cert_sha256:
        return aiohttp.Fingerprint(bytes.fromhex(net.ari_cert_sha256))
    return ssl.create_default_context(cafile=str(net.ari_ca_file) if net.ari_ca_file else None)


def ari_connector(settings: Settings, **options: int | float) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(ssl=ari_ssl(settings), **options)  # type: ignore[arg-type]


def tls_failure(exc: BaseException) -> str:
    """A plain sentence when `exc` is ARI's certificate failing verification, else ""."""
    for kind, hint in _HINT.items():
        if isinstance(exc, kind):
            return f"{hint} ({exc})"
    return ""
