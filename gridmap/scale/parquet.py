"""Partitioned GeoParquet: a folder of GeoParquet files that dask reads as one frame, a file per partition.

Points to assign are any such folder (written by :func:`write_partitioned`, dask-geopandas, GDAL or
another tool). The KPI facts are written by month (``month=2026-10/`` folders, Hive style) so that a
period's KPIs read only the months it touches (:mod:`gridmap.scale.kpi`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np

from gridmap.scale import require

#: rows per partition when a GeoDataFrame is written for dask: big enough that a partition's fixed
#: cost (the routing layers' indexes are built once per partition) is small beside its decisions
ROWS_PER_PARTITION = 250_000


class NotPartitioned(ValueError):
    """A folder that holds no (Geo)Parquet files, or files dask cannot read as one frame."""


@contextmanager
def pandas_types() -> Iterator[None]:
    """Keep the files' own pandas types in dask's partitions: text as pandas reads it, not the Arrow-backed
    text dask turns it into by default (whose missing value is ``pd.NA`` and whose comparisons give Arrow
    booleans), so that the functions called on partitions see what :func:`geopandas.read_parquet` gives."""
    dask = require("dask")
    with dask.config.set({"dataframe.convert-string": False}):
        yield


def write_partitioned(frame: gpd.GeoDataFrame, directory: str | Path, *, partitions: int | None = None) -> Path:
    """Write ``frame`` as a folder of GeoParquet files ``part.N.parquet``, ``partitions`` of them (by
    default one per :data:`ROWS_PER_PARTITION` rows), keeping its index; return the folder.

    The frame is in this process already: writing it needs no cluster."""
    partitions = partitions or max(1, -(-len(frame) // ROWS_PER_PARTITION))
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(frame), partitions + 1).astype(int)
    for number, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        frame.iloc[start:stop].to_parquet(target / f"part.{number}.parquet", index=True)
    return target


def read_partitioned(source: str | Path, *, columns: list[str] | None = None, filters=None):
    """A folder (or glob) of GeoParquet files as a ``dask_geopandas.GeoDataFrame``.

    Parameters
    ----------
    source
        The folder, or a glob such as ``reports/*.parquet``.
    columns
        Read only these columns (the others are never loaded).
    filters
        pyarrow filters on Hive partition columns, e.g. ``[("month", "in", ["2026-10"])]``.

    Raises
    ------
    NotPartitioned
        ``source`` holds no Parquet files, or not GeoParquet ones.
    """
    dask_geopandas = require("dask_geopandas")
    path = Path(source)
    if not any(ch in str(source) for ch in "*?[") and not (path.is_dir() and any(path.rglob("*.parquet"))):
        raise NotPartitioned(f"{source}: not a folder of Parquet files")
    try:
        return dask_geopandas.read_parquet(str(source), columns=columns, filters=filters)
    except (ValueError, OSError, TypeError) as error:
        raise NotPartitioned(f"{source}: cannot be read as partitioned GeoParquet ({error})") from None


# ---- KPI facts by month -------------------------------------------------------------------------------

#: the export's description, beside the ``cases/`` and ``events/`` folders
MANIFEST = "facts.json"
FACT_KINDS = ("cases", "events")


def write_month(frame: gpd.GeoDataFrame, directory: str | Path, *, kind: str, month: str) -> Path:
    """Write one month of facts (``kind`` = ``cases`` or ``events``) to ``DIR/kind/month=YYYY-MM/part-0.parquet``.

    A text or flag column that happens to be empty all month is written with its type (text, or boolean
    for the facts' flags), so that every month's file has the same schema."""
    from gridmap.evaluation.facts import TYPES

    target = Path(directory) / kind / f"month={month}"
    target.mkdir(parents=True, exist_ok=True)
    frame = frame.copy()
    for name in frame.columns[(frame.dtypes == object).to_numpy()]:
        if name != frame.geometry.name and frame[name].isna().all():
            frame[name] = frame[name].astype("boolean" if str(TYPES.get(name)) == "bool" else "string")
    path = target / "part-0.parquet"
    frame.to_parquet(path, index=False)
    return path


def month_files(directory: str | Path, *, kind: str, months: list[str]) -> list[Path]:
    """The files of ``kind`` for ``months`` that the export holds (a month without facts has none)."""
    base = Path(directory) / kind
    return sorted(path for month in months for path in (base / f"month={month}").glob("*.parquet"))
