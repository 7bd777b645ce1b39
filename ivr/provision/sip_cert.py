"""A development certificate for SIP over TLS (`ivr edge cert`, or the first `ivr asterisk up`
with IVR_SIP_TLS=true and no IVR_SIP_TLS_CERT): self-signed, for this host's SIP addresses, in
the state folder beside the Asterisk root (never in git). Production uses the operator's own
certificate (IVR_SIP_TLS_CERT / IVR_SIP_TLS_KEY); phones given this one must be told to trust it
(or not to verify)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

from ivr.core.errors import ProvisionError

DAYS = 825  # the longest lifetime clients still accept for a server certificate


def dev_cert_paths(state_dir: Path, instance: str = "") -> tuple[Path, Path]:
    """Where the development certificate of an Asterisk (an instance's own) is kept."""
    folder = state_dir / (f"sip-tls-{instance}" if instance else "sip-tls")
    return folder / "dev.crt", folder / "dev.key"


def _names(hosts: list[str]) -> list[str]:
    """subjectAltName entries: the addresses and names phones reach this SIP edge by."""
    names = ["DNS:localhost"]
    for host in dict.fromkeys([*hosts, "127.0.0.1"]):
        if not host:
            continue
        try:
            ipaddress.ip_address(host)
            names.append(f"IP:{host}")
        except ValueError:
            names.append(f"DNS:{host}")
    return names


def make_dev_cert(paths: tuple[Path, Path], hosts: list[str]) -> tuple[Path, Path]:
    """A new key and self-signed certificate for `hosts` (replacing any made before)."""
    crt, key = paths
    crt.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(crt.parent, 0o700)
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", str(DAYS), "-subj", "/CN=ivr development SIP",
         "-addext", "subjectAltName=" + ",".join(_names(hosts)),
         "-keyout", str(key), "-out", str(crt)], capture_output=True, text=True)
    if done.returncode != 0:
        raise ProvisionError(f"openssl could not make the development certificate: "
                             f"{done.stderr.strip()}")
    key.chmod(0o600)
    return crt, key


def ensure_dev_cert(paths: tuple[Path, Path], hosts: list[str]) -> tuple[Path, Path]:
    crt, key = paths
    if crt.is_file() and key.is_file():
        return crt, key
    return make_dev_cert(paths, hosts)
