"""`ivr campaign create|list`, run as the operator runs it (its own process, on the test
database)."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

from ivr.dialer.accounts import Accounts
from ivr.settings import REPO_ROOT, Settings


async def ivr(settings: Settings, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", *args, cwd=REPO_ROOT,
        env={**os.environ, "IVR_DATABASE_URL": settings.database_url,
             "IVR_DATA_DIR": str(settings.data_dir)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_create_and_list(pool: asyncpg.Pool, settings: Settings) -> None:
    new = await Accounts(pool).create(name="cli")
    code, out = await ivr(settings, "campaign", "create", "--account", new.account_id,
                          "--menuid", "1-1234", "--summary-url", "https://app.example/s",
                          "--keypress", "--attempts", "3", "--amd", "skip_machine")
    assert code == 0, out
    assert f"campaign menu 1-1234 created for account {new.account_id}" in out
    row = await pool.fetchrow("SELECT keypress, amd, max_attempts, summary_url, events_url"
                              " FROM campaign_menus WHERE account_pk = $1", new.account.pk)
    assert dict(row) == {"keypress": True, "amd": "skip_machine", "max_attempts": 3,
                         "summary_url": "https://app.example/s", "events_url": None}
    (code, out), (listed, listing) = await asyncio.gather(
        ivr(settings, "campaign", "create", "--account", new.account_id, "--menuid", "1-1234"),
        ivr(settings, "campaign", "list", "--account", new.account_id))
    assert code == 1 and "already has menu '1-1234'" in out
    assert listed == 0 and listing.splitlines()[-1].startswith("1-1234\t")
