"""gridmap: grid management and field inspection for city management bureaus (数字城管).

The package is the domain library; the FastAPI app in ``api/`` and the ``gridmap`` CLI are thin
layers over the functions found here, one subpackage per domain concept.
"""

__version__ = "0.1.0"


def assign(frame, *, session=None, crs: str | None = None):
    """Assign reports in bulk: see :func:`gridmap.routing.service.assign`.

    Without ``session``, opens one on the configured database (``GRIDMAP_DATABASE_URL`` or the embedded
    cluster) for the call.
    """
    from gridmap.routing.service import assign as assign_frame

    if session is not None:
        return assign_frame(frame, session=session, crs=crs)
    from gridmap.config import load_settings
    from gridmap.db.engine import database_url, make_engine, make_session_factory, unit_of_work

    engine = make_engine(database_url(load_settings().database))
    try:
        with unit_of_work(make_session_factory(engine)) as own:
            return assign_frame(frame, session=own, crs=crs)
    finally:
        engine.dispose()
