"""Vectorized evaluation of bound expressions over one record batch with pyarrow.compute.

Types are dynamic (types belong to values in Stream Analytics): every operator dispatches on
the Arrow types it meets in this batch. Two slow paths exist and are isolated here:

* a :class:`~asaql.types.VariantType` operand (a column whose values' types differ inside the
  batch) is evaluated per value in Python (:func:`_python_binary`);
* ``TryEvaluate(expr)`` that fails on the batch is re-evaluated row by row to NULL only the
  rows that fail (:func:`_try_rows`).

NULL semantics (asa-language.md §14): comparisons with NULL are NULL (false in WHERE and CASE),
AND/OR use three-valued logic, arithmetic propagates NULL, a missing field reads as NULL.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import AsaqlError, EndpointError, ExecutionError
from asaql.exec.operator import ML_ERROR_PREFIX, TS
from asaql.functions.registry import KernelContext
from asaql.plan import expr as bx
from asaql.types import is_variant, to_python, variant_array

__all__ = ["evaluate", "evaluate_predicate", "from_python", "struct_field", "unify"]

Value = pa.Array | pa.Scalar


@dataclass
class Env:
    batch: pa.RecordBatch
    ctx: Any
    in_try: bool = False

    @property
    def length(self) -> int:
        return self.batch.num_rows


def evaluate(expr: bx.BoundExpr, batch: pa.RecordBatch, ctx: Any = None) -> pa.Array:
    """Evaluate ``expr`` over ``batch``; always returns an array of ``batch.num_rows``."""
    env = Env(batch, ctx)
    return _as_array(_eval(expr, env), env.length)


def evaluate_predicate(expr: bx.BoundExpr, batch: pa.RecordBatch, ctx: Any = None) -> pa.Array:
    """Evaluate a condition as a boolean mask where NULL counts as false."""
    return _truth(evaluate(expr, batch, ctx))


# ------------------------------------------------------------------ dispatch


def _eval(expr: bx.BoundExpr, env: Env) -> Value:
    handler = _HANDLERS.get(type(expr))
    if handler is None:
        raise ExecutionError(f"cannot evaluate {type(expr).__name__} here", span=expr.span)
    try:
        return handler(expr, env)
    except AsaqlError as exc:
        if not exc.span.is_known:
            exc.span = expr.span
            _name_the_event(exc, env)
        raise
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ExecutionError(f"cannot evaluate '{expr}': {exc}", span=expr.span) from exc


def _name_the_event(exc: AsaqlError, env: Env) -> None:
    """Add the offending event to a runtime error that knows its row (a failed CAST...)."""
    row = getattr(exc, "row", None)
    if row is None or not 0 <= row < env.length:
        return
    import json

    values = {
        name: value
        for name, value in env.batch.slice(row, 1).to_pylist()[0].items()
        if name != TS and not name.startswith("__")
    }
    text = json.dumps(values, default=str)
    exc.message += f" (event: {text[:300]}{'...' if len(text) > 300 else ''})"
    exc.args = (exc.message,)


def _lit(expr: bx.Lit, env: Env) -> Value:
    if expr.value is None:
        return pa.scalar(None)
    if expr.kind == "integer":
        return pa.scalar(int(expr.value), pa.int64())
    if expr.kind == "float":
        return pa.scalar(float(expr.value), pa.float64())
    if expr.kind == "bit":
        return pa.scalar(bool(expr.value), pa.bool_())
    return pa.scalar(str(expr.value), pa.string())


def _col(expr: bx.Col, env: Env) -> Value:
    batch = env.batch
    if expr.scope is not None:
        idx = _column_index(batch, expr.scope)
        if idx < 0:
            return pa.nulls(env.length)
        _check_ml_errors(batch, batch.schema.field(idx).name, env)
        col = batch.column(idx)
        if expr.path and pa.types.is_struct(col.type) and _struct_index(col.type, expr.path[0]) < 0:
            return _system_column(expr.path, env)
        return _path(col, expr.path, env.length)
    for idx, fld in enumerate(batch.schema):
        if fld.name == TS or fld.name.startswith(ML_ERROR_PREFIX):
            continue
        col = batch.column(idx)
        if _has_field(col, expr.path[0]):
            _check_ml_errors(batch, fld.name, env)
            return _path(col, expr.path, env.length)
    return _system_column(expr.path, env)


def _system_column(path: Sequence[str], env: Env) -> Value:
    """Input metadata answered by name when the event does not carry it: EventProcessedUtcTime
    (when the run started) and PartitionId (0 for files). Anything else missing is NULL."""
    if len(path) == 1:
        name = path[0].lower()
        if name == "eventprocessedutctime":
            start = getattr(env.ctx, "start_time", None)
            if start is not None:
                return pa.scalar(start, pa.timestamp("us", tz="UTC"))
        if name == "partitionid":
            return pa.scalar(0, pa.int64())
    return pa.nulls(env.length)


def _check_ml_errors(batch: pa.RecordBatch, scope: str, env: Env) -> None:
    """Reading an ML result outside TryEvaluate stops the job at the first failed event."""
    err_idx = batch.schema.get_field_index(ML_ERROR_PREFIX + scope)
    if err_idx < 0 or env.in_try:
        return
    errors = batch.column(err_idx)
    if errors.null_count == len(errors):
        return
    first = next(e for e in errors.to_pylist() if e is not None)
    raise EndpointError(first)


def _column_index(batch: pa.RecordBatch, name: str) -> int:
    idx = batch.schema.get_field_index(name)
    if idx >= 0:
        return idx
    lowered = name.lower()
    for i, fld in enumerate(batch.schema):
        if fld.name.lower() == lowered:
            return i
    return -1


def _has_field(col: pa.Array, name: str) -> bool:
    if pa.types.is_struct(col.type):
        return _struct_index(col.type, name) >= 0
    if is_variant(col.type):
        lowered = name.lower()
        return any(
            isinstance(v, dict) and any(k.lower() == lowered for k in v) for v in to_python(col)
        )
    return False


def _struct_index(t: pa.StructType, name: str) -> int:
    idx = t.get_field_index(name)
    if idx >= 0:
        return idx
    lowered = name.lower()
    for i in range(t.num_fields):
        if t.field(i).name.lower() == lowered:
            return i
    return -1


def _path(col: pa.Array, path: Sequence[str], length: int) -> pa.Array:
    for name in path:
        col = struct_field(col, name, length)
    return col


def struct_field(col: pa.Array, name: str, length: int) -> pa.Array:
    """Field ``name`` (case-insensitive) of a record column; NULL where absent."""
    if pa.types.is_struct(col.type):
        idx = _struct_index(col.type, name)
        if idx < 0:
            return pa.nulls(length)
        if col.null_count == 0:
            return col.field(idx)  # same values; no kernel call (the usual case: scan records)
        return pc.struct_field(col, [idx])
    if is_variant(col.type):
        lowered = name.lower()
        out = []
        for value in to_python(col):
            if isinstance(value, dict):
                match = next((v for k, v in value.items() if k.lower() == lowered), None)
                out.append(match)
            else:
                out.append(None)
        return from_python(out)
    return pa.nulls(length)


def _field_get(expr: bx.FieldGet, env: Env) -> Value:
    return struct_field(_as_array(_eval(expr.expr, env), env.length), expr.name, env.length)


def _sys_ts(expr: bx.SysTimestamp, env: Env) -> Value:
    idx = env.batch.schema.get_field_index(TS)
    if idx < 0:
        raise ExecutionError("System.Timestamp() is not available here", span=expr.span)
    return env.batch.column(idx)


def _make_record(expr: bx.MakeRecord, env: Env) -> Value:
    arrays = [_as_array(_eval(e, env), env.length) for _, e in expr.fields]
    arrays = [a.storage if is_variant(a.type) else a for a in arrays]
    return pa.StructArray.from_arrays(arrays, names=[n for n, _ in expr.fields])


def _cast(expr: bx.CastExpr, env: Env) -> Value:
    from asaql.functions.conversion import cast

    value = _as_array(_eval(expr.expr, env), env.length)
    if len(value) >= _DISTINCT_MIN_ROWS and (pa.types.is_string(value.type) or pa.types.is_large_string(value.type)):
        converted = _cast_distinct(value, expr)
        if converted is not None:
            return converted
    return cast(value, expr.type_name, try_=expr.try_)


_DISTINCT_MIN_ROWS = 4096
_DISTINCT_SAMPLE = 1024


def _cast_distinct(value: pa.Array, expr: bx.CastExpr) -> pa.Array | None:
    """CAST of text with few distinct values (typically reference data repeated per event, as
    in ``CAST(d.maxTemp AS float)``): convert each distinct value once, then ``take``.

    Exact, because a conversion depends on the value only. None (the caller converts row by
    row) when the sample looks mostly distinct, or when a CAST fails: the per-row path then
    names the first failing row.
    """
    from asaql.functions.conversion import cast

    if pc.count_distinct(value.slice(0, _DISTINCT_SAMPLE)).as_py() * 4 > _DISTINCT_SAMPLE:
        return None
    encoded = pc.dictionary_encode(value)  # NULL -> NULL index -> NULL after take
    distinct = encoded.dictionary
    if len(distinct) * 4 > len(value):
        return None
    try:
        converted = cast(distinct, expr.type_name, try_=expr.try_)
    except ExecutionError:
        return None
    return converted.take(encoded.indices)


def _func(expr: bx.FuncCall, env: Env) -> Value:
    args = [_eval(a, env) for a in expr.args]
    clock = getattr(env.ctx, "clock", None)
    kctx = KernelContext(env.length, clock) if clock else KernelContext(env.length)
    start = getattr(env.ctx, "start_time", None)
    if start is not None:
        kctx.extra["start_time"] = start
    return expr.fn.kernel(args, kctx)


def _try(expr: bx.TryEval, env: Env) -> Value:
    inner = Env(env.batch, env.ctx, in_try=True)
    try:
        return _as_array(_eval(expr.expr, inner), env.length)
    except ExecutionError:
        return _try_rows(expr.expr, env)


def _try_rows(expr: bx.BoundExpr, env: Env) -> pa.Array:
    """Slow path of TryEvaluate: evaluate row by row, NULL where a row fails."""
    values: list[pa.Array] = []
    for row in range(env.length):
        one = Env(env.batch.slice(row, 1), env.ctx, in_try=True)
        try:
            values.append(_as_array(_eval(expr, one), 1))
        except ExecutionError:
            values.append(pa.nulls(1))
    return pa.concat_arrays(unify(values)) if values else pa.nulls(0)


def _case(expr: bx.CaseExpr, env: Env) -> Value:
    """Searched CASE; each branch is evaluated only on the rows that select it, so a branch
    that would fail on other rows (a CAST, an ML call) does not."""
    n = env.length
    remaining = pa.array([True] * n, pa.bool_()) if n else pa.array([], pa.bool_())
    pieces: list[pa.Array] = []
    positions: list[pa.Array] = []
    for cond, result in expr.whens:
        hit = pc.and_(remaining, _truth(_as_array(_eval(cond, env), n)))
        remaining = pc.and_(remaining, pc.invert(hit))
        _case_piece(result, hit, env, pieces, positions)
    if expr.else_ is not None:
        _case_piece(expr.else_, remaining, env, pieces, positions)
    else:
        rows = pc.indices_nonzero(remaining)
        pieces.append(pa.nulls(len(rows)))
        positions.append(rows)
    return _scatter(pieces, positions, n)


def _case_piece(
    result: bx.BoundExpr, mask: pa.Array, env: Env, pieces: list[pa.Array], positions: list[pa.Array]
) -> None:
    rows = pc.indices_nonzero(mask)
    if len(rows) == 0:
        return
    if len(rows) == env.length:
        sub = env
    else:
        sub = Env(env.batch.take(rows), env.ctx, env.in_try)
    pieces.append(_as_array(_eval(result, sub), len(rows)))
    positions.append(rows)


def _scatter(pieces: list[pa.Array], positions: list[pa.Array], n: int) -> pa.Array:
    if not pieces:
        return pa.nulls(n)
    values = pa.concat_arrays(unify(pieces))
    where = pa.concat_arrays([p.cast(pa.int64()) for p in positions])
    inverse = pc.sort_indices(where)
    return values.take(inverse)


# ------------------------------------------------------------------ operators


def _op(expr: bx.Op, env: Env) -> Value:
    op = expr.op
    if op in _LOGIC:
        return _LOGIC[op](expr, env)
    args = [_eval(a, env) for a in expr.args]
    if op in ("isnull", "notnull"):
        valid = pc.is_valid(_as_array(args[0], env.length))
        return pc.invert(valid) if op == "isnull" else valid
    if op in ("in", "notin"):
        return _in(args, op == "notin", env)
    if op in ("like", "notlike"):
        return _like(args, op == "notlike", env)
    if op in ("between", "notbetween"):
        lo = _compare("ge", args[0], args[1], env)
        hi = _compare("le", args[0], args[2], env)
        both = pc.and_kleene(lo, hi)
        return pc.invert(both) if op == "notbetween" else both
    if op in _COMPARE:
        return _compare(op, args[0], args[1], env)
    if op in ("neg", "pos", "bitnot"):
        return _unary_arith(op, args[0], env)
    return _arith(op, args[0], args[1], env)


def _and(expr: bx.Op, env: Env) -> Value:
    left = _bool(_eval(expr.args[0], env), env)
    right = _bool(_eval(expr.args[1], env), env)
    return pc.and_kleene(left, right)


def _or(expr: bx.Op, env: Env) -> Value:
    left = _bool(_eval(expr.args[0], env), env)
    right = _bool(_eval(expr.args[1], env), env)
    return pc.or_kleene(left, right)


def _not(expr: bx.Op, env: Env) -> Value:
    return pc.invert(_bool(_eval(expr.args[0], env), env))


_LOGIC: dict[str, Callable[[bx.Op, Env], Value]] = {"and": _and, "or": _or, "not": _not}

_COMPARE = {
    "eq": ("equal", operator.eq),
    "ne": ("not_equal", operator.ne),
    "lt": ("less", operator.lt),
    "le": ("less_equal", operator.le),
    "gt": ("greater", operator.gt),
    "ge": ("greater_equal", operator.ge),
}


def _bool(value: Value, env: Env) -> pa.Array:
    arr = _as_array(value, env.length)
    t = arr.type
    if pa.types.is_boolean(t):
        return arr
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.bool_())
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pc.not_equal(arr, 0)
    if is_variant(t):
        return pa.array([None if v is None else bool(v) for v in to_python(arr)], pa.bool_())
    raise ExecutionError(f"a condition must be a bit or number, got {_type_label(t)}")


def _truth(arr: pa.Array) -> pa.Array:
    if not pa.types.is_boolean(arr.type):
        if pa.types.is_null(arr.type):
            return pa.array([False] * len(arr), pa.bool_())
        arr = pc.not_equal(arr, 0) if _is_numeric(arr.type) else arr.cast(pa.bool_())
    return pc.fill_null(arr, False)


def _compare(op: str, a: Value, b: Value, env: Env) -> Value:
    a, b = _comparable(a, b, env)
    if a is None or b is None:
        return pa.nulls(env.length, pa.bool_())
    if is_variant(a.type) or is_variant(b.type):
        return _python_binary(_COMPARE[op][1], a, b, env, pa.bool_())
    return getattr(pc, _COMPARE[op][0])(a, b)


def _comparable(a: Value, b: Value, env: Env) -> tuple[Value | None, Value | None]:
    """Bring two operands to types Arrow can compare (bigint vs float, string vs datetime).
    Values of unrelated types never compare equal: the result is NULL."""
    ta, tb = a.type, b.type
    if pa.types.is_null(ta) or pa.types.is_null(tb):
        return None, None
    if ta == tb or is_variant(ta) or is_variant(tb):
        return a, b
    if _is_numeric(ta) and _is_numeric(tb):
        if pa.types.is_boolean(ta):
            a = a.cast(pa.int64())
        if pa.types.is_boolean(tb):
            b = b.cast(pa.int64())
        return a, b
    if _is_string(ta) and _is_string(tb):
        return a.cast(pa.large_string()), b.cast(pa.large_string())
    if pa.types.is_timestamp(ta) and _is_string(tb):
        return a, _to_datetime_value(b, env)
    if _is_string(ta) and pa.types.is_timestamp(tb):
        return _to_datetime_value(a, env), b
    if pa.types.is_timestamp(ta) and pa.types.is_timestamp(tb):
        return a.cast(pa.timestamp("us", tz="UTC")), b.cast(pa.timestamp("us", tz="UTC"))
    return None, None


def _to_datetime_value(v: Value, env: Env) -> Value:
    from asaql.functions.conversion import to_datetime

    if isinstance(v, pa.Scalar):
        return to_datetime(pa.array([v.as_py()], v.type))[0]
    return to_datetime(v)


def _in(args: list[Value], negated: bool, env: Env) -> Value:
    needle, items = args[0], args[1:]
    result: Value | None = None
    for item in items:
        eq = _compare("eq", needle, item, env)
        result = eq if result is None else pc.or_kleene(result, eq)
    out = _as_array(result if result is not None else pa.scalar(False), env.length)
    return pc.invert(out) if negated else out


def _like(args: list[Value], negated: bool, env: Env) -> Value:
    value, pattern = args
    if pa.types.is_null(value.type) or pa.types.is_null(pattern.type):
        return pa.nulls(env.length, pa.bool_())
    if isinstance(pattern, pa.Scalar) and not is_variant(value.type):
        out = pc.match_like(_as_array(value, env.length).cast(pa.large_string()), pattern.as_py())
    else:
        import re

        def like(v: Any, p: Any) -> bool:
            regex = "".join(
                ".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(p)
            )
            return re.fullmatch(regex, str(v), re.DOTALL) is not None

        out = _python_binary(like, value, pattern, env, pa.bool_())
    return pc.invert(out) if negated else out


_ARITH = {
    "add": ("add_checked", operator.add),
    "sub": ("subtract_checked", operator.sub),
    "mul": ("multiply_checked", operator.mul),
    "div": ("divide_checked", None),
    "mod": (None, None),
    "bitand": ("bit_wise_and", operator.and_),
    "bitor": ("bit_wise_or", operator.or_),
    "bitxor": ("bit_wise_xor", operator.xor),
}


def _arith(op: str, a: Value, b: Value, env: Env) -> Value:
    ta, tb = a.type, b.type
    if pa.types.is_null(ta) or pa.types.is_null(tb):
        return pa.nulls(env.length)
    if is_variant(ta) or is_variant(tb):
        return _python_binary(_python_arith(op), a, b, env, None)
    if op == "add" and (_is_string(ta) or _is_string(tb)):
        return _concat(a, b, env)
    if op.startswith("bit"):
        return _bitwise(op, a, b)
    a, b = _numeric(a, op), _numeric(b, op)
    if op == "div":
        return _divide(a, b)
    if op == "mod":
        return _modulo(a, b)
    try:
        return getattr(pc, _ARITH[op][0])(a, b)
    except pa.ArrowInvalid as exc:
        raise ExecutionError(f"arithmetic overflow in {op}: {exc}") from exc


def _numeric(v: Value, op: str) -> Value:
    t = v.type
    if pa.types.is_boolean(t):
        return v.cast(pa.int64())
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return v
    raise ExecutionError(
        f"operator {_OP_SYMBOL.get(op, op)} needs bigint or float operands, got {_type_label(t)}"
    )


_OP_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "neg": "-"}


def _divide(a: Value, b: Value) -> Value:
    """Division; bigint / bigint truncates toward zero (T-SQL). Division by zero fails."""
    zero = pc.equal(b, 0)
    if pc.any(zero).as_py() if isinstance(zero, pa.Array) else zero.as_py():
        raise ExecutionError("division by zero")
    if pa.types.is_integer(a.type) and pa.types.is_integer(b.type):
        q = pc.divide(a.cast(pa.float64()), b.cast(pa.float64()))
        return pc.trunc(q).cast(pa.int64())
    return pc.divide(a.cast(pa.float64()), b.cast(pa.float64()))


def _modulo(a: Value, b: Value) -> Value:
    """Remainder with the sign of the dividend (T-SQL %)."""
    zero = pc.equal(b, 0)
    if pc.any(zero).as_py() if isinstance(zero, pa.Array) else zero.as_py():
        raise ExecutionError("division by zero")
    if pa.types.is_integer(a.type) and pa.types.is_integer(b.type):
        q = pc.trunc(pc.divide(a.cast(pa.float64()), b.cast(pa.float64()))).cast(pa.int64())
        return pc.subtract(a, pc.multiply(q, b))
    af, bf = a.cast(pa.float64()), b.cast(pa.float64())
    return pc.subtract(af, pc.multiply(pc.trunc(pc.divide(af, bf)), bf))


def _bitwise(op: str, a: Value, b: Value) -> Value:
    if pa.types.is_boolean(a.type) and pa.types.is_boolean(b.type):
        fn = {"bitand": pc.and_, "bitor": pc.or_, "bitxor": pc.xor}[op]
        return fn(a, b)
    a = _to_bigint(a)
    b = _to_bigint(b)
    return getattr(pc, _ARITH[op][0])(a, b)


def _to_bigint(v: Value) -> Value:
    if pa.types.is_integer(v.type):
        return v.cast(pa.int64())
    if pa.types.is_boolean(v.type):
        return v.cast(pa.int64())
    if pa.types.is_floating(v.type):
        return pc.trunc(v).cast(pa.int64())
    raise ExecutionError(f"bitwise operators need bit or bigint operands, got {_type_label(v.type)}")


def _unary_arith(op: str, a: Value, env: Env) -> Value:
    if pa.types.is_null(a.type):
        return a
    if is_variant(a.type):
        fn = {"neg": operator.neg, "pos": operator.pos, "bitnot": operator.invert}[op]
        return from_python([None if v is None else fn(v) for v in to_python(a)])
    if op == "bitnot":
        if pa.types.is_boolean(a.type):
            return pc.invert(a)
        return pc.bit_wise_not(_to_bigint(a))
    a = _numeric(a, "neg")
    return pc.negate_checked(a) if op == "neg" else a


def _concat(a: Value, b: Value, env: Env) -> Value:
    from asaql.functions.conversion import cast

    a_arr = cast(_as_array(a, env.length), "nvarchar(max)")
    b_arr = cast(_as_array(b, env.length), "nvarchar(max)")
    return pc.binary_join_element_wise(
        a_arr.cast(pa.large_string()), b_arr.cast(pa.large_string()), pa.scalar("", pa.large_string())
    )


def _python_arith(op: str) -> Callable[[Any, Any], Any]:
    def apply(x: Any, y: Any) -> Any:
        if op == "add" and (isinstance(x, str) or isinstance(y, str)):
            return f"{x}{y}"
        if op == "div":
            if y == 0:
                raise ExecutionError("division by zero")
            return int(x / y) if isinstance(x, int) and isinstance(y, int) else x / y
        if op == "mod":
            return math.fmod(x, y) if isinstance(x, float) or isinstance(y, float) else int(math.fmod(x, y))
        fn = _ARITH[op][1]
        assert fn is not None
        return fn(x, y)

    return apply


def _python_binary(
    fn: Callable[[Any, Any], Any], a: Value, b: Value, env: Env, out_type: pa.DataType | None
) -> pa.Array:
    """Slow path for Variant operands: apply ``fn`` per value (NULL in, NULL out; values of
    incomparable types give NULL)."""
    left = to_python(_as_array(a, env.length))
    right = to_python(_as_array(b, env.length))
    out: list[Any] = []
    for x, y in zip(left, right, strict=True):
        if x is None or y is None:
            out.append(None)
            continue
        try:
            out.append(fn(x, y))
        except TypeError:
            out.append(None)
    return pa.array(out, out_type) if out_type is not None else from_python(out)


# ------------------------------------------------------------------ helpers


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _type_label(t: pa.DataType) -> str:
    from asaql.types import asa_type_name

    return f"'{asa_type_name(t)}'"


def _as_array(value: Value, length: int) -> pa.Array:
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    if isinstance(value, pa.Array):
        return value
    if not value.is_valid and pa.types.is_null(value.type):
        return pa.nulls(length)
    return pa.repeat(value, length)


def from_python(values: list[Any]) -> pa.Array:
    """An Arrow array for Python values: a typed column when the values agree, else Variant."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int, float} and kinds == {int, float}:
        values = [None if v is None else float(v) for v in values]
    if len(kinds) > 1 and not kinds <= {int, float}:
        return variant_array(values)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return variant_array(values)


def _common_type(types: list[pa.DataType]) -> pa.DataType | None:
    concrete = [t for t in types if not pa.types.is_null(t)]
    if not concrete:
        return pa.null()
    first = concrete[0]
    if all(t == first for t in concrete):
        return first
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in concrete):
        return pa.float64() if any(pa.types.is_floating(t) for t in concrete) else pa.int64()
    if all(_is_string(t) for t in concrete):
        return pa.large_string()
    if all(pa.types.is_timestamp(t) for t in concrete):
        return pa.timestamp("us", tz="UTC")
    return None


def unify(arrays: list[pa.Array]) -> list[pa.Array]:
    """Cast arrays to one common type so they can be concatenated (Variant when they differ)."""
    target = _common_type([a.type for a in arrays])
    if target is None:
        return [variant_array(to_python(a)) for a in arrays]
    return [a if a.type == target else a.cast(target) for a in arrays]


_HANDLERS: dict[type, Callable[[Any, Env], Value]] = {
    bx.Lit: _lit,
    bx.Col: _col,
    bx.FieldGet: _field_get,
    bx.SysTimestamp: _sys_ts,
    bx.MakeRecord: _make_record,
    bx.CastExpr: _cast,
    bx.FuncCall: _func,
    bx.TryEval: _try,
    bx.CaseExpr: _case,
    bx.Op: _op,
}
