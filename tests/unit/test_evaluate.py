"""The vectorized evaluator agrees with a slow row-at-a-time reference evaluator on random
expressions over random data with NULLs (hypothesis), and batch size does not matter."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from asaql.exec.evaluate import evaluate
from asaql.plan import expr as bx

INTS = st.one_of(st.none(), st.integers(-50, 50))
FLOATS = st.one_of(st.none(), st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 3)))


def col(name: str) -> bx.Col:
    return bx.Col(scope="t", path=(name,))


LEAVES = st.one_of(
    st.sampled_from([col("a"), col("b"), col("f")]),
    st.integers(-5, 5).map(lambda v: bx.Lit(value=v, kind="integer")),
    st.just(bx.Lit(value=None, kind="null")),
)


def _numeric(children: st.SearchStrategy[bx.BoundExpr]) -> st.SearchStrategy[bx.BoundExpr]:
    return st.one_of(
        st.tuples(st.sampled_from(["add", "sub", "mul"]), children, children).map(
            lambda t: bx.Op(op=t[0], args=(t[1], t[2]))),
        children.map(lambda c: bx.Op(op="neg", args=(c,))),
    )


NUMERIC = st.recursive(LEAVES, _numeric, max_leaves=4)


def _boolean(children: st.SearchStrategy[bx.BoundExpr]) -> st.SearchStrategy[bx.BoundExpr]:
    return st.one_of(
        st.tuples(st.sampled_from(["and", "or"]), children, children).map(lambda t: bx.Op(op=t[0], args=(t[1], t[2]))),
        children.map(lambda c: bx.Op(op="not", args=(c,))),
    )


COMPARISON = st.one_of(
    st.tuples(st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]), NUMERIC, NUMERIC).map(
        lambda t: bx.Op(op=t[0], args=(t[1], t[2]))),
    NUMERIC.map(lambda e: bx.Op(op="isnull", args=(e,))),
    st.tuples(NUMERIC, NUMERIC, NUMERIC).map(lambda t: bx.Op(op="between", args=t)),
)
BOOLEAN = st.recursive(COMPARISON, _boolean, max_leaves=4)
EXPR = st.one_of(
    NUMERIC,
    BOOLEAN,
    st.tuples(BOOLEAN, NUMERIC, NUMERIC).map(lambda t: bx.CaseExpr(whens=((t[0], t[1]),), else_=t[2])),
)


def reference(e: bx.BoundExpr, row: dict[str, Any]) -> Any:
    """Row-at-a-time semantics of ASA: NULL propagates, comparisons with NULL are NULL,
    AND/OR are three-valued, CASE takes the first true condition."""
    if isinstance(e, bx.Lit):
        return e.value
    if isinstance(e, bx.Col):
        return row[e.path[0]]
    if isinstance(e, bx.CaseExpr):
        for cond, result in e.whens:
            if reference(cond, row) is True:
                return reference(result, row)
        return reference(e.else_, row) if e.else_ is not None else None
    assert isinstance(e, bx.Op)
    args = [reference(a, row) for a in e.args]
    if e.op == "isnull":
        return args[0] is None
    if e.op == "and":
        if args[0] is False or args[1] is False:
            return False
        return None if None in args else True
    if e.op == "or":
        if args[0] is True or args[1] is True:
            return True
        return None if None in args else False
    if e.op == "between":  # a >= lo AND a <= hi, three-valued
        lo = None if None in (args[0], args[1]) else args[0] >= args[1]
        hi = None if None in (args[0], args[2]) else args[0] <= args[2]
        if lo is False or hi is False:
            return False
        return None if None in (lo, hi) else True
    if None in args:
        return None
    ops = {
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "neg": lambda a: -a, "not": lambda a: not a,
        "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
        "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
        "between": lambda a, lo, hi: lo <= a <= hi,
    }
    return ops[e.op](*args)


def _batch(rows: list[tuple[Any, Any, Any]]) -> pa.RecordBatch:
    struct = pa.array([{"a": a, "b": b, "f": f} for a, b, f in rows],
                      pa.struct([("a", pa.int64()), ("b", pa.int64()), ("f", pa.float64())]))
    return pa.RecordBatch.from_arrays([struct], names=["t"])


def _close(x: Any, y: Any) -> bool:
    if isinstance(x, float) or isinstance(y, float):
        return x is not None and y is not None and abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))
    return x == y


@settings(max_examples=300, deadline=None)
@given(EXPR, st.lists(st.tuples(INTS, INTS, FLOATS), min_size=1, max_size=20))
def test_vectorized_matches_reference(expr: bx.BoundExpr, rows: list[tuple[Any, Any, Any]]) -> None:
    batch = _batch(rows)
    got = evaluate(expr, batch).to_pylist()
    want = [reference(expr, {"a": a, "b": b, "f": f}) for a, b, f in rows]
    assert all(_close(g, w) for g, w in zip(got, want, strict=True)), (str(expr), got, want)


@settings(max_examples=100, deadline=None)
@given(EXPR, st.lists(st.tuples(INTS, INTS, FLOATS), min_size=2, max_size=20), st.data())
def test_batch_boundaries_do_not_matter(expr: bx.BoundExpr, rows: list[tuple[Any, Any, Any]], data: st.DataObject) -> None:
    whole = evaluate(expr, _batch(rows)).to_pylist()
    cut = data.draw(st.integers(1, len(rows) - 1))
    parts = evaluate(expr, _batch(rows[:cut])).to_pylist() + evaluate(expr, _batch(rows[cut:])).to_pylist()
    assert all(_close(a, b) for a, b in zip(whole, parts, strict=True))
