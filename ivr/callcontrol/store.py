"""Call control's SQL: applications and their numbers, calls, recordings."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from ivr.callcontrol.models import Application
from ivr.callcontrol.webhooks import Outgoing
from ivr.core.db import Conn

_APP_COLUMNS = """a.id, a.app_id, a.name, a.webhook_url, a.webhook_secret, a.greeting,
    a.accept_timeout, a.trunk,
    COALESCE((SELECT array_agg(n.number ORDER BY n.number) FROM cc_numbers n
              WHERE n.application_id = a.id), '{}') AS numbers"""


class NumberTaken(Exception):
    """A number is already routed to another application (translated by the service)."""


def _application(row: asyncpg.Record) -> Application:
    return Application(
        id=row["id"], app_id=row["app_id"], name=row["name"], webhook_url=row["webhook_url"],
        webhook_secret=row["webhook_secret"], greeting=row["greeting"],
        accept_timeout=row["accept_timeout"], numbers=tuple(row["numbers"]),
        trunk=row["trunk"],
    )


class CallControlStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # --- applications -----------------------------------------------------------------------
    async def insert_application(
        self, *, app_id: str, app_key_hash: str, webhook_secret: str, name: str,
        webhook_url: str, greeting: str | None, accept_timeout: int, numbers: list[str],
        shared_numbers: list[str], new_pin: Callable[[], str], trunk: str | None = None,
        developer_id: int | None = None,
    ) -> dict[str, str]:
        """Writes the application with its dedicated and shared numbers; returns the PIN drawn
        for it on each shared number. NumberTaken (nothing written) when a dedicated number is
        already routed, or a number is used the other way."""
        async with self.pool.acquire() as conn, conn.transaction():
            app_pk: int = await conn.fetchval(
                """INSERT INTO cc_applications (app_id, app_key_hash, webhook_secret, name,
                       webhook_url, greeting, accept_timeout, trunk, developer_id)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
                app_id, app_key_hash, webhook_secret, name, webhook_url, greeting,
                accept_timeout, trunk, developer_id,
            )
            pins: dict[str, str] = {}
            try:
                for number in [*numbers, *shared_numbers]:
                    shared = number in shared_numbers
                    # Serialises PIN draws (and kind checks) per number.
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cc:' || $1))",
                                       number)
                    await conn.execute(
                        """INSERT INTO cc_number_kinds (number, shared) VALUES ($1, $2)
                           ON CONFLICT (number) DO NOTHING""", number, shared)
                    pin = None
                    while shared and pin is None:
                        pin = new_pin()
                        if await conn.fetchval("SELECT 1 FROM cc_numbers WHERE number = $1 "
                                               "AND pin = $2", number, pin):
                            pin = None
                    await conn.execute(
                        """INSERT INTO cc_numbers (number, shared, pin, application_id)
                           VALUES ($1, $2, $3, $4)""", number, shared, pin, app_pk)
                    if pin is not None:
                        pins[number] = pin
            except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError):
                raise NumberTaken from None
            return pins

    async def application_by_app_id(self, app_id: str) -> tuple[Application, str] | None:
        row = await self.pool.fetchrow(
            f"SELECT {_APP_COLUMNS}, a.app_key_hash FROM cc_applications a WHERE a.app_id = $1",
            app_id,
        )
        return (_application(row), row["app_key_hash"]) if row else None

    async def number_kind(self, number: str) -> bool | None:
        """True: shared (PIN first); False: dedicated; None: not a call-control number."""
        value: bool | None = await self.pool.fetchval(
            "SELECT shared FROM cc_number_kinds WHERE number = $1 AND EXISTS "
            "(SELECT 1 FROM cc_numbers n WHERE n.number = $1)", number)
        return value

    async def application_for_number(self, number: str, pin: str | None = None
                                     ) -> Application | None:
        """The application behind a dedicated number, or behind `pin` on a shared one."""
        row = await self.pool.fetchrow(
            f"""SELECT {_APP_COLUMNS} FROM cc_applications a
                JOIN cc_numbers n ON n.application_id = a.id
                WHERE n.number = $1 AND n.pin IS NOT DISTINCT FROM $2""",
            number, pin,
        )
        return _application(row) if row else None

    # --- calls ------------------------------------------------------------------------------
    async def active_outbound(self, application_id: int) -> int:
        """The application's outbound calls not ended yet (its toll-fraud concurrency)."""
        return int(await self.pool.fetchval(
            "SELECT count(*) FROM cc_calls WHERE application_id = $1"
            " AND direction = 'outbound' AND ended_at IS NULL", application_id))

    async def insert_call(
        self, *, voice_id: uuid.UUID, application_id: int, direction: str, from_number: str,
        to_number: str, channel_id: str, state: str, owner_ref: str | None = None,
        event_url: str | None = None,
    ) -> None:
        await self.pool.execute(
            """INSERT INTO cc_calls (voice_id, application_id, direction, from_number, to_number,
                   channel_id, state, owner_ref, event_url)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            voice_id, application_id, direction, from_number, to_number, channel_id, state,
            owner_ref, event_url,
        )

    async def write(self, items: list[Outgoing],
                    write_event: Callable[[Conn, dict[str, Any]], Awaitable[None]]) -> None:
        """A call's queued state changes and events, in order, in one transaction (each event
        is an outbox row committed together with the change it reports)."""
        async with self.pool.acquire() as conn, conn.transaction():
            for item in items:
                if item.change is not None:
                    await item.change(conn)
                if item.event is not None:
                    await write_event(conn, item.event)

    async def set_call_state(self, voice_id: uuid.UUID, state: str, cause: str | None = None,
                             conn: Conn | None = None) -> None:
        """Moves a live call on; an ended call stays ended."""
        await (conn or self.pool).execute(
            """UPDATE cc_calls SET state = $2, cause = COALESCE($3, cause),
                   answered_at = CASE WHEN $2 = 'connected' THEN COALESCE(answered_at, now())
                                      ELSE answered_at END,
                   ended_at = CASE WHEN $2 IN ('disconnected', 'failed') THEN now() END
               WHERE voice_id = $1 AND ended_at IS NULL""",
            voice_id, state, cause,
        )

    async def call(self, voice_id: uuid.UUID, application_id: int) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM cc_calls WHERE voice_id = $1 AND application_id = $2",
            voice_id, application_id,
        )
        return dict(row) if row else None

    async def engine_url(self, channel_id: str, not_app: str) -> str | None:
        """Where the engine of the pool that runs this channel's call answers HTTP (another
        than `not_app`, alive: it beats in `engines`)."""
        url = await self.pool.fetchval(
            "SELECT e.url FROM calls c JOIN engines e ON e.app = c.engine"
            " WHERE c.channel_id = $1 AND c.ended_at IS NULL AND e.app <> $2", channel_id,
            not_app)
        return str(url) if url else None

    # --- recordings -------------------------------------------------------------------------
    async def insert_recording(
        self, *, recording_id: uuid.UUID, application_id: int, voice_id: uuid.UUID,
        recording_name: str, asterisk_name: str, fmt: str, mixed: bool,
    ) -> bool:
        """False when the application already has a recording of that name."""
        try:
            await self.pool.execute(
                """INSERT INTO cc_recordings (recording_id, application_id, voice_id,
                       recording_name, asterisk_name, format, mixed)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                recording_id, application_id, voice_id, recording_name, asterisk_name, fmt,
                mixed,
            )
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def delete_recording(self, recording_id: uuid.UUID) -> None:
        await self.pool.execute("DELETE FROM cc_recordings WHERE recording_id = $1",
                                recording_id)

    async def finish_recording(self, recording_id: uuid.UUID, state: str,
                               duration: float | None, conn: Conn | None = None) -> None:
        await (conn or self.pool).execute(
            """UPDATE cc_recordings SET state = $2, duration = $3, ended_at = now()
               WHERE recording_id = $1 AND state = 'started'""",
            recording_id, state, duration,
        )

    async def recording(self, recording_id: uuid.UUID, application_id: int
                        ) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM cc_recordings WHERE recording_id = $1 AND application_id = $2",
            recording_id, application_id,
        )
        return dict(row) if row else None
