"""Browser test fixtures: the app on a live port, the system Chromium driven by Playwright, and a guard.

Register with ``pytest_plugins = ["tests.browser"]``. The guard aborts and records every request that
leaves the machine (a CDN, a tile server) and collects console and page errors; a test using the
``page`` fixture fails if its page did either. Tests that need their own context (geolocation, a
phone viewport) use ``new_context(chromium, ...)`` and call ``.check()`` on the guard it returns.
The browser is the system Chromium (Debian package ``chromium``), never a Playwright download.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page, Route, WebError, sync_playwright

from sqlalchemy import Engine, create_engine, pool

from api.main import create_app
from gridmap.config import CaseSettings, DatabaseSettings, Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
STARTUP_SECONDS = 30
TIMEOUT_MS = 10_000


def is_local(url: str) -> bool:
    """Whether the browser may fetch ``url``: the app itself, or data that is already in the page."""
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS


@dataclass
class Guard:
    """What the pages of one browser context asked of the outside world, and the errors they logged."""

    context: BrowserContext
    outside_requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Return the outside requests and errors so far, one line each."""
        for page in self.context.pages:  # a round trip delivers console events still in flight
            try:
                page.evaluate("0")
            except Error:
                pass
        return ([f"request outside the machine (blocked): {url}" for url in self.outside_requests]
                + [f"browser error: {error}" for error in self.errors])

    def check(self) -> None:
        """Raise ``AssertionError`` if any page reached outside the machine or logged an error."""
        if problems := self.problems():
            raise AssertionError(offence(problems))

    def _route(self, route: Route) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            self.outside_requests.append(route.request.url)
            route.abort("blockedbyclient")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url") or "page"
            self.errors.append(f"console: {message.text} ({where}:{message.location.get('lineNumber')})")

    def _page_error(self, error: WebError) -> None:
        self.errors.append(f"uncaught: {error.error}")


def offence(problems: list[str]) -> str:
    return "the page must work offline and without errors:\n  " + "\n  ".join(problems)


def guard(context: BrowserContext) -> Guard:
    """Install a guard on ``context``: block outside requests, collect errors, for all its pages."""
    watch = Guard(context)
    context.route("**/*", watch._route)
    context.on("console", watch._console)
    context.on("weberror", watch._page_error)
    return watch


def new_context(chromium: Browser, **kwargs) -> tuple[BrowserContext, Guard]:
    """Open a guarded browser context (``kwargs`` go to ``Browser.new_context``); the caller closes it."""
    context = chromium.new_context(**kwargs)
    context.set_default_timeout(TIMEOUT_MS)
    return context, guard(context)


@pytest.fixture(scope="session")
def live_db_url(db_url: str, demo_reports) -> Iterator[str]:
    """A private copy of the demo database for the live server: its pooled connections would otherwise keep
    the test database busy, and copies of it (``scratch_url``) could no longer be made."""
    from tests.conftest import clone_database, drop_database

    url = clone_database(db_url, "live")
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def live_engine(live_db_url: str) -> Iterator[Engine]:
    """The database behind the live server (for setting up users and cases, and checking what was filed)."""
    engine = create_engine(live_db_url, poolclass=pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve the app on (a copy of) the demo city from a background thread; yield its base URL. Tests that
    look into the database behind it use ``live_db_url``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))  # the port is held from here on, so no other process can take it
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    app = create_app(Settings(database=DatabaseSettings(database_url=live_db_url),
                              cases=CaseSettings(photo_dir=tmp_path_factory.mktemp("photos"))))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="live-server", daemon=True)
    thread.start()
    try:
        wait_until_healthy(base, thread)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def token(live_server: str, user) -> str:
    """A bearer token for ``user`` (a :class:`~gridmap.demo.users.DemoUser`) from the live server's log-in."""
    reply = httpx.post(f"{live_server}/api/v1/auth/token", data={"username": user.name, "password": user.password})
    return reply.raise_for_status().json()["access_token"]


def wait_until_healthy(base: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if not thread.is_alive():
            pytest.fail("the live server stopped while starting (see the log above)", pytrace=False)
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the live server did not answer {base}/api/v1/health within {STARTUP_SECONDS} s", pytrace=False)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """The system Chromium, headless, through Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs the system Chromium "
                    "(Debian package chromium); Playwright's own browser download is not used", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, chromium: Browser, live_server: str) -> Iterator[Page]:
    """A fresh page in its own guarded context; the test fails if the page reached outside or logged an error."""
    context, watch = new_context(chromium)
    request.node.stash[GUARD] = watch
    try:
        yield context.new_page()
    finally:
        context.close()


GUARD = pytest.StashKey[Guard]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    # Checked here rather than in the fixture's teardown so that a page's offence is a test failure.
    result = yield
    if GUARD in item.stash:
        if problems := item.stash[GUARD].problems():
            pytest.fail(offence(problems), pytrace=False)
    return result
