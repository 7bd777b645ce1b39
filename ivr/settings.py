"""The one settings object, read once from IVR_* variables (a `.env` file fills in what the
environment leaves unset) and validated at start: a bad value names its variable.

Just over the house's ~400 lines on purpose: every IVR_* variable is read and checked in this
one module, the one place an operator looks a setting up; its groups (`Network`, ...) are its
dataclasses."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import quote, urlsplit

from ivr.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; `#` comments; optional single or double quotes around the value."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"{path}:{lineno}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name} must be a {'/'.join(schemes)} URL with a host, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ConfigError(f"{name} has a bad port: {value!r}") from exc
    return value.rstrip("/")


def _with_password(url: str, password: str) -> str:
    """IVR_DATABASE_PASSWORD put into IVR_DATABASE_URL (`ivr env init` makes it; a password
    already in the URL wins)."""
    parts = urlsplit(url)
    if not password or parts.password is not None:
        return url
    _secret("IVR_DATABASE_PASSWORD", password)
    user = parts.username or "postgres"
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}{port}").geturl()


def _event_loop(value: str) -> str:
    if value not in ("uvloop", "asyncio"):
        raise ConfigError(f"IVR_EVENT_LOOP must be uvloop or asyncio, got {value!r}")
    return value


def _int(name: str, value: str, lo: int, hi: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if not lo <= number <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {number}")
    return number


def _float(name: str, value: str, lo: float, hi: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not lo <= number <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {number}")
    return number


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _name(name: str, value: str) -> str:
    if not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ConfigError(f"{name} must be letters, digits, '-', '_' or '.', got {value!r}")
    return value


def _secret(name: str, value: str) -> str:
    if len(value) < 8:
        raise ConfigError(f"{name} must be at least 8 characters")
    if any(c.isspace() or c in "\"';#" for c in value):
        raise ConfigError(f"{name} must not contain spaces, quotes, ';' or '#'")
    return value


def _token(name: str, value: str) -> str:
    """A bearer token: a secret long enough that guessing it is hopeless."""
    if len(_secret(name, value)) < STRONG_PASSWORD_LENGTH:
        raise ConfigError(f"{name} must be at least {STRONG_PASSWORD_LENGTH} characters")
    return value


def _phone(name: str, value: str) -> str:
    """A phone number in E.164, from international form or as dialled in the US; "" is none."""
    import phonenumbers  # only where such a setting is read

    if not value.strip():
        return ""
    try:
        parsed = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ConfigError(f"{name} must be a valid phone number such as +15125550100 "
                          f"(or empty for none), got {value!r}")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Passwords that ship in examples and samples: never good enough where others can reach ARI.
KNOWN_DEFAULT_PASSWORDS = frozenset({"change-me", "changeme", "password", "secret", "asterisk",
                                     "ivr", "admin"})
STRONG_PASSWORD_LENGTH = 16


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reached over the network


def _ipv4(name: str, value: str, *, wildcard: bool) -> str:
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise ConfigError(f"{name} must be an IPv4 address such as 127.0.0.1, got {value!r}"
                          ) from None
    if address.is_unspecified and not wildcard:
        raise ConfigError(f"{name} must be an address others can send to, not {value}")
    return value


def _host(name: str, value: str) -> str:
    """An address or DNS name Asterisk advertises (external_*_address); "" is none."""
    if value and not all(c.isalnum() or c in "-." for c in value):
        raise ConfigError(f"{name} must be an IPv4 address or a host name, got {value!r}")
    return value


def _bind(name: str, value: str) -> tuple[str, int]:
    """ADDRESS:PORT an Asterisk listener binds."""
    address, sep, port = value.rpartition(":")
    if not sep:
        raise ConfigError(f"{name} must be ADDRESS:PORT such as 127.0.0.1:8088, got {value!r}")
    return _ipv4(name, address, wildcard=True), _int(name, port, 1, 65535)


def _networks(name: str, value: str) -> tuple[str, ...]:
    nets = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            nets.append(str(ipaddress.IPv4Network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"{name} must be a comma-separated list of IPv4 networks such "
                              f"as 10.0.0.0/8, got {item!r}") from None
    return tuple(nets)


def _port_range(name: str, value: str) -> tuple[int, int]:
    start, sep, end = value.partition("-")
    if not sep:
        raise ConfigError(f"{name} must be FIRST-LAST such as 10000-20000, got {value!r}")
    lo, hi = _int(name, start.strip(), 1024, 65535), _int(name, end.strip(), 1024, 65535)
    if hi - lo < 2:
        raise ConfigError(f"{name} must span at least two ports (RTP and RTCP), got {value!r}")
    return lo, hi


def _path(name: str, value: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{name}: no such file {path}")
    return path


def _sha256(name: str, value: str) -> str:
    digits = value.replace(":", "").strip().lower()
    if digits and (len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits)):
        raise ConfigError(f"{name} must be a SHA-256 fingerprint (64 hex digits, colons "
                          f"allowed), got {value!r}")
    return digits


_Get = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class Network:
    """Where the project's Asterisk listens, what it advertises behind NAT, and how the engine
    trusts ARI's certificate (docs/deploy.md). The defaults keep everything on loopback."""

    sip_bind: str = "127.0.0.1"  # IVR_SIP_BIND: the UDP transport's address (0.0.0.0: all)
    sip_port: int = 5060  # IVR_SIP_PORT
    sip_external: str = ""  # IVR_SIP_EXTERNAL_ADDRESS: external_signaling_address
    rtp_address: str = "127.0.0.1"  # IVR_RTP_ADDRESS: media_address, RTP binds to it
    rtp_external: str = ""  # IVR_RTP_EXTERNAL_ADDRESS: external_media_address
    local_net: tuple[str, ...] = ()  # IVR_LOCAL_NET: networks reached without NAT
    rtp_ports: tuple[int, int] = (10000, 20000)  # IVR_RTP_PORTS: rtp.conf rtpstart-rtpend
    ari_bind: tuple[str, int] = ("127.0.0.1", 8088)  # IVR_ARI_BIND: http.conf plain HTTP
    ari_tls_bind: tuple[str, int] = ("127.0.0.1", 8089)  # IVR_ARI_TLS_BIND: tlsbindaddr
    ari_tls_cert: Path | None = None  # IVR_ARI_TLS_CERT: tlscertfile (None: no TLS listener)
    ari_tls_key: Path | None = None  # IVR_ARI_TLS_KEY: tlsprivatekey
    ari_ca_file: Path | None = None  # IVR_ARI_CA_FILE: the engine trusts ARI's cert by it
    ari_cert_sha256: str = ""  # IVR_ARI_CERT_SHA256: or pins it (lowercase hex)

    @classmethod
    def from_mapping(cls, get: _Get, ari_url: str) -> Network:
        url = urlsplit(ari_url)
        port = url.port or (8089 if url.scheme == "https" else 8088)
        plain_port, tls_port = (port, 8089) if url.scheme == "http" else (8088, port)
        cert = _path("IVR_ARI_TLS_CERT", get("IVR_ARI_TLS_CERT", ""))
        key = _path("IVR_ARI_TLS_KEY", get("IVR_ARI_TLS_KEY", ""))
        if (cert is None) != (key is None):
            raise ConfigError("IVR_ARI_TLS_CERT and IVR_ARI_TLS_KEY go together: set both "
                              "(ARI over TLS) or neither")
        net = cls(
            sip_bind=_ipv4("IVR_SIP_BIND", get("IVR_SIP_BIND", "127.0.0.1"), wildcard=True),
            sip_port=_int("IVR_SIP_PORT", get("IVR_SIP_PORT", "5060"), 1, 65535),
            sip_external=_host("IVR_SIP_EXTERNAL_ADDRESS", get("IVR_SIP_EXTERNAL_ADDRESS", "")),
            rtp_address=_ipv4("IVR_RTP_ADDRESS", get("IVR_RTP_ADDRESS", "127.0.0.1"),
                              wildcard=False),
            rtp_external=_host("IVR_RTP_EXTERNAL_ADDRESS", get("IVR_RTP_EXTERNAL_ADDRESS", "")),
            local_net=_networks("IVR_LOCAL_NET", get("IVR_LOCAL_NET", "")),
            rtp_ports=_port_range("IVR_RTP_PORTS", get("IVR_RTP_PORTS", "10000-20000")),
            ari_bind=_bind("IVR_ARI_BIND", get("IVR_ARI_BIND", f"127.0.0.1:{plain_port}")),
            ari_tls_bind=_bind("IVR_ARI_TLS_BIND",
                               get("IVR_ARI_TLS_BIND", f"127.0.0.1:{tls_port}")),
            ari_tls_cert=cert,
            ari_tls_key=key,
            ari_ca_file=_path("IVR_ARI_CA_FILE", get("IVR_ARI_CA_FILE", "")),
            ari_cert_sha256=_sha256("IVR_ARI_CERT_SHA256", get("IVR_ARI_CERT_SHA256", "")),
        )
        if net.ari_ca_file and net.ari_cert_sha256:
            raise ConfigError("IVR_ARI_CA_FILE and IVR_ARI_CERT_SHA256 are two ways to trust "
                              "ARI's certificate: set one")
        if (net.ari_ca_file or net.ari_cert_sha256) and url.scheme != "https":
            raise ConfigError("IVR_ARI_CA_FILE / IVR_ARI_CERT_SHA256 need an https:// "
                              f"IVR_ARI_URL, got {ari_url}")
        if net.ari_tls_cert and net.ari_tls_bind == net.ari_bind:
            raise ConfigError("IVR_ARI_BIND and IVR_ARI_TLS_BIND must differ (plain HTTP and "
                              "TLS cannot share a port)")
        return net

    @property
    def ari_tls(self) -> bool:
        """Asterisk serves ARI over TLS too (http.conf tlsenable)."""
        return self.ari_tls_cert is not None

    def ari_exposed(self, ari_url: str) -> bool:
        """ARI is reached, or listens, off loopback: others may try its password."""
        listeners = [self.ari_bind[0]] + ([self.ari_tls_bind[0]] if self.ari_tls else [])
        hosts = [urlsplit(ari_url).hostname or "", *listeners]
        return not all(_is_loopback(host) for host in hosts)


def _countries(name: str, value: str) -> tuple[str, ...]:
    codes = tuple(c.strip().upper() for c in value.split(",") if c.strip())
    if not codes or any(len(c) != 2 or not c.isalpha() for c in codes):
        raise ConfigError(f"{name} must be comma-separated two-letter country codes such as "
                          f"US,CA, got {value!r}")
    return codes


@dataclass(frozen=True, slots=True)
class Proxy:
    """Kamailio as the SIP entry in front of the media nodes (`ivr proxy up`,
    docs/scale-out.md)."""

    bind: tuple[str, int] = ("127.0.0.1", 5080)  # IVR_PROXY_BIND: where carriers send SIP
    # IVR_PROXY_NODES: the media nodes' SIP addresses, ADDRESS[:PORT], comma-separated
    # (default: this host's Asterisk, IVR_SIP_BIND:IVR_SIP_PORT).
    nodes: tuple[str, ...] = ("127.0.0.1:5060",)
    probe_interval: int = 5  # IVR_PROXY_PROBE_INTERVAL: seconds between OPTIONS to a node

    @classmethod
    def from_mapping(cls, get: _Get, net: Network) -> Proxy:
        own = "127.0.0.1" if net.sip_bind == "0.0.0.0" else net.sip_bind
        nodes = []
        for item in get("IVR_PROXY_NODES", f"{own}:{net.sip_port}").split(","):
            address, sep, node_port = item.strip().partition(":")
            _ipv4("IVR_PROXY_NODES", address, wildcard=False)
            port = _int("IVR_PROXY_NODES", node_port, 1, 65535) if sep else 5060
            nodes.append(f"{address}:{port}")
        bind = _bind("IVR_PROXY_BIND", get("IVR_PROXY_BIND", "127.0.0.1:5080"))
        if bind == (net.sip_bind, net.sip_port):
            raise ConfigError("IVR_PROXY_BIND is Asterisk's own SIP address and port "
                              "(IVR_SIP_BIND, IVR_SIP_PORT): give the proxy a port of its own")
        return cls(bind=bind, nodes=tuple(nodes), probe_interval=_int(
            "IVR_PROXY_PROBE_INTERVAL", get("IVR_PROXY_PROBE_INTERVAL", "5"), 1, 3600))


def _prefixes(name: str, value: str) -> tuple[str, ...]:
    """Dialled-number prefixes (E.164 digits); `*` alone: any number (development)."""
    if value.strip() == "*":
        return ("",)
    items = tuple(p.strip().lstrip("+") for p in value.split(",") if p.strip())
    if any(not p.isdigit() for p in items):
        raise ConfigError(f"{name} must be comma-separated digit prefixes such as 1512,44 "
                          f"(or * for any), got {value!r}")
    return items


@dataclass(frozen=True, slots=True)
class Security:
    """The HTTP edge's limits and guards (docs/security.md: HTTP API). The defaults are the
    production ones; the development-only relaxations are settings of their own."""

    allow_private_urls: bool = False  # IVR_ALLOW_PRIVATE_URLS: callbacks etc. to private nets
    max_body: int = 1024**2  # IVR_MAX_BODY: bytes of a form or JSON request
    max_upload: int = 16 * 1024**2  # IVR_MAX_UPLOAD: audio uploads, once authenticated
    auth_free_failures: int = 5  # IVR_AUTH_FREE_FAILURES: per account before a lock
    auth_address_failures: int = 30  # IVR_AUTH_ADDRESS_FAILURES: per client address
    auth_lock_max: float = 60.0  # IVR_AUTH_LOCK_MAX: an account's longest lock (seconds)
    auth_address_lock_max: float = 900.0  # IVR_AUTH_ADDRESS_LOCK_MAX: an address's
    signup_per_hour: int = 5  # IVR_SIGNUP_PER_HOUR: new accounts per client address
    max_recorders: int = 20  # IVR_MAX_RECORDERS: per developer
    # IVR_METRICS_TOKEN: bearer token for /metrics and /healthz's details ("": loopback only).
    metrics_token: str = field(default="", repr=False)
    toll_countries: tuple[str, ...] = ("US",)  # IVR_TOLL_COUNTRIES: default destinations
    toll_prefixes: tuple[str, ...] = ()  # IVR_TOLL_PREFIXES: also allowed ("" = any)
    toll_premium: bool = False  # IVR_TOLL_PREMIUM: premium-rate numbers allowed by default
    toll_concurrent: int = 10  # IVR_TOLL_CONCURRENT: calls at once per account
    toll_per_day: int = 1000  # IVR_TOLL_PER_DAY: calls per account per 24 h
    # IVR_HTTP_TLS_CERT / IVR_HTTP_TLS_KEY: the API and console over HTTPS (with HSTS and
    # Secure cookies); without them plain HTTP, for loopback or behind a TLS reverse proxy.
    http_tls_cert: Path | None = None
    http_tls_key: Path | None = None
    # IVR_TRUSTED_PROXIES: reverse proxies (IPv4 networks) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; from anyone else those headers are ignored.
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, get: _Get) -> Security:
        token = get("IVR_METRICS_TOKEN", "")
        cert = _path("IVR_HTTP_TLS_CERT", get("IVR_HTTP_TLS_CERT", ""))
        key = _path("IVR_HTTP_TLS_KEY", get("IVR_HTTP_TLS_KEY", ""))
        if (cert is None) != (key is None):
            raise ConfigError("IVR_HTTP_TLS_CERT and IVR_HTTP_TLS_KEY go together: set both or "
                              "neither")
        return cls(
            allow_private_urls=_bool("IVR_ALLOW_PRIVATE_URLS",
                                     get("IVR_ALLOW_PRIVATE_URLS", "false")),
            max_body=_int("IVR_MAX_BODY", get("IVR_MAX_BODY", str(1024**2)), 4096, 1024**3),
            max_upload=_int("IVR_MAX_UPLOAD", get("IVR_MAX_UPLOAD", str(16 * 1024**2)),
                            4096, 1024**3),
            auth_free_failures=_int("IVR_AUTH_FREE_FAILURES",
                                    get("IVR_AUTH_FREE_FAILURES", "5"), 1, 10**6),
            auth_address_failures=_int("IVR_AUTH_ADDRESS_FAILURES",
                                       get("IVR_AUTH_ADDRESS_FAILURES", "30"), 1, 10**9),
            auth_lock_max=_float("IVR_AUTH_LOCK_MAX", get("IVR_AUTH_LOCK_MAX", "60"), 1, 3600),
            auth_address_lock_max=_float("IVR_AUTH_ADDRESS_LOCK_MAX",
                                         get("IVR_AUTH_ADDRESS_LOCK_MAX", "900"), 1, 86400),
            signup_per_hour=_int("IVR_SIGNUP_PER_HOUR", get("IVR_SIGNUP_PER_HOUR", "5"), 1,
                                 10**9),
            max_recorders=_int("IVR_MAX_RECORDERS", get("IVR_MAX_RECORDERS", "20"), 1, 10**6),
            metrics_token=_token("IVR_METRICS_TOKEN", token) if token else "",
            toll_countries=_countries("IVR_TOLL_COUNTRIES", get("IVR_TOLL_COUNTRIES", "US")),
            toll_prefixes=_prefixes("IVR_TOLL_PREFIXES", get("IVR_TOLL_PREFIXES", "")),
            toll_premium=_bool("IVR_TOLL_PREMIUM", get("IVR_TOLL_PREMIUM", "false")),
            toll_concurrent=_int("IVR_TOLL_CONCURRENT", get("IVR_TOLL_CONCURRENT", "10"), 1,
                                 10**6),
            toll_per_day=_int("IVR_TOLL_PER_DAY", get("IVR_TOLL_PER_DAY", "1000"), 1, 10**9),
            http_tls_cert=cert,
            http_tls_key=key,
            trusted_proxies=_networks("IVR_TRUSTED_PROXIES", get("IVR_TRUSTED_PROXIES", "")),
        )


_SRTP = ("optional", "required")


@dataclass(frozen=True, slots=True)
class Edge:
    """The public SIP edge (docs/security.md): the fail2ban jail that bans SIP scanners and
    password guessers, and SIP over TLS with SRTP for softphones and trunks. Off by default."""

    ban: bool = False  # IVR_EDGE_BAN: `ivr asterisk up` starts the ban too (`ivr edge up`)
    ban_maxretry: int = 5  # IVR_EDGE_BAN_MAXRETRY: failures from an address before its ban
    ban_findtime: int = 600  # IVR_EDGE_BAN_FINDTIME: seconds those failures are counted over
    ban_bantime: int = 3600  # IVR_EDGE_BAN_BANTIME: seconds a ban lasts
    ban_ignore: tuple[str, ...] = ("127.0.0.0/8",)  # IVR_EDGE_BAN_IGNORE: never banned
    tls: bool = False  # IVR_SIP_TLS: a TLS transport (a development certificate without one)
    tls_cert: Path | None = None  # IVR_SIP_TLS_CERT: the operator's certificate (PEM)
    tls_key: Path | None = None  # IVR_SIP_TLS_KEY: and its key
    tls_port: int = 5061  # IVR_SIP_TLS_PORT: on IVR_SIP_BIND
    srtp: str = "optional"  # IVR_SIP_SRTP: optional (SDES when offered) or required

    @classmethod
    def from_mapping(cls, get: _Get, net: Network) -> Edge:
        cert = _path("IVR_SIP_TLS_CERT", get("IVR_SIP_TLS_CERT", ""))
        key = _path("IVR_SIP_TLS_KEY", get("IVR_SIP_TLS_KEY", ""))
        if (cert is None) != (key is None):
            raise ConfigError("IVR_SIP_TLS_CERT and IVR_SIP_TLS_KEY go together: set both "
                              "(the operator's certificate) or neither")
        srtp = get("IVR_SIP_SRTP", "optional").strip().lower()
        if srtp not in _SRTP:
            raise ConfigError(f"IVR_SIP_SRTP must be optional or required, got {srtp!r}")
        edge = cls(
            ban=_bool("IVR_EDGE_BAN", get("IVR_EDGE_BAN", "false")),
            ban_maxretry=_int("IVR_EDGE_BAN_MAXRETRY", get("IVR_EDGE_BAN_MAXRETRY", "5"), 1,
                              1000),
            ban_findtime=_int("IVR_EDGE_BAN_FINDTIME", get("IVR_EDGE_BAN_FINDTIME", "600"), 1,
                              86400 * 7),
            ban_bantime=_int("IVR_EDGE_BAN_BANTIME", get("IVR_EDGE_BAN_BANTIME", "3600"), 1,
                             86400 * 365),
            ban_ignore=_networks("IVR_EDGE_BAN_IGNORE",
                                 get("IVR_EDGE_BAN_IGNORE", "127.0.0.0/8")),
            tls=cert is not None or _bool("IVR_SIP_TLS", get("IVR_SIP_TLS", "false")),
            tls_cert=cert, tls_key=key,
            tls_port=_int("IVR_SIP_TLS_PORT", get("IVR_SIP_TLS_PORT", str(net.sip_port + 1)), 1,
                          65535),
            srtp=srtp)
        if edge.tls and edge.tls_port == net.sip_port:
            raise ConfigError("IVR_SIP_TLS_PORT must differ from IVR_SIP_PORT")
        return edge


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    http_host: str
    http_port: int
    public_url: str
    ari_url: str
    ari_user: str
    ari_password: str
    ari_app: str
    ari_shards: int
    nice: int
    softphone_user: str
    softphone_password: str
    asterisk_root: Path
    data_dir: Path
    log_level: str
    shutdown_grace: float
    open_signup: bool
    prompts_dir: Path = REPO_ROOT / "prompts"  # <dir>/<language>/prompts.tsv + WAVs
    # `ivr serve`'s event loop: uvloop (libuv; about a sixth less of the engine's CPU per call
    # in bench/, see bench/README.md) or Python's own asyncio loop.
    event_loop: str = "uvloop"
    delivery_retry_for: float = 86400.0
    delivery_backoff: float = 2.0
    delivery_concurrency: int = 16
    delivery_per_host: int = 4
    delivery_lease: float = 30.0
    retention_interval: float = 3600.0
    session_sweep_interval: float = 5.0
    db_pool_size: int = 10
    dialer_enabled: bool = True
    dialer_trunk: str = "ivr-loopback"
    dialer_cps: float = 5.0
    dialer_channels: int = 30
    dialer_lease: float = 15.0
    dialer_app: str = "ivr-dialer"  # the Stasis app of a stand-alone `ivr dialer run`
    dialer_max_queued: int = 1_000_000  # queued calls at most (more: "server too busy")
    dev_number: str = ""  # E.164; `ivr db up` adds it for voice recorders ("" none)
    agi_listen: tuple[str, int] | None = None  # IVR_AGI_LISTEN: the FastAGI server (docs/agi.md)
    network: Network = field(default_factory=Network)  # addresses and ARI's TLS
    edge: Edge = field(default_factory=Edge)  # the SIP edge: bans, SIP TLS and SRTP
    security: Security = field(default_factory=Security)  # the HTTP edge's guards
    # Several engines on one Postgres (docs/scale-out.md): IVR_ENGINE_ID names this engine in
    # the pool (its Stasis apps are IVR_ARI_APP.ID...); IVR_ENGINE_POOL makes the dialplan
    # offer calls to every engine (StasisBroadcast) - implied by an engine id, set alone on a
    # media host that runs no engine.
    engine_id: str = ""
    engine_pool: bool = False
    proxy: Proxy = field(default_factory=Proxy)  # Kamailio in front of the media nodes
    # IVR_ARI_NODES: more media nodes this engine drives beside IVR_ARI_URL (their ARI base
    # URLs, comma-separated; the same ARI user and password): their calls run here too.
    ari_nodes: tuple[str, ...] = ()
    # IVR_NODE_NAME: a media node's name, for `ivr asterisk up` where one engine drives several
    # nodes (Asterisk's systemname: channel ids then differ between nodes).
    node_name: str = ""

    @property
    def stasis_app(self) -> str:
        """This engine's Stasis app: IVR_ARI_APP alone, or IVR_ARI_APP.ID in a pool (the
        dialplan offers calls to every app named IVR_ARI_APP.*)."""
        return f"{self.ari_app}.{self.engine_id}" if self.engine_id else self.ari_app

    def __repr__(self) -> str:  # secrets never reach a log line through repr()
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("password"):
                value = "***"
            elif f.name == "database_url":
                value = redact_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def ari_ws_url(self) -> str:
        return ws_url(self.ari_url)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
        """Read settings from `env` (default: os.environ) over the `.env` file (default: the
        one in the working directory, if any)."""
        merged: dict[str, str] = {}
        merged.update(read_env_file(env_file if env_file is not None else Path(".env")))
        merged.update(os.environ if env is None else env)
        return cls.from_mapping(merged)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str, default: str | None = None) -> str:
            value = env.get(name, "")
            if value == "":
                if default is None:
                    raise ConfigError(f"{name} is not set (see .env.example)")
                return default
            return value

        ari_url = _url("IVR_ARI_URL", get("IVR_ARI_URL", "http://127.0.0.1:8088"),
                       ("http", "https"))
        network = Network.from_mapping(get, ari_url)
        ari_password = _secret("IVR_ARI_PASSWORD", get("IVR_ARI_PASSWORD"))
        ari_nodes = tuple(_url("IVR_ARI_NODES", u.strip(), ("http", "https"))
                          for u in env.get("IVR_ARI_NODES", "").split(",") if u.strip())
        exposed = any(network.ari_exposed(u) for u in (ari_url, *ari_nodes))
        if exposed and (len(ari_password) < STRONG_PASSWORD_LENGTH
                        or ari_password in KNOWN_DEFAULT_PASSWORDS):
            raise ConfigError(
                "IVR_ARI_PASSWORD is too weak for an ARI reached off loopback (IVR_ARI_URL / "
                f"IVR_ARI_BIND / IVR_ARI_TLS_BIND): use at least {STRONG_PASSWORD_LENGTH} "
                "random characters, not an example value (`ivr env init` writes one)")
        http_port = _int("IVR_HTTP_PORT", get("IVR_HTTP_PORT", "8080"), 1, 65535)
        http_host = get("IVR_HTTP_HOST", "127.0.0.1")
        cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        level = get("IVR_LOG_LEVEL", "INFO").upper()
        if level not in _LOG_LEVELS:
            raise ConfigError(f"IVR_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}")
        public_url = _url("IVR_PUBLIC_URL",
                          get("IVR_PUBLIC_URL", f"http://{http_host}:{http_port}"),
                          ("http", "https"))
        engine_id = env.get("IVR_ENGINE_ID", "")
        # Not ending in -DIGITS: that is how its shards' apps are told apart (IVR_ARI_APP.ID-0).
        if (engine_id and not re.fullmatch(r"[A-Za-z0-9_-]+", engine_id)) or re.search(
                r"-\d+$", engine_id):
            raise ConfigError("IVR_ENGINE_ID must be letters, digits, '-' or '_', not ending in "
                              f"'-' and digits, got {engine_id!r}")
        return cls(
            database_url=_with_password(_url(
                "IVR_DATABASE_URL",
                get("IVR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/ivr"),
                ("postgresql", "postgres"),
            ), get("IVR_DATABASE_PASSWORD", "")),
            http_host=http_host,
            http_port=http_port,
            public_url=public_url,
            ari_url=ari_url,
            ari_user=_name("IVR_ARI_USER", get("IVR_ARI_USER", "ivr")),
            ari_password=ari_password,
            ari_app=_name("IVR_ARI_APP", get("IVR_ARI_APP", "ivr")),
            ari_shards=_int("IVR_ARI_SHARDS", get("IVR_ARI_SHARDS", "4"), 1, 32),
            nice=_int("IVR_NICE", get("IVR_NICE", "-10"), -20, 19),
            softphone_user=_name("IVR_SOFTPHONE_USER", get("IVR_SOFTPHONE_USER", "softphone")),
            softphone_password=_secret("IVR_SOFTPHONE_PASSWORD", get("IVR_SOFTPHONE_PASSWORD")),
            asterisk_root=Path(get("IVR_ASTERISK_ROOT", str(cache / "ivr" / "asterisk-sid"))),
            data_dir=Path(get("IVR_DATA_DIR", str(REPO_ROOT / "var"))).resolve(),
            prompts_dir=Path(get("IVR_PROMPTS_DIR", str(REPO_ROOT / "prompts"))).resolve(),
            event_loop=_event_loop(get("IVR_EVENT_LOOP", "uvloop")),
            log_level=level,
            shutdown_grace=_float("IVR_SHUTDOWN_GRACE", get("IVR_SHUTDOWN_GRACE", "30"), 0, 3600),
            # Open to anyone only where the service is for this machine (development).
            open_signup=_bool("IVR_OPEN_SIGNUP", get("IVR_OPEN_SIGNUP", "true" if _is_loopback(
                urlsplit(public_url).hostname or "") else "false")),
            delivery_retry_for=_float("IVR_DELIVERY_RETRY_FOR",
                                      get("IVR_DELIVERY_RETRY_FOR", "86400"), 1, 30 * 86400),
            delivery_backoff=_float("IVR_DELIVERY_BACKOFF", get("IVR_DELIVERY_BACKOFF", "2"),
                                    0.01, 600),
            delivery_concurrency=_int("IVR_DELIVERY_CONCURRENCY",
                                      get("IVR_DELIVERY_CONCURRENCY", "16"), 1, 256),
            delivery_per_host=_int("IVR_DELIVERY_PER_HOST", get("IVR_DELIVERY_PER_HOST", "4"),
                                   1, 256),
            delivery_lease=_float("IVR_DELIVERY_LEASE", get("IVR_DELIVERY_LEASE", "30"), 1, 3600),
            retention_interval=_float("IVR_RETENTION_INTERVAL",
                                      get("IVR_RETENTION_INTERVAL", "3600"), 1, 7 * 86400),
            session_sweep_interval=_float("IVR_SESSION_SWEEP_INTERVAL",
                                          get("IVR_SESSION_SWEEP_INTERVAL", "5"), 0.1, 3600),
            db_pool_size=_int("IVR_DB_POOL_SIZE", get("IVR_DB_POOL_SIZE", "10"), 2, 1000),
            dialer_enabled=_bool("IVR_DIALER_ENABLED", get("IVR_DIALER_ENABLED", "true")),
            dialer_trunk=_name("IVR_DIALER_TRUNK", get("IVR_DIALER_TRUNK", "ivr-loopback")),
            dialer_cps=_float("IVR_DIALER_CPS", get("IVR_DIALER_CPS", "5"), 0.01, 1000),
            dialer_channels=_int("IVR_DIALER_CHANNELS", get("IVR_DIALER_CHANNELS", "30"), 1,
                                 10000),
            dialer_lease=_float("IVR_DIALER_LEASE", get("IVR_DIALER_LEASE", "15"), 1, 3600),
            dialer_app=_name("IVR_DIALER_APP", get("IVR_DIALER_APP", get("IVR_ARI_APP", "ivr")
                                                   + "-dialer")),
            dialer_max_queued=_int("IVR_DIALER_MAX_QUEUED",
                                   get("IVR_DIALER_MAX_QUEUED", "1000000"), 1, 10**9),
            dev_number=_phone("IVR_DEV_NUMBER", env.get("IVR_DEV_NUMBER", "")),
            agi_listen=_bind("IVR_AGI_LISTEN", env["IVR_AGI_LISTEN"]) if env.get(
                "IVR_AGI_LISTEN") else None,
            network=network,
            edge=Edge.from_mapping(get, network),
            security=Security.from_mapping(get),
            proxy=Proxy.from_mapping(get, network),
            ari_nodes=ari_nodes,
            node_name=_name("IVR_NODE_NAME", env["IVR_NODE_NAME"]) if env.get(
                "IVR_NODE_NAME") else "",
            engine_id=engine_id,
            engine_pool=_bool("IVR_ENGINE_POOL",
                              get("IVR_ENGINE_POOL", "true" if engine_id else "false")),
        )


def ws_url(ari_url: str) -> str:
    """The ARI event websocket of the Asterisk at `ari_url`."""
    scheme = "wss" if ari_url.startswith("https") else "ws"
    return f"{scheme}{ari_url[ari_url.index(':'):]}/ari/events"


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and status output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
