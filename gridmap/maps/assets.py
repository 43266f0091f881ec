"""Point folium at the JS/CSS the app serves itself (``/static/vendor/<npm package>/…``), never at a CDN.

folium's map and plugins list their assets as CDN URLs (``default_js`` / ``default_css``, ``(name, url)``
pairs). Bureau intranets have no internet, so :func:`localise` rewrites every element of a map to the
npm packages installed from ``package.json`` — or drops an asset the dashboard does not use — and
fails loudly on any asset it does not know, so that a new plugin cannot slip a CDN back in.
"""

from __future__ import annotations

import re
from typing import Any

VENDOR = "/static/vendor"

#: folium's asset names → the local URL (an npm package of ``package.json``), or None when the dashboard
#: does not need it: jQuery, Bootstrap, Font Awesome and awesome-markers serve folium's Icon markers and
#: lazy popups, which the dashboard does not use (its markers are circle markers, its popups built in JS)
LOCAL_ASSETS: dict[str, str | None] = {
    "leaflet": f"{VENDOR}/leaflet/dist/leaflet.js",
    "leaflet_css": f"{VENDOR}/leaflet/dist/leaflet.css",
    "vectorGrid": f"{VENDOR}/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
    "leaflet-heat.js": f"{VENDOR}/leaflet.heat/dist/leaflet-heat.js",
    "jquery": None,
    "bootstrap": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers": None,
    "awesome_markers_css": None,
    "awesome_markers_font_css": None,
    "awesome_rotate_css": None,
}

_REMOTE = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


class RemoteAsset(RuntimeError):
    """A map element still loads something from the internet."""


def require_folium() -> Any:
    """Import folium, or say how to install it (it is an optional dependency of the library)."""
    try:
        import folium
    except ImportError as missing:  # pragma: no cover - depends on the environment
        raise ImportError("the dashboard map needs folium: pip install 'gridmap[maps]' "
                          "(or `make setup`, which installs it)") from missing
    return folium


def localise(element: Any) -> Any:
    """Rewrite the JS/CSS assets of ``element`` and all its children to local URLs; return ``element``.

    Each element gets its own lists (folium's are class attributes shared by every map in the process).
    Raises :class:`RemoteAsset` for an asset of unknown name that is not already local.
    """
    for item in _walk(element):
        for kind in ("default_js", "default_css"):
            if hasattr(item, kind):
                setattr(item, kind, _local_pairs(item, getattr(item, kind)))
    return element


def _walk(element: Any):
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _walk(child)


def _local_pairs(item: Any, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    local = []
    for name, url in pairs:
        if name in LOCAL_ASSETS:
            if LOCAL_ASSETS[name] is not None:
                local.append((name, LOCAL_ASSETS[name]))
        elif url.startswith("/") and not url.startswith("//"):
            local.append((name, url))
        else:
            raise RemoteAsset(f"{type(item).__name__} loads {name!r} from {url}: add the npm package to "
                              "package.json and api/assets.py VENDORED, and its local URL to LOCAL_ASSETS")
    return local


def check_local(html: str) -> str:
    """Return ``html`` if no <script src> or <link href> in it leaves the server; raise :class:`RemoteAsset`."""
    if match := _REMOTE.search(html):
        start = max(0, match.start() - 60)
        raise RemoteAsset(f"the page still loads a remote asset: …{html[start:match.end() + 80]}…")
    return html
