"""Date and time functions (R:date-and-time-functions-azure-stream-analytics.md).

DATEADD, DATEDIFF, DATEPART, DATENAME, DATETIMEFROMPARTS, DAY, MONTH, YEAR, and the asaql
extension GETUTCDATE(). All vectorized (pyarrow.compute temporal kernels and numpy
datetime64 arithmetic); no per-row Python.

Datetime arguments may be datetime values or ISO-8601 strings (converted with
:func:`asaql.functions.conversion.to_datetime`). Dateparts arrive as the lower-cased bare word
(``datepart_args=(0,)``); names and abbreviations as in T-SQL:
year|yy|yyyy, quarter|qq|q, month|mm|m, dayofyear|dy|y, day|dd|d, week|wk|ww,
weekday|dw|w, hour|hh, minute|mi|n, second|ss|s, millisecond|ms, microsecond|mcs.

DATEDIFF counts datepart **boundaries crossed** (T-SQL): DATEDIFF(minute, 10:00:59,
10:01:00) = 1. Weeks start on Sunday. asaql datetimes have microsecond precision (ASA: 100 ns).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import ExecutionError
from asaql.functions.args import as_array, batch_length, const_value, to_int64
from asaql.functions.conversion import to_datetime
from asaql.functions.registry import KernelContext, scalar
from asaql.types import DATETIME

__all__ = ["DATEPARTS", "FIXED_PART_US", "dateadd_array", "datediff_array", "datepart_array", "datepart_name"]

DATEPARTS: dict[str, str] = {}
for _canon, _names in {
    "year": ("year", "yy", "yyyy"),
    "quarter": ("quarter", "qq", "q"),
    "month": ("month", "mm", "m"),
    "dayofyear": ("dayofyear", "dy", "y"),
    "day": ("day", "dd", "d"),
    "week": ("week", "wk", "ww"),
    "weekday": ("weekday", "dw", "w"),
    "hour": ("hour", "hh"),
    "minute": ("minute", "mi", "n"),
    "second": ("second", "ss", "s"),
    "millisecond": ("millisecond", "ms"),
    "microsecond": ("microsecond", "mcs"),
}.items():
    for _n in _names:
        DATEPARTS[_n] = _canon

_VALID_TEXT = (
    "year (yy, yyyy), quarter (qq, q), month (mm, m), dayofyear (dy, y), day (dd, d), "
    "week (wk, ww), weekday (dw, w), hour (hh), minute (mi, n), second (ss, s), "
    "millisecond (ms), microsecond (mcs)"
)

I64 = pa.int64()
#: microseconds in one of the fixed-length dateparts (canonical names)
FIXED_PART_US = {
    "microsecond": 1,
    "millisecond": 1_000,
    "second": 1_000_000,
    "minute": 60_000_000,
    "hour": 3_600_000_000,
    "day": 86_400_000_000,
    "dayofyear": 86_400_000_000,
    "weekday": 86_400_000_000,
    "week": 7 * 86_400_000_000,
}


def datepart_name(arg: Any, fn: str) -> str:
    """Canonical datepart for a datepart argument (pa.scalar(str) or str)."""
    word = arg if isinstance(arg, str) else const_value(arg) if isinstance(arg, pa.Scalar) else None
    if isinstance(word, str):
        canon = DATEPARTS.get(word.strip().lower())
        if canon is not None:
            return canon
    raise ExecutionError(
        f"Invalid datepart '{word}' in function {fn.lower()}. Valid dateparts: {_VALID_TEXT}.",
        code="invalid_datepart",
    )


def _dt(arg: Any, n: int) -> pa.Array:
    return to_datetime(as_array(arg, n))


def _i64(arr: pa.Array) -> pa.Array:
    return pc.cast(arr, I64)


def _month_index(ts: pa.Array) -> pa.Array:
    return pc.add(pc.multiply(_i64(pc.year(ts)), 12), pc.subtract(_i64(pc.month(ts)), 1))


# --------------------------------------------------------------------------- DATEDIFF


def datediff_array(part: str, start: pa.Array, end: pa.Array) -> pa.Array:
    """Boundaries of ``part`` crossed from ``start`` to ``end`` (timestamp[us, UTC] arrays)."""
    if part == "year":
        return _i64(pc.years_between(start, end))
    if part == "quarter":
        return _i64(pc.quarters_between(start, end))
    if part == "month":
        return pc.subtract(_month_index(end), _month_index(start))
    if part in ("day", "dayofyear", "weekday"):
        return _i64(pc.days_between(start, end))
    if part == "week":
        return _i64(pc.weeks_between(start, end, count_from_zero=False, week_start=7))
    if part == "hour":
        return _i64(pc.hours_between(start, end))
    if part == "minute":
        return _i64(pc.minutes_between(start, end))
    if part == "second":
        return _i64(pc.seconds_between(start, end))
    if part == "millisecond":
        return _i64(pc.milliseconds_between(start, end))
    if part == "microsecond":
        return _i64(pc.microseconds_between(start, end))
    raise ExecutionError(f"unknown datepart {part}", code="invalid_datepart")


@scalar("DATEDIFF", args=(3, 3), returns="bigint", datepart_args=(0,))
def datediff(args: list[Any], ctx: KernelContext) -> pa.Array:
    """DATEDIFF(part, start, end): signed count of datepart boundaries crossed."""
    part = datepart_name(args[0], "datediff")
    n = batch_length(args, ctx.length)
    return datediff_array(part, _dt(args[1], n), _dt(args[2], n))


# --------------------------------------------------------------------------- DATEADD


def _overflow_error() -> ExecutionError:
    return ExecutionError(
        "Adding a value to a 'datetime' column caused an overflow.", code="datetime_overflow"
    )


def dateadd_array(part: str, number: pa.Array, ts: pa.Array) -> pa.Array:
    """``ts`` plus ``number`` (int64) units of ``part``; month arithmetic clamps to month end."""
    valid = pc.and_(pc.is_valid(number), pc.is_valid(ts))
    k = number.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    us = pc.cast(ts, I64).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    t64 = us.astype("datetime64[us]")
    try:
        if part in ("year", "quarter", "month"):
            months = k * {"year": 12, "quarter": 3, "month": 1}[part]
            month0 = t64.astype("datetime64[M]")
            day_off = t64 - month0.astype("datetime64[us]")  # time since the 1st, 00:00
            day_idx = day_off.astype("timedelta64[D]")  # whole days (floor: non-negative)
            tod = day_off - day_idx.astype("timedelta64[us]")
            with np.errstate(over="raise"):
                new_month = month0 + months.astype("timedelta64[M]")
            dim = ((new_month + np.timedelta64(1, "M")).astype("datetime64[D]")
                   - new_month.astype("datetime64[D]"))
            day = np.minimum(day_idx, dim - np.timedelta64(1, "D"))
            out = new_month.astype("datetime64[D]") + day
            out_us = out.astype("datetime64[us]") + tod
            res = out_us.astype(np.int64)
        else:
            step = FIXED_PART_US[part]
            with np.errstate(over="raise"):
                delta = np.multiply(k, step)
                if np.any(np.abs(k) > (2**62) // step):
                    raise FloatingPointError
                res = us + delta
    except (FloatingPointError, OverflowError):
        raise _overflow_error() from None
    # datetime range 0001-01-01 .. 9999-12-31
    lo, hi = -62135596800_000000, 253402300799_999999
    vmask = valid.to_numpy(zero_copy_only=False)
    if np.any(vmask & ((res < lo) | (res > hi))):
        raise _overflow_error()
    out_arr = pa.array(res, pa.int64()).cast(DATETIME)
    return pc.if_else(valid, out_arr, pa.scalar(None, DATETIME))


@scalar("DATEADD", args=(3, 3), returns="datetime", datepart_args=(0,))
def dateadd(args: list[Any], ctx: KernelContext) -> pa.Array:
    """DATEADD(part, number, date): date plus number units (fractional number truncated)."""
    part = datepart_name(args[0], "dateadd")
    n = batch_length(args, ctx.length)
    number = to_int64(args[1], n, "dateadd", 2)
    return dateadd_array(part, number, _dt(args[2], n))


# --------------------------------------------------------------------------- DATEPART


def datepart_array(part: str, ts: pa.Array) -> pa.Array:
    """The integer value of ``part`` of each datetime (bigint)."""
    if part == "year":
        return _i64(pc.year(ts))
    if part == "quarter":
        return _i64(pc.quarter(ts))
    if part == "month":
        return _i64(pc.month(ts))
    if part == "dayofyear":
        return _i64(pc.day_of_year(ts))
    if part == "day":
        return _i64(pc.day(ts))
    if part == "weekday":
        return _i64(pc.day_of_week(ts, count_from_zero=False, week_start=7))
    if part == "week":
        # T-SQL: week 1 holds January 1st; weeks start on Sunday
        doy = _i64(pc.day_of_year(ts))
        dow = _i64(pc.day_of_week(ts, count_from_zero=True, week_start=7))  # 0 = Sunday
        jan1_dow = pc.add(pc.subtract(dow, pc.subtract(doy, 1)), 7 * 60)  # keep positive
        jan1_dow = pc.subtract(jan1_dow, pc.multiply(pc.divide(jan1_dow, 7), 7))
        return pc.add(pc.divide(pc.add(pc.subtract(doy, 1), jan1_dow), 7), 1)
    if part == "hour":
        return _i64(pc.hour(ts))
    if part == "minute":
        return _i64(pc.minute(ts))
    if part == "second":
        return _i64(pc.second(ts))
    if part == "millisecond":
        return _i64(pc.millisecond(ts))
    if part == "microsecond":
        # T-SQL: the whole fraction of the second in microseconds
        return pc.add(pc.multiply(_i64(pc.millisecond(ts)), 1000), _i64(pc.microsecond(ts)))
    raise ExecutionError(f"unknown datepart {part}", code="invalid_datepart")


@scalar("DATEPART", args=(2, 2), returns="bigint", datepart_args=(0,))
def datepart(args: list[Any], ctx: KernelContext) -> pa.Array:
    """DATEPART(part, date): the part as bigint (weekday 1 = Sunday)."""
    part = datepart_name(args[0], "datepart")
    n = batch_length(args, ctx.length)
    return datepart_array(part, _dt(args[1], n))


@scalar("DATENAME", args=(2, 2), returns="nvarchar(max)", datepart_args=(0,))
def datename(args: list[Any], ctx: KernelContext) -> pa.Array:
    """DATENAME(part, date): month and weekday as English names, other parts as digits."""
    part = datepart_name(args[0], "datename")
    n = batch_length(args, ctx.length)
    ts = _dt(args[1], n)
    if part == "month":
        return pc.strftime(ts, format="%B", locale="C")
    if part == "weekday":
        return pc.strftime(ts, format="%A", locale="C")
    return pc.cast(datepart_array(part, ts), pa.string())


@scalar("YEAR", args=(1, 1), returns="bigint")
def year(args: list[Any], ctx: KernelContext) -> pa.Array:
    """YEAR(date) = DATEPART(year, date)."""
    return datepart_array("year", _dt(args[0], batch_length(args, ctx.length)))


@scalar("MONTH", args=(1, 1), returns="bigint")
def month(args: list[Any], ctx: KernelContext) -> pa.Array:
    """MONTH(date) = DATEPART(month, date)."""
    return datepart_array("month", _dt(args[0], batch_length(args, ctx.length)))


@scalar("DAY", args=(1, 1), returns="bigint")
def day(args: list[Any], ctx: KernelContext) -> pa.Array:
    """DAY(date) = DATEPART(day, date)."""
    return datepart_array("day", _dt(args[0], batch_length(args, ctx.length)))


# --------------------------------------------------------------------------- construction


@scalar("DATETIMEFROMPARTS", args=(7, 7), returns="datetime")
def datetimefromparts(args: list[Any], ctx: KernelContext) -> pa.Array:
    """DATETIMEFROMPARTS(year, month, day, hour, minute, seconds, milliseconds).
    Any NULL -> NULL; an out-of-range part fails."""
    n = batch_length(args, ctx.length)
    parts = [to_int64(a, n, "datetimefromparts", i + 1) for i, a in enumerate(args)]
    valid = pc.is_valid(parts[0])
    for p in parts[1:]:
        valid = pc.and_(valid, pc.is_valid(p))
    y, mo, d, h, mi, s, ms = (
        p.fill_null(1 if i < 3 else 0).to_numpy(zero_copy_only=False).astype(np.int64)
        for i, p in enumerate(parts)
    )
    vmask = valid.to_numpy(zero_copy_only=False)
    ok = (y >= 1) & (y <= 9999) & (mo >= 1) & (mo <= 12) & (d >= 1) & (h >= 0) & (h <= 23)
    ok &= (mi >= 0) & (mi <= 59) & (s >= 0) & (s <= 59) & (ms >= 0) & (ms <= 999)
    yc = np.where(ok, y, 1970)
    moc = np.where(ok, mo, 1)
    month0 = ((yc - 1970) * 12 + (moc - 1)).astype("datetime64[M]")
    dim = ((month0 + np.timedelta64(1, "M")).astype("datetime64[D]")
           - month0.astype("datetime64[D]")).astype(np.int64)
    ok &= d <= dim
    if np.any(vmask & ~ok):
        raise ExecutionError(
            "Cannot construct data type datetime, some of the arguments have values which are "
            "not valid.",
            code="invalid_argument",
        )
    dc = np.where(ok, d, 1)
    days = month0.astype("datetime64[D]") + (dc - 1).astype("timedelta64[D]")
    us = days.astype("datetime64[us]").astype(np.int64) + (
        ((h * 60 + mi) * 60 + s) * 1_000_000 + ms * 1000
    ) * ok
    out = pa.array(us, pa.int64()).cast(DATETIME)
    return pc.if_else(valid, out, pa.scalar(None, DATETIME))


@scalar("GETUTCDATE", args=(0, 0), returns="datetime", deterministic=False, extension=True)
def getutcdate(args: list[Any], ctx: KernelContext) -> pa.Array:
    """GETUTCDATE(): the current UTC time (asaql extension; makes results non-repeatable)."""
    now = ctx.clock()
    return pa.repeat(pa.scalar(now, DATETIME), ctx.length)
