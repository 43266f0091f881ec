"""The numpy candidate search and distances agree with GEOS on the demo city's real shapes (unit grids
with holes and several parts, multi-part roads): the routing engine's single and batch paths share
this code, so it is checked here against an independent implementation."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from gridmap.routing import evidence as ev
from gridmap.routing import spatial
from gridmap.routing.layers import Reference, load_layers
from gridmap.routing.policy import ON_EDGE_M
from gridmap.routing.spatial import CellIndex, Segments, distances, point_boxes


def test_grid_search_and_distances_match_geos(session):
    layers = load_layers(session=session, metric=Reference.current(session).metric, class_codes=[])
    grids = layers.grids["geom"].to_numpy()
    roads = layers.roads["geom"].to_numpy()
    assert len(shapely.get_parts(grids)) > len(grids)  # multi-part grids are among them
    rng = np.random.default_rng(7)
    xmin, ymin, xmax, ymax = shapely.total_bounds(grids)
    x, y = rng.uniform(xmin, xmax, 20_000), rng.uniform(ymin, ymax, 20_000)
    # points exactly on grid vertices and on road vertices as well
    vertices = shapely.get_coordinates(grids[:300])
    x, y = np.r_[x, vertices[:, 0]], np.r_[y, vertices[:, 1]]
    points = shapely.points(x, y)

    segments = Segments.of(grids)
    point, feature = CellIndex(shapely.bounds(grids) + [-ON_EDGE_M, -ON_EDGE_M, ON_EDGE_M, ON_EDGE_M]).query(
        point_boxes(x, y))
    edge, inside = distances(x, y, point, feature, segments)
    found = inside | (edge <= ON_EDGE_M)
    tree = shapely.STRtree(grids)
    expected = set(zip(*tree.query(points, predicate="dwithin", distance=ON_EDGE_M)))
    assert set(zip(point[found], feature[found])) == {(int(p), int(f)) for p, f in expected}
    geos = shapely.distance(points[point], grids[feature])
    assert np.allclose(np.where(inside, 0.0, edge), geos, atol=1e-6)

    radius = 25.0
    road_segments = Segments.of(roads)
    near, seg = CellIndex(road_segments.boxes(radius)).query(point_boxes(x, y))
    road = road_segments.feature[seg]
    d = distances(x, y, near, road, road_segments)[0]
    within = {(int(p), int(r)) for p, r, dd in zip(near, road, d) if dd <= radius}
    expected = set(zip(*shapely.STRtree(roads).query(points, predicate="dwithin", distance=radius)))
    assert within == {(int(p), int(r)) for p, r in expected}


def test_box_queries_find_each_pair_once():
    rng = np.random.default_rng(3)
    lower = rng.uniform(0, 1000, (500, 2))
    boxes = np.column_stack([lower, lower + rng.uniform(1, 150, (500, 2))])
    index = CellIndex(boxes)
    query = np.column_stack([lower[:200] + 5, lower[:200] + 90])
    found = index.query(query, both_have_extent=True)
    pairs = list(zip(*found))
    assert len(pairs) == len(set(pairs))
    meets = shapely.STRtree(shapely.box(*boxes.T)).query(shapely.box(*query.T))
    assert set(pairs) == set(zip(*meets))
    groups = rng.integers(0, 3, 500)
    grouped = set(zip(*CellIndex(boxes, groups=groups).query(query, groups[:200], both_have_extent=True)))
    assert grouped == {(q, b) for q, b in pairs if groups[q] == groups[b]}


def test_a_few_boxes_are_tested_pair_by_pair_with_the_same_answer():
    """Near one fix the index tests every pair instead of hashing cells: the pairs found must not differ."""
    rng = np.random.default_rng(5)
    lower = rng.uniform(0, 300, (40, 2))
    boxes = np.column_stack([lower, lower + rng.uniform(1, 60, (40, 2))])
    groups = rng.integers(0, 3, 40)
    query = np.column_stack([lower[:30] + 5, lower[:30] + 5 + rng.uniform(0, 40, (30, 2))])  # min ≤ max
    for index_groups, query_groups in ((None, None), (groups, groups[:30])):
        few = CellIndex(boxes, groups=index_groups)
        assert len(query) * len(boxes) <= spatial.ALL_PAIRS and few.keys is None  # tested pair by pair
        hashed = CellIndex(boxes, groups=index_groups)
        hashed._hash()
        expected = set(zip(*hashed.query(np.repeat(query, 5, axis=0), None if query_groups is None
                                         else np.repeat(query_groups, 5), both_have_extent=True)))
        expected = {(q // 5, b) for q, b in expected}
        found = list(zip(*few.query(query, query_groups, both_have_extent=True)))
        assert len(found) == len(set(found)) and set(found) == expected and expected


def test_points_are_hashed_and_met_as_boxes_are(monkeypatch):
    """Points (boxes of no size) are hashed to the one cell each lies in and only their low sides are read:
    the same pairs in the same order as boxes with four sides give, for points on cell edges, beyond every
    cell, NaN and infinite."""
    rng = np.random.default_rng(13)
    xy = np.r_[[[0.0, 0.0]], np.round(rng.uniform(0, 1000, (300, 2)) / 50) * 50, rng.uniform(0, 1000, (3000, 2))]
    lower = rng.uniform(-100, 1100, (2000, 2))
    boxes = np.column_stack([lower, lower + rng.uniform(0, 80, (2000, 2))])
    fixes = np.r_[xy[:800], rng.uniform(-100, 1100, (1500, 2)), [[np.nan, 5.0], [5.0, np.inf], [-np.inf, 3.0]]]
    groups, fix_groups = rng.integers(0, 3, len(xy)), rng.integers(-1, 3, len(fixes))
    indexed = point_boxes(xy[:, 0], xy[:, 1])

    def found():
        by_points = CellIndex(indexed, groups=groups, cell=50.0)
        return [by_points.query(point_boxes(fixes[:, 0], fixes[:, 1], 30.0), fix_groups),
                by_points.query(point_boxes(fixes[:, 0], fixes[:, 1]), fix_groups),
                CellIndex(boxes).query(point_boxes(fixes[:, 0], fixes[:, 1])),
                CellIndex(boxes).cells(point_boxes(fixes[:, 0], fixes[:, 1]))]

    fast = found()
    assert spatial.are_points(indexed) and CellIndex(indexed).points and all(len(pairs[0]) for pairs in fast)
    monkeypatch.setattr(spatial, "are_points", lambda boxes: False)
    assert all(np.array_equal(a, b) for pairs, expected in zip(fast, found()) for a, b in zip(pairs, expected))


def test_the_segments_of_a_few_geometries_or_of_single_lines_are_those_of_the_ragged_array(session, monkeypatch):
    """A few geometries are read part by part and ring by ring, many lines or polygons without holes as their
    one line: the same segments as the ragged array gives."""
    layers = load_layers(session=session, metric=Reference.current(session).metric, class_codes=[])
    fields = ("ax", "ay", "bx", "by", "feature", "start", "count")
    rng = np.random.default_rng(17)
    corner = rng.uniform(0, 1000, (300, 2))
    boxes, lines = shapely.box(*corner.T, *(corner + 50).T), shapely.linestrings(rng.uniform(0, 1000, (300, 4, 2)))
    # the demo city's shapes (holes, several parts), and single lines and polygons without holes
    for geoms in (layers.grids["geom"].to_numpy(), layers.roads["geom"].to_numpy(), boxes, lines):
        empty = shapely.Polygon() if geoms[0].geom_type.endswith("Polygon") else shapely.LineString()
        for start, size in [(start, 50) for start in range(0, min(len(geoms), 3000), 50)] + [(0, 600)]:
            chunk = np.r_[geoms[start:start + size], [empty]]
            read = Segments.of(chunk)
            monkeypatch.setattr(spatial, "FEW_GEOMETRIES", 0)
            monkeypatch.setattr(Segments, "_one_line_each", staticmethod(lambda geoms: False))
            ragged = Segments.of(chunk)
            monkeypatch.undo()
            assert all(np.array_equal(getattr(read, f), getattr(ragged, f)) for f in fields)
    assert Segments._one_line_each(np.r_[boxes, lines]) and not Segments._one_line_each(layers.grids["geom"].to_numpy())


def test_the_segments_taken_for_some_features_are_those_read_from_their_geometries(session):
    """A layer's segments read once and taken for the features near a fix (as the city in memory gives them)
    are those read from these features' geometries, in the order asked, empty geometries included."""
    layers = load_layers(session=session, metric=Reference.current(session).metric, class_codes=[])
    fields = ("ax", "ay", "bx", "by", "feature", "start", "count")
    rng = np.random.default_rng(23)
    for geoms in (layers.grids["geom"].to_numpy(), layers.roads["geom"].to_numpy()):
        geoms = np.r_[geoms, [shapely.Polygon() if geoms[0].geom_type.endswith("Polygon") else shapely.LineString()]]
        whole = Segments.of(geoms)
        for rows in [rng.choice(len(geoms), size, replace=False) for size in (1, 3, 9, 40)] + [[len(geoms) - 1], []]:
            taken, read = whole.take(rows), Segments.of(geoms[np.asarray(rows, dtype=np.int64)])
            assert all(np.array_equal(getattr(taken, f), getattr(read, f)) for f in fields), rows


def test_distances_from_one_point_are_those_of_the_many_points_path(session):
    """point_distances (a report's fix against the grids near it) gives to the last bit what distances gives
    for the same point and features: the nearest edge and inside or not, an empty geometry infinitely far."""
    layers = load_layers(session=session, metric=Reference.current(session).metric, class_codes=[])
    grids = np.r_[layers.grids["geom"].to_numpy(), [shapely.Polygon()]]
    whole = Segments.of(grids)
    rng = np.random.default_rng(31)
    xmin, ymin, xmax, ymax = shapely.total_bounds(grids[:-1])
    vertex = shapely.get_coordinates(grids[0])[0]
    for n, (x, y) in enumerate([*zip(rng.uniform(xmin, xmax, 200), rng.uniform(ymin, ymax, 200)), vertex]):
        rows = rng.choice(len(grids), 1 + n % 12, replace=False)
        rows[-1] = len(grids) - 1 if n % 5 == 0 else rows[-1]
        taken = whole.take(rows)
        one = spatial.point_distances(float(x), float(y), taken)
        many = distances(np.array([x]), np.array([y]), np.zeros(len(rows), np.int64), np.arange(len(rows)), taken)
        assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1]), (n, rows)
    assert np.isinf(spatial.point_distances(0.0, 0.0, whole.take([len(grids) - 1]))[0]).all()


def test_the_escaping_check_on_text_bytes_agrees_with_the_pattern():
    """Whether a column needs JSON escaping is read from its bytes for long columns: the same answer as
    the pattern, slices included (their bytes outside the slice do not count)."""
    plain = [f"630050{k:09d}" for k in range(500)] + ["路灯 第二号", None]
    for bad in ['say "hi"', "back\\slash", "tab\there", "new\nline", "\x01"]:
        for values in (plain + [bad], [bad] + plain):
            array = pa.array(values, pa.string())
            for part in (array, array.slice(1), array.slice(0, len(values) - 1)):
                expected = pc.all(pc.match_substring_regex(part, ev.SAFE)).as_py() in (True, None)
                assert ev.needs_no_escaping(part) is expected
    assert ev.needs_no_escaping(pa.array(plain, pa.string()))
    assert ev.needs_no_escaping(pa.array([None] * 100, pa.string()))


def test_numbers_formatted_from_a_table_of_values_read_as_the_cast_writes_them():
    """Evidence numbers of a small range (distances, accuracies) are formatted once per value and taken:
    the text must be what Arrow's cast writes for every value, NaN and infinity as null, -0 included."""
    rng = np.random.default_rng(5)
    samples = [(rng.uniform(0, 25, 5000), 1), (rng.choice([5.0, 10.0, 20.0, np.nan, np.inf], 5000), 1),
               (np.r_[rng.uniform(0, 25, 500), -0.0], 1), (np.r_[rng.uniform(0, 0.04, 500)], 1),
               (rng.uniform(0, 3e6, 5000), 2), (rng.uniform(0, 0.05, 5000), 3), (np.full(500, np.nan), 1)]
    for values, decimals in samples:
        rounded = np.round(values, decimals)
        rounded[~np.isfinite(rounded)] = np.nan
        cast = pc.fill_null(pc.cast(pa.array(rounded, from_pandas=True), pa.string()), "null")
        written = ev.number(values, decimals)  # a table's values and an index into it (see ev.lookup), or text
        if isinstance(written, pa.DictionaryArray):
            written = written.dictionary_decode()
        assert written.equals(cast)


def test_lex_order_sorts_as_lexsort_does():
    """The packed sort gives np.lexsort's order, ties kept in their order, on ints, floats with ties, ±0 and
    infinity (and falls back to lexsort on NaN)."""
    from gridmap.routing.ranking import lex_order

    rng = np.random.default_rng(11)
    for n in (10, 65, 5000):
        point = rng.integers(-3, 40, n)
        distance = np.round(rng.uniform(0, 5, n), 1)
        distance[::7], distance[::11], distance[::13] = -0.0, 0.0, np.inf
        feature = rng.integers(0, 9, n)
        assert (lex_order(point, distance, feature) == np.lexsort((feature, distance, point))).all()
        assert (lex_order(point, feature) == np.lexsort((feature, point))).all()
        distance[::17] = np.nan
        assert (lex_order(point, distance, feature) == np.lexsort((feature, distance, point))).all()
