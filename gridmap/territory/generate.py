"""Generate unit grids (万米单元网格) that follow the streets.

How a community is cut, in its metric CRS:

1. **Blocks.** The community boundary and every road centreline (and barrier line: river, rail, wall)
   inside it are noded and polygonized; the faces inside the community are its blocks. A road along the
   community boundary adds nothing; a cul-de-sac that divides nothing leaves its block whole; a hole
   in the community yields no block.
2. **Cells.** A block up to 1.5 × the target area is one cell. A larger block is cut by a grid aligned
   with its minimum rotated rectangle, with cells as near square and as near the target as the
   rectangle allows, so cells are compact and their edges run with the block.
3. **Slivers.** A piece smaller than ``min_fraction`` × target is merged into the neighbour with which
   it shares the longest edge, preferring a neighbour in its own block, so roads stay on cell edges.
   A road strip — a block between roads narrower than ``strip_width`` on average, such as the median
   of a dual carriageway — stays a cell of its own down to ``strip_min_fraction`` × target, since
   merging it into either side would put a carriageway inside a cell.
4. **Open land.** A block larger than ``open_land_area`` (1 km²) with no road on or in it — mountain,
   forest, river bank — is cut into cells of ``open_land_factor`` × target (4 ha by default): there is
   nothing built to count at 1 ha. The 3-digit sequence caps a community at 999 cells; a community
   that would need more gets a proportionally larger target (reported).

Everything is deterministic: the same inputs give the same cells in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

MAX_CELLS = 999


@dataclass(frozen=True)
class GridOptions:
    target_area: float = 10_000.0  # m²
    min_fraction: float = 0.4  # pieces below this share of the target are merged into a neighbour
    open_land_area: float = 1_000_000.0  # m²: a roadless block larger than this is open land
    open_land_factor: float = 4.0
    max_cells: int = MAX_CELLS
    strip_width: float = 30.0  # m: a block between roads narrower than this on average is a road strip
    strip_min_fraction: float = 0.05  # road strips are merged only below this share of the target
    snap_tolerance: float = 3.0  # m: road vertices this close to the community boundary are snapped onto it


def community_blocks(
    community: shapely.Geometry, lines: np.ndarray, snap: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return the blocks of one community and, for each, whether a road bounds or crosses it."""
    # official boundaries and surveyed centrelines disagree by metres: a road that runs along the
    # boundary is snapped onto it, so its wobble does not cut slivers off the community
    lines = shapely.snap(lines, shapely.boundary(community), snap) if len(lines) and snap else lines
    inside = shapely.intersection(lines, community) if len(lines) else np.array([], dtype=object)
    inside = inside[~shapely.is_empty(inside)]
    inside = shapely.get_parts(inside)
    inside = inside[shapely.get_dimensions(inside) == 1]
    noded = shapely.union_all(np.concatenate([[shapely.boundary(community)], inside]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.contains_properly(community, shapely.point_on_surface(faces))]
    if len(inside) == 0:
        return faces, np.zeros(len(faces), dtype=bool)
    road_union = shapely.union_all(inside)
    touching = shapely.length(shapely.intersection(shapely.boundary(faces), road_union)) > 1.0
    return faces, touching


def subdivide(blocks: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut each block by a grid aligned with its rotated rectangle; return pieces and their block index."""
    big = np.flatnonzero(shapely.area(blocks) > 1.5 * targets)
    pieces, owner = [blocks], [np.arange(len(blocks))]
    if len(big):
        keep = np.ones(len(blocks), dtype=bool)
        keep[big] = False
        pieces, owner = [blocks[keep]], [np.flatnonzero(keep)]
        rects = shapely.oriented_envelope(blocks[big])
        ring = shapely.get_coordinates(shapely.get_exterior_ring(rects)).reshape(len(big), 5, 2)
        origin, u, v = ring[:, 0], ring[:, 1] - ring[:, 0], ring[:, 3] - ring[:, 0]
        side = np.sqrt(targets[big])
        # oriented_envelope starts at any corner: let u be the long side
        swap = np.hypot(*v.T) > np.hypot(*u.T)
        u[swap], v[swap] = v[swap].copy(), u[swap].copy()
        length, width = np.hypot(*u.T), np.hypot(*v.T)
        nx = np.maximum(1, np.rint(length / side)).astype(int)
        ny = np.maximum(1, np.rint(width / side)).astype(int)
        # a strip narrower than a cell (a median between carriageways, a riverside belt) is cut only
        # across its length, into pieces of about the target area, so no piece is a sliver to merge away
        strip = width < side / 2
        nx[strip] = np.maximum(1, np.rint(length[strip] * width[strip] / targets[big][strip])).astype(int)
        ny[strip] = 1
        counts = nx * ny
        which = np.repeat(np.arange(len(big)), counts)
        flat = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        i, j = flat % nx[which], flat // nx[which]
        du, dv = u[which] / nx[which, None], v[which] / ny[which, None]
        corner = origin[which] + i[:, None] * du + j[:, None] * dv
        corners = np.stack([corner, corner + du, corner + du + dv, corner + dv, corner], axis=1)
        cells = shapely.polygons(corners)
        cut = shapely.intersection(blocks[big][which], cells)
        parts, index = shapely.get_parts(cut, return_index=True)
        polygonal = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
        pieces.append(parts[polygonal])
        owner.append(big[which[index[polygonal]]])
    return np.concatenate(pieces), np.concatenate(owner)


def merge_slivers(
    pieces: np.ndarray, block: np.ndarray, small_area: np.ndarray, crumb_area: float,
    superblock: np.ndarray | None = None, passes: int = 6,
) -> np.ndarray:
    """Merge pieces smaller than ``small_area`` (per piece) into their best neighbour; return the cells.

    The best neighbour is in the same block if one touches along an edge (so no road ends up inside a
    cell), else in the same superblock (so only a minor road does), else the one sharing the longest
    edge; ties go to the larger neighbour, then the lower index.
    A piece with no neighbour along an edge (a separate part of the community) stays a cell of its
    own unless it is a crumb below ``crumb_area``, which joins the nearest cell.
    """
    for _ in range(passes):
        area = shapely.area(pieces)
        small = np.flatnonzero(area < small_area)
        if len(small) == 0 or len(pieces) == 1:
            break
        left, right = shapely.STRtree(pieces).query(pieces[small], predicate="intersects")
        left = small[left]
        left, right = left[left != right], right[left != right]
        # the length of the common edge, robust to vertices one side has and the other lacks
        joined = shapely.union(pieces[left], pieces[right])
        shared = (shapely.length(pieces[left]) + shapely.length(pieces[right]) - shapely.length(joined)) / 2
        shared = np.where(shapely.get_num_geometries(joined) == 1, shared, 0.0)
        left, right, shared = left[shared > 0.01], right[shared > 0.01], shared[shared > 0.01]
        if len(left) == 0:
            break
        same_block = block[left] == block[right]
        same_super = superblock[left] == superblock[right] if superblock is not None else same_block
        order = np.lexsort((right, -area[right], -shared, ~same_super, ~same_block, area[left], left))
        best = {}
        for a, b in zip(left[order], right[order]):
            best.setdefault(int(a), int(b))
        group = np.arange(len(pieces))

        def root(i: int) -> int:
            while group[i] != i:
                i = group[i]
            return i

        for a in sorted(best, key=lambda i: (area[i], i)):  # smallest first
            ra, rb = root(a), root(best[a])
            if ra != rb:
                group[ra] = rb
        group = np.array([root(i) for i in range(len(pieces))])
        merged = gpd.GeoSeries(pieces).groupby(group).agg(lambda parts: shapely.union_all(parts.values))
        block = pd.Series(block).groupby(group).agg(lambda b: b.value_counts().idxmax()).to_numpy()
        if superblock is not None:
            superblock = pd.Series(superblock).groupby(group).agg(lambda b: b.value_counts().idxmax()).to_numpy()
        small_area = pd.Series(small_area).groupby(group).max().to_numpy()
        pieces = np.asarray(merged.values, dtype=object)
    return absorb_crumbs(pieces, crumb_area)


def absorb_crumbs(pieces: np.ndarray, crumb_area: float) -> np.ndarray:
    """Join detached crumbs (tiny separate parts of a community, < ``crumb_area``) to the nearest cell."""
    area = shapely.area(pieces)
    crumbs = np.flatnonzero(area < crumb_area)
    if len(crumbs) == 0 or len(crumbs) == len(pieces):
        return pieces
    others = np.flatnonzero(area >= crumb_area)
    nearest = others[shapely.STRtree(pieces[others]).query_nearest(pieces[crumbs], all_matches=False)[1]]
    group = np.arange(len(pieces))
    group[crumbs] = nearest
    merged = gpd.GeoSeries(pieces).groupby(group).agg(lambda parts: shapely.union_all(parts.values))
    return np.asarray(merged.values, dtype=object)


def community_target(area: float, options: GridOptions) -> float:
    """Target cell area for a community: the option, enlarged if 999 cells would not cover it."""
    return max(options.target_area, area / (options.max_cells * 0.9))


def generate_community(
    community: shapely.Geometry, lines: np.ndarray, options: GridOptions, main: np.ndarray | None = None
) -> np.ndarray:
    """Return the cells of one community (metric CRS), tiling it exactly.

    ``main`` marks the main roads among ``lines``: slivers merge across a minor road before a main one.
    """
    community = _polygonal(community)
    target = community_target(shapely.area(community), options)
    blocks, touching = community_blocks(community, lines, options.snap_tolerance)
    area = shapely.area(blocks)
    open_land = ~touching & (area > options.open_land_area)
    targets = np.where(open_land, target * options.open_land_factor, target)
    # a thin block between roads (the median of a dual carriageway) stays a cell of its own unless it
    # is a mere stub: merging it into either side would put a carriageway inside a cell
    mean_width = 2 * area / shapely.length(blocks)
    road_strip = touching & (mean_width < options.strip_width)
    small = np.where(road_strip, options.strip_min_fraction, options.min_fraction) * targets
    pieces, owner = subdivide(blocks, targets)
    superblock = None
    if main is not None and main.any():
        superblocks, _ = community_blocks(community, lines[main], options.snap_tolerance)
        hits = shapely.STRtree(superblocks).query(shapely.point_on_surface(blocks), predicate="within")
        labels = np.full(len(blocks), -1)
        labels[hits[0]] = hits[1]
        superblock = labels[owner]
    return merge_slivers(pieces, owner, small[owner], crumb_area=0.01 * target, superblock=superblock)


def _polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    parts = shapely.get_parts(geometry)
    return shapely.multipolygons(parts[shapely.get_type_id(parts) == 3])


def sequence_order(cells: np.ndarray, band: float) -> np.ndarray:
    """Indices of ``cells`` numbered west→east within rows of height ``band``, rows north→south."""
    points = shapely.point_on_surface(cells)
    x, y = shapely.get_x(points), shapely.get_y(points)
    row = np.floor((y.max() - y) / band)
    return np.lexsort((x, row))


def generate_cells(
    communities: gpd.GeoDataFrame, lines: gpd.GeoSeries, options: GridOptions = GridOptions(),
    main: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    """Generate unit grids for ``communities`` (``code`` + polygons) cut by ``lines`` (roads, barriers).

    Both inputs must be in the same metric CRS; ``main`` (booleans, one per line) marks the main roads,
    which slivers are merged across last. Returns one row per cell with ``community_code``, ``sequence``
    (1…, west→east, north→south) and ``code`` (15 digits), in that CRS.
    """
    if communities.crs != lines.crs or not communities.crs or not communities.crs.is_projected:
        raise ValueError("communities and lines must share one projected (metric) CRS")
    line_geoms = np.asarray(lines.values, dtype=object)
    main = np.zeros(len(line_geoms), dtype=bool) if main is None else np.asarray(main, dtype=bool)
    tree = shapely.STRtree(line_geoms)
    frames = []
    for code, community in zip(communities["code"], communities.geometry.values):
        nearby = tree.query(community, predicate="intersects")
        cells = generate_community(community, line_geoms[nearby], options, main[nearby])
        if len(cells) > options.max_cells:
            raise ValueError(f"community {code}: {len(cells)} cells exceed the {options.max_cells} codes")
        order = sequence_order(cells, band=np.sqrt(community_target(shapely.area(community), options)))
        cells = cells[order]
        sequence = np.arange(1, len(cells) + 1)
        frames.append(pd.DataFrame({
            "community_code": code, "sequence": sequence,
            "code": [f"{code}{s:03d}" for s in sequence], "geometry": cells,
        }))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["community_code", "sequence", "code", "geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=communities.crs)
