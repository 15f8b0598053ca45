"""Type conversion: CAST / TRY_CAST, implicit conversions, GetType.

Public API used by the evaluator:

* :func:`cast` -- ``CAST(x AS t)`` / ``TRY_CAST(x AS t)`` on an Arrow array.
* :func:`to_datetime` -- the implicit string -> datetime conversion (date functions,
  TIMESTAMP BY): ISO-8601 with or without offset -> ``timestamp[us, UTC]``.
* :func:`to_float` -- implicit conversion to float (numeric strings, bigint, bit).
* :func:`get_type` -- ``GetType(x)`` per value.

Conversion rules (ASA, R:data-types / R:cast / R:try-cast):

===============  ===================================================================
target           from
===============  ===================================================================
bigint           bigint; float (truncated toward zero; NaN/inf/out of range fail);
                 bit (1/0); integer text ('42', ' -7 '; '4x2' and '19.5' fail)
float            bigint; float; bit (1.0/0.0); numeric text ('19.5', '1e3')
nvarchar(max)    bigint ('7'); float (shortest round-trip text: 2.5 -> '2.5', 7.0 -> '7');
                 bit ('true'/'false'); datetime ('2024-05-14T09:30:00.0000000Z'); text
datetime         datetime; ISO-8601 text (no offset = UTC)
bit              bit; bigint (0 -> 0, else 1); float (0.0 -> 0, else 1);
                 text 'true'/'false'/'1'/'0' (case-insensitive)
record           record
array            array
===============  ===================================================================

Anything else fails: CAST raises :class:`ExecutionError` (code ``cast_failed``, attribute
``row`` = index of the first failing row); TRY_CAST gives NULL for each failing row.
NULL converts to NULL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import ExecutionError
from asaql.functions.args import (
    as_array,
    as_bool_mask,
    batch_length,
    from_python,
    is_string,
    python_values,
)
from asaql.functions.registry import KernelContext, scalar
from asaql.types import (
    DATETIME,
    asa_type_name,
    asa_type_of_value,
    format_datetime,
    is_variant,
    normalize_type_name,
    parse_datetime_text,
)

__all__ = ["cast", "format_float", "get_type", "to_datetime", "to_float", "to_nvarchar"]

_INT_RE = r"^\s*[+-]?\d+\s*$"
_NUMBER_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)

_ARROW_TARGET = {
    "bigint": pa.int64(),
    "float": pa.float64(),
    "nvarchar(max)": pa.string(),
    "datetime": DATETIME,
    "bit": pa.bool_(),
}


class _CastFail(Exception):
    pass


# --------------------------------------------------------------------------- helpers


def _scalar_to_array(arr: Any) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks()
    if isinstance(arr, pa.Array):
        return arr
    return as_array(arr, 1)


def _value_text(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return format_datetime(v)
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, dict | list):
        text = json.dumps(v, default=str)
    else:
        text = str(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _cast_error(value: Any, source: str, target: str, row: int) -> ExecutionError:
    err = ExecutionError(
        f"Cannot cast value '{_value_text(value)}' of type '{source}' to type '{target}'. "
        "TRY_CAST function can be used to return NULL instead of failing the job.",
        code="cast_failed",
        help="TRY_CAST function can be used to return NULL instead of failing the job: "
        f"TRY_CAST(... AS {target})",
    )
    err.row = row  # type: ignore[attr-defined]
    return err


def format_float(x: float) -> str:
    """A float as .NET (Core 3.0+) ``double.ToString()`` writes it: the shortest round-trip
    digits, in fixed notation unless the decimal point would sit more than
    max(digits, 15) places right of the first digit, or more than 3 places left of it;
    the exponent has a sign and at least two digits (2.5 -> '2.5', 7.0 -> '7',
    1e15 -> '1E+15', 123456789012345.0 -> '123456789012345', 1e-05 -> '1E-05')."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign, digit_tuple, exponent = decimal.Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    scale = len(digits) + int(exponent)  # digits before the decimal point
    prefix = "-" if sign else ""
    if scale > max(len(digits), 15) or scale < -3:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        power = scale - 1
        return f"{prefix}{mantissa}E{'+' if power >= 0 else '-'}{abs(power):02d}"
    if scale <= 0:
        return f"{prefix}0.{'0' * -scale}{digits}"
    if scale >= len(digits):
        return prefix + digits + "0" * (scale - len(digits))
    return f"{prefix}{digits[:scale]}.{digits[scale:]}"


def _null_target(n: int, target: str) -> pa.Array:
    if target == "record":
        return pa.nulls(n, pa.struct([]))
    if target == "array":
        return pa.nulls(n, pa.list_(pa.null()))
    return pa.nulls(n, _ARROW_TARGET[target])


# --------------------------------------------------------------------------- vectorized


def _fail_all(arr: pa.Array, target: str) -> tuple[pa.Array, np.ndarray]:
    bad = as_bool_mask(pc.is_valid(arr))
    return _null_target(len(arr), target), bad


def _strings_to_float(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    ok = pc.match_substring_regex(arr, _NUMBER_RE)
    cleaned = pc.if_else(ok, pc.utf8_trim_whitespace(arr), pa.scalar(None, arr.type))
    out = pc.cast(cleaned, pa.float64())
    bad = as_bool_mask(pc.and_(pc.is_valid(arr), pc.invert(ok.fill_null(True))))
    return out, bad


def _strings_to_int(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    ok = pc.match_substring_regex(arr, _INT_RE)
    cleaned = pc.if_else(ok, pc.utf8_trim_whitespace(arr), pa.scalar(None, arr.type))
    try:
        out = pc.cast(cleaned, pa.int64())
    except pa.ArrowInvalid:  # out of int64 range somewhere: per value (rare)
        vals = cleaned.to_pylist()
        res = []
        for v in vals:
            iv = None if v is None else int(v)
            res.append(iv if iv is not None and _INT64_MIN <= iv <= _INT64_MAX else None)
        out = pa.array(res, pa.int64())
        ok = pc.and_(ok, pc.is_valid(out))
    bad = as_bool_mask(pc.and_(pc.is_valid(arr), pc.invert(ok.fill_null(True))))
    return out, bad


def _float_to_int(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    ok = pc.and_(
        pc.is_finite(arr),
        pc.and_(pc.greater_equal(arr, -9.223372036854776e18), pc.less(arr, 9.223372036854776e18)),
    )
    safe = pc.if_else(ok, arr, pa.scalar(None, pa.float64()))
    out = pc.cast(pc.trunc(safe), pa.int64(), safe=False)
    bad = as_bool_mask(pc.and_(pc.is_valid(arr), pc.invert(ok.fill_null(True))))
    return out, bad


# the common ISO-8601 shapes, which Arrow's parser reads as Python does (the rest, and any
# row Arrow refuses, e.g. 24:00:00 or a year outside 1677-2262, is parsed in Python)
_ISO_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$"
_ISO_NAIVE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_US = dt.timedelta(microseconds=1)


def _arrow_datetimes(arr: pa.Array) -> pa.Array | None:
    """Arrow's ISO-8601 parse of every value as ``timestamp[us, UTC]`` (naive text is UTC),
    or None when some value is refused."""
    try:
        ns = pc.cast(arr, pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        try:  # no offsets at all: naive text means UTC
            ns = pc.cast(pc.cast(arr, pa.timestamp("ns")), pa.timestamp("ns", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    as_int = ns.cast(pa.int64())
    low = pc.min(as_int).as_py()
    if low is None or low >= 0:
        return pc.cast(ns, DATETIME, safe=False)
    # before 1970 a cast truncates toward zero; the time is the microsecond at or before it
    filled = pc.fill_null(as_int, 0).to_numpy()
    mask = as_int.is_null().to_numpy(zero_copy_only=False) if as_int.null_count else None
    return pa.array(np.floor_divide(filled, 1000), pa.int64(), mask=mask).cast(DATETIME)


def _parse_datetime_strings(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """ISO-8601 text -> timestamp[us, UTC]: Arrow's parser for the whole array, else row by
    row: the rows of the common shapes through Arrow (zoned and naive apart), the others
    (and the rows of a shape Arrow refuses) in Python."""
    n = len(arr)
    if n == 0:
        return pa.array([], DATETIME), np.zeros(0, bool)
    whole = _arrow_datetimes(arr)
    if whole is not None:
        return whole, np.zeros(n, bool)
    us = np.zeros(n, np.int64)
    valid = np.zeros(n, bool)
    todo = arr.is_valid().to_numpy(zero_copy_only=False).copy()
    for shape in (_ISO_ZONED, _ISO_NAIVE):
        match = pc.fill_null(pc.match_substring_regex(arr, shape), False).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(match & todo)
        if not len(rows):
            continue
        part = _arrow_datetimes(arr.take(pa.array(rows)))
        if part is None:
            continue
        us[rows] = part.cast(pa.int64()).to_numpy()
        valid[rows] = True
        todo[rows] = False
    bad = np.zeros(n, bool)
    rest = np.flatnonzero(todo)
    for i, text in zip(rest.tolist(), arr.take(pa.array(rest, pa.int64())).to_pylist(), strict=True):
        try:
            us[i] = (parse_datetime_text(text.strip()) - _EPOCH) // _ONE_US
            valid[i] = True
        except (ValueError, OverflowError):
            bad[i] = True
    return pa.array(us, pa.int64(), mask=~valid).cast(DATETIME), bad


def _format_datetimes(arr: pa.Array) -> pa.Array:
    """timestamp -> '2024-05-14T09:30:00.1234560Z' (vectorized)."""
    arr = pc.cast(arr, DATETIME)
    text = pc.strftime(arr, format="%Y-%m-%dT%H:%M:%S")  # includes .ffffff for us unit
    return pc.binary_join_element_wise(text, pa.scalar("0Z"), "")


def _floats_to_text(arr: pa.Array) -> pa.Array:
    """float -> text as .NET writes it (:func:`format_float`). Slow path: Arrow's float
    formatting switches to exponents at other magnitudes than .NET, so values are formatted
    one by one."""
    return pa.array([None if v is None else format_float(v) for v in arr.to_pylist()], pa.string())


def _cast_vectorized(arr: pa.Array, target: str) -> tuple[pa.Array, np.ndarray | None]:
    """Convert a typed (non-Variant) array. Returns (result, bad mask or None)."""
    t = arr.type
    n = len(arr)
    if pa.types.is_null(t):
        return _null_target(n, target), None
    if target == "bigint":
        if pa.types.is_integer(t):
            return pc.cast(arr, pa.int64()), None
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            return _float_to_int(pc.cast(arr, pa.float64()))
        if pa.types.is_boolean(t):
            return pc.cast(arr, pa.int64()), None
        if is_string(t):
            return _strings_to_int(arr)
        return _fail_all(arr, target)
    if target == "float":
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return pc.cast(arr, pa.float64(), safe=False), None
        if pa.types.is_boolean(t):
            return pc.cast(pc.cast(arr, pa.int64()), pa.float64()), None
        if is_string(t):
            return _strings_to_float(arr)
        return _fail_all(arr, target)
    if target == "nvarchar(max)":
        if is_string(t):
            return pc.cast(arr, pa.string()), None
        if pa.types.is_integer(t):
            return pc.cast(arr, pa.string()), None
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            return _floats_to_text(pc.cast(arr, pa.float64())), None
        if pa.types.is_boolean(t):
            return pc.if_else(arr, pa.scalar("true"), pa.scalar("false")), None
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            return _format_datetimes(arr), None
        return _fail_all(arr, target)
    if target == "datetime":
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            if pa.types.is_timestamp(t) and t.tz is None:
                arr = pc.cast(pc.cast(arr, pa.timestamp("us"), safe=False), DATETIME)
            return pc.cast(arr, DATETIME, safe=False), None
        if is_string(t):
            return _parse_datetime_strings(arr)
        return _fail_all(arr, target)
    if target == "bit":
        if pa.types.is_boolean(t):
            return arr, None
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return pc.not_equal(arr, pa.scalar(0, t) if not pa.types.is_decimal(t) else 0), None
        if is_string(t):
            low = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
            is_true = pc.is_in(low, value_set=pa.array(["true", "1"]))
            is_false = pc.is_in(low, value_set=pa.array(["false", "0"]))
            ok = pc.or_(is_true, is_false)
            out = pc.if_else(ok, is_true, pa.scalar(None, pa.bool_()))
            bad = as_bool_mask(pc.and_(pc.is_valid(arr), pc.invert(ok)))
            return out, bad
        return _fail_all(arr, target)
    if target == "record":
        if pa.types.is_struct(t) or pa.types.is_map(t):
            return arr, None
        return _fail_all(arr, target)
    if target == "array":
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return arr, None
        return _fail_all(arr, target)
    raise ExecutionError(f"unknown type '{target}'", code="cast_failed")


# --------------------------------------------------------------------------- per value


def cast_value(v: Any, target: str) -> Any:
    """Convert one Python value (the Variant slow path). Raises _CastFail."""
    if v is None:
        return None
    kind = asa_type_of_value(v)
    if target == "bigint":
        if kind == "bit":
            return int(v)
        if kind == "bigint":
            return v
        if kind == "float":
            if not math.isfinite(v) or not (-9.223372036854776e18 <= v < 9.223372036854776e18):
                raise _CastFail
            return int(v)
        if kind == "nvarchar(max)":
            s = v.strip()
            if s and (s.lstrip("+-").isdigit()) and s.count("+") + s.count("-") <= 1 and s[0] in "+-0123456789":
                iv = int(s)
                if _INT64_MIN <= iv <= _INT64_MAX:
                    return iv
        raise _CastFail
    if target == "float":
        if kind in ("bit", "bigint", "float"):
            return float(v)
        if kind == "nvarchar(max)":
            out, bad = _strings_to_float(pa.array([v]))
            if bad[0]:
                raise _CastFail
            return out[0].as_py()
        raise _CastFail
    if target == "nvarchar(max)":
        if kind == "nvarchar(max)":
            return v
        if kind == "bit":
            return "true" if v else "false"
        if kind == "bigint":
            return str(v)
        if kind == "float":
            return format_float(v)
        if kind == "datetime":
            return format_datetime(v)
        raise _CastFail
    if target == "datetime":
        if kind == "datetime":
            return v
        if kind == "nvarchar(max)":
            try:
                return parse_datetime_text(v.strip())
            except (ValueError, OverflowError) as exc:
                raise _CastFail from exc
        raise _CastFail
    if target == "bit":
        if kind == "bit":
            return v
        if kind in ("bigint", "float"):
            return v != 0
        if kind == "nvarchar(max)":
            s = v.strip().lower()
            if s in ("true", "1"):
                return True
            if s in ("false", "0"):
                return False
        raise _CastFail
    if target == "record":
        if kind == "record":
            return v
        raise _CastFail
    if target == "array":
        if kind == "array":
            return v
        raise _CastFail
    raise _CastFail


def _cast_variant(arr: pa.Array, target: str, try_: bool) -> pa.Array:
    """Slow path: a Variant column converted value by value."""
    out: list[Any] = []
    for i, v in enumerate(python_values(arr)):
        try:
            out.append(cast_value(v, target))
        except _CastFail:
            if not try_:
                raise _cast_error(v, asa_type_of_value(v) or "any", target, i) from None
            out.append(None)
    if target in _ARROW_TARGET:
        return pa.array(out, _ARROW_TARGET[target])
    return from_python(out)


# --------------------------------------------------------------------------- public API


def cast(arr: pa.Array, type_name: str, *, try_: bool = False) -> pa.Array:
    """``CAST(arr AS type_name)`` (or ``TRY_CAST`` with ``try_=True``).

    ``type_name`` is a canonical ASA type name (aliases are accepted). CAST raises
    ``ExecutionError(code='cast_failed')`` with attribute ``row`` (first failing row);
    TRY_CAST returns NULL for each failing row.
    """
    target = normalize_type_name(type_name)
    if target is None:
        raise ExecutionError(f"unknown type '{type_name}'", code="unknown_type")
    arr = _scalar_to_array(arr)
    if is_variant(arr.type):
        return _cast_variant(arr, target, try_)
    out, bad = _cast_vectorized(arr, target)
    if bad is not None and bad.any():
        if not try_:
            row = int(np.argmax(bad))
            value = arr[row].as_py()
            raise _cast_error(value, asa_type_name(arr.type), target, row)
        out = pc.if_else(pa.array(bad), pa.scalar(None, out.type), out)
    return out


def to_datetime(arr: pa.Array, *, try_: bool = False) -> pa.Array:
    """Implicit conversion to datetime (date functions, TIMESTAMP BY).

    datetime -> itself (as timestamp[us, UTC]); ISO-8601 text with or without offset -> UTC;
    NULL -> NULL. Anything else raises ``ExecutionError`` (code ``invalid_datetime``) with
    attribute ``row``, unless ``try_`` (then NULL).
    """
    arr = _scalar_to_array(arr)
    t = arr.type
    if is_variant(t):
        out: list[Any] = []
        for i, v in enumerate(python_values(arr)):
            try:
                out.append(cast_value(v, "datetime"))
            except _CastFail:
                if try_:
                    out.append(None)
                    continue
                raise _dt_error(v, asa_type_of_value(v) or "any", i) from None
        return pa.array(out, DATETIME)
    if pa.types.is_null(t):
        return pa.nulls(len(arr), DATETIME)
    if pa.types.is_timestamp(t) and t == DATETIME:
        return arr
    res, bad = _cast_vectorized(arr, "datetime")
    if bad is not None and bad.any():
        if try_:
            return pc.if_else(pa.array(bad), pa.scalar(None, DATETIME), res)
        row = int(np.argmax(bad))
        raise _dt_error(arr[row].as_py(), asa_type_name(t), row)
    return res


def _dt_error(value: Any, source: str, row: int) -> ExecutionError:
    err = ExecutionError(
        f"Cannot convert value '{_value_text(value)}' of type '{source}' to type 'datetime'.",
        code="invalid_datetime",
        help="use an ISO-8601 text such as '2024-05-14T09:30:00Z', or TRY_CAST(... AS datetime)",
    )
    err.row = row  # type: ignore[attr-defined]
    return err


def to_float(arr: pa.Array) -> pa.Array:
    """Implicit conversion to float: bigint, float, bit, numeric text (else ExecutionError)."""
    return cast(arr, "float")


def to_nvarchar(arr: pa.Array) -> pa.Array:
    """Implicit conversion to text (string concatenation with ``+`` / CONCAT)."""
    return cast(arr, "nvarchar(max)")


def get_type(arr: pa.Array) -> pa.Array:
    """GetType per value: 'bigint', 'float', 'nvarchar(max)', 'datetime', 'bit', 'record',
    'array'; NULL for a NULL value."""
    arr = _scalar_to_array(arr)
    if is_variant(arr.type):
        return pa.array([asa_type_of_value(v) for v in python_values(arr)], pa.string())
    name = asa_type_name(arr.type)
    if name in ("null", "any"):
        return pa.nulls(len(arr), pa.string())
    full = pa.repeat(pa.scalar(name), len(arr))
    if arr.null_count:
        return pc.if_else(pc.is_valid(arr), full, pa.scalar(None, pa.string()))
    return full


@scalar("GetType", args=(1, 1), returns="nvarchar(max)")
def gettype_kernel(args: list[Any], ctx: KernelContext) -> pa.Array:
    """GetType(x): the ASA type name of each value."""
    return get_type(as_array(args[0], batch_length(args, ctx.length)))
