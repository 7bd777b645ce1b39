"""The seed's documents carry no credentials (VoiceShot authorised its clients by address): an
account's allowlist takes them from its networks, and from no other address. The posts come
from real loopback addresses (127.0.0.2 beside the test's own 127.0.0.1)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import defusedxml.ElementTree as SafeET
import pytest
from aiohttp.test_utils import TestClient

from ivr.campaigns.service import Campaigns
from ivr.dialer.accounts import Accounts, NewAccount
from ivr.dialer.errors import InvalidJob
from tests.campaigns.conftest import Reply, hours_excluding_now

# The seed's Example 6 (call query) and Example 2 (pause), as VoiceShot's clients post them.
SEED_QUERY = (b'<campaign action="3" menuid="1-1234">\n   <phonenumbers>\n'
              b'      <phonenumber callid="" />\n   </phonenumbers>\n</campaign>')
SEED_PAUSE = b'<campaign menuid="1-1234" action="7" />'


@pytest.fixture
async def allowed(pool: asyncpg.Pool, campaigns: Campaigns) -> AsyncIterator[NewAccount]:
    """An account taking documents from 127.0.0.2 alone, with the seed's menu 1-1234."""
    new = await Accounts(pool).create(name="by address", hours=hours_excluding_now(),
                                      allow_from=["127.0.0.2/32"])
    await campaigns.create_menu(new.account, "1-1234")
    yield new
    await Accounts(pool).set_allow_from(new.account, [])  # the address is free again


async def post_from(xmlapi: TestClient, source: str, body: bytes,
                    headers: dict[str, str] | None = None) -> Reply:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.post(xmlapi.make_url("/ivrapi.asp"), data=body,
                             headers=headers or {}) as resp:
            return Reply(resp.status, SafeET.fromstring(await resp.read()))


async def test_a_document_without_credentials_from_an_allowed_address(
    xmlapi: TestClient, allowed: NewAccount, pool: asyncpg.Pool,
) -> None:
    reply = await post_from(xmlapi, "127.0.0.2", SEED_QUERY)
    assert (reply.status, reply.errorid, reply.root.attrib["action"]) == (200, 0, "3")
    assert reply.root.attrib["menuid"] == "1-1234"  # the allowed account's own menu
    reply = await post_from(xmlapi, "127.0.0.2", SEED_PAUSE)
    assert (reply.status, reply.errorid, reply.root.attrib["paused"]) == (200, 0, "0")


async def test_any_other_address_still_needs_credentials(
    xmlapi: TestClient, allowed: NewAccount,
) -> None:
    for source in ("127.0.0.1", "127.0.0.3"):
        reply = await post_from(xmlapi, source, SEED_QUERY)
        assert (reply.status, reply.errorid) == (401, 1)
        assert f"address {source} is in no account's allowlist" in reply.comment
    # With credentials, as before, from anywhere.
    pair = f"{allowed.account_id}:{allowed.secret}".encode()
    good = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    reply = await post_from(xmlapi, "127.0.0.1", SEED_QUERY, good)
    assert (reply.status, reply.errorid) == (200, 0)
    # Wrong credentials are wrong, from an allowed address too.
    bad = {"Authorization": "Basic " + base64.b64encode(
        f"{allowed.account_id}:wrong".encode()).decode()}
    reply = await post_from(xmlapi, "127.0.0.2", SEED_QUERY, bad)
    assert (reply.status, reply.errorid) == (401, 1)


async def test_an_address_belongs_to_one_account(pool: asyncpg.Pool,
                                                 allowed: NewAccount) -> None:
    accounts = Accounts(pool)
    with pytest.raises(InvalidJob, match=re.escape(
            f"overlaps 127.0.0.2/32 of account {allowed.account_id}")):
        await accounts.create(name="overlap", allow_from=["127.0.0.0/24"])
    assert await pool.fetchval("SELECT count(*) FROM dialer_accounts WHERE name = 'overlap'") == 0
    other = await accounts.create(name="other")
    with pytest.raises(InvalidJob, match="overlaps"):
        await accounts.set_allow_from(other.account, ["10.9.0.0/16", "127.0.0.2"])
    assert await accounts.allow_from(other.account) == []  # nothing half-written
    # One account's own networks are collapsed; a bad CIDR is named.
    assert await accounts.set_allow_from(
        other.account, ["10.9.0.0/16", "10.9.1.0/24", "2001:db8::/32"]) == [
        "10.9.0.0/16", "2001:db8::/32"]
    with pytest.raises(InvalidJob, match=re.escape("'10.9.0.1/16' is no CIDR")):
        await accounts.set_allow_from(other.account, ["10.9.0.1/16"])
    assert await accounts.allow_from(other.account) == ["10.9.0.0/16", "2001:db8::/32"]
    await accounts.set_allow_from(other.account, [])
