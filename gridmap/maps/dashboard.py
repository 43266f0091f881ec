"""The supervisor's map dashboard 指挥中心 (folium): the city's grids, roads, components and cases on one map.

The page is folium's Leaflet map with the layers, the layer control and the legend, plus the panels around
it (headline, filters, case table); ``api/static/dashboard.js`` fills and refreshes it from the API.
Heavy layers — unit grids, duty grids, roads, components — are vector tiles (``/tiles/{layer}/{z}/{x}/{y}.pbf``,
folium's VectorGridProtobuf); districts and communities are GeoJSON from ``/api/v1/layers``; cases come
from ``/api/v1/cases.geojson`` with the filters, polled for changes. Nothing is loaded from a CDN: every
asset is rewritten to the npm packages the app serves (:mod:`gridmap.maps.assets`).

folium is imported only when a page is built (``pip install 'gridmap[maps]'``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from gridmap import __version__
from gridmap.config import MapSettings
from gridmap.maps.assets import check_local, localise, require_folium
from gridmap.maps.context import dashboard_context
from gridmap.maps.page import action_dialog, case_table, credits, filters, legend, login_form, login_page, t, top_bar
from gridmap.maps.style import palette

SCRIPT = f"/static/app/dashboard.js?v={__version__}"
STYLESHEET = f"/static/app/dashboard.css?v={__version__}"
TILE_URL = "/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf"
START_ZOOM = 13  # unit grids are tiled from zoom 12; 13 shows most of a city like Taipei on a desktop screen
MIN_ZOOM, MAX_ZOOM = 9, 20

#: the map's layers in drawing order: key, zh-CN and English name, shown when the page opens
LAYERS = [
    ("district", "区界", "Districts", True),
    ("street", "街道界", "Streets", False),
    ("community", "社区界", "Communities", False),
    ("unit_grid", "单元网格", "Unit grids", True),
    ("duty_grid", "责任网格", "Duty grids", False),
    ("road", "道路（按等级）", "Roads by grade", True),
    ("component", "部件", "Components", False),
    ("heat", "案件热力图", "Case heat map", False),
    ("cases", "案件（灯色）", "Cases by light", True),
]
BOUNDARY_LAYERS = ("district", "street", "community")
TILE_LAYERS = ("unit_grid", "duty_grid", "road", "component")


def home_page(*, session: Session, settings: MapSettings, logged_in: bool) -> str:
    """Return the HTML of ``/``: the dashboard for a logged-in browser, else the log-in page.

    Parameters
    ----------
    session
        Open session; nothing is written.
    settings
        The base map (``GRIDMAP_TILES``, ``GRIDMAP_TILES_ATTRIBUTION``).
    logged_in
        Whether the request carries a valid session (cookie); the data itself is fetched by the page,
        with the user's rights.
    """
    context = dashboard_context(session=session)
    if not logged_in:
        return login_page(context, STYLESHEET, SCRIPT)
    return dashboard_html(context, tiles=settings.tiles, tiles_attribution=settings.tiles_attribution)


def dashboard_html(context: dict, *, tiles: str | None = None, tiles_attribution: str | None = None) -> str:
    """Return the dashboard page for ``context`` (:func:`~gridmap.maps.context.dashboard_context`); built
    once per distinct context and base map, since it holds no user's data."""
    return _render(json.dumps([context, tiles, tiles_attribution], sort_keys=True, ensure_ascii=False))


@lru_cache(maxsize=4)
def _render(key: str) -> str:
    context, tiles, tiles_attribution = json.loads(key)
    return render_dashboard(context, tiles=tiles, tiles_attribution=tiles_attribution)


def render_dashboard(context: dict, *, tiles: str | None = None, tiles_attribution: str | None = None) -> str:
    """Build the dashboard page: the folium map and the panels around it, as one HTML document.

    Raises :class:`~gridmap.maps.assets.RemoteAsset` if any script or stylesheet would come from outside.
    """
    folium = require_folium()
    m = dashboard_map(context, tiles=tiles, tiles_attribution=tiles_attribution)
    figure = m.get_root()
    figure.title = f"数字城管指挥中心 · {context['city']['name']}"
    figure.header.add_child(folium.Element('<link rel="icon" href="data:,">'), name="no_favicon")
    figure.html.add_child(folium.Element(
        top_bar(context) + '<aside id="gm-side">' + filters(context) + case_table() + "</aside>"
        + credits(context) + action_dialog() + login_form(visible=False)))
    html = figure.render().replace("<html>", '<html lang="zh-CN">', 1)
    return check_local(html.replace("<body>", '<body data-page="dashboard">', 1))


def dashboard_map(context: dict, *, tiles: str | None = None, tiles_attribution: str | None = None):
    """Return the dashboard's ``folium.Map`` (base map if ``tiles``, overlays, layer control, legend).

    The overlays are empty when the page opens; the page's script fills them from the API.
    """
    folium = require_folium()
    from folium.plugins import HeatMap, VectorGridProtobuf

    from gridmap.maps.elements import DashboardConfig, DashboardStart, Legend, ScriptLayer

    m = folium.Map(location=context["city"]["centre"], zoom_start=START_ZOOM, tiles=None,
                   min_zoom=MIN_ZOOM, max_zoom=MAX_ZOOM, control_scale=True)
    config = {**context, "palette": palette(), "tiles": {key: TILE_URL.format(layer=key) for key in TILE_LAYERS}}
    DashboardConfig(config, script=SCRIPT, stylesheet=STYLESHEET).add_to(m)
    if tiles:
        folium.TileLayer(tiles, attr=tiles_attribution or urlsplit(tiles).hostname, name=t("底图", "Base map"),
                         max_zoom=MAX_ZOOM, max_native_zoom=19).add_to(m)
    layers = {}
    for key, zh, en, show in LAYERS:
        name = t(zh, en, class_=f"layer-{key}")
        if key == "street" and not context["streets"]:
            continue  # a city without a street level (Taipei) has no street boundaries to draw
        if key in BOUNDARY_LAYERS:
            layer = ScriptLayer(f"GridmapDashboard.boundaryLayer({key!r})", name=name, show=show)
        elif key in TILE_LAYERS:
            layer = VectorGridProtobuf(TILE_URL.format(layer=key), name=name, show=show,
                                       options=f"GridmapDashboard.vectorOptions({key!r})")
        elif key == "heat":
            # max_zoom is also the layer control's upper limit: the page scales the intensity per zoom instead
            layer = HeatMap([], name=name, show=show, radius=18, blur=16, min_opacity=0.3, max_zoom=MAX_ZOOM)
        else:
            layer = ScriptLayer("GridmapDashboard.caseLayer()", name=name, show=show)
        layers[key] = layer.add_to(m)
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    Legend(legend(context)).add_to(m)
    DashboardStart(layers).add_to(m)
    return localise(m)
