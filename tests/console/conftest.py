"""A real headless Chromium (Debian's `chromium` + `chromium-driver`) driven by Selenium. The
app under test runs on this test's event loop, so every WebDriver call (which blocks until the
browser is done, often waiting on that app) runs in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from ivr.recorder.service import RecorderService
from ivr.settings import REPO_ROOT, Settings
from tests.telephony_harness import Engine

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The docs' screenshots are refreshed on request (IVR_SCREENSHOTS=docs); a normal run keeps
# its screenshots out of the work tree.
SCREENSHOTS = (REPO_ROOT / "docs" / "screenshots" if os.environ.get("IVR_SCREENSHOTS") == "docs"
               else Path(tempfile.gettempdir()) / f"ivr-screenshots-{os.getpid()}")
T = TypeVar("T")


class Browser:
    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url.rstrip("/")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def get(self, path: str) -> None:
        await self._run(self.driver.get, self.base_url + path)

    @property
    def path(self) -> str:
        url = str(self.driver.current_url)
        return url[len(self.base_url):] if url.startswith(self.base_url) else url

    async def js(self, script: str, *args: Any) -> Any:
        return await self._run(self.driver.execute_script, script, *args)

    async def find(self, css: str) -> WebElement:
        return await self._run(self.driver.find_element, By.CSS_SELECTOR, css)

    async def fill(self, css: str, value: str) -> None:
        element = await self.find(css)
        await self._run(element.clear)
        await self._run(element.send_keys, value)

    async def select(self, css: str, value: str) -> None:
        await self.js("const s = document.querySelector(arguments[0]); s.value = arguments[1];"
                      "if (s.value !== arguments[1]) throw new Error('no option ' + arguments[1]);",
                      css, value)

    async def click(self, css: str) -> None:
        element = await self.find(css)
        await self._run(element.click)

    async def submit(self, css: str) -> None:
        """Click a button that loads a new page, and return once the new page has loaded."""
        await self.js("window.__ivrOldPage = true")
        await self.click(css)
        await self.wait("return !window.__ivrOldPage && document.readyState === 'complete'")

    async def text(self, css: str) -> str:
        return str(await self.js("const e = document.querySelector(arguments[0]);"
                                 "return e ? e.textContent.trim() : null;", css))

    async def wait(self, condition: str, *args: Any, timeout: float = 15) -> Any:
        """Polls a JS expression (the body of a function) until it returns something truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.js(condition, *args)
            if value:
                return value
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for: {condition}")
            await asyncio.sleep(0.1)

    async def screenshot(self, name: str) -> Path:
        """The whole page, as tall as it is, into SCREENSHOTS."""
        height = int(await self.js("return document.documentElement.scrollHeight"))
        await self._run(self.driver.set_window_size, 1280, max(800, min(height + 140, 4000)))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self._run(self.driver.save_screenshot, str(path))
        await self._run(self.driver.set_window_size, 1280, 900)
        return path


def _chrome(profile: str, *extra: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1280,900",
                 f"--user-data-dir={profile}", *extra):
        options.add_argument(flag)
    try:
        return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    except Exception as exc:  # the browser tests must fail, never skip, without their browser
        pytest.fail(f"Chromium could not start ({CHROMIUM}, {CHROMEDRIVER}): {exc}",
                    pytrace=False)


@contextlib.contextmanager
def chromium(*extra: str) -> Iterator[webdriver.Chrome]:
    """A Chromium of its own (a fresh profile), with `extra` flags; quit on the way out."""
    profile = tempfile.mkdtemp(prefix="ivr-chromium-")
    driver = _chrome(profile, *extra)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def chrome() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


@pytest.fixture
async def browser(chrome: webdriver.Chrome, api: TestClient) -> AsyncIterator[Browser]:
    """The shared Chromium, signed out, on the web app without telephony (`api`)."""
    await asyncio.to_thread(chrome.delete_all_cookies)
    yield Browser(chrome, str(api.make_url("")))
    await asyncio.to_thread(chrome.delete_all_cookies)


@pytest.fixture
async def engine_browser(chrome: webdriver.Chrome, engine: Engine) -> AsyncIterator[Browser]:
    """The shared Chromium, signed out, on the whole engine (web app + telephony)."""
    await asyncio.to_thread(chrome.delete_all_cookies)
    yield Browser(chrome, engine.url)
    await asyncio.to_thread(chrome.delete_all_cookies)


@dataclass
class Dev:
    username: str
    password: str


@pytest.fixture
def make_developer(pool: asyncpg.Pool, settings: Settings) -> Callable[..., Any]:
    async def make() -> Dev:
        dev = Dev("con" + secrets.token_hex(4), secrets.token_urlsafe(12))
        await RecorderService(pool, settings.data_dir, open_signup=False).create_developer(
            dev.username, dev.password, by_operator=True)
        return dev

    return make


async def sign_in(b: Browser, dev: Dev, start: str = "/console/recorders") -> None:
    await b.get(start)
    assert b.path.startswith("/console/signin"), b.path
    await b.fill("#signin input[name=username]", dev.username)
    await b.fill("#signin input[name=password]", dev.password)
    await b.submit("#signin button[type=submit]")
    await b.wait("return !location.pathname.startsWith('/console/signin')")


async def new_list_with_recording(b: Browser, list_name: str, recording_name: str
                                  ) -> tuple[str, str]:
    """On a recorder's page: a list made there, with one recording; (list key, its key)."""
    await b.js("document.querySelector('#create-list').closest('details').open = true")
    await b.fill("#create-list [name=name]", list_name)
    await b.submit("#create-list button[type=submit]")
    await b.wait("return document.getElementById('list-key')")
    lk = await b.text("#list-key")
    await b.js("document.querySelector('#add-recording').closest('details').open = true")
    await b.fill("#add-recording [name=name]", recording_name)
    await b.submit("#add-recording button[type=submit]")
    await b.wait("return document.querySelector('#flash.ok')")
    key = await b.js("return document.querySelector('#recordings tbody tr').dataset.key")
    return lk, str(key)
