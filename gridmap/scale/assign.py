"""Batch assignment of partitioned GeoParquet points on a dask cluster: the decisions of ``gridmap assign``.

The city's reference tables and layers are read from the database once, on the client, and sent to
each worker once (``Client.scatter``): workers need no database. Each partition is then decided by
:func:`gridmap.routing.service.assign` — the same vectorised code as the one-machine batch path — so the
decisions are the same, row for row. Only the components of the classes the whole batch needs are
loaded, as :func:`gridmap.routing.service.assign` does for one frame (a first, cheap pass over the
``class`` columns finds them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy.orm import Session

from gridmap.crs import to_wgs84
from gridmap.routing.exceptions import BadReport
from gridmap.routing.layers import Layers, Reference, load_layers
from gridmap.routing.service import assign, classify, component_classes
from gridmap.scale.parquet import pandas_types, read_partitioned

#: the layers' frames (a Layers also caches what is worked out from them, which is not shipped)
LAYERS = ("grids", "roads", "components")
#: input columns the decision needs to classify a report (the rest only travels along)
CLASS_COLUMNS = ("class", "case_type", "component_id")

#: decision columns whose values are Python objects: given one type in every partition, so that a
#: partition where a column happens to be all empty does not write Arrow's null type (the partitions'
#: schemas must agree); the others are text or float already
TYPES = {"component_version": "Int64", "ambiguous": "boolean", "department": "string", "rule": "string",
         "time_limit_unit": "string", "ambiguity_reason": "string", "error": "string", "case_type": "string"}


@dataclass(frozen=True)
class Loaded:
    """What every partition is decided against: read once on the client, shipped once to each worker."""

    reference: Reference
    layers: Layers

    def without_features(self) -> Loaded:
        """The same tables with empty layers: what the decisions' columns are is known without deciding."""
        return Loaded(self.reference, Layers(*(getattr(self.layers, name).iloc[:0] for name in LAYERS)))

    def __getstate__(self) -> dict:
        # geometries as one WKB array per layer: pickling them one by one costs ten times as much
        frames = {name: getattr(self.layers, name) for name in LAYERS}
        frames = {name: frame.assign(geom=shapely.to_wkb(np.asarray(frame["geom"]))) for name, frame in frames.items()}
        return {"reference": self.reference, "frames": frames}

    def __setstate__(self, state: dict) -> None:
        frames = {name: frame.assign(geom=shapely.from_wkb(frame["geom"].to_numpy()))
                  for name, frame in state["frames"].items()}
        object.__setattr__(self, "reference", state["reference"])
        object.__setattr__(self, "layers", Layers(**frames))


@dataclass(frozen=True)
class AssignSummary:
    """What a distributed assignment did."""

    reports: int
    ambiguous: int
    rejected: int
    partitions: int
    target: Path


def assign_partitioned(*, session: Session, client, source: str | Path, target: str | Path,
                       crs: str | None = None) -> AssignSummary:
    """Assign the points of a partitioned GeoParquet dataset on a dask cluster; write the decisions likewise.

    Parameters
    ----------
    session
        Session on the city's database, read once here (not by the workers).
    client
        A ``distributed.Client`` (:func:`gridmap.scale.cluster.connect`).
    source
        Folder (or glob) of GeoParquet files of points with ``class`` and optional ``case_type``,
        ``accuracy``, ``component_id``, as for :func:`gridmap.assign`.
    target
        A new (or empty) folder to write, one GeoParquet file per input partition, in EPSG:4326.
    crs
        The points' coordinate system when not the files' own label (``gcj02``, ``bd09``, ``EPSG:nnnn`` …).

    Returns
    -------
    AssignSummary
        Counts of reports, ambiguous decisions and rejected rows (their reason is in ``error``).

    Notes
    -----
    The output has the columns of ``gridmap assign``; an input column of the same name as a decision
    column (``case_type``, ``component_id``) gives way to it (a picked component is in the evidence).
    """
    with pandas_types():  # partitions as gridmap.assign would see the files
        return _assign(session=session, client=client, source=source, target=Path(target), crs=crs)


def _assign(*, session: Session, client, source: str | Path, target: Path, crs: str | None) -> AssignSummary:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BadReport(f"{target}: exists and is not an empty folder (files of an earlier run would mix with "
                        "this one's): name a new folder")
    points = read_partitioned(source)
    if "class" not in points.columns:
        raise BadReport(f"{source}: no 'class' column (catalogue code of each report)")
    system = crs or (points.crs.to_string() if points.crs else None)
    if system is None:
        raise BadReport(f"{source}: the files name no coordinate system: give crs (wgs84, gcj02, bd09, "
                        "cgcs2000 or EPSG:nnnn)")
    try:
        to_wgs84(np.empty(0), np.empty(0), system)
    except ValueError as error:
        raise BadReport(str(error)) from None
    reference = Reference.current(session)
    classes = needed_classes(points, reference)
    loaded = Loaded(reference, load_layers(session=session, metric=reference.metric, class_codes=classes))
    meta = decide_partition(points._meta, loaded.without_features(), system)
    shipped = client.scatter(loaded, broadcast=True, hash=False)
    points.map_partitions(decide_partition, shipped, system, meta=meta).to_parquet(target, write_index=True)
    return summarise(target, points.npartitions)


def needed_classes(points, reference: Reference) -> list[str]:
    """The component classes of the whole batch: a pass over its classifying columns only, which keeps
    their distinct combinations (a report's kind depends on its class, given case type and whether it
    names a component, nothing else); these are classified here."""
    columns = [name for name in CLASS_COLUMNS if name in points.columns]
    kinds = points[columns].map_partitions(_kinds, meta=pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}))
    kinds = _kinds(kinds.compute())
    case_type, code, _, _ = classify(kinds, reference, len(kinds))
    return component_classes(case_type, code)


def _kinds(frame: pd.DataFrame) -> pd.DataFrame:
    """The distinct (class, case type, names a component) of the rows, as objects."""
    frame = frame.astype(object)
    if "component_id" in frame:
        frame["component_id"] = frame["component_id"].notna().map({True: "picked", False: None})
    return frame.drop_duplicates(ignore_index=True)


def decide_partition(frame: gpd.GeoDataFrame, loaded: Loaded, system: str) -> gpd.GeoDataFrame:
    """One partition's decisions (:func:`gridmap.routing.service.assign`), keeping the partition's index."""
    decided = assign(frame, crs=system, reference=loaded.reference, layers=loaded.layers)
    decided = decided.loc[:, ~decided.columns.duplicated(keep="last")]  # the decision's columns win
    decided.index = frame.index
    return decided.astype(TYPES)


def summarise(target: Path, partitions: int) -> AssignSummary:
    """Count what was written (reads back two columns only)."""
    written = read_partitioned(target, columns=["ambiguous", "error"]).compute()
    return AssignSummary(reports=len(written), ambiguous=int(written["ambiguous"].fillna(False).sum()),
                         rejected=int(written["error"].notna().sum()), partitions=partitions, target=target)
