"""The address settings (IVR_SIP_*, IVR_RTP_*, IVR_LOCAL_NET, IVR_ARI_BIND, ARI's TLS): loopback
by default, every bad value named, and a weak ARI password refused once ARI leaves loopback."""

from pathlib import Path

import pytest

from ivr.core.errors import ConfigError
from ivr.settings import KNOWN_DEFAULT_PASSWORDS, REPO_ROOT, Network, Settings, read_env_file

GOOD = {"IVR_ARI_PASSWORD": "s3cret-ari-pw", "IVR_SOFTPHONE_PASSWORD": "s3cret-sip-pw"}
STRONG = "Zq7-vN2pXr9LkT4wB6yH"


def test_defaults_are_loopback() -> None:
    net = Settings.from_mapping(GOOD).network
    assert net == Network()
    assert (net.sip_bind, net.sip_port, net.rtp_address) == ("127.0.0.1", 5060, "127.0.0.1")
    assert net.ari_bind == ("127.0.0.1", 8088) and not net.ari_tls
    assert net.rtp_ports == (10000, 20000) and net.local_net == ()


def test_every_address_setting_is_read() -> None:
    net = Settings.from_mapping({
        **GOOD, "IVR_ARI_PASSWORD": STRONG, "IVR_SIP_BIND": "0.0.0.0", "IVR_SIP_PORT": "5080",
        "IVR_SIP_EXTERNAL_ADDRESS": "sip.example.com", "IVR_RTP_ADDRESS": "10.0.0.5",
        "IVR_RTP_EXTERNAL_ADDRESS": "203.0.113.7",
        "IVR_LOCAL_NET": "10.0.0.0/8, 192.168.1.7/24", "IVR_RTP_PORTS": "30000-30999",
        "IVR_ARI_BIND": "10.0.0.5:8088",
    }).network
    assert (net.sip_bind, net.sip_port, net.sip_external) == ("0.0.0.0", 5080, "sip.example.com")
    assert (net.rtp_address, net.rtp_external) == ("10.0.0.5", "203.0.113.7")
    assert net.local_net == ("10.0.0.0/8", "192.168.1.0/24")
    assert net.rtp_ports == (30000, 30999) and net.ari_bind == ("10.0.0.5", 8088)


def test_the_ari_listeners_follow_the_url_scheme() -> None:
    plain = Settings.from_mapping({**GOOD, "IVR_ARI_URL": "http://127.0.0.1:9088"}).network
    assert plain.ari_bind == ("127.0.0.1", 9088) and plain.ari_tls_bind == ("127.0.0.1", 8089)
    tls = Settings.from_mapping({**GOOD, "IVR_ARI_URL": "https://127.0.0.1:9089"}).network
    assert tls.ari_bind == ("127.0.0.1", 8088) and tls.ari_tls_bind == ("127.0.0.1", 9089)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("IVR_SIP_BIND", "localhost", "IVR_SIP_BIND must be an IPv4 address"),
        ("IVR_SIP_PORT", "0", "IVR_SIP_PORT must be between"),
        ("IVR_RTP_ADDRESS", "0.0.0.0", "IVR_RTP_ADDRESS must be an address others can send"),
        ("IVR_RTP_EXTERNAL_ADDRESS", "a b", "IVR_RTP_EXTERNAL_ADDRESS must be an IPv4"),
        ("IVR_LOCAL_NET", "10.0.0.0/8,nowhere", "IVR_LOCAL_NET must be a comma-separated"),
        ("IVR_RTP_PORTS", "10000", "IVR_RTP_PORTS must be FIRST-LAST"),
        ("IVR_RTP_PORTS", "20000-10000", "IVR_RTP_PORTS must span at least two ports"),
        ("IVR_ARI_BIND", "127.0.0.1", "IVR_ARI_BIND must be ADDRESS:PORT"),
        ("IVR_ARI_CERT_SHA256", "abcd", "IVR_ARI_CERT_SHA256 must be a SHA-256"),
        ("IVR_ARI_CA_FILE", "/nonexistent/ca.pem", "IVR_ARI_CA_FILE: no such file"),
    ],
)
def test_bad_values_name_their_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_mapping({**GOOD, name: value})


def test_tls_settings_go_together(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("not checked here")
    with pytest.raises(ConfigError, match="IVR_ARI_TLS_CERT and IVR_ARI_TLS_KEY go together"):
        Settings.from_mapping({**GOOD, "IVR_ARI_TLS_CERT": str(pem)})
    https = {**GOOD, "IVR_ARI_URL": "https://127.0.0.1:8089"}
    with pytest.raises(ConfigError, match="set one"):
        Settings.from_mapping({**https, "IVR_ARI_CA_FILE": str(pem),
                               "IVR_ARI_CERT_SHA256": "ab" * 32})
    with pytest.raises(ConfigError, match="need an https:// IVR_ARI_URL"):
        Settings.from_mapping({**GOOD, "IVR_ARI_CA_FILE": str(pem)})
    with pytest.raises(ConfigError, match="IVR_ARI_BIND and IVR_ARI_TLS_BIND must differ"):
        Settings.from_mapping({**https, "IVR_ARI_TLS_CERT": str(pem), "IVR_ARI_TLS_KEY": str(pem),
                               "IVR_ARI_BIND": "127.0.0.1:8089"})
    pinned = Settings.from_mapping({**https, "IVR_ARI_CERT_SHA256": "AB:" * 31 + "AB"})
    assert pinned.network.ari_cert_sha256 == "ab" * 32


@pytest.mark.parametrize(
    "exposed",
    [{"IVR_ARI_URL": "https://media.example.net:8089"}, {"IVR_ARI_URL": "http://10.0.0.5:8088"},
     {"IVR_ARI_BIND": "0.0.0.0:8088"}],
)
@pytest.mark.parametrize("password", ["s3cret-ari-pw", "change-me", "x" * 15])
def test_a_weak_ari_password_is_refused_off_loopback(exposed: dict[str, str],
                                                     password: str) -> None:
    with pytest.raises(ConfigError, match="IVR_ARI_PASSWORD is too weak"):
        Settings.from_mapping({**GOOD, **exposed, "IVR_ARI_PASSWORD": password})
    # The same place with a strong password; and the weak one where only this host reaches it.
    assert Settings.from_mapping({**GOOD, **exposed, "IVR_ARI_PASSWORD": STRONG})
    assert Settings.from_mapping({**GOOD, "IVR_ARI_PASSWORD": password}).ari_password == password


def test_the_example_passwords_are_known_defaults() -> None:
    example = read_env_file(REPO_ROOT / ".env.example")
    for name, value in example.items():
        if name.endswith("PASSWORD"):
            assert value in KNOWN_DEFAULT_PASSWORDS, name


def test_env_example_documents_every_address_setting() -> None:
    text = (REPO_ROOT / ".env.example").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    deploy = (REPO_ROOT / "docs/deploy.md").read_text()
    for name in ("IVR_SIP_BIND", "IVR_SIP_PORT", "IVR_SIP_EXTERNAL_ADDRESS", "IVR_RTP_ADDRESS",
                 "IVR_RTP_EXTERNAL_ADDRESS", "IVR_LOCAL_NET", "IVR_RTP_PORTS", "IVR_ARI_BIND",
                 "IVR_ARI_TLS_BIND", "IVR_ARI_TLS_CERT", "IVR_ARI_TLS_KEY", "IVR_ARI_CA_FILE",
                 "IVR_ARI_CERT_SHA256", "IVR_PUBLIC_URL"):
        assert name in text and name in readme and name in deploy, name
