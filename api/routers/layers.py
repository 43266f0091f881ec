"""Map layers as GeoJSON (small layers; the dashboard's heavy layers come as vector tiles later)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from api.deps import SessionDep
from gridmap.io.export import layer_geojson
from gridmap.territory.service import layer_counts

router = APIRouter(tags=["layers"])


@router.get("/layers")
def list_layers(session: SessionDep) -> dict[str, int]:
    """Count the rows of each layer."""
    return layer_counts(session=session)


@router.get("/layers/{name}", response_class=Response, responses={200: {"content": {"application/geo+json": {}}}})
def get_layer(
    name: str,
    session: SessionDep,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in EPSG:4326")] = None,
    limit: Annotated[int, Query(ge=1, le=50000)] = 5000,
) -> Response:
    """Return a layer as a GeoJSON FeatureCollection, optionally within a bounding box."""
    box = parse_bbox(bbox) if bbox else None
    body = layer_geojson(session=session, name=name, bbox=box, limit=limit)
    return Response(body, media_type="application/geo+json")


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        xmin, ymin, xmax, ymax = (float(part) for part in text.split(","))
    except ValueError:
        raise HTTPException(422, "bbox must be four numbers minx,miny,maxx,maxy (longitude/latitude)") from None
    if not (-180 <= xmin < xmax <= 180 and -90 <= ymin < ymax <= 90):
        raise HTTPException(422, "bbox must lie within longitude −180…180 and latitude −90…90 with min < max")
    return xmin, ymin, xmax, ymax
