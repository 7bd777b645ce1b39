"""Running the audio tools (espeak-ng, sox, ffmpeg) as asyncio subprocesses: the event loop
never waits on them, and a cancelled caller does not leave a process behind."""

from __future__ import annotations

import asyncio
import contextlib

from ivr.core.priority import at_default_priority
from ivr.media.errors import MediaError


async def run_tool(command: list[str], stdin: bytes | None = None) -> None:
    """Run `command` to completion; a non-zero exit is a MediaError with its stderr."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *at_default_priority(command), start_new_session=True,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise MediaError(f"{command[0]} is not installed (`make deps` installs it)") from None
    try:
        _, err = await proc.communicate(stdin)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise MediaError(f"{command[0]} failed ({proc.returncode}): "
                         f"{err.decode(errors='replace').strip()[:300]}")
