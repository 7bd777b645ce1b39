"""The configuration `ivr asterisk up` writes: the repo's asterisk-conf/*.conf and dialplan/,
with what comes from the settings (secrets, the app name, the addresses) in generated/ files.

The shipped files hold the loopback defaults. With the default settings every file renders
byte for byte as the repo has it (tests/test_asterisk_conf.py keeps it so: an unchanged
configuration never restarts a running Asterisk); an address setting that differs replaces
its option's value, or adds lines to a generated file (docs/deploy.md says which goes where)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ivr.core.errors import ProvisionError
from ivr.provision import sip_cert
from ivr.settings import REPO_ROOT, Edge, Network, Settings

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Section names asterisk-conf/pjsip.conf uses: no softphone account may take one.
RESERVED = frozenset({"global", "transport-udp", "transport-ws", "endpoint-defaults",
                      "softphone-endpoint", "softphone-aor", "ivr-loopback", "loadgen",
                      "loadgen-out", "sipp", "transport-sipp"})
HEAD = "; Generated from the IVR_* settings; not kept in git.\n"
# In generated/ next to the other files: the chroot's Asterisk cannot read the host's paths.
TLS_CERT, TLS_KEY = "ari-tls.crt", "ari-tls.key"
SIP_TLS_CERT, SIP_TLS_KEY = "sip-tls.crt", "sip-tls.key"
# What the system's CA bundle is called inside the sid root (package ca-certificates): a TLS
# trunk's certificate is verified against it.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# How long StasisBroadcast waits for an engine's claim before the caller gets congestion: an
# engine claims within milliseconds; this covers one busy moment, not a dead engine (a dead
# one does not see the offer at all).
CLAIM_MS = 2000
LOOPBACK = Network()  # the defaults: the shipped files as they are
LOADGEN_PORT_OFFSET = 2  # the load generator's own transport: the SIP port + 2 (TLS has + 1)


def check(name: str, value: str, *, secret: bool = False) -> str:
    if secret:
        if not value or value != value.strip() or any(c in value for c in "\r\n\0"):
            raise ProvisionError(f"{name} must be non-empty, on one line, without surrounding "
                                 "spaces")
        return value.replace(";", r"\;")  # ';' starts a comment in Asterisk's config files
    if not NAME.fullmatch(value):
        raise ProvisionError(f"{name}={value!r}: use letters, digits, '_', '.', '-' only")
    return value


def reach(address: str) -> str:
    """Where this host sends to a listener bound to `address` (a wildcard: loopback)."""
    return "127.0.0.1" if address == "0.0.0.0" else address


def _http_bind(net: Network, port: int, etc: str) -> str:
    plain_host = net.ari_bind[0]
    text = f"{HEAD}bindaddr = {plain_host}\nbindport = {port}\n"
    if net.ari_tls:
        host, tls_port = net.ari_tls_bind
        text += (f"; ARI over TLS (IVR_ARI_TLS_*): the certificate and key are copied here.\n"
                 f"tlsenable = yes\ntlsbindaddr = {host}:{tls_port}\n"
                 f"tlscertfile = {etc}/generated/{TLS_CERT}\n"
                 f"tlsprivatekey = {etc}/generated/{TLS_KEY}\n")
    return text


def nat_lines(net: Network) -> str:
    """A transport's NAT options (behind NAT: what to advertise, what is reached without)."""
    return "".join(
        [f"external_signaling_address = {net.sip_external}\n" if net.sip_external else "",
         f"external_media_address = {net.rtp_external}\n" if net.rtp_external else "",
         *(f"local_net = {cidr}\n" for cidr in net.local_net)])


def _pjsip_local(net: Network, *, loadgen: bool = False, sipp: tuple[str, ...] = (),
                 tls: str = "") -> str:
    own = reach(net.sip_bind)
    contact = f"sip:{own}:{net.sip_port}"
    text = (f"{HEAD}[transport-udp]\ntype = transport\nprotocol = udp\n"
            f"bind = {net.sip_bind}:{net.sip_port}\n{nat_lines(net)}\n{tls}")
    text += ("; The loopback trunk calls this very Asterisk, and is known by where its INVITEs "
             "come from:\n; this Asterisk's own SIP address and port.\n"
             f"[ivr-loopback]\ntype = aor\ncontact = {contact}\n\n"
             f"[ivr-loopback]\ntype = identify\nendpoint = ivr-loopback\n"
             f"match = {own}:{net.sip_port}\n")
    if loadgen:
        text += _loadgen(own, net.sip_port)
    if sipp:
        text += _sipp(sipp[0], sipp[1], net.sip_port)
    return text


def _tls_transport(net: Network, edge: Edge, etc: str) -> str:
    """SIP over TLS (IVR_SIP_TLS*): softphones and carriers connect to it, and TLS trunks
    leave by it (their carrier's certificate checked against the system's CAs)."""
    if not edge.tls:
        return ""
    return ("; SIP over TLS (IVR_SIP_TLS*): the certificate and key are copied here.\n"
            f"[transport-tls]\ntype = transport\nprotocol = tls\n"
            f"bind = {net.sip_bind}:{edge.tls_port}\nmethod = tlsv1_2\n"
            f"cert_file = {etc}/generated/{SIP_TLS_CERT}\n"
            f"priv_key_file = {etc}/generated/{SIP_TLS_KEY}\n"
            f"ca_list_file = {CA_BUNDLE}\nverify_server = yes\nverify_client = no\n"
            f"{nat_lines(net)}\n")


def media_encryption(edge: Edge) -> str:
    """SRTP keyed by SDES (the keys travel in SDP, so only over TLS are they secret): offered
    and taken when the phone offers it (optional) or demanded (required)."""
    if not edge.tls:
        return ""
    optimistic = "yes" if edge.srtp == "optional" else "no"
    return f"media_encryption = sdes\nmedia_encryption_optimistic = {optimistic}\n"


def _loadgen(own: str, sip_port: int) -> str:
    """The benchmark's load generator pair: `loadgen-out` sends from a transport of its own (the
    SIP port + 2, on this host's own address) so that its calls come back in on `loadgen`, known
    by that source alone, apart from the loopback trunk's."""
    port = sip_port + LOADGEN_PORT_OFFSET
    return (f"\n; The benchmark's load generator (bench/): out by [loadgen-out], back in on "
            f"[loadgen].\n[transport-loadgen]\ntype = transport\nprotocol = udp\n"
            f"bind = {own}:{port}\n\n"
            "[loadgen-out](endpoint-defaults)\ntransport = transport-loadgen\n"
            "aors = loadgen-out\nfrom_user = loadgen\n"
            f"from_domain = {own}\nsend_pai = yes\ntrust_id_outbound = yes\n\n"
            f"[loadgen-out]\ntype = aor\ncontact = sip:{own}:{sip_port}\n\n"
            "[loadgen](endpoint-defaults)\nidentify_by = ip\ntrust_id_inbound = yes\n\n"
            f"[loadgen]\ntype = identify\nendpoint = loadgen\nmatch = {own}:{port}\n")


def _sipp(listen: str, peer: str, sip_port: int) -> str:
    """The benchmark's SIPp caller (bench/sipp.py): a trunk of its own on an address of this host
    that only the benchmark's network namespace reaches (SIP and RTP both), known by SIPp's
    address alone; the caller id it asserts is trusted, as a carrier's is."""
    return (f"\n; The benchmark's SIPp caller (bench/), in a network namespace at {peer}.\n"
            f"[transport-sipp]\ntype = transport\nprotocol = udp\nbind = {listen}:{sip_port}\n\n"
            "[sipp](endpoint-defaults)\ntransport = transport-sipp\nidentify_by = ip\n"
            f"media_address = {listen}\ntrust_id_inbound = yes\n\n"
            f"[sipp]\ntype = identify\nendpoint = sipp\nmatch = {peer}\n")


def generated(cfg: AsteriskConfig) -> dict[str, str]:
    """generated/*.conf: what the settings decide, validated."""
    net = cfg.net
    scheme = cfg.ari_url.split(":", 1)[0]
    host, port = cfg.ari_host_port
    listeners = {net.ari_bind[0], *([net.ari_tls_bind[0]] if net.ari_tls else [])}
    if cfg.media_host:
        _check_media_host(cfg, listeners)
    elif host not in ("127.0.0.1", "localhost") and host not in listeners:
        raise ProvisionError(
            f"the ARI URL points at {host}: `ivr asterisk up` provisions the Asterisk on this "
            "host only (IVR_ARI_URL on 127.0.0.1, or on the address IVR_ARI_BIND / "
            "IVR_ARI_TLS_BIND listens on); on the host IVR_ARI_URL names, `ivr asterisk up "
            "--role media` provisions it for an engine elsewhere")
    if scheme == "https" and not net.ari_tls:
        raise ProvisionError("IVR_ARI_URL is https:// but this Asterisk has no certificate: "
                             "set IVR_ARI_TLS_CERT and IVR_ARI_TLS_KEY")
    listening = net.ari_tls_bind if scheme == "https" else net.ari_bind
    if port != listening[1]:
        raise ProvisionError(f"IVR_ARI_URL's port {port} is not the port ARI listens on "
                             f"({listening[1]}, IVR_ARI_{'TLS_' if scheme == 'https' else ''}"
                             "BIND)")
    ari_user = check("ARI user", cfg.ari_user)
    ari_password = check("ARI password", cfg.ari_password, secret=True)
    app = check("ARI app", cfg.ari_app)
    user = check("softphone user", cfg.softphone_user)
    if user in RESERVED:
        raise ProvisionError(f"softphone user {user!r} is taken by asterisk-conf/pjsip.conf")
    password = check("softphone password", cfg.softphone_password, secret=True)
    http = check("engine HTTP URL", cfg.engine_http_url, secret=True)
    # The container (provision/container.py) writes these very files at its start.
    return {
        "http_bind.conf": _http_bind(net, net.ari_bind[1], f"/{cfg.etc}"),
        "ari_users.conf": (
            f"{HEAD}[{ari_user}]\ntype = user\nread_only = no\npassword_format = plain\n"
            f"password = {ari_password}\n"
        ),
        "pjsip_local.conf": _pjsip_local(net, loadgen=cfg.loadgen, sipp=cfg.sipp,
                                         tls=_tls_transport(net, cfg.edge, f"/{cfg.etc}")),
        "pjsip_accounts.conf": (
            f"{HEAD}[{user}](softphone-endpoint)\nauth = {user}\naors = {user}\n"
            f"{media_encryption(cfg.edge)}\n"
            f"[{user}]\ntype = auth\nauth_type = userpass\n"
            f"username = {user}\npassword = {password}\n\n"
            f"[{user}](softphone-aor)\n"
        ),
        # IVR_SHARDS: one app until the engine connects and sets its own count. IVR_ENTRY:
        # `broadcast` offers each call to every engine of a pool (apps IVR_APP.*), the first
        # to claim it runs it (dialplan/ivr-inbound.conf).
        "extensions_globals.conf": (
            f"{HEAD}IVR_APP = {app}\nIVR_SHARDS = 1\nIVR_HTTP = {http}\n"
            f"IVR_ENTRY = {'broadcast' if cfg.engine_pool else 'stasis'}\n"
            f"IVR_CLAIM_MS = {CLAIM_MS}\n"),
    }


def _check_media_host(cfg: AsteriskConfig, listeners: set[str]) -> None:
    """`--role media`: this host is the one IVR_ARI_URL names for an engine on another host,
    so ARI must listen where that engine can reach it, and the engine must be reachable from
    here (Asterisk fetches prompts from IVR_PUBLIC_URL)."""
    if all(_loopback(address) for address in listeners):
        raise ProvisionError("--role media: ARI listens on loopback only, where the engine on "
                             "another host cannot reach it: set IVR_ARI_TLS_BIND (with "
                             "IVR_ARI_TLS_CERT / IVR_ARI_TLS_KEY) or IVR_ARI_BIND to an address "
                             "of this host")
    engine = urlsplit(cfg.engine_http_url).hostname or ""
    if _loopback(engine):
        raise ProvisionError(f"--role media: IVR_PUBLIC_URL ({cfg.engine_http_url}) is on "
                             "loopback, but this Asterisk fetches prompts from the engine on "
                             "another host: set it to an address this host reaches")


def _loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.")


def set_option(text: bytes, file: str, option: str, value: str) -> bytes:
    """`option = value` in place of the shipped file's one line setting `option`."""
    pattern = re.compile(rb"^" + re.escape(option.encode()) + rb"[ \t]*=[^\n]*$", re.M)
    found = pattern.findall(text)
    if len(found) != 1:
        raise ProvisionError(f"asterisk-conf/{file} must set {option} exactly once "
                             f"(found {len(found)}): the settings replace its value")
    return pattern.sub(f"{option} = {value}".encode(), text)


def _instance_conf(cfg: AsteriskConfig, shipped: bytes) -> bytes:
    """asterisk.conf of a second instance: folders of its own, the rest shared with the root's
    default instance (programs, sounds, modules)."""
    d = cfg.dirs
    return shipped + (
        f"\n; Instance {cfg.instance!r}: folders of its own.\n[directories]\n"
        f"astetcdir => /{cfg.etc}\nastrundir => /{d['run']}\nastlogdir => /{d['log']}\n"
        f"astspooldir => /{d['spool']}\nastdbdir => /{d['db']}\n").encode()


def render(cfg: AsteriskConfig) -> dict[str, bytes]:
    """Every file the configuration folder will hold, by relative path."""
    if not cfg.conf_dir.is_dir():
        raise ProvisionError(f"no Asterisk configuration folder at {cfg.conf_dir}")
    files: dict[str, bytes] = {}
    for path in sorted(cfg.conf_dir.glob("*.conf")):
        files[path.name] = path.read_bytes()
    if cfg.dialplan_dir.is_dir():
        for path in sorted(cfg.dialplan_dir.glob("*.conf")):
            files[f"dialplan/{path.name}"] = path.read_bytes()
    net = cfg.net
    if net.rtp_ports != LOOPBACK.rtp_ports:
        for option, port in zip(("rtpstart", "rtpend"), net.rtp_ports, strict=True):
            files["rtp.conf"] = set_option(files["rtp.conf"], "rtp.conf", option, str(port))
    if net.rtp_address != LOOPBACK.rtp_address:
        files["pjsip.conf"] = set_option(files["pjsip.conf"], "pjsip.conf", "media_address",
                                         net.rtp_address)
    if cfg.node_name:
        # Channel ids (uniqueids) become NAME-<epoch>.<n>: two nodes started in the same
        # second would otherwise hand out the same ids to the engines that drive both.
        files["asterisk.conf"] = files["asterisk.conf"].replace(
            b"[options]\n", f"[options]\nsystemname = {cfg.node_name}\n".encode(), 1)
    if cfg.instance:
        files["asterisk.conf"] = _instance_conf(cfg, files["asterisk.conf"])
    for name, text in generated(cfg).items():
        files[f"generated/{name}"] = text.encode()
    if net.ari_tls_cert is not None and net.ari_tls_key is not None:
        try:
            files[f"generated/{TLS_CERT}"] = net.ari_tls_cert.read_bytes()
            files[f"generated/{TLS_KEY}"] = net.ari_tls_key.read_bytes()
        except OSError as exc:
            raise ProvisionError(f"cannot read ARI's TLS certificate or key: {exc}") from exc
    if cfg.edge.tls:
        files.update(_sip_tls_files(cfg))
    return files


def _sip_tls_files(cfg: AsteriskConfig) -> dict[str, bytes]:
    """The SIP certificate and key: the operator's (IVR_SIP_TLS_CERT / _KEY), else the
    development certificate made once in the state folder (`ivr edge cert`)."""
    edge = cfg.edge
    if edge.tls_cert is not None and edge.tls_key is not None:
        paths = edge.tls_cert, edge.tls_key
    else:
        paths = sip_cert.ensure_dev_cert(cfg.dev_cert, cfg.sip_hosts)
    try:
        return {f"generated/{SIP_TLS_CERT}": paths[0].read_bytes(),
                f"generated/{SIP_TLS_KEY}": paths[1].read_bytes()}
    except OSError as exc:
        raise ProvisionError(f"cannot read the SIP TLS certificate or key: {exc}") from exc


def digest(files: dict[str, bytes]) -> str:
    sha = hashlib.sha256()
    for rel, data in sorted(files.items()):
        sha.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return sha.hexdigest()


@dataclass(frozen=True)
class AsteriskConfig:
    root: Path  # the Debian sid root file system (outside git, e.g. ~/.cache/ivr/asterisk-sid)
    conf_dir: Path  # the repo's asterisk-conf/
    dialplan_dir: Path  # the repo's dialplan/
    ari_url: str  # how ARI is reached here: http://127.0.0.1:8088 (or https://, over TLS)
    ari_user: str
    ari_password: str
    ari_app: str  # the engine's Stasis app (IVR_APP in the dialplan)
    softphone_user: str
    softphone_password: str
    engine_http_url: str = "http://127.0.0.1:8080"  # IVR_HTTP in the dialplan
    debian_mirror: str = ""  # "" = the Debian mirror this machine's apt uses
    net: Network = field(default_factory=Network)  # addresses, ports, ARI TLS (loopback)
    edge: Edge = field(default_factory=Edge)  # SIP TLS and SRTP; the ban (provision/edge)
    # "" is the root's own Asterisk (etc/asterisk); a name runs another one from the same root
    # with folders of its own (etc/asterisk-NAME, ...) and `asterisk -C`, e.g. in tests.
    instance: str = ""
    # `ivr asterisk up --role media`: the Asterisk of a host of its own, driven by an engine
    # elsewhere over IVR_ARI_URL (which then names this host as the engine sees it).
    media_host: bool = False
    # Several engines on one Postgres: calls offered to all of them (IVR_ENGINE_POOL).
    engine_pool: bool = False
    node_name: str = ""  # IVR_NODE_NAME: this media node's name among several (systemname)
    # The benchmark's load generator pair (bench/run.py sets it); no other configuration has
    # it, so nothing reaches the dialplan as `loadgen` elsewhere.
    loadgen: bool = False
    # The benchmark's SIPp trunk (bench/sipp.py): (the address of this host it listens on, the
    # address SIPp calls from), on a veth into the benchmark's network namespace; () for none.
    sipp: tuple[str, ...] = ()

    @property
    def state_dir(self) -> Path:
        return self.root.parent

    @property
    def dev_cert(self) -> tuple[Path, Path]:
        """The development SIP certificate and key (provision/sip_cert.py)."""
        return sip_cert.dev_cert_paths(self.state_dir, self.instance)

    @property
    def sip_hosts(self) -> list[str]:
        """The addresses phones reach this Asterisk's SIP by (the certificate names them)."""
        return [h for h in (reach(self.net.sip_bind), self.net.sip_external) if h]

    @property
    def _stem(self) -> str:
        return f"{self.root.name}-{self.instance}" if self.instance else self.root.name

    @property
    def etc(self) -> str:
        """The configuration folder inside the root."""
        return f"etc/asterisk-{self.instance}" if self.instance else "etc/asterisk"

    @property
    def dirs(self) -> dict[str, str]:
        """The folders an instance writes, inside the root (run/: ROOT/var/run is /run)."""
        tail = f"-{self.instance}" if self.instance else ""
        return {"run": f"run/asterisk{tail}" if tail else "var/run/asterisk",
                "log": f"var/log/asterisk{tail}", "spool": f"var/spool/asterisk{tail}",
                "db": f"var/lib/asterisk{tail}"}

    @property
    def argv(self) -> list[str]:
        """`asterisk` with what selects this instance."""
        return ["asterisk", "-C", f"/{self.etc}/asterisk.conf"] if self.instance else ["asterisk"]

    @property
    def pidfile(self) -> Path:
        return self.state_dir / f"{self._stem}.pid"

    @property
    def console_log(self) -> Path:
        """Asterisk's own stdout/stderr (start-up failures land here)."""
        name = f"asterisk-{self.instance}.out" if self.instance else "asterisk.out"
        return self.state_dir / name

    @property
    def lockfile(self) -> Path:
        return self.state_dir / f"{self._stem}.lock"

    @property
    def root_lockfile(self) -> Path:
        """Held while the shared root is built or extended."""
        return self.state_dir / f"{self.root.name}.lock"

    @property
    def usefile(self) -> Path:
        """Held shared by whoever depends on the running Asterisk (a test suite): a restart
        with another configuration waits until it is released."""
        return self.state_dir / f"{self._stem}.in-use"

    @property
    def digest_file(self) -> Path:
        return self.state_dir / f"{self._stem}.config-sha256"

    @property
    def ari_host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.ari_url)
        return parts.hostname or "127.0.0.1", parts.port or (
            8089 if parts.scheme == "https" else 8088)

    @property
    def probe_url(self) -> str:
        """The plain-HTTP listener on this host, where provisioning asks ARI if it is up (so
        it needs no trust in ARI's certificate)."""
        host, port = self.net.ari_bind
        return f"http://{reach(host)}:{port}"


def from_settings(settings: Settings) -> AsteriskConfig:
    """This host's Asterisk as the settings describe it (the repo's configuration folders)."""
    return AsteriskConfig(
        root=settings.asterisk_root,
        conf_dir=REPO_ROOT / "asterisk-conf",
        dialplan_dir=REPO_ROOT / "dialplan",
        ari_url=settings.ari_url,
        ari_user=settings.ari_user,
        ari_password=settings.ari_password,
        ari_app=settings.ari_app,
        softphone_user=settings.softphone_user,
        softphone_password=settings.softphone_password,
        engine_http_url=settings.public_url,
        net=settings.network,
        edge=settings.edge,
        engine_pool=settings.engine_pool,
        node_name=settings.node_name,
    )
