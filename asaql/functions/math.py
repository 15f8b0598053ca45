"""Mathematical functions (R:mathematical-functions-azure-stream-analytics.md).

ASA lists ABS, CEILING, EXP, FLOOR, POWER, ROUND, SIGN, SQRT, SQUARE. LOG and LOG10 are
asaql extensions (``extension=True``); ASA has no trigonometric functions.

Arguments: bigint and float; bit counts as bigint; numeric strings are converted to float
(ASA's implicit conversion); anything else raises ASA's runtime error
"The 1st argument of function round has invalid type 'nvarchar(max)'. Only 'bigint', 'float'
is allowed.".

ABS, SIGN, CEILING, FLOOR and ROUND keep the argument type (bigint stays bigint); POWER is
typed like its base. SQRT/EXP/LOG of a value outside the function's domain (SQRT(-1),
LOG(0)) gives NULL (asaql policy; .NET would give NaN, T-SQL fails).
"""

from __future__ import annotations

import decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import ExecutionError
from asaql.functions.args import batch_length, numeric, to_int64
from asaql.functions.registry import KernelContext, scalar

__all__ = ["round_array", "round_py"]

F64 = pa.float64()
I64 = pa.int64()


def _num(args: list[Any], i: int, n: int, fn: str) -> pa.Array:
    return numeric(args[i], n, fn, i + 1)


def _overflow(fn: str) -> ExecutionError:
    return ExecutionError(f"Arithmetic overflow in function {fn}.", code="arithmetic_overflow")


def _nan_to_null(arr: pa.Array) -> pa.Array:
    """Domain errors (NaN results) become NULL."""
    return pc.if_else(pc.is_nan(arr), pa.scalar(None, F64), arr)


@scalar("ABS", args=(1, 1))
def abs_(args: list[Any], ctx: KernelContext) -> pa.Array:
    """ABS(x): absolute value, same type as x."""
    x = _num(args, 0, batch_length(args, ctx.length), "abs")
    try:
        return pc.abs_checked(x)
    except pa.ArrowInvalid:
        raise _overflow("abs") from None


@scalar("SIGN", args=(1, 1))
def sign(args: list[Any], ctx: KernelContext) -> pa.Array:
    """SIGN(x): -1, 0 or 1, same type as x."""
    x = _num(args, 0, batch_length(args, ctx.length), "sign")
    return pc.cast(pc.sign(x), x.type)


@scalar("CEILING", args=(1, 1))
def ceiling(args: list[Any], ctx: KernelContext) -> pa.Array:
    """CEILING(x): smallest integer >= x, same type as x."""
    x = _num(args, 0, batch_length(args, ctx.length), "ceiling")
    return x if pa.types.is_integer(x.type) else pc.add(pc.ceil(x), 0.0)


@scalar("FLOOR", args=(1, 1))
def floor(args: list[Any], ctx: KernelContext) -> pa.Array:
    """FLOOR(x): largest integer <= x, same type as x."""
    x = _num(args, 0, batch_length(args, ctx.length), "floor")
    return x if pa.types.is_integer(x.type) else pc.floor(x)


# --------------------------------------------------------------------------- ROUND


def round_py(x: float | int, length: int, truncate: bool = False) -> float | int:
    """Reference ROUND: decimal-style, half away from zero (T-SQL / ASA)."""
    if isinstance(x, int) and not isinstance(x, bool):
        if length >= 0:
            return x
        q = 10 ** (-length)
        mag = abs(x) // q if truncate else (abs(x) + q // 2) // q
        return (mag * q) * (1 if x >= 0 else -1)
    if x != x or x in (float("inf"), float("-inf")):
        return x
    d = decimal.Decimal(repr(float(x)))
    mode = decimal.ROUND_DOWN if truncate else decimal.ROUND_HALF_UP
    with decimal.localcontext() as c:
        c.prec = 400
        r = d.quantize(decimal.Decimal(1).scaleb(-length), rounding=mode)
    return float(r) + 0.0


def round_array(x: pa.Array, length: pa.Array, truncate: pa.Array | None = None) -> pa.Array:
    """Vectorized ROUND; rows whose scaled value sits within a few ulps of a tie (where binary
    floating point and decimal rounding may disagree) are redone with :func:`round_py`."""
    n = len(x)
    valid = pc.and_(pc.is_valid(x), pc.is_valid(length))
    if truncate is not None:
        valid = pc.and_(valid, pc.is_valid(truncate))
    lens = length.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    trunc = (
        np.zeros(n, bool)
        if truncate is None
        else truncate.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) != 0
    )
    if pa.types.is_integer(x.type):
        xs = x.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        out = xs.copy()
        neg = lens < 0
        if neg.any():
            if (lens < -18).any():
                small = neg & (lens < -18)
                out[small] = 0
                neg = neg & ~small
            q = np.power(10, np.clip(-lens, 0, 18), dtype=np.int64)
            mag = np.abs(xs)
            half = np.where(trunc, 0, q // 2)
            rounded = ((mag + half) // q) * q
            out = np.where(neg, np.sign(xs) * rounded, out)
        return pc.if_else(valid, pa.array(out, I64), pa.scalar(None, I64))
    xs = x.fill_null(0.0).to_numpy(zero_copy_only=False).astype(np.float64)
    lens_c = np.clip(lens, -308, 308)
    with np.errstate(all="ignore"):
        scale = np.power(10.0, lens_c.astype(np.float64))
        y = xs * scale
        ay = np.abs(y)
        r = np.where(trunc, np.floor(ay), np.floor(ay + 0.5))
        res = np.where(lens_c >= 0, r / scale, r * np.power(10.0, (-lens_c).astype(np.float64)))
        res = np.copysign(res, xs) + 0.0
        frac = ay - np.floor(ay)
        near_tie = np.abs(frac - 0.5) <= 1e-9 * np.maximum(ay, 1.0)
        near_int = np.minimum(frac, 1 - frac) <= 1e-9 * np.maximum(ay, 1.0)
    keep = ~np.isfinite(y) | (ay >= 2.0**52) | ~np.isfinite(xs)
    res = np.where(keep & (lens_c >= 0), xs, res)
    slow = (near_tie & ~trunc) | (near_int & trunc) | (np.abs(lens) > 300)
    slow &= np.isfinite(xs) & ~(keep & (lens_c >= 0))
    # huge scaled values lose their fraction in binary; decimal rounding still applies
    slow |= np.isfinite(xs) & np.isfinite(y) & (ay >= 2.0**52) & (lens_c >= 0)
    valid_np = valid.to_numpy(zero_copy_only=False)
    slow &= valid_np
    if slow.any():  # slow path: exact decimal rounding for near-tie rows only
        for i in np.nonzero(slow)[0]:
            res[i] = round_py(float(xs[i]), int(lens[i]), bool(trunc[i]))
    return pc.if_else(valid, pa.array(res, F64), pa.scalar(None, F64))


@scalar("ROUND", args=(2, 3))
def round_(args: list[Any], ctx: KernelContext) -> pa.Array:
    """ROUND(x, length [, function]): half away from zero, decimal-style; negative length
    rounds left of the point; bigint stays bigint; a non-zero ``function`` truncates."""
    n = batch_length(args, ctx.length)
    x = _num(args, 0, n, "round")
    length = to_int64(args[1], n, "round", 2)
    truncate = to_int64(args[2], n, "round", 3) if len(args) > 2 else None
    return round_array(x, length, truncate)


# --------------------------------------------------------------------------- powers, logs


@scalar("POWER", args=(2, 2))
def power(args: list[Any], ctx: KernelContext) -> pa.Array:
    """POWER(x, y): x to the power y, typed like x (bigint base -> bigint, truncated)."""
    n = batch_length(args, ctx.length)
    x = _num(args, 0, n, "power")
    y = _num(args, 1, n, "power")
    if pa.types.is_integer(x.type):
        if pa.types.is_integer(y.type) and not pc.any(pc.less(y, 0)).as_py():
            try:
                return pc.power_checked(x, y)
            except pa.ArrowInvalid:
                raise _overflow("power") from None
        res = _nan_to_null(pc.power(_to_f64(x), _to_f64(y)))
        # a NULL (or domain-error NaN, now NULL) row is not an overflow
        finite = pc.and_(pc.is_finite(res), pc.less(pc.abs(res), 9.2e18)).fill_null(True)
        if not pc.all(finite).as_py():
            raise _overflow("power")
        return pc.cast(pc.trunc(res), I64, safe=False)
    return _nan_to_null(pc.power(x, _to_f64(y)))


def _to_f64(arr: pa.Array) -> pa.Array:
    """bigint -> float, allowing the precision loss above 2**53 (ASA: not an error)."""
    return arr if arr.type == F64 else pc.cast(arr, F64, safe=False)


def _float_arg(args: list[Any], i: int, n: int, fn: str) -> pa.Array:
    return _to_f64(_num(args, i, n, fn))


@scalar("SQUARE", args=(1, 1), returns="float")
def square(args: list[Any], ctx: KernelContext) -> pa.Array:
    """SQUARE(x): x * x as float."""
    x = _float_arg(args, 0, batch_length(args, ctx.length), "square")
    return pc.multiply(x, x)


@scalar("SQRT", args=(1, 1), returns="float")
def sqrt(args: list[Any], ctx: KernelContext) -> pa.Array:
    """SQRT(x): square root as float (NULL for negative x)."""
    x = _float_arg(args, 0, batch_length(args, ctx.length), "sqrt")
    return _nan_to_null(pc.sqrt(x))


@scalar("EXP", args=(1, 1), returns="float")
def exp(args: list[Any], ctx: KernelContext) -> pa.Array:
    """EXP(x): e to the power x, float."""
    x = _float_arg(args, 0, batch_length(args, ctx.length), "exp")
    return pc.exp(x)


def _positive_only(x: pa.Array) -> pa.Array:
    return pc.if_else(pc.greater(x, 0.0), x, pa.scalar(None, F64))


@scalar("LOG", args=(1, 2), returns="float", extension=True)
def log(args: list[Any], ctx: KernelContext) -> pa.Array:
    """LOG(x [, base]): natural (or base-b) logarithm; NULL for x <= 0. asaql extension."""
    n = batch_length(args, ctx.length)
    x = _positive_only(_float_arg(args, 0, n, "log"))
    ln = pc.ln(x)
    if len(args) > 1:
        b = _float_arg(args, 1, n, "log")
        b = pc.if_else(pc.and_(pc.greater(b, 0.0), pc.not_equal(b, 1.0)), b, pa.scalar(None, F64))
        return pc.divide(ln, pc.ln(b))
    return ln


@scalar("LOG10", args=(1, 1), returns="float", extension=True)
def log10(args: list[Any], ctx: KernelContext) -> pa.Array:
    """LOG10(x): base-10 logarithm; NULL for x <= 0. asaql extension."""
    x = _positive_only(_float_arg(args, 0, batch_length(args, ctx.length), "log10"))
    return pc.log10(x)
