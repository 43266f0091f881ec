"""Front-end assets served by the app itself (bureau intranets have no CDN).

Third-party packages come from the npm registry at set-up (``package.json`` → ``node_modules/``)
and are served read-only at ``/static/vendor/<package>/...``; only the packages in ``VENDORED``
are exposed, nothing else in ``node_modules``. The app's own files in ``api/static/`` are served
at ``/static/app/...``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

log = logging.getLogger(__name__)

CHECKOUT = Path(__file__).resolve().parents[1]
APP_STATIC = Path(__file__).resolve().parent / "static"
#: npm packages the pages load (package.json); the dashboard's folium map is pointed at them by gridmap.maps.assets
VENDORED = ("leaflet", "leaflet.vectorgrid", "leaflet.heat")
# A week, not "immutable": the URLs carry no version, so an upgraded package must show up
# eventually; ETag/Last-Modified make the revalidation after that cheap.
VENDOR_CACHE = "public, max-age=604800"


class VendorFiles(StaticFiles):
    """StaticFiles with a long cache header (package files change only when package-lock.json does)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = VENDOR_CACHE
        return response


def mount_assets(app: FastAPI, root: Path = CHECKOUT, packages: tuple[str, ...] = VENDORED) -> None:
    """Mount ``<root>/node_modules/<package>`` for each allowed package, and ``api/static``."""
    node_modules = root / "node_modules"
    missing = [name for name in packages if not (node_modules / name / "package.json").is_file()]
    if missing:
        log.warning("front-end packages not installed in %s: %s; pages that need them will not work. "
                    "Run `make` (or `npm ci`) in %s.", node_modules, ", ".join(missing), root)
    for name in packages:
        if name not in missing:
            app.mount(f"/static/vendor/{name}", VendorFiles(directory=node_modules / name), name=f"vendor-{name}")
    app.mount("/static/app", StaticFiles(directory=APP_STATIC), name="app-static")
