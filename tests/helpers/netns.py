"""Several "hosts" on one machine: network namespaces joined by veth pairs, and the project's
Asterisk provisioned inside one (`python -m tests.helpers.netns up` under `ip netns exec`, so
its port checks, start and ARI probe all see that namespace's addresses). Everything made here
is removed by `Net.close()`; names carry the test's pid so concurrent sessions never meet."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Net:
    tag: str  # short and unique: interface names are at most 15 characters
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # veth ends in the root namespace

    def namespace(self, role: str) -> str:
        name = f"ivr-{role}-{self.tag}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        return name

    def link(self, a: str | None, a_addr: str, b: str, b_addr: str, prefix: int = 30) -> None:
        """A veth pair from namespace `a` (None: the root one) to `b`, addressed."""
        end_a, end_b = f"v{self.tag}{len(self.links)}a", f"v{self.tag}{len(self.links)}b"
        ip("link", "add", end_a, "type", "veth", "peer", "name", end_b)
        self.links.append(end_a)
        for end, ns, addr in ((end_a, a, a_addr), (end_b, b, b_addr)):
            ip("link", "set", end, "netns", ns) if ns else None
            run = ["netns", "exec", ns, "ip"] if ns else []
            ip(*run, "addr", "add", f"{addr}/{prefix}", "dev", end)
            ip(*run, "link", "set", end, "up")

    def close(self) -> None:
        for end in self.links:  # deleting one end deletes its peer
            subprocess.run(["ip", "link", "del", end], capture_output=True)
        for ns in self.namespaces:  # a namespace's own veth ends go with it
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def asterisk_up(ns: str, env: dict[str, str], **replace: str | bool) -> None:
    """`provision.up()` for the settings `env` with AsteriskConfig fields replaced (instance,
    conf_dir, dialplan_dir, media_host), run inside namespace `ns`. Raises with its output on
    failure."""
    job = json.dumps({"env": env, "replace": replace})
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m",
                           "tests.helpers.netns", "up"], input=job, capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"Asterisk in {ns} did not come up:\n{done.stdout}{done.stderr}")


def _up_here() -> None:
    from ivr.cli import asterisk_config
    from ivr.provision import asterisk as provision
    from ivr.settings import Settings

    job = json.loads(sys.stdin.read())
    fields = {k: Path(v) if k.endswith("_dir") else v for k, v in job["replace"].items()}
    cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(job["env"])), **fields)
    print(provision.up(cfg, timeout=60))


if __name__ == "__main__" and sys.argv[1:] == ["up"]:
    _up_here()
