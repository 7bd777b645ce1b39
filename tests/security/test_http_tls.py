"""The API and console over HTTPS (IVR_HTTP_TLS_CERT / _KEY): served by `ivr serve`'s own TLS
context, HSTS on every answer, cookies Secure; the client address and the scheme taken from
a reverse proxy's headers only when it is one of IVR_TRUSTED_PROXIES (docs/security.md)."""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ivr.app import create_app
from ivr.core.errors import ConfigError
from ivr.core.web import client_address, is_secure, tls_context
from ivr.settings import Settings
from tests.helpers.edge import free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("https")
    cert, key = d / "api.crt", d / "api.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def with_security(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, security=dataclasses.replace(settings.security,
                                                                      **changes))


async def test_served_over_tls_with_hsts_and_secure_cookies(
        settings: Settings, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    tls = with_security(settings, http_tls_cert=cert, http_tls_key=key)
    runner = web.AppRunner(create_app(tls, with_telephony=False))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls_context(tls)).start()
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{port}/healthz", ssl=trusted) as resp:
                assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
            async with http.get(f"https://127.0.0.1:{port}/console/signin", ssl=trusted) as resp:
                assert resp.status == 200
                cookies = resp.headers.getall("Set-Cookie")
                assert cookies and all("Secure" in c and "HttpOnly" in c for c in cookies)
            with pytest.raises(aiohttp.ClientError):  # plain HTTP to the TLS port
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    await resp.read()
            with pytest.raises(aiohttp.ClientConnectorCertificateError):  # not our CA
                async with http.get(f"https://127.0.0.1:{port}/healthz") as resp:
                    await resp.read()
    finally:
        await runner.cleanup()


def test_a_certificate_without_its_key_is_refused(certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    with pytest.raises(ConfigError, match="IVR_HTTP_TLS_CERT and IVR_HTTP_TLS_KEY go together"):
        Settings.from_mapping({"IVR_ARI_PASSWORD": "s3cret-ari-pw",
                               "IVR_SOFTPHONE_PASSWORD": "s3cret-sip-pw",
                               "IVR_HTTP_TLS_CERT": str(cert)})


def request(settings: Settings, peer: str, **headers: str) -> web.Request:
    app = create_app(settings, with_telephony=False)
    req = make_mocked_request("GET", "/", headers=headers, app=app)
    return req.clone(remote=peer)


def test_forwarded_headers_count_only_from_a_trusted_proxy(settings: Settings) -> None:
    plain = with_security(settings, trusted_proxies=())
    proxied = with_security(settings, trusted_proxies=("10.0.0.0/24",))
    spoof = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    # Anyone may write the headers: without a trusted proxy they mean nothing.
    assert client_address(request(plain, "198.51.100.7", **spoof)) == "198.51.100.7"
    assert not is_secure(request(plain, "198.51.100.7", **spoof))
    assert client_address(request(proxied, "198.51.100.7", **spoof)) == "198.51.100.7"
    assert not is_secure(request(proxied, "198.51.100.7", **spoof))
    # Through the proxy: what it saw, read from the right past the trusted hops; a client's
    # own X-Forwarded-For in front of it is not believed.
    chain = {"X-Forwarded-For": "192.0.2.1, 203.0.113.9, 10.0.0.3", "X-Forwarded-Proto": "https"}
    assert client_address(request(proxied, "10.0.0.2", **chain)) == "203.0.113.9"
    assert is_secure(request(proxied, "10.0.0.2", **chain))
    assert client_address(request(proxied, "10.0.0.2", **{"X-Forwarded-For": "junk"})) \
        == "10.0.0.2"
    assert client_address(request(proxied, "10.0.0.2")) == "10.0.0.2"
