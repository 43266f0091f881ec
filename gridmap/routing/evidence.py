"""Evidence records as JSON text, written column-wise with Arrow string kernels.

A batch of a million decisions needs a million JSON documents; building a dict per fix and
serialising it costs more than the whole spatial search. Here each part of the record is an Arrow
string column (null where the part is absent), and the parts are concatenated per row in C++.
"""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

SAFE = r'^[^"\\\x00-\x1f]*$'  # text that needs no escaping inside JSON quotes


def text(values, safe: bool | None = None) -> pa.Array:
    """JSON strings (``"…"``), ``null`` for missing values. ``safe``: whether it is already known that no
    value needs escaping (see :func:`needs_no_escaping`)."""
    array = values if isinstance(values, pa.Array) else pa.array(np.asarray(values, dtype=object), type=pa.string(),
                                                                from_pandas=True)
    if safe if safe is not None else needs_no_escaping(array):
        quoted = pc.binary_join_element_wise('"', array, '"', "")
    else:
        quoted = pa.array([None if v is None else orjson.dumps(v).decode() for v in array.to_pylist()], pa.string())
    return pc.fill_null(quoted, "null")


def needs_no_escaping(array: pa.Array) -> bool:
    return pc.all(pc.match_substring_regex(array, SAFE)).as_py() in (True, None)


def number(values: np.ndarray, decimals: int) -> pa.Array:
    """JSON numbers rounded to ``decimals``, ``null`` for NaN or infinity (JSON has neither)."""
    rounded = np.round(np.asarray(values, dtype=float), decimals)
    rounded[~np.isfinite(rounded)] = np.nan
    return pc.fill_null(pc.cast(pa.array(rounded, from_pandas=True), pa.string()), "null")


class Fragments(list):
    """JSON text not yet joined: literal ``str`` pieces and Arrow string columns, in order."""

    def join(self) -> pa.Array:
        """One string per row (null where any column piece is null)."""
        return pc.binary_join_element_wise(*self, "")


def obj(fields: dict[str, pa.Array | Fragments | str]) -> Fragments:
    """``{"key": value, …}`` per row; values are JSON fragments (a ``str`` is the same on every row)."""
    out = Fragments()
    for n, (key, value) in enumerate(fields.items()):
        out.append(("{" if n == 0 else ",") + orjson.dumps(key).decode() + ":")
        out.extend(value if isinstance(value, Fragments) else [value])
    out.append("}")
    return out


def where(mask: np.ndarray, values: pa.Array | Fragments) -> pa.Array:
    """``values`` where ``mask``, null elsewhere (an absent part)."""
    values = values.join() if isinstance(values, Fragments) else values
    return pc.if_else(pa.array(mask), values, pa.nulls(len(values), pa.string()))


def lists(point: np.ndarray, items: pa.Array | Fragments, n: int) -> pa.Array:
    """``[item, …]`` per row from items sorted by ``point``; null for a row without items."""
    items = items.join() if isinstance(items, Fragments) else items
    counts = np.bincount(point, minlength=n)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int32)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), items), ",")
    return where(counts > 0, pc.binary_join_element_wise("[", joined, "]", ""))


def record(required: dict[str, Fragments], optional: dict[str, pa.Array]) -> pa.Array:
    """One JSON object per row: the ``required`` parts, then each ``optional`` part where it is not null."""
    pieces = Fragments()
    for n, (key, value) in enumerate(required.items()):
        pieces.append(("{" if n == 0 else ",") + orjson.dumps(key).decode() + ":")
        pieces.extend(value)
    for key, value in optional.items():
        pieces.append(pc.binary_join_element_wise("," + orjson.dumps(key).decode() + ":", value, ""))
    pieces.append("}")
    return pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="")
