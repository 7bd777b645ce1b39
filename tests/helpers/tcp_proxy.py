"""A TCP proxy on loopback that a test can cut, as a network failure or a restarting server
would: every connection through it is aborted (no FIN, no goodbye) and new ones are refused
for a while."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

# Sees each chunk before it is passed on; False stops the copy (both ends are then aborted).
Inspect = Callable[[bytes], Awaitable[bool]]


async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
               inspect: Inspect | None = None) -> None:
    """Copy `src` to `dst` until either end goes; then abort `dst` (no FIN, as a cut link)."""
    try:
        while data := await src.read(65536):
            if inspect is not None and not await inspect(data):
                break
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        dst.transport.abort()


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._refuse_until = 0.0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()

    def cut(self, refuse_for: float = 0.0) -> int:
        """Abort every connection now and refuse new ones for `refuse_for` seconds; returns how
        many connections were cut."""
        self._refuse_until = asyncio.get_running_loop().time() + refuse_for
        cut = len(self._open)
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
        return cut

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if asyncio.get_running_loop().time() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open.difference_update((writer, up_writer))
