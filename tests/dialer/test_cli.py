"""`ivr dialer account create` prints the credentials once; only an argon2id hash is stored,
and the printed secret authenticates. `ivr dialer dnc add` fills the do-not-call list;
`--allow-from` / `account update` set the addresses campaign documents need no credentials
from."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import asyncpg

from ivr.dialer.accounts import Accounts
from ivr.settings import REPO_ROOT, Settings


async def run(settings: Settings, *args: str) -> tuple[int, str]:
    """`ivr dialer ARGS` in its own process: the exit code and stdout + stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "dialer", *args, cwd=REPO_ROOT,
        env={**os.environ, "IVR_DATABASE_URL": settings.database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def ivr(settings: Settings, *args: str) -> str:
    code, out = await run(settings, *args)
    assert code == 0, out
    return out


async def test_account_create_and_dnc(settings: Settings, pool: asyncpg.Pool) -> None:
    out = await ivr(settings, "account", "create", "--name", "ops", "--timezone",
                    "Europe/Malta", "--hours", "09:00-20:00")
    account_id = re.search(r"account id:\s+(\S+)", out)
    secret = re.search(r"\n  secret:\s+(\S+)", out)
    assert account_id and secret
    row = await pool.fetchrow("SELECT * FROM dialer_accounts WHERE account_id = $1",
                              account_id[1])
    assert row["secret_hash"].startswith("$argon2id$") and secret[1] not in row["secret_hash"]
    assert (row["timezone"], row["hours_from"], row["hours_until"]) == ("Europe/Malta", 540, 1200)
    account = await Accounts(pool).authenticate(account_id[1], secret[1])
    assert account.name == "ops"
    out = await ivr(settings, "dnc", "add", account_id[1], "35699000001", "35699000002")
    assert "added 2" in out
    assert await pool.fetchval("SELECT count(*) FROM dialer_dnc WHERE account_pk = $1",
                               account.pk) == 2


async def test_account_allow_from(settings: Settings, pool: asyncpg.Pool) -> None:
    """--allow-from on create, `account update ID --allow-from ...` replaces the list,
    --no-allow-from empties it; a bad CIDR is refused with its name."""
    out = await ivr(settings, "account", "create", "--allow-from", "192.0.2.0/24",
                    "--allow-from", "198.51.100.7")
    assert "allow from:      192.0.2.0/24 198.51.100.7/32" in out
    match = re.search(r"account id:\s+(\S+)", out)
    assert match
    account_id = match[1]

    async def nets() -> list[str]:
        rows = await pool.fetch(
            "SELECT f.net FROM dialer_allow_from f JOIN dialer_accounts a"
            " ON a.id = f.account_pk WHERE a.account_id = $1 ORDER BY f.net", account_id)
        return [str(r["net"]) for r in rows]

    assert await nets() == ["192.0.2.0/24", "198.51.100.7/32"]
    out = await ivr(settings, "account", "update", account_id, "--allow-from", "203.0.113.0/24")
    assert f"dialer account {account_id} updated" in out and "203.0.113.0/24" in out
    assert await nets() == ["203.0.113.0/24"]
    code, text = await run(settings, "account", "update", account_id, "--allow-from",
                           "203.0.113.1/24")
    assert code == 1 and "'203.0.113.1/24' is no CIDR" in text
    assert await nets() == ["203.0.113.0/24"]
    out = await ivr(settings, "account", "update", account_id, "--no-allow-from")
    assert "(none: credentials required)" in out
    assert await nets() == []
