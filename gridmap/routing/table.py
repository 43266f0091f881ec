"""A layer's columns as Arrow arrays and integer codes, converted once per decision batch.

A million component codes cost a second when pandas turns them into Python objects again and again;
here a column is encoded once (Arrow text, dictionary codes, JSON-quoted text) and then only taken
by index.
"""

from __future__ import annotations

import threading

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gridmap.routing import evidence as ev


def distinct_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by their combination of values in ``columns`` (missing values form a group of their
    own): one representative row per group, and each row's group. Work done once per group, not per row."""
    if len(columns[0]) <= 1:  # one fix (the single path): no grouping to do, and factorize costs 0.1 ms
        return np.zeros(len(columns[0]), dtype=np.int64), np.zeros(len(columns[0]), dtype=np.int64)
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for values in columns:
        codes = pd.factorize(np.asarray(values), use_na_sentinel=False)[0]
        key = key * (int(codes.max(initial=0)) + 1) + codes
    inverse, groups = pd.factorize(key)  # groups in order of first appearance (hashing, no sort)
    first = np.full(len(groups), len(key), dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(len(key)))
    return first, inverse.astype(np.int64)


def positions(index: np.ndarray) -> pa.Array:
    """Arrow take-indices, null where ``index`` is -1 (nothing chosen)."""
    return pa.array(index, mask=index < 0)


class Table:
    """One layer's columns (a DataFrame or a dict of lists, see :data:`gridmap.routing.layers.Columns`)."""

    def __init__(self, columns):
        self.columns, self._cache, self._locks = columns, {}, {}
        self.n = len(columns["geom"])

    def __len__(self) -> int:
        return self.n

    def objects(self, name: str) -> np.ndarray:
        """The column as an array of Python objects, converted once."""
        return self.cached(("objects", name), lambda: np.asarray(self.columns[name], dtype=object))

    def cached(self, key, make):
        """``make()``, computed once per table (layer-wide work: segments, indexes), also when the pieces of
        a batch ask for it at once in several threads (the others wait for the first)."""
        if key not in self._cache:
            with self._locks.setdefault(key, threading.Lock()):  # setdefault is atomic under the interpreter lock
                if key not in self._cache:
                    self._cache[key] = make()
        return self._cache[key]

    def arrow(self, name: str) -> pa.Array:
        def make():
            values = self.columns[name]
            if isinstance(values, list):  # from the database: None, never NaN, for missing; mostly text
                kind = next((type(v) for v in values if v is not None), str)
                array = pa.array(values, pa.string() if kind is str else None)  # naming the type saves its inference
            else:
                array = pa.array(values, from_pandas=True) if self.n else pa.array([], pa.string())
            if pa.types.is_large_string(array.type) or pa.types.is_null(array.type):
                array = array.cast(pa.string())
            # pandas hands concatenated text over in chunks; one array takes, joins and batches alike
            return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        return self.cached(("arrow", name), make)

    def encoded(self, name: str) -> tuple[np.ndarray, list]:
        """Per row the index of its value in the column's distinct values (-1 for none), and those values."""
        def make():
            if self.n <= ev.FEW:  # the same codes (values in order of first appearance), without Arrow's fixed cost
                index: dict = {}
                values = self.columns[name] if isinstance(self.columns[name], list) else self.arrow(name).to_pylist()
                codes = [-1 if v is None else index.setdefault(v, len(index)) for v in values]
                return np.array(codes, dtype=np.int64), list(index)
            encoded = pc.dictionary_encode(self.arrow(name))
            codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            return codes, encoded.dictionary.to_pylist()
        return self.cached(("encoded", name), make)

    def take(self, name: str, index: np.ndarray) -> pa.Array:
        return self.arrow(name).take(positions(index))

    def take_columns(self, names: list[str], index: np.ndarray) -> list[pa.Array]:
        """:meth:`take` of several columns in one call into Arrow."""
        batch = pa.RecordBatch.from_arrays([self.arrow(name) for name in names], names=names)
        return batch.take(positions(index)).columns

    def safe(self, name: str) -> bool:
        """Whether no value of the column needs escaping in JSON."""
        return self.cached(("safe", name), lambda: ev.needs_no_escaping(self.arrow(name)))

    def take_quoted(self, name: str, index: np.ndarray) -> pa.Array:
        """The column's values at ``index`` as JSON text (``"…"``, ``null`` where the index is -1)."""
        if len(index) == 0:
            return ev.EMPTY_TEXT
        if self.n <= ev.FEW or len(index) < self.n // 64:  # quote the few taken rather than the whole column
            return ev.text(self.take(name, index), self.safe(name))
        return self.quoted(name).take(pa.array(np.where(index < 0, self.n, index)))

    def quoted(self, name: str) -> pa.Array:
        """The whole column as JSON text, computed once, with a trailing ``null`` (taken for "no row")."""
        return self.cached(("quoted", name), lambda: pa.concat_arrays(
            [ev.text(self.arrow(name), self.safe(name)), pa.array(["null"], pa.string())]))

    def codes_at(self, name: str, index: np.ndarray) -> np.ndarray:
        """The dictionary codes (see :meth:`encoded`) at ``index``; -1 where the index is -1 or the value missing."""
        codes, _ = self.encoded(name)
        return np.where(index >= 0, codes[np.maximum(index, 0)], -1) if len(codes) else np.full(len(index), -1)

    def values(self, name: str, index) -> list:
        """Python values at a few rows (for messages)."""
        if len(index) == 0:
            return []
        return self.arrow(name).take(pa.array(np.asarray(index, dtype=np.int64))).to_pylist()

    def value(self, name: str, row: int):
        if row < 0:
            return None
        if ("encoded", name) in self._cache:  # a few words in a list: cheaper than an Arrow scalar
            codes, words = self._cache[("encoded", name)]
            return None if codes[row] < 0 else words[codes[row]]
        values = self.columns[name]
        return values[int(row)] if isinstance(values, list) else self.arrow(name)[int(row)].as_py()


class Vocabulary:
    """Integer codes for a set of words (department codes, rule names), -1 for none."""

    def __init__(self):
        self.words: list = []
        self._index: dict = {}

    def code(self, word) -> int:
        if word is None or (isinstance(word, float) and np.isnan(word)):
            return -1
        if word not in self._index:
            self._index[word] = len(self.words)
            self.words.append(word)
        return self._index[word]

    def lookup(self, words: list) -> np.ndarray:
        """Codes of ``words``, with a trailing -1 so that ``lookup(...)[codes]`` maps -1 to -1."""
        return np.array([self.code(w) for w in words] + [-1], dtype=np.int64)

    def objects(self, codes: np.ndarray) -> np.ndarray:
        return np.array(self.words + [None], dtype=object)[codes]

    def quoted(self, codes: np.ndarray) -> pa.Array:
        """The words at ``codes`` as JSON text, ``null`` for -1 (orjson writes what :func:`ev.text` would)."""
        texts = pa.array([orjson.dumps(word).decode() for word in self.words] + ["null"], pa.string())
        return ev.lookup(texts, np.where(codes < 0, len(self.words), codes))
