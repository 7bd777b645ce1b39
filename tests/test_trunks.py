"""Carrier trunks as data (ivr/trunks): what the operator may give, the pjsip objects a trunk
becomes, `ivr trunk add|list|show|remove` against a database and an Asterisk configuration
folder of their own (never the shared Asterisk), and the password kept out of every output.
The real Asterisk reading them is tests/phone/test_carrier_netns.py."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from ivr.cli import build_parser
from ivr.core.errors import InvalidParameter, NotFound
from ivr.provision.asterisk_conf import AsteriskConfig
from ivr.provision.asterisk_run import TRUNKS_FILE, _write_config
from ivr.provision.trunks import pjsip
from ivr.provision.trunks.model import MASK, build
from ivr.settings import Network, Settings

SECRET = "s3cret;with-semicolon"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"name": "Acme"}, "a trunk name is 1 to 32 lowercase"),
        ({"host": "bad host"}, "--host must be an IPv4 address or a host name"),
        ({"transport": "sctp"}, "--transport must be one of udp, tcp, tls"),
        ({"port": 70000}, "--port must be between 1 and 65535"),
        ({"username": "acct"}, "a --username and its password together"),
        ({"password": "pw"}, "a --username and its password together"),
        ({"username": "a b", "password": "pw"}, "--username must be"),
        ({"username": "u", "password": " pw"}, "without surrounding spaces"),
        ({"register": True}, "--register needs digest credentials"),
        ({"match": ["10.0.0.0/33x"]}, "--match takes IPv4 addresses"),
        ({"caller_id": "12"}, "is not a valid phone number"),
        ({"id_style": "header"}, "--id-style must be one of from, pai, rpid"),
        ({"codecs": ["g729"]}, "--codecs must be one of"),
        ({"codecs": [" "]}, "--codecs needs at least one"),
        ({"did_from": "from"}, "--did-from must be one of ruri, to"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, object], fragment: str) -> None:
    values: dict[str, object] = {"name": "northco", "host": "sip.carrier.example", **options}
    with pytest.raises(InvalidParameter, match=fragment):
        build(**values)  # type: ignore[arg-type]


def test_a_registering_trunk_becomes_its_pjsip_objects() -> None:
    trunk = build("northco", "SIP.Carrier.example", username="acct-1", password=SECRET,
                  realm="carrier", caller_id="512 555 0100", id_style="pai",
                  codecs=["alaw", "ulaw", "alaw"])
    assert trunk.register and trunk.caller_id == "+15125550100"
    assert trunk.host == "sip.carrier.example" and trunk.codecs == ("alaw", "ulaw")
    assert SECRET not in repr(trunk) and trunk.shown()["password"] == MASK
    text = pjsip.render([trunk], Network())
    for fragment in (
        "[trunk-northco](endpoint-defaults)\ntransport = transport-udp\n"
        "context = ivr-trunk-inbound\nallow = !all,alaw,ulaw\naors = trunk-northco\n"
        "identify_by = ip\n",
        "outbound_auth = trunk-northco-auth\nsend_pai = yes\ntrust_id_outbound = yes\n"
        "from_user = acct-1\n",
        "[trunk-northco]\ntype = aor\ncontact = sip:sip.carrier.example:5060\n"
        "qualify_frequency = 60\n",
        "username = acct-1\npassword = s3cret\\;with-semicolon\nrealm = carrier\n",
        "[trunk-northco-reg]\ntype = registration\ntransport = transport-udp\n"
        "outbound_auth = trunk-northco-auth\nserver_uri = sip:sip.carrier.example:5060\n"
        "client_uri = sip:acct-1@sip.carrier.example\ncontact_user = acct-1\nline = yes\n"
        "endpoint = trunk-northco\n",
        "[trunk-northco-identify]\ntype = identify\nendpoint = trunk-northco\n"
        "match = sip.carrier.example\n",
    ):
        assert fragment in text, fragment
    assert "[transport-tcp]" not in text and "[transport-tls]" not in text


def test_an_ip_authenticated_trunk_over_tls_and_tcp() -> None:
    net = Network(sip_bind="10.0.0.5", rtp_address="10.0.0.5", sip_external="203.0.113.5",
                  local_net=("10.0.0.0/8",))
    tls = build("secure", "192.0.2.10", transport="tls", match=["192.0.2.0/24, 198.51.100.7"],
                did_from="to")
    tcp = build("plain", "192.0.2.20", transport="tcp", id_style="rpid")
    assert tls.port == 5061 and not tls.register
    text = pjsip.render([tls, tcp], net)
    assert ("[transport-tcp]\ntype = transport\nprotocol = tcp\nbind = 10.0.0.5:5060\n"
            "external_signaling_address = 203.0.113.5\nlocal_net = 10.0.0.0/8\n") in text
    assert "[transport-tls]\ntype = transport\nprotocol = tls\nbind = 10.0.0.5:5061\n" in text
    assert "contact = sip:192.0.2.10:5061;transport=tls\n" in text
    assert "context = ivr-trunk-to\n" in text
    assert "match = 192.0.2.0/24\nmatch = 198.51.100.7\n" in text
    assert "send_rpid = yes\n" in text
    assert "type = auth" not in text and "type = registration" not in text
    # Sorted by name, whatever order they came in.
    assert text.index("[trunk-plain]") < text.index("[trunk-secure]")


def _fake_root(tmp_path: Path) -> Path:
    """Enough of an Asterisk root for `ivr trunk` to write into (nothing runs in it)."""
    root = tmp_path / "asterisk-sid"
    (root / "etc/asterisk/generated").mkdir(parents=True)
    (root / "etc/asterisk/pjsip.conf").write_text("; shipped\n")
    (root / "etc/passwd").write_text("asterisk:x:0:0::/var/lib/asterisk:/bin/false\n")
    return root


def _ivr(settings: Settings, *argv: str) -> int:
    args: argparse.Namespace = build_parser().parse_args(list(argv))
    return int(args.func(settings, args))


def test_the_trunk_commands(settings: Settings, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_root(tmp_path)
    ours = dataclasses.replace(settings, asterisk_root=root)
    monkeypatch.setenv("IVR_TRUNK_PASSWORD", SECRET)
    assert _ivr(ours, "trunk", "add", "northco", "--host", "192.0.2.1", "--username", "acct",
                "--caller-id", "+15125550100") == 0
    assert _ivr(ours, "trunk", "add", "ipco", "--host", "192.0.2.2", "--match",
                "192.0.2.0/28", "--transport", "tcp") == 0
    with pytest.raises(InvalidParameter, match="trunk northco exists"):
        _ivr(ours, "trunk", "add", "northco", "--host", "192.0.2.9")
    out = capsys.readouterr().out
    assert ("trunk northco added (trunk-northco: 192.0.2.1:5060 over udp, registering as acct)"
            in out)
    assert "Asterisk is not running: it reads the trunks when it starts" in out
    written = (root / "etc/asterisk" / TRUNKS_FILE).read_text()
    assert "password = s3cret\\;with-semicolon" in written and "[trunk-ipco]" in written
    assert (root / "etc/asterisk" / TRUNKS_FILE).stat().st_mode & 0o777 == 0o640

    assert _ivr(ours, "trunk", "list") == 0
    assert _ivr(ours, "trunk", "show", "northco") == 0
    out = capsys.readouterr().out
    assert "northco\t192.0.2.1:5060/udp\tregister acct\tnot running\tnot running" in out
    assert "ipco\t192.0.2.2:5060/tcp\tip 192.0.2.0/28\tnot running" in out
    assert f"password      {MASK}" in out and "caller_id     +15125550100" in out
    assert SECRET not in out and "s3cret" not in out

    remote = dataclasses.replace(ours, ari_url="https://media.internal:8089")
    assert _ivr(remote, "trunk", "list") == 0
    assert "register acct\ton another host: see /healthz\t" in capsys.readouterr().out

    assert _ivr(ours, "trunk", "remove", "northco") == 0
    assert "[trunk-northco" not in (root / "etc/asterisk" / TRUNKS_FILE).read_text()
    with pytest.raises(NotFound, match="no trunk 'northco'"):
        _ivr(ours, "trunk", "show", "northco")
    assert _ivr(ours, "trunk", "remove", "ipco") == 0
    # Only this test's trunks: others' (the carrier test's) may share the session's database.
    left = (root / "etc/asterisk" / TRUNKS_FILE).read_text()
    assert "[trunk-northco" not in left and "[trunk-ipco" not in left


def test_a_restart_keeps_the_trunks(tmp_path: Path) -> None:
    """`ivr asterisk up` rewrites the configuration folder: the trunk file written by `ivr
    trunk` between starts is carried over (and is no part of the settings' digest)."""
    root = _fake_root(tmp_path)
    (root / "etc/asterisk" / TRUNKS_FILE).write_text("[trunk-northco]\n")
    cfg = AsteriskConfig(root, tmp_path, tmp_path, "http://127.0.0.1:8088", "ivr", "pw", "ivr",
                         "softphone", "pw")
    _write_config(cfg, {"pjsip.conf": b"; new\n"})
    assert (root / "etc/asterisk/pjsip.conf").read_text() == "; new\n"
    assert (root / "etc/asterisk" / TRUNKS_FILE).read_text() == "[trunk-northco]\n"
