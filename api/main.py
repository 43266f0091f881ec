"""App factory: ``create_app(settings)`` builds the engine once and mounts the routers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session, sessionmaker

from api.assets import mount_assets
from api.deps import get_user
from api.errors import install_error_handlers
from api.routers import auth, cases, catalogue, departments, kpi, layers, pages, reports, routing, site, tiles
from api.shortcut import Shortcut
from gridmap import __version__
from gridmap.config import Settings, load_settings
from gridmap.db.engine import HeldConnection, database_url, make_engine, make_session_factory, unit_of_work
from gridmap.routing.layers import refresh_city

log = logging.getLogger("uvicorn.error")  # uvicorn's own: its messages go to the server's output
#: how often a process checks whether the city's layers it holds are still current (one small query)
CITY_CHECK_SECONDS = 5.0
#: what a process logs when it has loaded them (bench/common.py waits for it)
CITY_LOADED = "the city's layers are in memory"


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(database_url(settings.database), connections=settings.api.concurrency)
    held = HeldConnection(engine)  # the reports' (api/routers/reports.py)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # routes run in worker threads; as many as there are pooled connections, so none waits for one
        to_thread.current_default_thread_limiter().total_tokens = settings.api.concurrency
        stop = asyncio.Event()
        keeper = asyncio.create_task(keep_city(app.state.session_factory, stop)) if settings.api.city_in_memory \
            else None
        yield
        stop.set()
        if keeper is not None:
            await keeper  # a load under way finishes first and gives its connection back: none is left open
        held.close()
        engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="gridmap",
        version=__version__,
        description="Grid management and field inspection for city management bureaus (数字城管).",
    )
    app.state.settings = settings
    app.state.held = held
    app.state.session_factory = make_session_factory(engine)
    install_error_handlers(app)
    # routes are matched in order, one by one: the reports (the busiest by far) are looked at first, and their
    # endpoint is reached straight from the top of the stack (api/shortcut.py)
    app.include_router(reports.router, prefix="/api/v1")
    app.add_middleware(Shortcut, method="POST", path="/api/v1/reports", endpoint=reports.report)
    app.include_router(site.router)
    app.include_router(pages.router)
    app.include_router(tiles.router)
    for module in (auth, cases, kpi):  # each route says who may use it
        app.include_router(module.router, prefix="/api/v1")
    # the city's reference data (layers, catalogue, departments and rules, where a report would go): for every
    # logged-in user, whatever the role (pages send their session cookie with a read, other clients the token)
    for module in (layers, catalogue, departments, routing):
        app.include_router(module.router, prefix="/api/v1", dependencies=[Depends(get_user)])
    mount_assets(app)

    return app


async def keep_city(sessions: sessionmaker[Session], stop: asyncio.Event) -> None:
    """Load the city's layers into this process at start and again whenever the database changes them (checked
    every few seconds, in a thread of its own: a load takes a second or two), until ``stop`` is set; meanwhile
    reports search the database, so none waits for a load or decides from layers that are no longer current."""
    alone = CapacityLimiter(1)
    while not stop.is_set():
        try:
            await to_thread.run_sync(_refresh_city, sessions, limiter=alone)
        except Exception as error:  # the database away for a moment: reports go on searching it meanwhile
            log.warning("could not load the city's layers (tried again in %g s): %s", CITY_CHECK_SECONDS, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CITY_CHECK_SECONDS)


def _refresh_city(sessions: sessionmaker[Session]) -> None:
    started = time.perf_counter()
    with unit_of_work(sessions) as session:
        loaded = refresh_city(session)
    if loaded:
        log.info("%s in %.1f s", CITY_LOADED, time.perf_counter() - started)
        # The city and all that was loaded before it live as long as the process: out of the garbage
        # collector's sight, a full collection no longer walks them (on a worker's heap 70–330 ms, during
        # which its event loop answers nobody; seen at start-up in bench/reports.py's server log).
        gc.freeze()


def app_from_environment() -> FastAPI:
    """Factory for uvicorn: settings from the GRIDMAP_* environment."""
    return create_app(load_settings())
