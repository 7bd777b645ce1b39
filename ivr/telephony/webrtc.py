"""Browser phones' SIP accounts, pushed into the running Asterisk over ARI.

Each is an auth and an endpoint named `webrtc-<random>`, created in Asterisk's memory (the
`memory` wizard asterisk-conf/sorcery.conf adds beside pjsip.conf): short-lived by design, so
forgetting them when Asterisk restarts is right, and pushing one reloads nothing, so calls in
progress are never touched. The endpoint is a WebRTC one (`webrtc = yes`: DTLS-SRTP with a
certificate Asterisk generates, ICE, rtcp-mux, AVPF) on the websocket transport, and its calls
enter `ivr-inbound`, the dialplan every caller goes through. A pushed object cannot take a
pjsip.conf template, so the options [endpoint-defaults] gives the others are spelt out here."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.telephony.rest import AriClient, AriHttpError

PREFIX = "webrtc-"
CONTEXT = "ivr-inbound"
CODECS = "!all,opus,ulaw,alaw"


@dataclass(frozen=True)
class WebRtcAccount:
    name: str  # the endpoint, the auth and the digest user name alike
    password: str
    caller_name: str  # the caller id's name the engine and the call log see


def _fields(pairs: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {"fields": [{"attribute": k, "value": v} for k, v in pairs.items()]}


def endpoint_options(account: WebRtcAccount, media_address: str) -> dict[str, str]:
    return {
        "transport": "transport-ws",
        "context": CONTEXT,
        "allow": CODECS,
        "webrtc": "yes",
        "auth": account.name,
        "identify_by": "username",
        "callerid": f'"{account.caller_name}" <{account.name}>',
        "direct_media": "no",
        "rtp_symmetric": "yes",
        "force_rport": "yes",
        "rewrite_contact": "yes",
        "media_address": media_address,
        "bind_rtp_to_media_address": "yes",
        "dtmf_mode": "rfc4733",
        "language": "en",
    }


async def push(ari: AriClient, account: WebRtcAccount, media_address: str) -> None:
    """The auth first, then the endpoint naming it: an endpoint never exists without its
    auth."""
    await ari.request("put_config_object", _path("auth", account.name), None, _fields({
        "auth_type": "userpass", "username": account.name, "password": account.password}))
    await ari.request("put_config_object", _path("endpoint", account.name), None,
                      _fields(endpoint_options(account, media_address)))


async def remove(ari: AriClient, name: str) -> None:
    """The endpoint, then its auth; one Asterisk no longer has (it restarted) is gone already.
    Calls in progress keep their channels: only new requests need the objects."""
    for kind in ("endpoint", "auth"):
        try:
            await ari.request("delete_config_object", _path(kind, name))
        except AriHttpError as exc:
            if exc.status != 404:
                raise


def _path(kind: str, name: str) -> dict[str, str]:
    if not name.startswith(PREFIX):
        raise ValueError(f"not a browser phone's account: {name!r}")
    return {"configClass": "res_pjsip", "objectType": kind, "id": name}
