"""The operator's phone numbers: parsed and validated with phonenumbers, stored in E.164
(+15125550100, what any phone can dial) with the other forms a trunk or softphone may send as
the dialled extension (15125550100, 5125550100), and given to voice recorders."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import asyncpg
import phonenumbers
from phonenumbers import PhoneNumberFormat

from ivr.core import keys
from ivr.core.db import Conn
from ivr.core.errors import InvalidParameter, NotFound
from ivr.recorder import store
from ivr.recorder.errors import NoPhoneNumber, NumberInUse
from ivr.recorder.models import PhoneNumber

EXAMPLE = "+15125550100"
ADD_ONE = f"`ivr number add NUMBER` (e.g. `ivr number add {EXAMPLE}`)"


@dataclass(frozen=True, slots=True)
class Parsed:
    e164: str
    country: str  # the number's own region (e.g. GB for +44...), else the one it was read in
    international: str  # "+1 512-555-0100": the label when none is given


def parse(number: str, country: str = "US") -> Parsed:
    """A number as an operator may write it: international (+44 20 7183 8750) or as dialled in
    `country` (512-555-0100, 1 512 555 0100 for US). Refused unless it is a valid number."""
    region = country.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidParameter("country", f"country {country!r} is not a two-letter region "
                               "code phone numbers know, such as US or GB")
    hint = (f"give it in international form such as {EXAMPLE}, or as dialled in {region} "
            "(another country with --country)")
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        raise InvalidParameter("number", f"{number!r} is not a phone number: {hint}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidParameter("number", f"{number!r} is not a valid phone number in {region} "
                               f"or internationally: {hint}")
    own = phonenumbers.region_code_for_number(parsed)
    return Parsed(phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
                  own if own in phonenumbers.SUPPORTED_REGIONS else region,
                  phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL))


def dial_forms(number: str) -> list[str]:
    """What may arrive as the dialled extension (Asterisk's dialplan.exten) for a stored
    number, most specific first: E.164, its digits (15125550100), the national form with its
    trunk prefix (5125550100 in the US, 02071838750 in the UK) and without. A number stored
    before E.164 (not starting with +) is reached as stored only."""
    if not number.startswith("+"):
        return [number]
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return [number, number[1:]]
    national = re.sub(r"\D", "", phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL))
    forms = [number, number[1:], national, phonenumbers.national_significant_number(parsed)]
    return list(dict.fromkeys(f for f in forms if f))


# --- giving numbers to recorders -----------------------------------------------------------
async def assign(conn: Conn, recorder_id: int, initiation: str,
                 exclude: int | None = None) -> PhoneNumber:
    """A number for a recorder (replacing any it had): its own free one for a call-initiated
    recorder (the dialled number identifies it), else the least used shared one."""
    await store.lock_numbers(conn)
    await store.unassign_numbers(conn, recorder_id)
    numbers = [row for row in await store.all_numbers(conn) if row[0].id != exclude]
    if initiation == "call":
        free = [n for n, users, _ in numbers if users == 0]
        if not free:
            raise NoPhoneNumber(
                "no free phone number to dedicate to a call-initiated recorder (each needs "
                f"its own); the operator adds one with {ADD_ONE}")
        await store.assign_number(conn, recorder_id, free[0].id, True)
        return free[0]
    shared = [(users, n.number, n) for n, users, dedicated in numbers if not dedicated]
    if not shared:
        raise NoPhoneNumber("no phone number is configured for voice recorders; the operator "
                            f"adds one with {ADD_ONE}")
    chosen = min(shared)[2]
    await store.assign_number(conn, recorder_id, chosen.id, False)
    return chosen


@dataclass
class Removal:
    number: PhoneNumber
    moved: list[tuple[str, PhoneNumber]] = field(default_factory=list)  # recorder key, new
    stranded: list[str] = field(default_factory=list)  # recorders left without a number
    sessions: int = 0  # live sessions whose PIN was on this number


class Numbers:
    """The operator's actions (`ivr number ...`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, number: str, display: str | None, country: str = "US",
                  key: str | None = None) -> PhoneNumber:
        parsed = parse(number, country)
        if key is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key):
            raise InvalidParameter("key", "key must be 1 to 64 letters, digits, '-' or '_'")
        async with self.pool.acquire() as conn:
            if await store.number_by_forms(conn, [parsed.e164]) is not None:
                raise InvalidParameter("number", f"number {parsed.e164} exists")
            try:
                return await store.insert_number(
                    conn, key or keys.new_key(), parsed.e164, display or parsed.international,
                    parsed.country, dial_forms(parsed.e164))
            except asyncpg.UniqueViolationError:
                raise InvalidParameter("number", f"number {parsed.e164} or key {key} exists"
                                       ) from None

    async def ensure(self, number: str, country: str = "US") -> tuple[PhoneNumber, bool]:
        """The number, added unless it exists (the development number): (it, added)."""
        parsed = parse(number, country)
        async with self.pool.acquire() as conn:
            found = await store.number_by_forms(conn, [parsed.e164])
        if found is not None:
            return found, False
        try:
            return await self.add(parsed.e164, None, parsed.country), True
        except InvalidParameter:  # added at the same moment by another process
            async with self.pool.acquire() as conn:
                again = await store.number_by_forms(conn, [parsed.e164])
            if again is None:
                raise
            return again, False

    async def list(self) -> list[tuple[PhoneNumber, int, bool]]:
        async with self.pool.acquire() as conn:
            return await store.all_numbers(conn)

    async def remove(self, number: str, country: str = "US", *, force: bool) -> Removal:
        """Take a number away. Recorders or live sessions on it refuse that unless `force`:
        then each recorder left without a number gets another (as a new one would), and live
        sessions can no longer be reached on it (calls in progress go on)."""
        wanted = [re.sub(r"[\s().-]", "", number)]
        try:
            wanted.insert(0, parse(number, country).e164)
        except InvalidParameter:
            pass  # a number stored before E.164 is removed as it was stored
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_numbers(conn)
            found = await store.number_by_forms(conn, wanted)
            if found is None:
                raise NotFound(f"no phone number {wanted[0]} (`ivr number list` shows them)")
            users = await store.recorders_on_number(conn, found.id)
            removal = Removal(found, sessions=await store.live_sessions_on_number(conn, found.id))
            if (users or removal.sessions) and not force:
                raise NumberInUse(
                    f"number {found.number} is given to {len(users)} voice recorder(s)"
                    f"{' (' + ', '.join(k for _, k, _, _ in users) + ')' if users else ''} and "
                    f"is the way in for {removal.sessions} live session(s); `ivr number remove "
                    f"{found.number} --force` gives those recorders another number and leaves "
                    "those sessions unreachable by phone")
            await store.unassign_number(conn, found.id)
            for recorder_id, recorder_key, initiation, others in users:
                if others:
                    continue  # it has another number still
                try:
                    new = await assign(conn, recorder_id, initiation, exclude=found.id)
                    removal.moved.append((recorder_key, new))
                except NoPhoneNumber:
                    removal.stranded.append(recorder_key)
            await store.delete_number(conn, found.id)
            return removal
