"""The distributed path: batch assignment and KPI aggregation over partitioned GeoParquet on dask.

For work beyond one machine (national, multi-year): the same decisions and the same KPI definitions as
the PostGIS path, run partition by partition on a dask cluster — a local one by default, or a real one
named by its scheduler's address (:mod:`gridmap.scale.cluster`). The code here only moves data: the
decision is :func:`gridmap.routing.service.assign`, the KPI arithmetic :mod:`gridmap.evaluation.measures`.

dask-geopandas and distributed are optional (``pip install 'gridmap[scale]'``) and imported only when
a function needs them (:func:`require`).
"""

from __future__ import annotations

from types import ModuleType

INSTALL = "pip install 'gridmap[scale]'"


def require(module: str) -> ModuleType:
    """Import ``module`` (dask, dask_geopandas, distributed), or say how to install the scale extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as missing:
        raise ImportError(f"gridmap.scale needs {module.split('.')[0].replace('_', '-')}: {INSTALL} "
                          "(or `make setup`, which installs it)") from missing
