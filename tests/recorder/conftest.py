"""Recorder fixtures: a developer with a recorder on a configured number (the /vr helpers
they use are in tests/helpers/vr.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ivr.recorder.service import RecorderService
from tests.helpers.vr import Dev, Vr, as_list, fresh_number, make_dev, parse, xml_tree

__all__ = ["Dev", "Vr", "as_list", "fresh_number", "make_dev", "parse", "xml_tree"]


@pytest.fixture
async def service(pool: Any, settings: Any) -> RecorderService:
    return RecorderService(pool, settings.data_dir, open_signup=True)


@pytest.fixture(scope="session")
async def phone_number(pool: Any, settings: Any) -> str:
    service = RecorderService(pool, settings.data_dir, open_signup=True)
    return (await service.add_number(fresh_number(), None, "US", None)).number


@pytest.fixture
async def dev(api: TestClient, phone_number: str) -> Dev:
    return await make_dev(api, phone_number)


@pytest.fixture
async def vr(api: TestClient, dev: Dev) -> Vr:
    return Vr(api, dev)
