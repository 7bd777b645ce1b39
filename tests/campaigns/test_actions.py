"""Send, query, pause, resume and delete on calls no worker dials (the account's calling
hours exclude now), so each state is held still and checked exactly."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from ivr.campaigns.service import Campaigns
from ivr.core.errors import InvalidParameter
from ivr.dialer.accounts import Accounts
from tests.campaigns.conftest import Client, Reply, campaign_xml, hours_excluding_now


def calls(reply: Reply) -> list[Element]:
    numbers = reply.root.find("phonenumbers")
    assert numbers is not None
    return list(numbers)


def statuses(reply: Reply) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for el in calls(reply):
        found.setdefault(el.attrib["callid"], []).append(el.attrib["status"])
    return found


QUERY_ALL = ('<campaign action="3" menuid="1-1234"><phonenumbers><phonenumber callid=""/>'
             "</phonenumbers></campaign>")


async def test_send_query_pause_resume_delete(quiet: Client, pool: asyncpg.Pool) -> None:
    reply = await quiet.post(campaign_xml("1-1234", ["8185550100", "8185550117", "8185550152"],
                                          callids=["grp", "grp", "solo"]))
    assert (reply.status, reply.errorid, reply.root.attrib["action"]) == (200, 0, "0")
    assert [(c.attrib["number"], c.attrib["callid"]) for c in calls(reply)] == [
        ("8185550100", "grp"), ("8185550117", "grp"), ("8185550152", "solo")]
    # Without callid, a call goes by its dialer message id (20 digits).
    reply = await quiet.post(campaign_xml("1-1234", ["8185550199"]))
    generated = calls(reply)[0].attrib["callid"]
    assert len(generated) == 20 and generated.isdigit()

    reply = await quiet.post(QUERY_ALL)
    assert reply.errorid == 0 and reply.root.attrib["menuid"] == "1-1234"
    assert statuses(reply) == {"grp": ["Pending", "Pending"], "solo": ["Pending"],
                               generated: ["Pending"]}
    first = calls(reply)[0]
    assert (first.attrib["number"], first.attrib["duration"]) == ("8185550100", "0")
    assert [p.attrib for p in first.iter("prompt")] == [{"promptid": "1", "keypress": ""}]
    one = await quiet.post('<campaign action="3" menuid="1-1234"><phonenumbers>'
                           '<phonenumber callid="grp"/></phonenumbers></campaign>')
    assert statuses(one) == {"grp": ["Pending", "Pending"]}

    # Pause (7) holds every pending call of the menu; resume (8) releases them.
    reply = await quiet.post('<campaign menuid="1-1234" action="7" />')
    assert (reply.errorid, reply.root.attrib["paused"]) == (0, "4")
    assert set(await pool.fetchval(
        "SELECT array_agg(DISTINCT j.state) FROM campaign_calls c JOIN dialer_jobs j"
        " ON j.id = c.job_id WHERE c.menu_pk = $1", quiet.menu_pk)) == {"paused"}
    reply = await quiet.post(QUERY_ALL)
    assert {s for v in statuses(reply).values() for s in v} == {"Paused"}
    reply = await quiet.post('<campaign menuid="1-1234" action="8" />')
    assert (reply.errorid, reply.root.attrib["pending"]) == (0, "4")
    reply = await quiet.post(QUERY_ALL)
    assert {s for v in statuses(reply).values() for s in v} == {"Pending"}

    # Delete pending calls by callid (a group of two; an unknown id deletes nothing).
    reply = await quiet.post('<campaign action="2" menuid="1-1234"><phonenumbers>'
                             '<phonenumber callid="grp"/><phonenumber callid="nope"/>'
                             "</phonenumbers></campaign>")
    assert (reply.errorid, reply.root.attrib["deleted"]) == (0, "2")
    assert [c.attrib for c in calls(reply)] == [
        {"callid": "grp", "deleted": "2", "notdeleted": "0"},
        {"callid": "nope", "deleted": "0", "notdeleted": "0"}]
    reply = await quiet.post(QUERY_ALL)
    assert statuses(reply) == {"grp": ["Deleted", "Deleted"], "solo": ["Pending"],
                               generated: ["Pending"]}
    # Deleting again: those calls are no longer pending.
    reply = await quiet.post('<campaign action="2" menuid="1-1234"><phonenumbers>'
                             '<phonenumber callid="grp"/></phonenumbers></campaign>')
    assert [c.attrib for c in calls(reply)] == [
        {"callid": "grp", "deleted": "0", "notdeleted": "2"}]


async def test_menus_belong_to_their_account(quiet: Client, pool: asyncpg.Pool,
                                             xmlapi: TestClient, campaigns: Campaigns) -> None:
    await quiet.post(campaign_xml("1-1234", ["8185550100"], callids=["mine"]))
    other_new = await Accounts(pool).create(name="other", hours=hours_excluding_now())
    other = Client(other_new, xmlapi, await campaigns.create_menu(other_new.account, "2-1"))
    for body in ('<campaign menuid="1-1234" action="7" />', QUERY_ALL,
                 '<campaign action="2" menuid="1-1234"><phonenumbers><phonenumber '
                 'callid="mine"/></phonenumbers></campaign>'):
        reply = await other.post(body)
        assert (reply.status, reply.errorid) == (404, 19)
    reply = await quiet.post(QUERY_ALL)
    assert statuses(reply) == {"mine": ["Pending"]}
    # The same menuid may exist in another account: it is that account's own menu.
    await campaigns.create_menu(other_new.account, "1-1234")
    reply = await other.post(QUERY_ALL)
    assert (reply.errorid, calls(reply)) == (0, [])


async def test_menu_settings_are_checked(quiet: Client, campaigns: Campaigns) -> None:
    account = quiet.new.account
    for kwargs, param in (({"events_url": "ftp://x"}, "events_url"),
                          ({"summary_url": "not a url"}, "summary_url"),
                          ({"sender_id": "12"}, "sender_id"),
                          ({"amd": "maybe"}, "amd"),
                          ({"max_attempts": 11}, "max_attempts")):
        with pytest.raises(InvalidParameter) as caught:
            await campaigns.create_menu(account, "2-1", **kwargs)
        assert caught.value.param == param
    with pytest.raises(InvalidParameter, match="already has menu"):
        await campaigns.create_menu(account, "1-1234")
    with pytest.raises(InvalidParameter, match="menuid"):
        await campaigns.create_menu(account, "bad menu")


async def test_menu_settings_reach_the_dialer(quiet: Client, campaigns: Campaigns,
                                              pool: asyncpg.Pool) -> None:
    await campaigns.create_menu(quiet.new.account, "set", sender_id="8185550000",
                                keypress=True, amd="after_beep", max_attempts=3,
                                retry_delay=5, ring_timeout=20)
    reply = await quiet.post(
        '<campaign menuid="set" action="0"><prompts><prompt promptid="1" tts="Hi."/>'
        '</prompts><phonenumbers><phonenumber number="8185550100" callid="a"/>'
        '<phonenumber number="8185550117" callid="b" callerid="8185559999"/>'
        "</phonenumbers></campaign>")
    assert reply.errorid == 0, reply.comment
    jobs = await pool.fetch(
        "SELECT DISTINCT j.sender_id, j.amd, j.max_attempts, j.retry_delay, j.ring_timeout,"
        " j.enable_menu_response, j.kind, j.meta->>'menuid' AS menuid"
        " FROM campaign_calls c JOIN campaign_menus m ON m.id = c.menu_pk"
        " JOIN dialer_jobs j ON j.id = c.job_id WHERE m.menuid = 'set' AND m.account_pk = $1"
        " ORDER BY j.sender_id", quiet.new.account.pk)
    # One job per caller id shown: the menu's, and the one number's own.
    assert [dict(j) for j in jobs] == [
        {"sender_id": sender, "amd": "after_beep", "max_attempts": 3, "retry_delay": 5.0,
         "ring_timeout": 20, "enable_menu_response": True, "kind": "campaign", "menuid": "set"}
        for sender in ("8185550000", "8185559999")]
