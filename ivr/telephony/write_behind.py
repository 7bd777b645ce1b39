"""A call's state changes, written behind the conversation: a flow hands a change to
`call.write_behind(...)` and goes on talking; the changes run one after another, in the
order given, so a later one never overtakes an earlier one (a take's accept before the next
take starts). A change that fails is raised by the flow's next `await call.written()`, and
the changes after it do not run: they would build on state that is not there."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # raised by written(), or by whoever awaits the change itself


class WriteBehind:
    def __init__(self) -> None:
        self._last: asyncio.Task[Any] | None = None
        self._failure: BaseException | None = None
        self._reported = False

    def __call__(self, change: Callable[P, Awaitable[T]], *args: P.args,
                 **kwargs: P.kwargs) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(
            self._run(self._last, change, *args, **kwargs))
        task.add_done_callback(_retrieved)
        self._last = task
        return task

    async def _run(self, before: asyncio.Task[Any] | None, change: Callable[..., Awaitable[T]],
                   *args: Any, **kwargs: Any) -> T:
        if before is not None:
            await asyncio.wait([before])
        if self._failure is not None:
            raise self._failure
        try:
            return await change(*args, **kwargs)
        except BaseException as exc:
            self._failure = exc
            raise

    @property
    def pending(self) -> bool:
        return self._last is not None and not self._last.done()

    async def written(self) -> None:
        """Until every change handed over so far has run; the first failure, once."""
        last = self._last
        if last is not None and not last.done():
            await asyncio.wait([last])
        if self._failure is not None and not self._reported:
            self._reported = True
            raise self._failure
