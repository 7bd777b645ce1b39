"""`ivr dialer account create` prints the credentials once; only an argon2id hash is stored,
and the printed secret authenticates. `ivr dialer dnc add` fills the do-not-call list."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import asyncpg

from ivr.dialer.accounts import Accounts
from ivr.settings import REPO_ROOT, Settings


async def ivr(settings: Settings, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "dialer", *args, cwd=REPO_ROOT,
        env={**os.environ, "IVR_DATABASE_URL": settings.database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


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
