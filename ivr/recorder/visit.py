"""One caller's visit to a session, as the session flow keeps it between recordings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ivr.recorder.models import Recording

log = logging.getLogger(__name__)

# How long the conversation waits for a database answer it can go on without (a slow or
# restarting database); the change itself still commits, later, in order.
DATABASE_WAIT = 1.0


def _retrieved(task: asyncio.Task[list[Recording]]) -> None:
    if not task.cancelled():
        task.exception()  # seen: a look-ahead nobody waits for fails quietly


class Visit:
    """One caller's visit to a session: whether the session knows the caller is in (it is
    ended when the call is), and its recordings read ahead."""

    def __init__(self, called: bool = False) -> None:
        self.called = called
        # The session's recordings, read when the caller ended a take (while the review menu
        # plays): what comes next is known by the time the caller keeps the take, so no
        # database round trip (which waits for a pooled connection on a busy machine) sits
        # between the key and the next announcement. Changes made through the API until the
        # caller ends the take are seen; later ones from the recording after.
        self.upcoming: asyncio.Task[list[Recording]] | None = None
        # The list as last read: what the caller goes on with while the database does not
        # answer (an outage), rather than silence until it does.
        self.known: list[Recording] | None = None

    def look_ahead(self, task: asyncio.Task[list[Recording]]) -> None:
        self.forget_upcoming()
        self.upcoming = task

    def forget_upcoming(self) -> None:
        task, self.upcoming = self.upcoming, None
        if task is not None:
            task.cancel()
            task.add_done_callback(_retrieved)

    async def recordings(self, read: Callable[[], Awaitable[list[Recording]]]
                         ) -> list[Recording]:
        task, self.upcoming = self.upcoming, None
        if task is not None and task.done() and not task.cancelled() \
                and task.exception() is None:
            # Read ahead already: no pause, so what was said before ("saved") and what comes
            # next go out as one playback.
            self.known = task.result()
            return self.known
        if task is not None:
            if self.known is not None:
                await asyncio.wait([task], timeout=DATABASE_WAIT)
                if not task.done():
                    log.warning("the database is slow: going on with the recordings as read")
                    task.cancel()
                    task.add_done_callback(_retrieved)
                    return self.known
            with contextlib.suppress(Exception):
                self.known = await task
                return self.known
        self.known = await read()
        return self.known
