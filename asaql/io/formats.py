"""Formats: names, detection from a path, and the value conversions the readers and writers share.

Two directions:

* **in** — Python values (``json.loads`` results, ``list[dict]`` memory inputs) become Arrow columns
  with ASA's JSON typing rules (:func:`column_from_values`, :func:`rows_to_batch`): integer ->
  bigint (int64), fraction -> float, int + float in one column -> float64, true/false -> bit,
  object -> record, array -> array, any other mix -> a :class:`~asaql.types.VariantType` column.
* **out** — Arrow columns become JSON text per value, vectorized with pyarrow kernels
  (:func:`json_text`): datetimes as ``2024-05-14T12:00:10.0000000Z``, integral floats as ``7.0``,
  NaN/inf as ``null``, Variant values verbatim.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import ConfigError
from asaql.types import DATETIME, format_datetime, is_variant, to_python, variant_array

__all__ = [
    "CSV",
    "JSON",
    "PARQUET",
    "ByteSink",
    "column_from_values",
    "detect_format",
    "format_datetimes",
    "infer_type",
    "json_text",
    "match_columns",
    "rows_to_batch",
]

JSON = "json"
CSV = "csv"
PARQUET = "parquet"

_ALIASES = {
    "json": JSON,
    "jsonl": JSON,
    "ndjson": JSON,
    "jsonlines": JSON,
    "csv": CSV,
    "parquet": PARQUET,
    "pq": PARQUET,
}
_EXTENSIONS = {
    ".jsonl": JSON,
    ".ndjson": JSON,
    ".json": JSON,
    ".csv": CSV,
    ".parquet": PARQUET,
    ".pq": PARQUET,
}
#: compression suffixes a reader may see (pyarrow decompresses them on the fly)
COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")


def detect_format(path: str, explicit: str | None = None) -> str:
    """``json`` / ``csv`` / ``parquet`` from an explicit name or the file extension.

    ``-`` (stdin/stdout) and unknown extensions mean JSON lines.

    >>> detect_format("data/iot.ndjson"), detect_format("ref.CSV"), detect_format("-")
    ('json', 'csv', 'json')
    """
    if explicit:
        fmt = _ALIASES.get(explicit.strip().lower())
        if fmt is None:
            raise ConfigError(
                f"unknown data format '{explicit}'", help="use one of: json, csv, parquet"
            )
        return fmt
    if path == "-":
        return JSON
    lower = path.lower()
    for suffix in COMPRESSED:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
    for ext, fmt in _EXTENSIONS.items():
        if lower.endswith(ext):
            return fmt
    return JSON


def match_columns(names: Sequence[str], columns: Iterable[str] | None) -> list[str]:
    """The names (in data order) matching the requested columns case-insensitively."""
    if columns is None:
        return list(names)
    wanted = {c.lower() for c in columns}
    return [n for n in names if n.lower() in wanted]


# --------------------------------------------------------------------------- Python -> Arrow

_BOOL, _INT, _FLOAT, _STR, _DICT, _LIST, _DT = range(7)
_KIND = {bool: _BOOL, int: _INT, float: _FLOAT, str: _STR, dict: _DICT, list: _LIST,
         tuple: _LIST, dt.datetime: _DT}
_SCALAR = {_BOOL: pa.bool_(), _INT: pa.int64(), _FLOAT: pa.float64(), _STR: pa.string(),
           _DT: DATETIME}
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def _kind(value: Any) -> int:
    k = _KIND.get(type(value))
    if k is not None:
        return k
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, int):
        return _INT
    if isinstance(value, float):
        return _FLOAT
    if isinstance(value, str):
        return _STR
    if isinstance(value, dict):
        return _DICT
    if isinstance(value, list | tuple):
        return _LIST
    if isinstance(value, dt.datetime):
        return _DT
    return -1


def infer_type(values: Sequence[Any]) -> pa.DataType | None:
    """The Arrow type of a column of Python values, or None when the values' types are mixed.

    >>> infer_type([1, 2.5, None]), infer_type([1, "a"])
    (DataType(double), None)
    """
    kinds = set()
    for v in values:
        if v is not None:
            kinds.add(_kind(v))
    if not kinds:
        return pa.null()
    if len(kinds) == 1:
        (k,) = kinds
        if k in _SCALAR:
            return _SCALAR[k]
        if k == _DICT:
            fields: dict[str, None] = {}
            for v in values:
                if v is not None:
                    for key in v:
                        fields.setdefault(key)
            children = []
            for key in fields:
                t = infer_type([None if v is None else v.get(key) for v in values])
                if t is None:
                    return None
                children.append(pa.field(key, t))
            return pa.struct(children)
        if k == _LIST:
            t = infer_type([x for v in values if v is not None for x in v])
            return None if t is None else pa.list_(t)
        return None
    if kinds == {_INT, _FLOAT}:
        return pa.float64()
    return None


def column_from_values(values: Sequence[Any]) -> pa.Array:
    """An Arrow column from Python values, with ASA's JSON typing rules (mixed -> Variant)."""
    t = infer_type(values)
    if t is not None:
        try:
            return pa.array(values, type=t)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            pass
    return variant_array(list(values))


def rows_to_batch(rows: Sequence[dict[str, Any]], columns: Iterable[str] | None = None) -> pa.RecordBatch:
    """A RecordBatch from events given as dicts; keys in first-seen order (case-sensitive, so
    ``a`` and ``A`` are two fields); ``columns`` keeps only the names matching case-insensitively.
    A row count is kept even when no column is left."""
    keys: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in keys:
                keys[key] = None
    names = match_columns(list(keys), columns)
    if not names:
        return pa.RecordBatch.from_pydict({}).select([]) if not rows else _empty_rows(len(rows))
    arrays = [column_from_values([row.get(n) for row in rows]) for n in names]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _empty_rows(n: int) -> pa.RecordBatch:
    """A batch with n rows and no columns."""
    return pa.RecordBatch.from_arrays([pa.nulls(n)], names=["_"]).select([])


# --------------------------------------------------------------------------- Arrow -> JSON text


def format_datetimes(arr: pa.Array) -> pa.Array:
    """Timestamps as ASA writes them: ``YYYY-MM-DDTHH:MM:SS.fffffffZ`` (NULL stays NULL)."""
    if pa.types.is_date(arr.type):
        arr = arr.cast(pa.timestamp("us"))
    # a naive microsecond timestamp casts to 'YYYY-MM-DD HH:MM:SS.ffffff' quickly (strftime and
    # tz-aware casts are ~15x slower)
    naive = arr.cast(pa.timestamp("us", tz="UTC"), safe=False).view(pa.timestamp("us"))
    text = pc.binary_replace_slice(naive.cast(pa.string()), start=10, stop=11, replacement="T")
    return pc.binary_join_element_wise(text, "0Z", "")


def string_bytes(arr: pa.Array) -> memoryview:
    """The bytes of a string array's values, concatenated, without copying."""
    offsets, data = arr.buffers()[1], arr.buffers()[2]
    if data is None or not len(arr):
        return memoryview(b"")
    off = np.frombuffer(offsets, dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    return memoryview(data)[int(off[0]) : int(off[-1])]


def _needs_escape(arr: pa.Array) -> bool:
    """Whether any value holds a control character, a backslash or a double quote (one
    numpy pass over the bytes: ~4x cheaper than a regex kernel over the values)."""
    b = np.frombuffer(string_bytes(arr), dtype=np.uint8)
    return bool(((b < 0x20) | (b == 0x5C) | (b == 0x22)).any())


def _escape_strings(arr: pa.Array) -> pa.Array:
    """String values as JSON string bodies (without the quotes)."""
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    if not _needs_escape(arr):
        return arr  # the common case: nothing to escape
    if pc.any(pc.match_substring_regex(arr, r"[\x00-\x1f]")).as_py():
        return pa.array(
            [None if v is None else json.dumps(v, ensure_ascii=False)[1:-1] for v in arr.to_pylist()],
            pa.string(),
        )
    if pc.any(pc.match_substring(arr, "\\")).as_py():
        arr = pc.replace_substring(arr, "\\", "\\\\")
    if pc.any(pc.match_substring(arr, '"')).as_py():
        arr = pc.replace_substring(arr, '"', '\\"')
    return arr


def _float_text(arr: pa.Array) -> pa.Array:
    arr = arr.cast(pa.float64())
    text = arr.cast(pa.string())
    finite = pc.is_finite(arr)
    # integral values print as '7' (or '1e+20'): ASA writes a float as '7.0'
    integral = pc.and_(pc.equal(pc.floor(arr), arr), finite)
    if pc.any(integral).as_py():
        # only the integral values' text is touched ('7' -> '7.0'; '1e+20' stays)
        sub = text.filter(integral)
        sub = pc.if_else(pc.match_substring(sub, "e"), sub, pc.binary_join_element_wise(sub, ".0", ""))
        text = pc.replace_with_mask(text, integral, sub)
    if not pc.all(finite).as_py():
        text = pc.if_else(finite, text, pa.scalar(None, pa.string()))
    return text


def _python_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc))
    if isinstance(value, dt.date):
        return format_datetime(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc))
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _python_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], tuple) and len(value[0]) == 2:  # a map's pairs
            return {str(k): _python_json(v) for k, v in value}
        return [_python_json(v) for v in value]
    if hasattr(value, "__float__") and not isinstance(value, int | bool):
        return float(value)
    return value


def _json_text_nullable(arr: pa.Array) -> pa.Array:
    """JSON text per value; NULL where the value is NULL (callers fill in ``null``)."""
    t = arr.type
    if is_variant(t):
        storage = arr.storage
        return storage.cast(pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false")
    if pa.types.is_integer(t):
        return arr.cast(pa.string())
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return _float_text(arr)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.binary_join_element_wise('"', _escape_strings(arr), '"', "")
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pc.binary_join_element_wise('"', format_datetimes(arr), '"', "")
    if pa.types.is_struct(t):
        children = arr.flatten()
        if not children:
            body: Any = pa.array(["{}"] * len(arr), pa.string())
        else:
            parts: list[Any] = []
            for i, (fld, child) in enumerate(zip(t, children, strict=True)):
                parts.append(("{" if i == 0 else ",") + json.dumps(fld.name, ensure_ascii=False) + ":")
                parts.append(json_text(child))
            parts.append("}")
            body = pc.binary_join_element_wise(*parts, "")
        if arr.null_count:
            body = pc.if_else(arr.is_valid(), body, pa.scalar(None, pa.string()))
        return body
    if pa.types.is_fixed_size_list(t):
        arr = arr.cast(pa.list_(t.value_type))
        t = arr.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        offsets = arr.offsets
        values = arr.values
        if len(arr):
            start, end = offsets[0].as_py(), offsets[-1].as_py()
        else:
            start = end = 0
        if start:
            offsets = pc.subtract(offsets, pa.scalar(start, offsets.type))
        values = values.slice(start, end - start)
        enc = json_text(values)
        cls = pa.LargeListArray if pa.types.is_large_list(t) else pa.ListArray
        mask = arr.is_null() if arr.null_count else None
        lists = cls.from_arrays(offsets, enc, mask=mask)
        return pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")
    # anything else (maps, binary, time, duration...): per value
    return pa.array(
        [None if v is None else json.dumps(_python_json(v), ensure_ascii=False, default=str)
         for v in to_python(arr)],
        pa.string(),
    )


def json_text(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """JSON text of every value of a column (``null`` for NULL), as a non-null string array.

    >>> json_text(pa.array([1.0, None, float("nan")])).to_pylist()
    ['1.0', 'null', 'null']
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    text = _json_text_nullable(arr)
    if text.null_count:
        text = pc.fill_null(text, "null")
    return text


class ByteSink:
    """The file side of a text sink: a path (opened and closed here), ``-`` (stdout) or a
    caller's stream (flushed, never closed). Subclasses encode batches and write ``self._f``."""

    def __init__(self, name: str, path: str, *, stream: BinaryIO | None = None) -> None:
        self.name = name
        self.path = path
        if stream is not None:
            self._f, self._owned = stream, False
        elif path == "-":
            self._f, self._owned = sys.stdout.buffer, False
        else:
            self._f, self._owned = open(path, "wb"), True  # noqa: SIM115

    def close(self) -> None:
        if self._f is None:
            return
        try:
            if self._owned:
                self._f.close()
            else:
                self._f.flush()
        finally:
            self._f = None  # type: ignore[assignment]
