"""Generated inspector reports for the demo history: each district's demo inspector patrols its duty
grids in office hours and reports the common event and component classes — at random points of their
unit grids (busier grids of area class A more often, a few hot grids far more often, so that hot spots
show), or at a real component of the demo city for the classes it has (bus shelters, traffic signals,
garbage collection points)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.demo.history_plan import Draw, Script, draw_loop, history_window, rng_for, working_moments
from gridmap.demo.users import Staff

#: class (case type first: 1 component, 2 event) → how often inspectors report it
CLASS_WEIGHTS = {
    "20102": 14, "20104": 8, "20201": 10, "20504": 8, "20505": 6, "20506": 5, "20507": 7, "20522": 6, "20521": 5,
    "20103": 3, "20106": 2, "20108": 3, "20302": 2, "20406": 1, "20511": 2,
    "10118": 5, "10305": 4, "10209": 3, "10211": 2, "10103": 2, "10104": 2, "10402": 3, "10213": 1,
    "10203": 3, "10210": 2, "10320": 3,
    # slow ones, weeks to deal with: they make the stock of open cases
    "20101": 3, "20110": 1, "20107": 2, "20202": 3, "10121": 1, "10407": 1,
}
#: classes the demo city has components of: reported at one of them (a few metres off), naming it
AT_COMPONENT = {"10203", "10210", "10320"}
#: classes an inspector often fixes on the spot (自行处置), and how often
SELF_FIXABLE, SELF_FIX_SHARE = {"20201", "20506", "20507", "20521", "20511"}, 0.3
AREA_WEIGHT = {"A": 4.0, "B": 2.0, "C": 0.25}
HOT_GRIDS, HOT_SHARE = 8, 0.25
#: patrols grow busier: the report rate rises linearly by this share from the first day to the last
GROWTH = 0.6
METRES = 1 / 111_320  # degrees of latitude per metre

GRIDS = text("""
SELECT g.code, g.area_class, dg.code AS duty_grid, ST_AsBinary(g.geom) AS wkb
FROM unit_grid g JOIN duty_grid_member m ON m.unit_grid_code = g.code JOIN duty_grid dg ON dg.id = m.duty_grid_id
WHERE g.valid_to IS NULL ORDER BY g.code""")
COMPONENTS = text("""
SELECT DISTINCT ON (p.code) p.code, p.class_code, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, dg.code AS duty_grid
FROM component p JOIN unit_grid g ON g.valid_to IS NULL AND ST_Intersects(g.geom, p.geom)
JOIN duty_grid_member m ON m.unit_grid_code = g.code JOIN duty_grid dg ON dg.id = m.duty_grid_id
WHERE p.class_code = ANY(:classes) AND p.status <> '移除' ORDER BY p.code, g.code""")
CLASS_NAMES = text("SELECT '1' || code, name FROM component_class UNION ALL SELECT '2' || code, name FROM event_class")


def plan_patrols(*, session: Session, seed: int, count: int, calendar, start: date, end: date,
                 staff: Staff) -> list[Script]:
    """``count`` inspector reports spread over the working time from ``start`` to ``end``, each with its script.

    Parameters
    ----------
    session
        Reads the unit grids, duty grids, components and class names (writes nothing).
    seed
        The same seed (and city) gives the same reports.
    count, start, end
        How many reports, over which days (local dates, both included).
    calendar
        The working calendar: inspectors patrol in office hours on working days.
    staff
        Whose duty grids are where (:func:`gridmap.demo.users.demo_staff`).
    """
    if count <= 0:
        return []
    rng = rng_for(seed, "patrol", 0)
    moments = working_moments(calendar, *history_window(start, end, calendar.timezone), count, rng, growth=GROWTH)
    codes = np.array(sorted(CLASS_WEIGHTS))
    weights = np.array([CLASS_WEIGHTS[c] for c in codes], dtype=float)
    classes = rng.choice(codes, size=count, p=weights / weights.sum())
    places = _places(session, classes, rng)
    names = dict(session.execute(CLASS_NAMES).all())
    scripts = []
    for index, (at, place) in enumerate(zip(moments, places.itertuples(index=False))):
        scripts.append(_script(seed, index, at, place, names, staff))
    return scripts


def _places(session: Session, classes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Where each report is made: lon, lat, duty grid and (at a component) its ID."""
    grids = pd.DataFrame(session.execute(GRIDS).mappings().all())
    polygons = shapely.from_wkb(grids["wkb"].to_numpy())
    weight = grids["area_class"].map(AREA_WEIGHT).to_numpy(dtype=float)
    hot = rng.choice(np.flatnonzero(grids["area_class"].to_numpy() == "A"), HOT_GRIDS, replace=False)
    n = len(classes)
    chosen = rng.choice(len(grids), size=n, p=weight / weight.sum())
    chosen = np.where(rng.random(n) < HOT_SHARE, rng.choice(hot, size=n), chosen)
    lon, lat = _random_points(polygons[chosen], rng)
    places = pd.DataFrame({"cls": classes, "lon": lon, "lat": lat, "duty_grid": grids["duty_grid"].to_numpy()[chosen],
                           "component_id": None})
    at_component = np.flatnonzero(np.isin(classes, sorted(AT_COMPONENT)))
    if len(at_component):
        _at_components(session, places, at_component, rng)
    places["accuracy"] = np.round(rng.uniform(3, 15, n), 1)
    return places


def _at_components(session: Session, places: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator) -> None:
    """Move the reports ``rows`` of places to a random component of their class, a couple of metres off."""
    components = pd.DataFrame(session.execute(COMPONENTS, {"classes": sorted(c[1:] for c in AT_COMPONENT)})
                              .mappings().all())
    for cls in sorted(AT_COMPONENT):
        these = rows[places["cls"].to_numpy()[rows] == cls]
        pool = components[components["class_code"] == cls[1:]].reset_index(drop=True)
        picked = pool.iloc[rng.choice(len(pool), size=len(these))]
        places.loc[these, "component_id"] = picked["code"].to_numpy()
        places.loc[these, "duty_grid"] = picked["duty_grid"].to_numpy()
        # 2 m of GPS scatter; a degree of longitude is cos(25°) ≈ 0.9 of a degree of latitude in Taipei
        places.loc[these, "lon"] = picked["lon"].to_numpy() + rng.normal(0, 2, len(these)) * METRES / 0.9
        places.loc[these, "lat"] = picked["lat"].to_numpy() + rng.normal(0, 2, len(these)) * METRES


def _random_points(polygons: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One uniformly random point inside each polygon (rejection sampling in rounds, all polygons at once)."""
    x, y = np.full(len(polygons), np.nan), np.full(len(polygons), np.nan)
    bounds = shapely.bounds(polygons)
    todo = np.arange(len(polygons))
    while len(todo):
        px = rng.uniform(bounds[todo, 0], bounds[todo, 2])
        py = rng.uniform(bounds[todo, 1], bounds[todo, 3])
        inside = shapely.contains_xy(polygons[todo], px, py)
        x[todo[inside]], y[todo[inside]] = px[inside], py[inside]
        todo = todo[~inside]
    return x, y


def _script(seed: int, index: int, at, place, names: dict[str, str], staff: Staff) -> Script:
    d = Draw(rng_for(seed, "inspector", index))
    name = names.get(place.cls, place.cls)
    where = f"（部件 {place.component_id}）" if place.component_id else ""
    self_fixed = place.cls in SELF_FIXABLE and d.chance(SELF_FIX_SHARE)
    script = Script(f"patrol-{seed}-{index:05d}", "inspector", at, float(place.lon), float(place.lat), place.cls,
                    f"巡查发现：{name}{where}" + ("，已现场处置" if self_fixed else ""),
                    staff.inspector_of_duty_grid[place.duty_grid], accuracy=float(place.accuracy),
                    component_id=place.component_id, self_disposed=self_fixed,
                    captured_at=at - timedelta(seconds=d.rng.uniform(30, 180)))
    if self_fixed:
        return script
    if d.chance(0.03):
        d.stage("reject", d.acceptor, "reported", reason="上报不实：照片与描述不符")
    elif d.chance(0.005):
        d.stage("void", d.acceptor, "reported", reason="误报，监督员撤回")
    else:
        d.stage("accept", d.acceptor, "reported")
        draw_loop(d)
    script.steps = d.steps
    return script

