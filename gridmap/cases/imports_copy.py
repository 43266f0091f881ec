"""PostgreSQL's binary COPY format, built column-wise with numpy and Arrow (for bulk writes of cases).

Text COPY needs every value formatted (a million timestamps take seconds to print and as long again for
the server to parse); psycopg's ``write_row`` is a Python call per row. The binary format is fixed-width
for numbers, moments and points, so a whole column is converted with a few array operations: each value
becomes ``length (int32) + bytes``, the pieces of a row are joined by Arrow, and the rows are streamed to
``COPY … FROM STDIN (FORMAT binary)`` a chunk at a time, the next chunk encoded while the server parses.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gridmap.cases.imports_clock import NAT

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in µs since 1970-01-01
CHUNK_ROWS = 50_000
_NONE = pa.scalar(b"", pa.large_binary())
_NULL = struct.pack(">i", -1)  # a NULL field: its length only


@dataclass
class Column:
    """One column to copy: its name, its kind (see :data:`ENCODERS`) and its values."""

    name: str
    kind: str
    values: object


def _binary(data: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """An Arrow binary array over ``data`` (the values' bytes, concatenated) cut at ``lengths``."""
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    return pa.Array.from_buffers(pa.large_binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _lengths(lengths: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Each field's int32 length, -1 for NULL, as 4-byte values."""
    prefix = np.where(valid, lengths, -1).astype(">i4")
    return _binary(prefix.view(np.uint8), np.full(len(prefix), 4))


def _fixed(matrix: np.ndarray, valid: np.ndarray) -> list[pa.Array | np.ndarray]:
    """Fixed-width values (a row of bytes each) behind their length; NULL rows only the length. A column
    with no NULL, or only NULLs, is as wide in every row: a byte matrix, which :func:`encode` copies
    together with the matrices beside it before Arrow joins the rows."""
    n, width = matrix.shape
    if not valid.any():
        return [np.tile(np.frombuffer(_NULL, np.uint8), (n, 1))]
    whole = np.empty((n, 4 + width), dtype=np.uint8)
    whole[:, :4] = np.where(valid, width, -1).astype(">i4").view(np.uint8).reshape(n, 4)
    whole[:, 4:] = matrix
    if valid.all():
        return [whole]
    keep = np.ones_like(whole, dtype=bool)
    keep[~valid, 4:] = False
    return [_binary(whole[keep], np.where(valid, 4 + width, 4))]


def _be(values: np.ndarray, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(len(values), -1)


def _strings(values) -> tuple[pa.Array, np.ndarray]:
    """Text as Arrow binary (NULLs empty) and which values are present."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    array = values if isinstance(values, pa.Array) else pa.array(values, type=pa.large_string(), from_pandas=True)
    valid = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return pc.fill_null(array.cast(pa.large_binary()), b""), valid


def _offsets(array: pa.Array) -> np.ndarray:
    return np.frombuffer(array.buffers()[1], dtype=np.int64, count=len(array) + 1, offset=array.offset * 8)


def _text(values) -> list[pa.Array | np.ndarray]:
    """Text as its lengths beside its bytes; a column of a few distinct values (codes, states, places) as
    each value encoded once and taken by row (one piece less to join)."""
    codes, distinct = _distinct(values)
    if codes is not None:
        fields = pc.binary_join_element_wise(*_text(distinct), _NONE) if len(distinct) else pa.array([], pa.binary())
        return _dictionary(codes, fields)
    data, valid = _strings(values)
    return [_lengths(np.diff(_offsets(data)), valid), data]


def _distinct(values) -> tuple[np.ndarray | None, object]:
    """Each row's number among the column's distinct values (-1: NULL) and those values, when there are few
    (at most one in eight rows, and at most 100 among the first thousand); (None, None) otherwise."""
    few = max(len(values) // 8, 1)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array) and len(values) >= 1000 and pc.count_distinct(values[:1000]).as_py() <= 100:
        encoded = values.dictionary_encode()
        if len(encoded.dictionary) <= few:
            return pc.fill_null(encoded.indices, -1).to_numpy(), encoded.dictionary
    elif isinstance(values, np.ndarray) and values.dtype == object and len(values) >= 1000:
        sample = pd.unique(values[:1000])
        if len(sample) == 1 and isinstance(sample[0], str) and (values == sample[0]).all():  # one value: no hashing
            return np.zeros(len(values), dtype=np.int64), np.array(sample, dtype=object)
        if len(sample) <= 100:
            codes, distinct = pd.factorize(values)
            if len(distinct) <= few:
                return codes, np.asarray(distinct, dtype=object)
    return None, None


def _dictionary(codes: np.ndarray, fields) -> list[pa.Array | np.ndarray]:
    """Rows of ``fields`` (each a length and its bytes) picked by ``codes`` (-1: NULL); one field in every
    row is a byte matrix."""
    if (codes < 0).all():
        return [np.tile(np.frombuffer(_NULL, np.uint8), (len(codes), 1))]
    if len(fields) == 1 and (codes == 0).all():
        field_ = fields[0] if isinstance(fields[0], bytes) else fields[0].as_py()
        return [np.tile(np.frombuffer(field_, np.uint8), (len(codes), 1))]
    encoded = pa.concat_arrays([pa.array(fields, pa.large_binary()) if isinstance(fields, list)
                                else fields.cast(pa.large_binary()), pa.array([_NULL], pa.large_binary())])
    return [encoded.take(pa.array(np.where(codes < 0, len(fields), codes)))]


def _field(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def _jsonb(values) -> list[pa.Array | np.ndarray]:
    """jsonb's binary form: a version byte (1), then the text."""
    data, valid = _strings(values)
    version = _binary(np.ones(int(valid.sum()), dtype=np.uint8), valid.astype(np.int64))
    return [_lengths(np.diff(_offsets(data)) + 1, valid), version, data]


def _moment(values: np.ndarray) -> list[pa.Array | np.ndarray]:
    """int64 µs since 1970 (NAT missing) → PostgreSQL's µs since 2000."""
    values = np.asarray(values, dtype=np.int64)
    valid = values != NAT
    return _fixed(_be(np.where(valid, values - _PG_EPOCH_US, 0), ">i8"), valid)


def _number(dtype: str) -> Callable:
    def encode(values) -> list[pa.Array | np.ndarray]:
        values = np.asarray(values, dtype=float) if np.asarray(values).dtype.kind in "fiub" else \
            pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
        valid = np.isfinite(values)
        return _fixed(_be(np.where(valid, values, 0), dtype), valid)
    return encode


def _bool(values) -> list[pa.Array | np.ndarray]:
    values = np.asarray(values)
    if values.dtype == bool:
        return _fixed(values.astype(np.uint8)[:, None], np.ones(len(values), dtype=bool))
    valid = pd.notna(values)
    return _fixed(np.where(valid, values, False).astype(bool).astype(np.uint8)[:, None], valid)


def _points(values) -> list[pa.Array | np.ndarray]:
    """(lon, lat, srid) arrays → EWKB points (little-endian, with SRID), which geometry_recv reads."""
    lon, lat, srid = values
    valid = np.isfinite(lon) & np.isfinite(lat)
    n = len(lon)
    matrix = np.empty((n, 25), dtype=np.uint8)
    matrix[:, 0] = 1
    matrix[:, 1:5] = np.frombuffer(struct.pack("<I", 0x20000001), np.uint8)
    matrix[:, 5:9] = np.frombuffer(struct.pack("<i", srid), np.uint8)
    matrix[:, 9:17] = _be(np.where(valid, lon, 0.0), "<f8")
    matrix[:, 17:25] = _be(np.where(valid, lat, 0.0), "<f8")
    return _fixed(matrix, valid)


def numeric_bytes(value: Decimal) -> bytes:
    """PostgreSQL's binary ``numeric``: base-10000 digits, the weight of the first, sign and scale."""
    text_ = f"{abs(value):f}"
    whole, _, fraction = text_.partition(".")
    whole = whole.lstrip("0")
    whole = whole.rjust(-(-len(whole) // 4) * 4, "0")
    padded = fraction.ljust(-(-len(fraction) // 4) * 4, "0")
    digits = [int(whole[i:i + 4]) for i in range(0, len(whole), 4)]
    digits += [int(padded[i:i + 4]) for i in range(0, len(padded), 4)]
    weight = len(whole) // 4 - 1
    while digits and digits[0] == 0:
        digits.pop(0)
        weight -= 1
    while digits and digits[-1] == 0:
        digits.pop()
    sign = 0x4000 if value < 0 else 0
    return struct.pack(f">hhhh{len(digits)}h", len(digits), weight if digits else 0, sign, len(fraction), *digits)


def _numeric(values) -> list[pa.Array | np.ndarray]:
    """Numbers with few distinct values (time limits): each distinct one encoded once, with its length."""
    values = np.round(np.asarray(values, dtype=float), 2)
    valid = np.isfinite(values)
    distinct, inverse = np.unique(np.where(valid, values, 0.0), return_inverse=True)
    fields = [_field(numeric_bytes(Decimal(f"{v:.2f}"))) for v in distinct]
    return _dictionary(np.where(valid, inverse.ravel(), -1), fields)


ENCODERS: dict[str, Callable] = {"text": _text, "jsonb": _jsonb, "timestamptz": _moment, "float8": _number(">f8"),
                                 "int4": _number(">i4"), "bool": _bool, "point": _points, "numeric": _numeric}


def _length(column: Column) -> int:
    return len(column.values[0]) if column.kind == "point" else len(column.values)


def _slice(column: Column, start: int, stop: int) -> Column:
    values = column.values
    if column.kind == "point":
        return Column(column.name, column.kind, (values[0][start:stop], values[1][start:stop], values[2]))
    return Column(column.name, column.kind, values[start:stop])


def encode(columns: list[Column]) -> pa.Array:
    """The rows of ``columns`` in PostgreSQL's binary COPY format, one binary value per row."""
    n = _length(columns[0])
    pieces, run = [], [np.tile(np.frombuffer(struct.pack(">h", len(columns)), np.uint8), (n, 1))]
    for column in columns:
        for piece in ENCODERS[column.kind](column.values):
            if isinstance(piece, np.ndarray):  # as wide in every row: one matrix with its neighbours
                run.append(piece)
                continue
            if run:
                pieces.append(_matrix(run))
                run = []
            pieces.append(piece)
    if run:
        pieces.append(_matrix(run))
    return pc.binary_join_element_wise(*pieces, _NONE)


def _matrix(run: list[np.ndarray]) -> pa.Array:
    """Side-by-side byte matrices (n rows each) as one binary value per row."""
    whole = np.ascontiguousarray(np.concatenate(run, axis=1)) if len(run) > 1 else np.ascontiguousarray(run[0])
    return _binary(whole.ravel(), np.full(len(whole), whole.shape[1]))


def _stream(rows: pa.Array) -> memoryview:
    """The bytes of the rows of :func:`encode`."""
    offsets = _offsets(rows)
    return memoryview(rows.buffers()[2])[offsets[0]:offsets[-1]]


def copy_rows(cursor, table: str, columns: list[Column], on_chunk: Callable[[int], None] | None = None,
              rows_per_chunk: int = CHUNK_ROWS) -> int:
    """``COPY table (columns) FROM STDIN`` in binary; return the number of rows written (see :func:`copy_batches`)."""
    return copy_batches(cursor, table, [c.name for c in columns], [columns], on_chunk, rows_per_chunk)


def copy_batches(cursor, table: str, names: list[str], batches: Iterable[list[Column]],
                 on_chunk: Callable[[int], None] | None = None, rows_per_chunk: int = CHUNK_ROWS) -> int:
    """``COPY table (names) FROM STDIN`` in binary of the rows of each batch of columns, as the batches come
    (``batches`` may wait for the next one); return the number of rows written.

    The rows are encoded a chunk at a time in a second thread while the previous chunk is sent, so the
    client's encoding overlaps the server's parsing; ``on_chunk`` is called with the rows sent so far. An
    error raised by ``batches`` ends the COPY with that error (the server discards what it took)."""
    chunks = ([_slice(c, start, min(start + rows_per_chunk, _length(batch[0]))) for c in batch]
              for batch in batches for start in range(0, _length(batch[0]), rows_per_chunk))

    def following() -> tuple[int, pa.Array] | None:
        chunk = next(chunks, None)
        return None if chunk is None else (_length(chunk[0]), encode(chunk))

    sent = 0
    statement = f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT binary)"
    with ThreadPoolExecutor(max_workers=1) as pool, cursor.copy(statement) as copy:
        copy.write(HEADER)
        pending = pool.submit(following)
        while (done := pending.result()) is not None:
            pending = pool.submit(following)
            copy.write(_stream(done[1]))
            sent += done[0]
            if on_chunk:
                on_chunk(sent)
        copy.write(TRAILER)
    return sent
