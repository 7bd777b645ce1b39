"""The Asterisk container's start (asterisk-conf/Dockerfile): the very configuration `ivr asterisk
up` writes into the chroot, rendered by the same code (asterisk_conf.render) from the IVR_*
environment and written the same way (asterisk_run._write_config), with the container's own
file system as the root; then Asterisk replaces this process, as the `asterisk` user.

Standard library only: the Asterisk image carries Python and the project's settings and
provisioning modules, not the engine's dependencies.

    python3 -m ivr.provision.container [--role local|media] [--render-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from ivr.core.errors import IvrError
from ivr.provision.asterisk_conf import AsteriskConfig, from_settings, render
from ivr.provision.asterisk_run import _prepare_dirs, _write_config
from ivr.settings import Settings


def config(role: str, env: dict[str, str] | None = None) -> AsteriskConfig:
    """This container's Asterisk: the settings from the environment, the root is `/`."""
    settings = Settings.from_mapping(dict(os.environ) if env is None else env)
    return dataclasses.replace(from_settings(settings), root=Path("/"),
                               media_host=role == "media")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ivr.provision.container",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["local", "media"], default="local",
                        help="as `ivr asterisk up --role`: media when the engine runs on "
                        "another host (IVR_ARI_URL names this one)")
    parser.add_argument("--render-only", action="store_true",
                        help="write /etc/asterisk and exit without starting Asterisk")
    args = parser.parse_args(argv)
    try:
        cfg = config(args.role)
        _write_config(cfg, render(cfg))
        _prepare_dirs(cfg)
    except IvrError as exc:
        print(f"ivr-asterisk: {exc.message}", file=sys.stderr)
        return 64
    print(f"ivr-asterisk: configuration written to /{cfg.etc} (ARI {cfg.ari_url}, SIP "
          f"{cfg.net.sip_bind}:{cfg.net.sip_port}, app {cfg.ari_app})", flush=True)
    if args.render_only:
        return 0
    os.execvp("asterisk", ["asterisk", "-f", "-U", "asterisk", "-G", "asterisk"])


if __name__ == "__main__":
    sys.exit(main())
