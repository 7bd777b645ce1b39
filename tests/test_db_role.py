"""The service's PostgreSQL role (issue #20 host hygiene: it connected as a trust superuser):
`ensure_role` makes the URL's user a password-authenticated non-superuser owning its database;
with it the migrations apply and the app serves, and it cannot make roles, read password
hashes, become a superuser or touch another owner's database."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import create_app
from ivr.core import db
from ivr.provision.postgres import ensure_role, ensure_server, logs_in, stop_embedded
from ivr.settings import REPO_ROOT, Settings


@pytest.fixture(scope="module")
def role_url() -> Iterator[str]:
    """The project's own cluster, as `ivr db up` makes it where no server answers, on a port
    and in a folder of this test's own, for a role and database named as a fresh .env's."""
    state = REPO_ROOT / ".local" / f"postgres-role-{os.getpid()}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://ivr:{secrets.token_urlsafe(18)}@127.0.0.1:{port}/ivr"
    try:
        assert ensure_server(url, state, lambda _: None) == "embedded"
        yield url
    finally:
        stop_embedded(state)
        shutil.rmtree(state, ignore_errors=True)


def state_of(url: str) -> Path:
    return REPO_ROOT / ".local" / f"postgres-role-{os.getpid()}" / "pgsock"


async def test_the_service_role_owns_its_database_and_nothing_more(role_url: str) -> None:
    assert logs_in(role_url)  # ensure_server made the role
    assert ensure_role(role_url, state_of(role_url)) is True  # again: idempotent
    wrong = role_url.replace(urlsplit(role_url).password or "", "not-the-password")
    assert not logs_in(wrong)  # scram-sha-256, not trust (was: initdb --auth=trust)
    assert not logs_in(role_url.replace("ivr:", "postgres:", 1))  # no superuser over TCP

    assert await db.prepare_database(role_url)  # the migrations, as the role
    conn = await asyncpg.connect(role_url)
    try:
        me = await conn.fetchrow("SELECT rolsuper, rolcreaterole, rolbypassrls, rolreplication"
                                 " FROM pg_roles WHERE rolname = current_user")
        assert not any(me.values()), me
        assert await conn.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database"
                                   " WHERE datname = current_database()") == conn._params.user
        for refused in ("CREATE ROLE intruder LOGIN SUPERUSER",
                        "SELECT rolpassword FROM pg_authid",
                        f"ALTER ROLE {conn._params.user} SUPERUSER",
                        "COPY (SELECT 1) TO PROGRAM 'id'",
                        "SELECT pg_read_file('/etc/passwd')",
                        "DROP DATABASE postgres"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(refused)
    finally:
        await conn.close()

    ours = Settings.from_mapping({"IVR_ARI_PASSWORD": "s3cret-ari-pw",
                                  "IVR_SOFTPHONE_PASSWORD": "s3cret-sip-pw",
                                  "IVR_DATABASE_URL": role_url})
    app = create_app(ours, with_telephony=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.get("/healthz")
        body = await resp.json()
        assert resp.status == 200 and body["database"]["connected"] is True, body
