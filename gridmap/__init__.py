"""gridmap: grid management and field inspection for city management bureaus (数字城管).

The package is the domain library; the FastAPI app in ``api/`` and the ``gridmap`` CLI are thin
layers over the functions found here, one subpackage per domain concept. The functions below are the
analyst's shortcuts: each takes an optional ``session`` and otherwise opens one on the configured
database (``GRIDMAP_DATABASE_URL`` or the embedded cluster) for the call.
"""

__version__ = "0.1.0"


def _with_session(function, session, /, **arguments):
    """Call ``function(session=…, **arguments)`` on ``session``, or on a session of its own (read, then closed)."""
    if session is not None:
        return function(session=session, **arguments)
    from gridmap.config import load_settings
    from gridmap.db.engine import database_url, make_engine, make_session_factory, unit_of_work

    engine = make_engine(database_url(load_settings().database))
    try:
        with unit_of_work(make_session_factory(engine)) as own:
            return function(session=own, **arguments)
    finally:
        engine.dispose()


def assign(frame, *, session=None, crs: str | None = None):
    """Assign reports in bulk: see :func:`gridmap.routing.service.assign`."""
    from gridmap.routing.service import assign as assign_frame

    return _with_session(lambda session, **kw: assign_frame(frame, session=session, **kw), session, crs=crs)


def read_layer(name: str, *, session=None, crs=None, **filters):
    """Read a layer as a GeoDataFrame in ``crs`` (EPSG:4326 by default): see :func:`gridmap.io.export.read_layer`.

    ``name`` is ``district``, ``street``, ``community``, ``unit_grid``, ``duty_grid``, ``road``,
    ``component``, ``department``, ``cases`` or ``case_events``; filters ``where=``, ``district=``,
    ``bbox=`` (lon/lat unless ``bbox_crs=``) and, for cases, ``period=``, ``status=``, ``department=``,
    ``class_code=``, ``source=`` … Example: ``gridmap.read_layer("unit_grid", crs=3826, district="中正區")``.
    """
    from gridmap.io.export import read_layer as read

    return _with_session(read, session, name=name, crs=crs, **filters)


def read_cases(*, session=None, crs=None, period=None, **filters):
    """Read cases with readable columns (class and department names, status in Chinese and English,
    on-time flags, working hours of disposal): see :func:`gridmap.io.cases.read_cases`.

    Example: ``gridmap.read_cases(period="2026-10", status="closed", class_code="20102")``.
    """
    from gridmap.io.cases import read_cases as read

    return _with_session(read, session, crs=crs, period=period, **filters)


def hotspots(*, period, session=None, **options):
    """Hot spots per unit grid for ``period``: case counts, density, recurrence and Getis-Ord Gi*: see
    :func:`gridmap.evaluation.hotspots.hotspots`.

    Example: ``gridmap.hotspots(period="2026-10", class_code="20102")``.
    """
    from gridmap.evaluation.hotspots import hotspots as find

    return _with_session(find, session, period=period, **options)


def kpi(*, period, by, session=None, **options):
    """KPIs 考核指标 of every subject ``by`` (``district``, ``department``, ``inspector`` …) for ``period``,
    with composite scores and A–E bands: see :func:`gridmap.evaluation.service.kpi` and docs/kpi.md.

    Example: ``gridmap.kpi(period="2026-10", by="department")``.
    """
    from gridmap.evaluation.service import kpi as table

    return _with_session(table, session, period=period, by=by, **options)
