"""Evidence records as JSON text, written column-wise with Arrow string kernels.

A batch of a million decisions needs a million JSON documents; building a dict per fix and
serialising it costs more than the whole spatial search. Here each part of the record is an Arrow
string column (null where the part is absent), and the parts are concatenated per row in C++.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

SAFE = r'^[^"\\\x00-\x1f]*$'  # text that needs no escaping inside JSON quotes
_UNSAFE = re.compile(r'["\\\x00-\x1f]')  # a character that does
#: up to this many values (the features near one fix) plain Python beats the fixed cost of an Arrow call
FEW = 64
EMPTY_TEXT = pa.array([], pa.string())
# Arrow's kernels called directly: the pyarrow.compute wrappers turn every ``str`` argument into a
# scalar again and cost two or three times the kernel on the few rows of a single decision
_JOIN, _COALESCE, _CAST = (pc.get_function(name) for name in ("binary_join_element_wise", "coalesce", "cast"))
_TO_TEXT = pc.CastOptions.safe(pa.string())
_NULL_AS_EMPTY = pc.JoinOptions(null_handling="replace", null_replacement="")


@lru_cache(maxsize=4096)
def literal(piece: str) -> pa.StringScalar:
    return pa.scalar(piece, pa.string())


def concat(*pieces: str | pa.Array, options: pc.JoinOptions | None = None) -> pa.Array:
    """Per row, the ``pieces`` one after the other (a ``str`` is the same on every row); null where a
    piece is null, unless ``options`` say otherwise. A piece may be a dictionary array (a column taken from
    a few values, see :func:`lookup`)."""
    merged: list = []
    for piece in pieces:  # neighbouring literals become one: every piece costs a pass over the rows
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    if any(isinstance(piece, pa.DictionaryArray) for piece in merged):
        merged = _folded(merged, options)
    return _JOIN.call([literal(p) if isinstance(p, str) else p for p in merged] + [literal("")], options)


def lookup(values: pa.Array, index: np.ndarray) -> pa.DictionaryArray:
    """``values`` (JSON text, none missing) at ``index``, not taken yet: :func:`concat` first joins the
    literals around it to the few values, and the row-wise join has two pieces less (each piece of it costs
    ~10 ns a row). A few rows (one fix) are taken at once: folding would cost more than it spares."""
    if len(index) <= FEW:
        return values.take(pa.array(index))
    return pa.DictionaryArray.from_arrays(pa.array(index), values)


def _folded(pieces: list, options: pc.JoinOptions | None) -> list:
    """The dictionary pieces taken, each with the literals on either side joined to its values first (not
    where a null value stands under ``options`` that keep the rest of the row: the literals must stay)."""
    out: list = []
    k = 0
    while k < len(pieces):
        piece = pieces[k]
        if isinstance(piece, pa.DictionaryArray):
            values = piece.dictionary
            if options is None or (piece.null_count == 0 and values.null_count == 0):
                before = out.pop() if out and isinstance(out[-1], str) else ""
                after = pieces[k + 1] if k + 1 < len(pieces) and isinstance(pieces[k + 1], str) else ""
                values, k = concat(before, values, after), k + (after != "")
            piece = values.take(piece.indices)
        out.append(piece)
        k += 1
    return out


def or_null(values: pa.Array) -> pa.Array:
    """``values`` with JSON ``null`` for missing ones (none missing: the values themselves, not a copy)."""
    return values if values.null_count == 0 else _COALESCE.call([values, literal("null")])


def text(values, safe: bool | None = None) -> pa.Array:
    """JSON strings (``"…"``), ``null`` for missing values. ``safe``: whether it is already known that no
    value needs escaping (see :func:`needs_no_escaping`)."""
    if len(values) == 0:
        return EMPTY_TEXT
    array = values if isinstance(values, pa.Array) else pa.array(np.asarray(values, dtype=object), type=pa.string(),
                                                                from_pandas=True)
    if safe if safe is not None else needs_no_escaping(array):
        quoted = concat('"', array, '"')
    else:
        quoted = pa.array([None if v is None else orjson.dumps(v).decode() for v in array.to_pylist()], pa.string())
    return or_null(quoted)


def needs_no_escaping(array: pa.Array) -> bool:
    if len(array) <= FEW:
        return not any(_UNSAFE.search(v) for v in array.to_pylist() if v is not None)
    if array.type != pa.string():
        return pc.all(pc.match_substring_regex(array, SAFE)).as_py() in (True, None)
    # the characters JSON escapes are single bytes (UTF-8's other bytes are ≥ 0x80): look at the text's bytes
    _, offsets, data = array.buffers()
    ends = np.frombuffer(offsets, np.int32)[array.offset:array.offset + len(array) + 1][[0, -1]]
    text = np.frombuffer(data, np.uint8)[ends[0]:ends[1]] if data is not None else np.empty(0, np.uint8)
    return not ((text < 0x20) | (text == ord('"')) | (text == ord("\\"))).any()


def number(values: np.ndarray, decimals: int) -> pa.Array:
    """JSON numbers rounded to ``decimals``, ``null`` for NaN or infinity (JSON has neither)."""
    if len(values) == 0:
        return EMPTY_TEXT
    rounded = np.round(np.asarray(values, dtype=float), decimals)
    finite = np.isfinite(rounded)
    rounded[~finite] = np.nan
    if len(rounded) > FEW and finite.any():
        # distances and accuracies take few values once rounded: format each value once, then take
        steps = np.rint(rounded[finite] * 10.0 ** decimals)  # np.round(v, d) is rint(v * 10**d) / 10**d
        low, high = steps.min(), steps.max()
        if low >= 0 and high - low < max(4096, len(rounded) // 8) and not np.signbit(rounded[finite]).any():
            table = _CAST.call([pa.array(np.arange(low, high + 1) / 10.0 ** decimals)], _TO_TEXT)
            table = pa.concat_arrays([table, pa.array(["null"], pa.string())])
            at = np.full(len(rounded), high - low + 1, dtype=np.int64)
            at[finite] = (steps - low).astype(np.int64)
            return lookup(table, at)
    return or_null(_CAST.call([pa.array(rounded, from_pandas=True)], _TO_TEXT))


class Fragments(list):
    """JSON text not yet joined: literal ``str`` pieces and Arrow string columns, in order."""

    def join(self) -> pa.Array:
        """One string per row (null where any column piece is null)."""
        return concat(*self)


def obj(fields: dict[str, pa.Array | Fragments | str]) -> Fragments:
    """``{"key": value, …}`` per row; values are JSON fragments (a ``str`` is the same on every row)."""
    out = Fragments()
    for n, (key, value) in enumerate(fields.items()):
        out.append(("{" if n == 0 else ",") + orjson.dumps(key).decode() + ":")
        out.extend(value if isinstance(value, Fragments) else [value])
    out.append("}")
    return out


def where(mask: np.ndarray, values: pa.Array | Fragments) -> Fragments:
    """``values`` where ``mask``, null elsewhere (an absent part); not joined yet (see :func:`record`)."""
    values = values if isinstance(values, Fragments) else Fragments([values])
    if mask.all():  # one fix is all or nothing: no call into Arrow
        return values
    # empty text where the part is present, null where absent: joined with it, the part is null there
    absent = pa.StringArray.from_buffers(len(mask), pa.py_buffer(np.zeros(len(mask) + 1, np.int32)), pa.py_buffer(b""),
                                         pa.array(mask).buffers()[1], null_count=int((~mask).sum()))
    return Fragments([*values, absent])


def lists(point: np.ndarray, items: pa.Array | Fragments, n: int) -> Fragments:
    """``[item, …]`` per row from items sorted by ``point``; null for a row without items; not joined yet."""
    if len(point) == 0:
        return Fragments([pa.nulls(n, pa.string())])
    items = items.join() if isinstance(items, Fragments) else items
    counts = np.bincount(point, minlength=n)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    # a row without items is a null list, whose join is null, and so is the row's text
    listed = pa.ListArray.from_arrays(pa.array(offsets), items, mask=pa.array(counts == 0))
    return Fragments(["[", pc.binary_join(listed, ","), "]"])


def record(required: dict[str, Fragments], optional: dict[str, pa.Array | Fragments]) -> pa.Array:
    """One JSON object per row: the ``required`` parts, then each ``optional`` part where it is not null."""
    pieces = Fragments()
    for n, (key, value) in enumerate(required.items()):
        pieces.append(("{" if n == 0 else ",") + orjson.dumps(key).decode() + ":")
        pieces.extend(value)
    for key, value in optional.items():
        value = value if isinstance(value, Fragments) else [value]
        columns = [piece for piece in value if not isinstance(piece, str)]
        if any(column.null_count == len(column) for column in columns):
            continue  # a part absent from every row adds nothing
        name = "," + orjson.dumps(key).decode() + ":"
        if not any(column.null_count for column in columns):
            pieces.extend([name, *value])  # present on every row: no join of its own, one pass less over its text
            continue
        part = concat(name, *value)
        if part.null_count < len(part):
            pieces.append(part)
    pieces.append("}")
    return concat(*pieces, options=_NULL_AS_EMPTY)
