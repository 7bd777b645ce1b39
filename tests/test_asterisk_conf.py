"""The configuration `ivr asterisk up` renders from the settings (ivr/provision/asterisk_conf.py).

With the default settings it must be byte for byte what it was before the addresses became
settings: the expected generated files below are what that code rendered, so a running Asterisk
is never restarted by an upgrade that changes nothing for it. The real Asterisk reading the
non-default configuration is tests/test_ari_tls.py."""

import dataclasses
import subprocess
from pathlib import Path

import pytest

from ivr.cli import asterisk_config, engine_hints
from ivr.core.errors import ConfigError, ProvisionError
from ivr.provision.asterisk import AsteriskConfig
from ivr.provision.asterisk_conf import digest, render
from ivr.settings import REPO_ROOT, Settings

SECRETS = {"IVR_ARI_PASSWORD": "ari-pw-1234", "IVR_SOFTPHONE_PASSWORD": "sip-pw-1234"}
STRONG = "Zq7-vN2pXr9LkT4wB6yH"
HEAD = "; Generated from the IVR_* settings; not kept in git.\n"
# What the defaults render (and these secrets): the loopback trunk known by its source address
# and port alone, no load generator (issue #20).
BEFORE = {
    "generated/http_bind.conf": f"{HEAD}bindaddr = 127.0.0.1\nbindport = 8088\n",
    "generated/ari_users.conf": f"{HEAD}[ivr]\ntype = user\nread_only = no\n"
                                "password_format = plain\npassword = ari-pw-1234\n",
    "generated/pjsip_local.conf": (
        f"{HEAD}[transport-udp]\ntype = transport\nprotocol = udp\nbind = 127.0.0.1:5060\n\n"
        "; The loopback trunk calls this very Asterisk, and is known by where its INVITEs "
        "come from:\n; this Asterisk's own SIP address and port.\n"
        "[ivr-loopback]\ntype = aor\ncontact = sip:127.0.0.1:5060\n\n"
        "[ivr-loopback]\ntype = identify\nendpoint = ivr-loopback\n"
        "match = 127.0.0.1:5060\n"),
    "generated/pjsip_accounts.conf": (
        f"{HEAD}[softphone](softphone-endpoint)\nauth = softphone\naors = softphone\n\n"
        "[softphone]\ntype = auth\nauth_type = userpass\nusername = softphone\n"
        "password = sip-pw-1234\n\n[softphone](softphone-aor)\n"),
    "generated/extensions_globals.conf": f"{HEAD}IVR_APP = ivr\nIVR_SHARDS = 1\n"
                                         "IVR_HTTP = http://127.0.0.1:8080\n"
                                         "IVR_ENTRY = stasis\nIVR_CLAIM_MS = 2000\n",
}


def config(**env: str) -> AsteriskConfig:
    settings = Settings.from_mapping({**SECRETS, "IVR_ASTERISK_ROOT": "/nonexistent/root",
                                      **env})
    return asterisk_config(settings)


def text(files: dict[str, bytes], name: str) -> str:
    return files[name].decode()


def test_the_defaults_render_exactly_as_before() -> None:
    files = render(config())
    shipped = {p.name: p.read_bytes() for p in (REPO_ROOT / "asterisk-conf").glob("*.conf")}
    shipped |= {f"dialplan/{p.name}": p.read_bytes()
                for p in (REPO_ROOT / "dialplan").glob("*.conf")}
    assert {k: v for k, v in files.items() if not k.startswith("generated/")} == shipped
    assert {k: v.decode() for k, v in files.items() if k.startswith("generated/")} == BEFORE
    # Spelling the defaults out changes nothing either.
    spelled = config(IVR_SIP_BIND="127.0.0.1", IVR_SIP_PORT="5060", IVR_RTP_ADDRESS="127.0.0.1",
                     IVR_RTP_PORTS="10000-20000", IVR_ARI_BIND="127.0.0.1:8088",
                     IVR_LOCAL_NET="", IVR_SIP_EXTERNAL_ADDRESS="")
    assert digest(render(spelled)) == digest(files)


def test_nat_addresses_ports_and_local_networks() -> None:
    files = render(config(
        IVR_ARI_PASSWORD=STRONG, IVR_SIP_BIND="10.0.0.5", IVR_SIP_PORT="5080",
        IVR_SIP_EXTERNAL_ADDRESS="203.0.113.5", IVR_RTP_ADDRESS="10.0.0.5",
        IVR_RTP_EXTERNAL_ADDRESS="203.0.113.6", IVR_LOCAL_NET="10.0.0.0/8,192.168.0.0/16",
        IVR_RTP_PORTS="30000-30999", IVR_ARI_BIND="10.0.0.5:8088"))
    local = text(files, "generated/pjsip_local.conf")
    assert ("bind = 10.0.0.5:5080\nexternal_signaling_address = 203.0.113.5\n"
            "external_media_address = 203.0.113.6\nlocal_net = 10.0.0.0/8\n"
            "local_net = 192.168.0.0/16\n") in local
    assert "contact = sip:10.0.0.5:5080\n" in local
    # Only this Asterisk's own SIP address and port are the loopback trunk; no user name is.
    assert "[ivr-loopback]\ntype = identify\nendpoint = ivr-loopback\nmatch = 10.0.0.5:5080\n" \
        in local
    assert "[loadgen" not in local
    rtp = text(files, "rtp.conf")
    assert "rtpstart = 30000\nrtpend = 30999\n" in rtp and "= 10000" not in rtp
    pjsip = text(files, "pjsip.conf")
    assert "media_address = 10.0.0.5\n" in pjsip and "media_address = 127.0.0.1" not in pjsip
    assert text(files, "generated/http_bind.conf").endswith("bindaddr = 10.0.0.5\n"
                                                            "bindport = 8088\n")


def test_a_wildcard_sip_bind_calls_itself_on_loopback() -> None:
    local = text(render(config(IVR_SIP_BIND="0.0.0.0")), "generated/pjsip_local.conf")
    assert "bind = 0.0.0.0:5060\n" in local and "contact = sip:127.0.0.1:5060\n" in local
    assert "match = 127.0.0.1:5060\n" in local  # the source its INVITEs come back from


def test_ari_over_tls_copies_the_certificate_in(tmp_path: Path) -> None:
    cert, key = tmp_path / "ari.crt", tmp_path / "ari.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    cfg = config(IVR_ARI_URL="https://127.0.0.1:8089", IVR_ARI_TLS_CERT=str(cert),
                 IVR_ARI_TLS_KEY=str(key))
    files = render(cfg)
    assert text(files, "generated/http_bind.conf") == (
        f"{HEAD}bindaddr = 127.0.0.1\nbindport = 8088\n"
        "; ARI over TLS (IVR_ARI_TLS_*): the certificate and key are copied here.\n"
        "tlsenable = yes\ntlsbindaddr = 127.0.0.1:8089\n"
        "tlscertfile = /etc/asterisk/generated/ari-tls.crt\n"
        "tlsprivatekey = /etc/asterisk/generated/ari-tls.key\n")
    assert files["generated/ari-tls.crt"] == b"CERT" and files["generated/ari-tls.key"] == b"KEY"
    # Another instance from the same root reads its own folder.
    other = render(dataclasses.replace(cfg, instance="t1"))
    assert "/etc/asterisk-t1/generated/ari-tls.crt" in text(other, "generated/http_bind.conf")
    assert "astetcdir => /etc/asterisk-t1\n" in text(other, "asterisk.conf")
    assert "astrundir => /run/asterisk-t1\n" in text(other, "asterisk.conf")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"IVR_ARI_URL": "https://media.example.net:8089", "IVR_ARI_PASSWORD": STRONG},
         "the ARI URL points at media.example.net"),
        ({"IVR_ARI_URL": "https://127.0.0.1:8089"}, "set IVR_ARI_TLS_CERT and IVR_ARI_TLS_KEY"),
        ({"IVR_ARI_URL": "http://127.0.0.1:8088", "IVR_ARI_BIND": "127.0.0.1:9000"},
         "IVR_ARI_URL's port 8088 is not the port ARI listens on"),
    ],
)
def test_what_cannot_be_provisioned_here_is_refused(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ProvisionError, match=fragment):
        render(config(**env))


def test_an_ari_url_on_the_address_ari_binds_is_this_host() -> None:
    """A media host (or namespace) reached by the engine on its own address."""
    files = render(config(IVR_ARI_PASSWORD=STRONG, IVR_ARI_URL="http://10.0.0.5:8088",
                          IVR_ARI_BIND="10.0.0.5:8088"))
    assert "bindaddr = 10.0.0.5\n" in text(files, "generated/http_bind.conf")


def test_a_media_host_is_provisioned_for_an_engine_elsewhere() -> None:
    """`ivr asterisk up --role media`: IVR_ARI_URL names this host as the engine sees it."""
    media = {"IVR_ARI_PASSWORD": STRONG, "IVR_ARI_URL": "http://media.internal:8088",
             "IVR_ARI_BIND": "10.0.0.5:8088", "IVR_PUBLIC_URL": "http://10.0.0.9:8080"}
    files = render(dataclasses.replace(config(**media), media_host=True))
    assert "bindaddr = 10.0.0.5\n" in text(files, "generated/http_bind.conf")
    assert "IVR_HTTP = http://10.0.0.9:8080\n" in text(files, "generated/extensions_globals.conf")
    with pytest.raises(ProvisionError, match=r"the ARI URL points at media\.internal"):
        render(config(**media))  # without the role: another host's Asterisk
    for change, fragment in (({"IVR_ARI_BIND": "127.0.0.1:8088"}, "ARI listens on loopback only"),
                             ({"IVR_PUBLIC_URL": "http://127.0.0.1:8080"},
                              r"IVR_PUBLIC_URL \(.*\) is on loopback")):
        with pytest.raises(ProvisionError, match=fragment):
            render(dataclasses.replace(config(**{**media, **change}), media_host=True))


def test_a_remote_ari_is_fine_for_the_engine() -> None:
    settings = Settings.from_mapping({**SECRETS, "IVR_ARI_PASSWORD": STRONG,
                                      "IVR_ARI_URL": "https://media.example.net:8089"})
    assert settings.ari_ws_url == "wss://media.example.net:8089/ari/events"


def test_a_media_host_says_what_the_engine_host_needs(tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", "k.pem", "-out", "c.pem", "-subj", "/CN=media"], cwd=tmp_path,
                   check=True, capture_output=True)
    printed = subprocess.run(["openssl", "x509", "-in", "c.pem", "-noout", "-fingerprint",
                              "-sha256"], cwd=tmp_path, check=True, capture_output=True,
                             text=True).stdout.strip().split("=", 1)[1]
    settings = Settings.from_mapping({
        **SECRETS, "IVR_ARI_PASSWORD": STRONG, "IVR_ARI_URL": "https://media.internal:8089",
        "IVR_ARI_TLS_BIND": "10.0.0.5:8089", "IVR_ARI_TLS_CERT": str(tmp_path / "c.pem"),
        "IVR_ARI_TLS_KEY": str(tmp_path / "k.pem"), "IVR_PUBLIC_URL": "http://10.0.0.9:8080"})
    hints = engine_hints(settings)
    assert "IVR_ARI_URL=https://media.internal:8089" in hints
    assert f"IVR_ARI_CERT_SHA256={printed}" in hints  # as openssl prints it: the same pin
    assert STRONG not in hints


def test_the_load_generator_is_in_the_benchmarks_configuration_only() -> None:
    """bench/run.py asks for it: its own transport (the SIP port + 2), and `loadgen` known by
    that source address and port alone (issue #20: no From user names a trusted endpoint)."""
    default = render(config())
    assert "[loadgen" not in text(default, "pjsip.conf") + text(
        default, "generated/pjsip_local.conf")
    files = render(dataclasses.replace(config(IVR_SIP_BIND="0.0.0.0"), loadgen=True))
    local = text(files, "generated/pjsip_local.conf")
    assert "[transport-loadgen]\ntype = transport\nprotocol = udp\nbind = 127.0.0.1:5062\n" \
        in local
    assert "[loadgen-out](endpoint-defaults)\ntransport = transport-loadgen\n" in local
    assert "[loadgen-out]\ntype = aor\ncontact = sip:127.0.0.1:5060\n" in local
    assert "[loadgen](endpoint-defaults)\nidentify_by = ip\ntrust_id_inbound = yes\n" in local
    assert "[loadgen]\ntype = identify\nendpoint = loadgen\nmatch = 127.0.0.1:5062\n" in local
    pjsip = text(files, "pjsip.conf")
    assert "identify_by = ip\nfrom_user = ivr-loopback\n" in pjsip
    assert "endpoint_identifier_order = username,ip\n" in pjsip


def test_the_sipp_trunk_is_in_the_benchmarks_configuration_only() -> None:
    """bench/sipp.py: SIP and RTP on the host's end of the benchmark's veth, and `sipp` known by
    SIPp's address alone, its asserted caller id trusted (a carrier trunk's shape)."""
    assert "[sipp" not in text(render(config()), "generated/pjsip_local.conf")
    files = render(dataclasses.replace(config(), sipp=("10.199.25.1", "10.199.25.2")))
    local = text(files, "generated/pjsip_local.conf")
    assert "[transport-sipp]\ntype = transport\nprotocol = udp\nbind = 10.199.25.1:5060\n" \
        in local
    assert ("[sipp](endpoint-defaults)\ntransport = transport-sipp\nidentify_by = ip\n"
            "media_address = 10.199.25.1\ntrust_id_inbound = yes\n") in local
    assert "[sipp]\ntype = identify\nendpoint = sipp\nmatch = 10.199.25.2\n" in local


def test_sip_tls_with_the_operators_certificate_and_srtp(tmp_path: Path) -> None:
    cert, key = tmp_path / "sip.crt", tmp_path / "sip.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    files = render(config(IVR_SIP_TLS_CERT=str(cert), IVR_SIP_TLS_KEY=str(key),
                          IVR_SIP_TLS_PORT="5071", IVR_SIP_SRTP="required"))
    local = text(files, "generated/pjsip_local.conf")
    assert ("[transport-tls]\ntype = transport\nprotocol = tls\nbind = 127.0.0.1:5071\n"
            "method = tlsv1_2\ncert_file = /etc/asterisk/generated/sip-tls.crt\n"
            "priv_key_file = /etc/asterisk/generated/sip-tls.key\n") in local
    assert files["generated/sip-tls.crt"] == b"CERT" and files["generated/sip-tls.key"] == b"KEY"
    accounts = text(files, "generated/pjsip_accounts.conf")
    assert "media_encryption = sdes\nmedia_encryption_optimistic = no\n" in accounts
    with pytest.raises(ConfigError, match="IVR_SIP_TLS_CERT and IVR_SIP_TLS_KEY go together"):
        config(IVR_SIP_TLS_CERT=str(cert))
    with pytest.raises(ConfigError, match="IVR_SIP_SRTP must be optional or required"):
        config(IVR_SIP_TLS="true", IVR_SIP_SRTP="sometimes")


def test_sip_tls_without_a_certificate_makes_a_development_one(tmp_path: Path) -> None:
    cfg = dataclasses.replace(config(IVR_SIP_TLS="true", IVR_SIP_BIND="10.0.0.5",
                                     IVR_RTP_ADDRESS="10.0.0.5"),
                              root=tmp_path / "root")
    files = render(cfg)
    made = tmp_path / "sip-tls" / "dev.crt"
    assert files["generated/sip-tls.crt"] == made.read_bytes()
    assert (tmp_path / "sip-tls" / "dev.key").stat().st_mode & 0o077 == 0
    san = subprocess.run(["openssl", "x509", "-in", str(made), "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True, check=True).stdout
    assert "IP Address:10.0.0.5" in san and "IP Address:127.0.0.1" in san
    assert render(cfg)["generated/sip-tls.crt"] == files["generated/sip-tls.crt"]  # kept
    assert "optimistic = yes" in text(files, "generated/pjsip_accounts.conf")
