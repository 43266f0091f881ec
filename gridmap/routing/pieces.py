"""A big batch decided in pieces (:func:`gridmap.routing.decide.decide`): where the pieces start, and
their columns gathered into one frame as the threads finish them."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa


def piece_starts(n: int, piece: int) -> list[int]:
    """Where the pieces of a batch of ``n`` start: every ``piece`` fixes, but the last two pieces' worth is cut
    in eight, so that the threads run out of work at about the same time (the one that finishes first idles
    for at most one of these quarter pieces; a million fixes: 0.08 s median, cut in four 0.12 s)."""
    whole = max(n // piece - 2, 0) * piece
    return [*range(0, whole, piece), *range(whole, n, -(-(n - whole) // 8))]


class Batch:
    """The columns of a big batch, each piece's written into place by the thread that decided it: copying
    the object columns holds the interpreter lock, so it is done while the other thread computes, not
    after the last piece (a frame per piece, concatenated, would copy every column twice)."""

    def __init__(self, n: int, pieces: int):
        self.n, self.columns, self._lock = n, [None] * pieces, threading.Lock()
        self.joined: dict = {}

    def put(self, k: int, start: int, columns: dict) -> None:
        with self._lock:  # the first piece decided makes the columns, of its types
            if not self.joined:
                self.joined = {name: None if isinstance(values, pa.Array) else np.empty(self.n, values.dtype)
                               for name, values in columns.items()}
        self.columns[k] = {name: values for name, values in columns.items() if isinstance(values, pa.Array)}
        for name, values in columns.items():
            if not isinstance(values, pa.Array):
                self.joined[name][start:start + len(values)] = values

    def frame(self) -> pd.DataFrame:
        return as_frame({name: pa.chunked_array([piece[name] for piece in self.columns]) if values is None else values
                         for name, values in self.joined.items()})


def as_frame(columns: dict[str, np.ndarray | pa.Array | pa.ChunkedArray]) -> pd.DataFrame:
    """The columns of :func:`gridmap.routing.decide.decide_columns` as a DataFrame (text as pandas text, objects as objects), not
    copied: each column its own block (gathering the columns of a type into one would copy them all)."""
    return pd.DataFrame({name: values.to_pandas() if isinstance(values, (pa.Array, pa.ChunkedArray)) else
                         pd.Series(values, dtype=object, copy=False) if values.dtype == object else values
                         for name, values in columns.items()}, copy=False)
