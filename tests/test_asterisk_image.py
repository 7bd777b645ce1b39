"""The Asterisk image (asterisk-conf/Dockerfile) copies only the renderer's modules: they must
import on their own, or the container's entrypoint dies at start (it did, when asterisk_conf.py
came to import sip_cert). Checked without podman: the COPY lines' files, alone in a folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from ivr.settings import REPO_ROOT


def test_the_images_renderer_imports_from_what_the_image_copies(tmp_path: Path) -> None:
    dockerfile = (REPO_ROOT / "asterisk-conf" / "Dockerfile").read_text()
    copied = []
    for instruction in re.findall(r"^COPY ((?:.*\\\n)*.*)$", dockerfile, re.M):
        words = instruction.replace("\\\n", " ").split()
        copied += [w for w in words[:-1] if w.startswith("ivr/")]
    assert "ivr/provision/container.py" in copied
    for name in copied:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    done = subprocess.run([sys.executable, "-c", "import ivr.provision.container"],
                          cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
