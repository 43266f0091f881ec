"""Vector tiles of the heavy layers for the dashboard map (Leaflet.VectorGrid), with HTTP caching.

Behind the log-in like everything else: the dashboard's session cookie authenticates these GETs.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import SessionDep, UserDep
from gridmap.maps.tiles import LAYERS, tile

router = APIRouter(tags=["tiles"])

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
# Short: a tile shows live data (a component just repaired); revalidating an unchanged tile costs a 304.
CACHE_CONTROL = "private, max-age=60, stale-while-revalidate=300"


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.pbf",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "the tile; an empty body where it holds nothing"},
               304: {"description": "the tile is unchanged since the ETag in If-None-Match"}},
    description="Layers: " + "; ".join(f"`{name}` ({layer.description}, from zoom {layer.min_zoom})"
                                       for name, layer in LAYERS.items()),
)
def get_tile(
    layer: str, z: int, x: int, y: int, session: SessionDep, user: UserDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Return one Mapbox vector tile of a layer."""
    return cached(tile(session=session, layer=layer, z=z, x=x, y=y), if_none_match)


def cached(content: bytes, if_none_match: str | None) -> Response:
    """The tile with a strong ETag (its hash), or 304 when the client already holds it."""
    etag = f'"{hashlib.blake2b(content, digest_size=16).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if if_none_match and (if_none_match.strip() == "*" or etag in (
            tag.strip().removeprefix("W/") for tag in if_none_match.split(","))):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=MEDIA_TYPE, headers=headers)
