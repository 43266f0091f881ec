"""App factory: ``create_app(settings)`` builds the engine once and mounts the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from api.assets import mount_assets
from api.errors import install_error_handlers
from api.routers import auth, cases, catalogue, departments, kpi, layers, pages, reports, routing, site, tiles
from gridmap import __version__
from gridmap.config import Settings, load_settings
from gridmap.db.engine import database_url, make_engine, make_session_factory


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(database_url(settings.database), connections=settings.api.concurrency)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # routes run in worker threads; as many as there are pooled connections, so none waits for one
        to_thread.current_default_thread_limiter().total_tokens = settings.api.concurrency
        yield
        engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="gridmap",
        version=__version__,
        description="Grid management and field inspection for city management bureaus (数字城管).",
    )
    app.state.settings = settings
    app.state.session_factory = make_session_factory(engine)
    install_error_handlers(app)
    # routes are matched in order, one by one: the reports (the busiest by far) are looked at first
    app.include_router(reports.router, prefix="/api/v1")
    app.include_router(site.router)
    app.include_router(pages.router)
    app.include_router(tiles.router)
    for module in (auth, layers, catalogue, departments, routing, cases, kpi):
        app.include_router(module.router, prefix="/api/v1")
    mount_assets(app)

    return app


def app_from_environment() -> FastAPI:
    """Factory for uvicorn: settings from the GRIDMAP_* environment."""
    return create_app(load_settings())
