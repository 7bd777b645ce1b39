"""The browser phone's Asterisk side on the real Asterisk: SIP over a websocket on its HTTP
server, and WebRTC accounts pushed over ARI into memory (telephony/webrtc.py) that let their
password in, refuse any other, and are refused once removed."""

from __future__ import annotations

import secrets

import pytest

from ivr.cli import asterisk_config
from ivr.provision import asterisk as provision
from ivr.settings import Settings
from ivr.telephony import webrtc
from ivr.telephony.rest import AriClient
from tests.helpers.sipws import options_status

pytestmark = pytest.mark.asterisk


def ws_url(settings: Settings) -> str:
    host, port = settings.network.ari_bind
    return f"ws://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/ws"


async def test_a_pushed_account_is_let_in_until_removed(
        base_settings: Settings, ari: AriClient) -> None:
    cfg = asterisk_config(base_settings)
    assert "/ws => Asterisk HTTP WebSocket" in provision.cli(cfg, "http show status")
    assert "transport-ws" in provision.cli(cfg, "pjsip show transports")
    account = webrtc.WebRtcAccount(f"{webrtc.PREFIX}{secrets.token_hex(6)}",
                                   secrets.token_urlsafe(18), "console test")
    await webrtc.push(ari, account, base_settings.network.rtp_address)
    try:
        shown = provision.cli(cfg, f"pjsip show endpoint {account.name}")
        for line in ("media_encryption                   : dtls",
                     "dtls_auto_generate_cert            : Yes",
                     "dtls_verify                        : Fingerprint",
                     "ice_support                        : true",
                     "rtcp_mux                           : true",
                     "use_avpf                           : true",
                     "allow                              : (opus|ulaw|alaw)",
                     "context                            : ivr-inbound",
                     "transport                          : transport-ws",
                     f"media_address                      : {base_settings.network.rtp_address}"):
            assert line in shown, line
        url = ws_url(base_settings)
        assert await options_status(url, account.name, account.password) == 200
        assert await options_status(url, account.name, account.password + "x") == 401
    finally:
        await webrtc.remove(ari, account.name)
    assert await options_status(url, account.name, account.password) == 401
    assert "Unable to find object" in provision.cli(cfg, f"pjsip show endpoint {account.name}")
    await webrtc.remove(ari, account.name)  # gone already: nothing to do, no error
