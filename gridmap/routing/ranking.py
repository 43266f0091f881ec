"""Candidates ranked per fix, column-wise: nearest first, equal distances by code (the routing engine's order
for grids, roads and components alike), and each fix's choice and runner-up."""

from __future__ import annotations

import numpy as np

from gridmap.routing.spatial import EMPTY, starts

FEW_ROWS = 64  # up to this many rows are sorted by np.lexsort itself (see lex_order)


def lex_order(*keys: np.ndarray) -> np.ndarray:
    """``np.lexsort(keys[::-1])``: the rows sorted by the first key, then the second, …, equal rows in their order.

    Done as one stable sort of the keys packed into an integer (a float key by the rank of its value among
    the distinct ones), which takes a fifth of lexsort's three merge sorts; keys that do not fit in 63 bits
    (or a NaN) go to lexsort, and so do a few rows (one fix's candidates), for lexsort's lower fixed cost."""
    if len(keys[0]) <= FEW_ROWS:
        return np.lexsort(keys[::-1])
    packed, span = np.zeros(len(keys[0]), dtype=np.int64), 1
    for key in keys:
        if key.dtype.kind == "f":
            if np.isnan(key).any():
                return np.lexsort(keys[::-1])
            order = np.argsort(key)  # equal values get one rank whatever their order: no need for a stable sort
            distinct = np.concatenate(([True], key[order][1:] != key[order][:-1]))
            code = np.empty(len(key), dtype=np.int64)
            code[order] = np.cumsum(distinct) - 1
        else:
            code = key.astype(np.int64) - int(key.min())
        size = int(code.max()) + 1
        span *= size
        if span >= 2 ** 63:
            return np.lexsort(keys[::-1])
        packed = packed * size + code
    return np.argsort(packed, kind="stable")


def ranked(point: np.ndarray, distance: np.ndarray, feature: np.ndarray, layer):
    """Candidates sorted per point by distance, equal distances by code (``layer.values("code", rows)``);
    returns the sorted point, feature and distance arrays and each candidate's rank (0 is the choice)."""
    if len(point) == 0:
        return point, feature, distance, EMPTY
    order = lex_order(point, distance, feature)
    point, distance, feature = point[order], distance[order], feature[order]
    tied = np.flatnonzero((point[1:] == point[:-1]) & (distance[1:] == distance[:-1]))
    if len(tied):  # exact ties (a fix nearest to the joint of two segments): sort them by code
        involved = np.zeros(len(point), dtype=bool)
        involved[tied], involved[tied + 1] = True, True
        members = np.unique(feature[involved])
        code_rank = np.empty(len(members), dtype=np.int64)
        code_rank[np.argsort(np.array(layer.values("code", members), dtype=str), kind="stable")] = np.arange(len(members))
        by_code = np.zeros(len(point), dtype=np.int64)
        by_code[involved] = code_rank[np.searchsorted(members, feature[involved])]
        order = lex_order(point, distance, by_code)
        point, distance, feature = point[order], distance[order], feature[order]
    first = np.flatnonzero(starts(point))
    rank = np.arange(len(point)) - np.repeat(first, np.diff(np.concatenate((first, [len(point)]))))
    return point, feature, distance, rank


def first_two(point: np.ndarray, feature: np.ndarray, distance: np.ndarray, rank: np.ndarray, n: int):
    """Per point: the chosen and the runner-up feature (-1 when none) and their distances (NaN)."""
    chosen, second = np.full(n, -1), np.full(n, -1)
    d1, d2 = np.full(n, np.nan), np.full(n, np.nan)
    top, runner = rank == 0, rank == 1
    chosen[point[top]], d1[point[top]] = feature[top], distance[top]
    second[point[runner]], d2[point[runner]] = feature[runner], distance[runner]
    return chosen, second, d1, d2
