"""Every line logged for a call carries its id: the runner runs each call in its own task
with the call's id in a context variable (`for_call`), and tasks the call starts (playback
requests, write-behind changes, look-aheads) inherit it. Modules log plainly; the record
factory puts `[<call id>] ` in front. Lines about a call logged from outside its task (the
event router, recovery) name the channel themselves, as `[<id>] ...`, and are left as they
are."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

CALL_ID: ContextVar[str | None] = ContextVar("call_id", default=None)

_plain_factory = logging.getLogRecordFactory()


def _record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _plain_factory(*args, **kwargs)
    call_id = CALL_ID.get()
    if call_id is not None and isinstance(record.msg, str) and not record.msg.startswith("["):
        record.msg = f"[{call_id}] {record.msg}"
    record.call_id = call_id
    return record


def for_call(call_id: str) -> None:
    """From here on, in this task and the tasks it starts, lines carry `call_id`."""
    if logging.getLogRecordFactory() is not _record:
        logging.setLogRecordFactory(_record)
    CALL_ID.set(call_id)
