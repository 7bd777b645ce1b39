"""Putting the trunks into the running Asterisk, and reading back how they are doing.

The trunks are a generated pjsip file, included by asterisk-conf/pjsip.conf, and applied with
`module reload res_pjsip.so`: a reload re-reads pjsip's objects in place, so calls in progress
keep their channels, dialogs and media, while a restart (what `ivr asterisk up` does for a
changed configuration) would drop them. `ivr asterisk up` carries the file over when it rewrites
the configuration folder, so an Asterisk restarted for another reason keeps its trunks.
docs/deploy.md says why this and not ARI's dynamic configuration."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ivr.core.errors import ProvisionError
from ivr.provision.asterisk_conf import AsteriskConfig
from ivr.provision.asterisk_run import TRUNKS_FILE, _find_pid, cli
from ivr.provision.chroot import _ids
from ivr.provision.trunks import pjsip
from ivr.provision.trunks.model import Trunk
from ivr.settings import Network

RELOAD = "module reload res_pjsip.so"
_REGISTRATION = re.compile(r"^\s*(trunk-[a-z0-9-]+)-reg/\S+\s+\S+\s+(\w+)", re.M)
_CONTACT = re.compile(r"^\s*Contact:\s+(trunk-[a-z0-9-]+)/\S+\s+\S+\s+(\w+)\s+(\S+)", re.M)


@dataclass(frozen=True)
class Applied:
    changed: bool  # the file differed from what Asterisk had
    reloaded: bool  # Asterisk runs and re-read it

    def __str__(self) -> str:
        if not self.changed:
            return "Asterisk already has these trunks"
        return ("Asterisk reloaded its SIP configuration (calls in progress are kept)"
                if self.reloaded else "Asterisk is not running: it reads the trunks when it "
                "starts (`ivr asterisk up`)")


def write(cfg: AsteriskConfig, text: str) -> bool:
    """The trunk file in Asterisk's configuration folder, replaced atomically (root-owned,
    readable to Asterisk's group, as `ivr asterisk up` writes the rest). True if it changed."""
    etc = cfg.root / cfg.etc
    if not (etc / "pjsip.conf").is_file():
        raise ProvisionError(f"no Asterisk configuration in {etc}: run `ivr asterisk up` on "
                             "this host first")
    target = etc / TRUNKS_FILE
    try:
        if target.read_text() == text:
            return False
    except OSError:
        pass
    _, gid = _ids(cfg.root)
    staging = target.with_name(target.name + ".new")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "w") as out:
        os.fchown(out.fileno(), 0, gid)
        out.write(text)
    staging.rename(target)
    return True


def apply(cfg: AsteriskConfig, trunks: list[Trunk], net: Network) -> Applied:
    """Write the trunks and, when Asterisk runs and the file changed, reload pjsip."""
    changed = write(cfg, pjsip.render(trunks, net, tls_listener=cfg.edge.tls))
    if not changed or _find_pid(cfg) is None:
        return Applied(changed, False)
    out = cli(cfg, RELOAD)
    if "not found" in out.lower() or "failed" in out.lower():
        raise ProvisionError(f"Asterisk refused `{RELOAD}`: {out.strip()}")
    return Applied(True, True)


@dataclass(frozen=True)
class TrunkState:
    registration: str  # Registered, Rejected, Unregistered, ...; "-" when it does not register
    reachable: str  # the OPTIONS qualify: "Avail 12.3ms", "Unavail", "Unknown"

    @property
    def up(self) -> bool:
        return (self.registration in ("-", "Registered")
                and self.reachable.split(" ", 1)[0] in ("Avail", "Reachable"))


def states(cfg: AsteriskConfig, trunks: list[Trunk]) -> dict[str, TrunkState]:
    """Each trunk's registration and qualify state as the running Asterisk reports them
    (its CLI); "not running" when it does not run here, and a pointer to the engine's
    /healthz (which reads ARI) when IVR_ARI_URL is an Asterisk on another host."""
    if _find_pid(cfg) is None:
        host = cfg.ari_host_port[0]
        here = {"127.0.0.1", "localhost", cfg.net.ari_bind[0], cfg.net.ari_tls_bind[0]}
        gone = "not running" if host in here else "on another host: see /healthz"
        return {t.name: TrunkState(gone, gone) for t in trunks}
    registered = dict(_REGISTRATION.findall(cli(cfg, "pjsip show registrations")))
    contacts = {name: f"{status} {rtt}ms" if rtt.replace(".", "").isdigit() else
                # NonQual with qualify on: its first OPTIONS has not been sent yet.
                "Unknown" if status == "NonQual" else status
                for name, status, rtt in _CONTACT.findall(cli(cfg, "pjsip show contacts"))}
    out = {}
    for t in trunks:
        registration = (registered.get(f"{t.endpoint}", "not loaded") if t.register else "-")
        out[t.name] = TrunkState(registration, contacts.get(t.endpoint, "Unknown"))
    return out
