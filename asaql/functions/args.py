"""Shared helpers for scalar kernels.

Kernels receive ``pa.Array`` (batch length) or ``pa.Scalar`` (constants) arguments whose Arrow
type is decided per batch (see :mod:`asaql.types`). These helpers keep the kernels short:

* :func:`as_array` broadcasts a scalar to the batch length;
* :func:`const_str` / :func:`const_value` read a constant argument;
* :func:`null_mask` / :func:`any_null` / :func:`with_nulls` implement "NULL in -> NULL out";
* :func:`numeric` coerces an argument to int64/float64 (numeric strings become float, as ASA's
  implicit conversion does) and raises ASA's "invalid type" error otherwise;
* :func:`map_values` is **the slow path**: a per-value Python loop, used only for Variant
  (mixed-type) columns and for the few functions that have no Arrow compute kernel. It is the
  only place in the function library that loops over values in Python (geo.py aside).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import ExecutionError
from asaql.types import (
    DATETIME,
    VARIANT,
    asa_type_name,
    asa_type_of_value,
    is_variant,
    to_python,
    variant_array,
)

__all__ = [
    "ORDINALS",
    "any_null",
    "arg_type_error",
    "as_array",
    "as_bool_mask",
    "batch_length",
    "const_str",
    "const_value",
    "from_python",
    "is_null_type",
    "is_numeric",
    "is_string",
    "map_values",
    "null_mask",
    "numeric",
    "ordinal",
    "python_values",
    "to_float64",
    "to_int64",
    "type_name_of",
    "with_nulls",
]

Arg = pa.Array | pa.Scalar | pa.ChunkedArray


# --------------------------------------------------------------------------- shapes


def batch_length(args: Sequence[Any], default: int = 1) -> int:
    """Length of the first array argument (``default`` if every argument is a scalar)."""
    for a in args:
        if isinstance(a, pa.ChunkedArray | pa.Array):
            return len(a)
    return default


def as_array(arg: Arg | Any, length: int) -> pa.Array:
    """Broadcast a scalar (``pa.Scalar`` or Python value) to an array of ``length``.

    Arrays are returned as they are (chunked arrays are combined).
    """
    if isinstance(arg, pa.ChunkedArray):
        return arg.combine_chunks()
    if isinstance(arg, pa.Array):
        return arg
    if not isinstance(arg, pa.Scalar):
        arg = pa.scalar(arg) if arg is not None else pa.scalar(None, pa.null())
    if isinstance(arg, pa.ExtensionScalar):
        storage = as_array(arg.value if arg.value is not None else pa.scalar(None, arg.type.storage_type),
                           length)
        return pa.ExtensionArray.from_storage(arg.type, storage.cast(arg.type.storage_type))
    if not arg.is_valid:
        return pa.nulls(length, arg.type)
    return pa.repeat(arg, length)


def is_null_type(arg: Arg) -> bool:
    return pa.types.is_null(arg.type)


def is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def const_value(arg: Arg | Any) -> Any:
    """The Python value of a constant argument (``pa.Scalar``); raises if it is an array."""
    if isinstance(arg, pa.Scalar):
        if isinstance(arg, pa.ExtensionScalar):
            v = arg.value
            return None if v is None or not v.is_valid else json.loads(v.as_py())
        return arg.as_py()
    if isinstance(arg, pa.Array | pa.ChunkedArray):
        raise TypeError("expected a constant argument")
    return arg


def const_str(arg: Arg | Any) -> str | None:
    """The text of a constant string argument (None for NULL or a non-constant argument)."""
    if isinstance(arg, pa.Scalar):
        v = const_value(arg)
        return v if isinstance(v, str) else None
    if isinstance(arg, str):
        return arg
    return None


def type_name_of(arg: Arg) -> str:
    """ASA type name of an argument's Arrow type ('any' for a Variant column)."""
    return "any" if is_variant(arg.type) else asa_type_name(arg.type)


# --------------------------------------------------------------------------- NULLs


def null_mask(arr: pa.Array) -> pa.Array:
    """Boolean array, True where ``arr`` is NULL (never itself NULL)."""
    if is_variant(arr.type):
        arr = arr.storage
    return pc.is_null(arr)


def any_null(arrays: Sequence[pa.Array], length: int) -> pa.Array:
    """True where any of ``arrays`` is NULL."""
    mask = pa.repeat(pa.scalar(False), length)
    for a in arrays:
        mask = pc.or_(mask, null_mask(as_array(a, length)))
    return mask


def with_nulls(result: pa.Array, mask: pa.Array | None) -> pa.Array:
    """``result`` with NULL where ``mask`` is True."""
    if mask is None:
        return result
    if not pc.any(mask).as_py():
        return result
    return pc.if_else(mask, pa.scalar(None, result.type), result)


def as_bool_mask(arr: pa.Array) -> np.ndarray:
    """A numpy bool array from an Arrow boolean array (NULL -> False)."""
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


# --------------------------------------------------------------------------- numbers

ORDINALS = {1: "1st", 2: "2nd", 3: "3rd"}


def ordinal(n: int) -> str:
    return ORDINALS.get(n, f"{n}th")


def arg_type_error(fn: str, position: int, got: str, allowed: Sequence[str]) -> ExecutionError:
    """ASA's wrong-argument-type runtime error (position is 1-based)::

        The 1st argument of function round has invalid type 'nvarchar(max)'.
        Only 'bigint', 'float' is allowed.
    """
    allowed_text = ", ".join(f"'{a}'" for a in allowed)
    return ExecutionError(
        f"The {ordinal(position)} argument of function {fn.lower()} has invalid type '{got}'. "
        f"Only {allowed_text} is allowed.",
        code="invalid_argument_type",
    )


_NUMBER_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_INT_RE = r"^\s*[+-]?\d+\s*$"


def _parse_numeric_strings(arr: pa.Array, fn: str, position: int, *, strict: bool) -> pa.Array:
    ok = pc.match_substring_regex(arr, _NUMBER_RE)
    bad = pc.and_(pc.invert(ok.fill_null(True)), pc.is_valid(arr))
    if strict and pc.any(bad).as_py():
        raise arg_type_error(fn, position, "nvarchar(max)", ("bigint", "float"))
    cleaned = pc.if_else(ok, pc.utf8_trim_whitespace(arr), pa.scalar(None, arr.type))
    return pc.cast(cleaned, pa.float64())


def numeric(
    arg: Arg,
    length: int,
    fn: str,
    position: int,
    *,
    allow_bit: bool = True,
    allowed: Sequence[str] = ("bigint", "float"),
) -> pa.Array:
    """Coerce an argument to int64 or float64 for a math function.

    bigint -> int64, float -> float64, bit -> int64 (0/1), numeric strings -> float64 (ASA's
    implicit conversion), NULL -> NULL. Anything else (or a non-numeric string) raises the
    ASA "invalid type" error naming ``fn`` and the 1-based argument ``position``.
    A Variant column becomes float64 if any value is fractional, else int64.
    """
    arr = as_array(arg, length)
    t = arr.type
    if pa.types.is_integer(t):
        return arr if t == pa.int64() else pc.cast(arr, pa.int64())
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return arr if t == pa.float64() else pc.cast(arr, pa.float64())
    if pa.types.is_null(t):
        return pa.nulls(length, pa.int64())
    if pa.types.is_boolean(t) and allow_bit:
        return pc.cast(arr, pa.int64())
    if is_string(t):
        return _parse_numeric_strings(arr, fn, position, strict=True)
    if is_variant(t):
        values = python_values(arr)
        out: list[Any] = []
        any_float = False
        for v in values:  # slow path: mixed-type column
            if v is None:
                out.append(None)
            elif isinstance(v, bool):
                if not allow_bit:
                    raise arg_type_error(fn, position, "bit", allowed)
                out.append(int(v))
            elif isinstance(v, int):
                out.append(v)
            elif isinstance(v, float):
                any_float = True
                out.append(v)
            elif isinstance(v, str):
                parsed = _parse_numeric_strings(pa.array([v]), fn, position, strict=True)[0].as_py()
                any_float = True
                out.append(parsed)
            else:
                raise arg_type_error(fn, position, asa_type_of_value(v) or "any", allowed)
        if any_float:
            return pa.array([None if v is None else float(v) for v in out], pa.float64())
        return pa.array(out, pa.int64())
    raise arg_type_error(fn, position, asa_type_name(t), allowed)


def to_int64(arg: Arg, length: int, fn: str, position: int) -> pa.Array:
    """An integer argument (lengths, counts, code points): floats are truncated toward zero."""
    arr = numeric(arg, length, fn, position)
    if pa.types.is_floating(arr.type):
        arr = pc.cast(pc.trunc(arr), pa.int64(), safe=False)
    return arr


def to_float64(arg: Arg, length: int, fn: str, position: int) -> pa.Array:
    arr = numeric(arg, length, fn, position)
    return pc.cast(arr, pa.float64(), safe=False)


# --------------------------------------------------------------------------- slow path


def python_values(arr: Arg, length: int | None = None) -> list[Any]:
    """Python values of an argument (Variant decoded; datetimes tz-aware UTC)."""
    if isinstance(arr, pa.Scalar):
        v = const_value(arr)
        return [v] * (length if length is not None else 1)
    return to_python(arr)


def _uniform_arrow_type(values: Sequence[Any]) -> pa.DataType | None | str:
    kinds = {asa_type_of_value(v) for v in values if v is not None}
    if not kinds:
        return None
    if len(kinds) > 1:
        return "variant"
    kind = kinds.pop()
    return {
        "bigint": pa.int64(),
        "float": pa.float64(),
        "nvarchar(max)": pa.string(),
        "datetime": DATETIME,
        "bit": pa.bool_(),
    }.get(kind, kind)


def from_python(values: Sequence[Any], type: pa.DataType | None = None) -> pa.Array:
    """Build an asaql column from Python values.

    With ``type`` the values are converted to it. Otherwise the Arrow type is inferred: one
    ASA type -> that Arrow type (records -> struct, arrays -> list, when Arrow can infer them),
    mixed types -> a Variant column, all NULL -> ``pa.null()``.
    """
    if type is not None:
        if is_variant(type):
            return variant_array(list(values))
        return pa.array(list(values), type=type)
    t = _uniform_arrow_type(values)
    if t is None:
        return pa.nulls(len(values))
    if t == "variant":
        return variant_array(list(values))
    if isinstance(t, pa.DataType):
        return pa.array(list(values), type=t)
    try:  # record / array: let Arrow infer a struct / list type
        return pa.array(list(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return variant_array(list(values))


def map_values(
    fn: Callable[..., Any],
    *arrays: Arg,
    length: int | None = None,
    type: pa.DataType | None = None,
    null_in_null_out: bool = True,
) -> pa.Array:
    """THE SLOW PATH: call ``fn`` once per row on Python values and build a column.

    Used for Variant (mixed-type) columns and for the few functions that Arrow compute has no
    kernel for (REGEXMATCH, TRANSLATE, geo, ...). With ``null_in_null_out`` a row where any
    argument is NULL gives NULL without calling ``fn``. ``type`` fixes the result Arrow type;
    otherwise :func:`from_python` infers it.
    """
    if length is None:
        length = batch_length(arrays)
    columns = [python_values(a, length) for a in arrays]
    out: list[Any] = []
    for row in zip(*columns, strict=True) if columns else [()] * length:
        if null_in_null_out and any(v is None for v in row):
            out.append(None)
        else:
            out.append(fn(*row))
    return from_python(out, type)


def variant_or(arr: pa.Array) -> bool:
    """True if ``arr`` is a Variant column."""
    return is_variant(arr.type)


def datetime_py(value: dt.datetime) -> dt.datetime:
    """Normalize a Python datetime to tz-aware UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


_ = VARIANT  # re-exported for kernels that build Variant results
