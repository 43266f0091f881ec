"""What the dashboard page needs to know of the city before it asks the API anything: where the city is,
whose data it shows, and the short lists its filters and forms offer (districts, departments, classes,
the case loop's terms). Small, read once per page, sent to the page as JSON."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridmap.calendar.service import get_calendar
from gridmap.cases.service import NEEDS_REASON
from gridmap.cases.workflow import ACTIONS, STATUS_TERMS
from gridmap.catalogue.models import ComponentClass, EventClass
from gridmap.departments.models import Department
from gridmap.maps.tiles import LAYERS as TILE_LAYERS
from gridmap.roads.models import RoadGrade
from gridmap.territory.models import District, Street
from gridmap.territory.service import attributions, get_city

#: where the map opens when the city has no districts yet (Taipei Main Station)
FALLBACK_BOUNDS = (121.50, 25.03, 121.53, 25.06)


def dashboard_context(*, session: Session) -> dict:
    """Return the page's facts about the city as plain JSON-ready data.

    Parameters
    ----------
    session
        Open session; nothing is written.

    Returns
    -------
    dict
        ``city`` (name, name_en, timezone, bounds as ``[west, south, east, north]`` in WGS84 and the
        ``centre`` the map opens on, ``[lat, lon]``), ``attribution``
        (one line per data source), ``districts`` and ``streets`` (code, name), ``departments`` (code, name,
        name_en), ``classes`` (case_type, code, name, name_en, filing_condition), ``road_grades``, the case
        loop's ``actions`` and ``statuses`` (zh-CN and English terms), ``needs_reason`` and the tile layers'
        ``tile_min_zoom``.
    """
    city = get_city(session=session)
    return {
        "city": {"name": city.name if city else "gridmap", "name_en": city.name_en if city else None,
                 "timezone": get_calendar(session=session).timezone.key if city else "UTC",
                 "bounds": territory_bounds(session=session), "centre": busy_centre(session=session)},
        "attribution": attributions(session=session),
        "districts": _codes_and_names(session, District),
        "streets": _codes_and_names(session, Street),
        "departments": [{"code": code, "name": name, "name_en": name_en} for code, name, name_en in
                        session.execute(select(Department.code, Department.name, Department.name_en)
                                        .order_by(Department.code))],
        "classes": _classes(session),
        "road_grades": [{"code": code, "name": name, "name_en": name_en} for code, name, name_en in
                        session.execute(select(RoadGrade.code, RoadGrade.name, RoadGrade.name_en)
                                        .order_by(RoadGrade.rank))],
        "actions": {name: {"zh": a.term, "en": name.replace("_", " ")} for name, a in ACTIONS.items()},
        "statuses": {status: {"zh": zh, "en": en} for status, (zh, en) in STATUS_TERMS.items()},
        "needs_reason": sorted(NEEDS_REASON),
        "tile_min_zoom": {name: layer.min_zoom for name, layer in TILE_LAYERS.items()},
    }


def territory_bounds(*, session: Session) -> list[float]:
    """Return ``[west, south, east, north]`` of the districts (WGS84), or a fallback box when there are none."""
    box = session.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                               "FROM (SELECT ST_Extent(geom) AS e FROM district) AS extent")).one()
    return [round(v, 6) for v in box] if box[0] is not None else list(FALLBACK_BOUNDS)


def busy_centre(*, session: Session) -> list[float]:
    """Return ``[lat, lon]`` where the map opens: the median of the road segments' centres, i.e. the dense
    part of the city (a mountain district stretches the territory's box far from where the cases are);
    the centre of the territory when there are no roads."""
    lon, lat = session.execute(text(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_X(ST_Centroid(geom))), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_Y(ST_Centroid(geom))) FROM road")).one()
    if lon is None:
        west, south, east, north = territory_bounds(session=session)
        lon, lat = (west + east) / 2, (south + north) / 2
    return [round(lat, 6), round(lon, 6)]


def _codes_and_names(session: Session, model) -> list[dict]:
    rows = session.execute(select(model.code, model.name).order_by(model.code))
    return [{"code": code, "name": name} for code, name in rows]


def _classes(session: Session) -> list[dict]:
    classes = []
    for case_type, model in (("component", ComponentClass), ("event", EventClass)):
        rows = session.execute(select(model.code, model.name, model.name_en, model.filing_condition)
                               .where(func.length(model.code) == 4).order_by(model.code))
        classes += [{"case_type": case_type, "code": code, "name": name, "name_en": name_en,
                     "filing_condition": condition} for code, name, name_en, condition in rows]
    return classes
