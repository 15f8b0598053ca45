"""Scalar function library: data-driven cases (tests/slt/functions/*.test) and property tests.

The .test format (sqllogictest-like), records separated by blank lines::

    # description
    query                     (or: query approx 0.001  -> float tolerance)
    ROUND(123.9995, 3)
    ----
    124.0

    # description
    error cast_failed         (substring of the error message or its code)
    CAST('x' AS bigint)

Expressions are literals (numbers, 'strings', NULL), bare datepart words, nested function
calls, and CAST/TRY_CAST(x AS type). Each query runs twice: with literals passed as
``pa.Scalar`` constants and again with every literal broadcast to a one-row array, so both
the constant fast paths and the column paths of each kernel are checked. Expected values are
JSON; datetimes compare as ASA's 7-digit text; ints and floats must match in type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json

import pyarrow as pa
import pytest

import asaql
from hypothesis import given, settings
from hypothesis import strategies as st

from asaql.errors import ExecutionError
from asaql.functions import conversion
from asaql.functions.registry import REGISTRY, KernelContext
from asaql.types import DATETIME, format_datetime, to_python

SLT_DIR = Path(__file__).resolve().parent.parent / "slt" / "functions"
FIXED_NOW = dt.datetime(2024, 5, 14, 12, 0, 0, tzinfo=dt.timezone.utc)

# --------------------------------------------------------------------------- tiny parser

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+\.\d*(?:[eE][+-]?\d+)?|-?\d+(?:[eE][+-]?\d+)?|-?\.\d+)"
    r"|(?P<str>'(?:[^']|'')*')|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<punct>[(),]))"
)


@dataclass
class Lit:
    value: Any
    kind: str  # int | float | str | null


@dataclass
class Word:
    name: str


@dataclass
class Call:
    name: str
    args: list[Any]


@dataclass
class CastNode:
    expr: Any
    type_name: str
    try_: bool


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SyntaxError(f"cannot tokenize at {text[pos:]!r}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
    return out


def parse(text: str) -> Any:
    toks = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def expr() -> Any:
        kind, val = take()
        if kind == "num":
            if re.fullmatch(r"-?\d+", val):
                return Lit(int(val), "int")
            return Lit(float(val), "float")
        if kind == "str":
            return Lit(val[1:-1].replace("''", "'"), "str")
        if kind == "name":
            if val.upper() == "NULL":
                return Lit(None, "null")
            nxt = peek()
            if nxt == ("punct", "("):
                take()
                if val.upper() in ("CAST", "TRY_CAST"):
                    inner = expr()
                    kw = take()
                    assert kw[1].upper() == "AS", kw
                    tname = take()[1]
                    if peek() == ("punct", "("):  # nvarchar(max)
                        take()
                        tname += "(" + take()[1] + ")"
                        take()
                    assert take() == ("punct", ")")
                    return CastNode(inner, tname.lower(), val.upper() == "TRY_CAST")
                args: list[Any] = []
                if peek() != ("punct", ")"):
                    while True:
                        args.append(expr())
                        if peek() == ("punct", ","):
                            take()
                            continue
                        break
                assert take() == ("punct", ")")
                return Call(val, args)
            return Word(val.lower())
        raise SyntaxError(f"unexpected {val!r}")

    node = expr()
    if pos != len(toks):
        raise SyntaxError(f"trailing tokens in {text!r}")
    return node


_ARROW = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "null": pa.null()}


def evaluate(node: Any, as_columns: bool) -> Any:
    """Scalar for a literal (or a one-row array with ``as_columns``); arrays for calls."""
    if isinstance(node, Lit):
        s = pa.scalar(node.value, _ARROW[node.kind])
        return pa.array([node.value], _ARROW[node.kind]) if as_columns else s
    if isinstance(node, Word):
        return pa.scalar(node.name)
    if isinstance(node, CastNode):
        v = evaluate(node.expr, as_columns)
        arr = v if isinstance(v, pa.Array) else pa.array([v.as_py()], v.type)
        return conversion.cast(arr, node.type_name, try_=node.try_)
    fn = REGISTRY.get(node.name)
    if fn is None:
        raise LookupError(f"unknown function {node.name}")
    args = [
        pa.scalar(a.name) if isinstance(a, Word) and i in fn.datepart_args else evaluate(a, as_columns)
        for i, a in enumerate(node.args)
    ]
    n = len(args)
    if n < fn.min_args or (fn.max_args is not None and n > fn.max_args):
        raise TypeError(f"{fn.name} takes {fn.arity_text()} arguments, got {n}")
    out = fn.kernel(args, KernelContext(length=1, clock=lambda: FIXED_NOW))
    assert isinstance(out, pa.Array | pa.ChunkedArray), f"{fn.name} returned {type(out)}"
    assert len(out) == 1, f"{fn.name} returned {len(out)} rows for 1"
    return out


def result_value(v: Any) -> Any:
    if isinstance(v, pa.Scalar):
        v = pa.array([v.as_py()], v.type)
    value = to_python(v)[0]
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dict):
        return {k: _jsonable(x) for k, x in value.items()}
    if isinstance(value, list):
        return [_jsonable(x) for x in value]
    return value


def same(got: Any, want: Any, tol: float | None) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    if isinstance(want, float) and isinstance(got, float):
        if tol is not None:
            return abs(got - want) <= tol
        return got == want or math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(want, int) and isinstance(got, int):
        return got == want
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k], tol) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(same(g, w, tol) for g, w in zip(got, want, strict=True))
    return type(got) is type(want) and got == want


# --------------------------------------------------------------------------- .test files


@dataclass
class Record:
    file: str
    line: int
    description: str
    kind: str  # query | error
    expr: str
    expected: Any = None
    error: str = ""
    tol: float | None = None

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def load_records() -> list[Record]:
    records: list[Record] = []
    for path in sorted(SLT_DIR.glob("*.test")):
        lines = path.read_text(encoding="utf-8").split("\n")
        i = 0
        desc = ""
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            if line.startswith("#"):
                desc = line[1:].strip()
                i += 1
                continue
            start = i + 1
            head = line.split()
            if head[0] == "query":
                tol = float(head[2]) if len(head) > 2 and head[1] == "approx" else None
                expr_lines = []
                i += 1
                while lines[i].strip() != "----":
                    expr_lines.append(lines[i])
                    i += 1
                i += 1
                want_lines = []
                while i < len(lines) and lines[i].strip():
                    want_lines.append(lines[i])
                    i += 1
                records.append(Record(path.name, start, desc, "query", " ".join(expr_lines),
                                      json.loads("\n".join(want_lines)), tol=tol))
            elif head[0] == "error":
                msg = line[len("error"):].strip()
                i += 1
                expr_lines = []
                while i < len(lines) and lines[i].strip():
                    expr_lines.append(lines[i])
                    i += 1
                records.append(Record(path.name, start, desc, "error", " ".join(expr_lines),
                                      error=msg))
            else:
                raise SyntaxError(f"{path.name}:{start}: unexpected line {line!r}")
            desc = ""
    return records


RECORDS = load_records()


def test_records_found() -> None:
    assert len(RECORDS) > 200
    names = {r.file for r in RECORDS}
    assert {"string.test", "math.test", "datetime.test", "conversion.test"} <= names


@pytest.mark.parametrize("as_columns", [False, True], ids=["const", "column"])
@pytest.mark.parametrize("rec", RECORDS, ids=[r.id for r in RECORDS])
def test_slt(rec: Record, as_columns: bool) -> None:
    node = parse(rec.expr)
    if rec.kind == "error":
        with pytest.raises(ExecutionError) as info:
            evaluate(node, as_columns)
        text = f"{info.value.code}: {info.value.message}"
        assert rec.error.lower() in text.lower(), f"{rec.description}: {text}"
        return
    got = result_value(evaluate(node, as_columns))
    assert same(got, rec.expected, rec.tol), (
        f"{rec.description}: {rec.expr} -> {got!r}, expected {rec.expected!r}"
    )


# --------------------------------------------------------------------------- registry checks


def test_every_kernel_has_doc_and_handles_all_null_batch() -> None:
    """Every function accepts NULL-typed columns (schema drift: a field absent from a batch)."""
    skip = {"GETUTCDATE"}
    for fn in REGISTRY:
        assert fn.doc, fn.name
        if fn.name in skip:
            continue
        k = max(fn.min_args, 1 if fn.max_args is None or fn.max_args >= 1 else 0)
        if fn.name in ("ROUND",):
            k = 2
        args: list[Any] = []
        for i in range(k):
            if i in fn.datepart_args:
                args.append(pa.scalar("day"))
            else:
                args.append(pa.nulls(3))
        try:
            out = fn.kernel(args, KernelContext(length=3))
        except ExecutionError:
            continue
        assert len(out) == 3, fn.name
        if fn.name not in ("CONCAT", "CONCAT_WS"):
            assert out.null_count == 3 or pa.types.is_null(out.type), fn.name


def test_getutcdate_uses_clock() -> None:
    fn = REGISTRY.get("getutcdate")
    assert fn is not None and fn.extension and not fn.deterministic
    out = fn.kernel([], KernelContext(length=2, clock=lambda: FIXED_NOW))
    assert out.type == DATETIME and out.to_pylist() == [FIXED_NOW, FIXED_NOW]


def test_cast_error_carries_row_and_hint() -> None:
    arr = pa.array(["12", None, "twelve", "x"])
    with pytest.raises(ExecutionError) as info:
        conversion.cast(arr, "bigint")
    err = info.value
    assert err.code == "cast_failed" and err.row == 2  # type: ignore[attr-defined]
    assert "twelve" in err.message and "bigint" in err.message and "TRY_CAST" in err.message
    assert conversion.cast(arr, "bigint", try_=True).to_pylist() == [12, None, None, None]


def test_to_datetime_error_row() -> None:
    with pytest.raises(ExecutionError) as info:
        conversion.to_datetime(pa.array(["2024-05-14T00:00:00Z", "yesterday"]))
    assert info.value.row == 1  # type: ignore[attr-defined]


def test_variant_columns() -> None:
    from asaql.types import variant_array

    v = variant_array([1, "2", 2.5, None, True, {"a": 1}, [1]])
    assert conversion.get_type(v).to_pylist() == [
        "bigint", "nvarchar(max)", "float", None, "bit", "record", "array"]
    assert conversion.cast(v, "bigint", try_=True).to_pylist() == [1, 2, 2, None, 1, None, None]
    up = REGISTRY.get("upper").kernel([variant_array(["a", 1, None])], KernelContext(3))
    assert up.to_pylist() == ["A", "1", None]
    r = REGISTRY.get("round").kernel([variant_array([1.25, 2, None]), pa.scalar(1)], KernelContext(3))
    assert r.to_pylist() == [1.3, 2.0, None]


def test_table_functions() -> None:
    from asaql.functions.array import get_array_elements, get_record_properties

    parents, rows = get_array_elements(pa.array([[10, 20], None, [], [30]]))
    assert parents.to_pylist() == [0, 0, 3]
    assert rows.to_pylist() == [
        {"ArrayIndex": 0, "ArrayValue": 10},
        {"ArrayIndex": 1, "ArrayValue": 20},
        {"ArrayIndex": 0, "ArrayValue": 30},
    ]
    recs = pa.array([{"rpm": 1200, "temp": 71.5, "status": "ok"}, {"rpm": 900, "vib": 0.02}, None])
    parents, rows = get_record_properties(recs)
    assert parents.to_pylist() == [0, 0, 0, 1, 1]
    assert rows.field("PropertyName").to_pylist() == ["rpm", "temp", "status", "rpm", "vib"]
    values = to_python(rows.field("PropertyValue"))
    assert values == [1200, 71.5, "ok", 900, 0.02]
    assert [type(x) for x in values] == [int, float, str, int, float]
    parents, rows = get_record_properties(pa.array([{"a": 1, "b": 2}, {"a": 3, "b": None}]))
    assert parents.to_pylist() == [0, 0, 1]
    assert rows.field("PropertyValue").type == pa.int64()


# --------------------------------------------------------------------------- property tests

_DT = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 12, 31)
).map(lambda d: d.replace(tzinfo=dt.timezone.utc))


def _ref_datediff(part: str, a: dt.datetime, b: dt.datetime) -> int:
    """Slow reference: index of the datepart bucket of b minus that of a."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

    def bucket(d: dt.datetime) -> int:
        if part == "year":
            return d.year
        if part == "quarter":
            return d.year * 4 + (d.month - 1) // 3
        if part == "month":
            return d.year * 12 + d.month - 1
        days = (d.date() - epoch.date()).days
        if part == "day":
            return days
        if part == "week":  # Sunday-start weeks: 1970-01-04 was a Sunday
            return (days + 4) // 7
        us = (d - epoch) // dt.timedelta(microseconds=1)
        unit = {"hour": 3_600_000_000, "minute": 60_000_000, "second": 1_000_000,
                "millisecond": 1000, "microsecond": 1}[part]
        return us // unit

    return bucket(b) - bucket(a)


@settings(max_examples=200, deadline=None)
@given(
    part=st.sampled_from(["year", "quarter", "month", "day", "week", "hour", "minute", "second",
                          "millisecond", "microsecond"]),
    pairs=st.lists(st.tuples(st.one_of(st.none(), _DT), st.one_of(st.none(), _DT)),
                   min_size=1, max_size=20),
)
def test_datediff_matches_reference(part: str, pairs: list[tuple[Any, Any]]) -> None:
    a = pa.array([p[0] for p in pairs], DATETIME)
    b = pa.array([p[1] for p in pairs], DATETIME)
    fn = REGISTRY.get("datediff")
    got = fn.kernel([pa.scalar(part), a, b], KernelContext(len(pairs))).to_pylist()
    want = [None if x is None or y is None else _ref_datediff(part, x, y) for x, y in pairs]
    assert got == want


def _ref_round(x: float, length: int) -> float:
    d = decimal.Decimal(repr(x))
    with decimal.localcontext() as c:
        c.prec = 500
        return float(d.quantize(decimal.Decimal(1).scaleb(-length), rounding=decimal.ROUND_HALF_UP)) + 0.0


_FLOATS = st.one_of(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False),
    st.integers(min_value=-10**9, max_value=10**9).map(lambda i: i / 1000),  # many exact ties
    st.integers(min_value=-10**7, max_value=10**7).map(lambda i: (i + 0.5) / 100),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), _FLOATS), min_size=1, max_size=20),
       length=st.integers(min_value=-6, max_value=6))
def test_round_matches_decimal_half_up(values: list[float | None], length: int) -> None:
    fn = REGISTRY.get("round")
    got = fn.kernel([pa.array(values, pa.float64()), pa.scalar(length)],
                    KernelContext(len(values))).to_pylist()
    want = [None if v is None else _ref_round(v, length) for v in values]
    assert got == want


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.integers(-10**15, 10**15)), min_size=1, max_size=20),
       length=st.integers(min_value=-8, max_value=3))
def test_round_bigint(values: list[int | None], length: int) -> None:
    fn = REGISTRY.get("round")
    got = fn.kernel([pa.array(values, pa.int64()), pa.scalar(length)], KernelContext(len(values)))
    assert got.type == pa.int64()
    want = [None if v is None else int(decimal.Decimal(v).quantize(
        decimal.Decimal(1).scaleb(-length), rounding=decimal.ROUND_HALF_UP)) if length < 0 else v
        for v in values]
    assert got.to_pylist() == want


_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def _ref_substring(s: str, start: int, length: int) -> str:
    begin = max(start, 1) - 1
    end = start - 1 + length
    return s[begin:end] if end > begin else ""


@settings(max_examples=300, deadline=None)
@given(strings=st.lists(st.one_of(st.none(), _TEXT), min_size=1, max_size=10),
       start=st.integers(-5, 15), length=st.integers(0, 15), const=st.booleans())
def test_substring_left_right_vs_slicing(strings: list[str | None], start: int, length: int,
                                         const: bool) -> None:
    n = len(strings)
    s = pa.array(strings, pa.string())
    ctx = KernelContext(n)

    def arg(v: int) -> Any:
        return pa.scalar(v) if const else pa.array([v] * n, pa.int64())

    sub = REGISTRY.get("substring").kernel([s, arg(start), arg(length)], ctx).to_pylist()
    assert sub == [None if x is None else _ref_substring(x, start, length) for x in strings]
    left = REGISTRY.get("left").kernel([s, arg(length)], ctx).to_pylist()
    assert left == [None if x is None else x[:length] for x in strings]
    right = REGISTRY.get("right").kernel([s, arg(length)], ctx).to_pylist()
    assert right == [None if x is None else (x[max(0, len(x) - length):] if length else "") for x in strings]


@settings(max_examples=150, deadline=None)
@given(strings=st.lists(st.one_of(st.none(), _TEXT), min_size=1, max_size=10),
       find=st.text(alphabet="abé ", min_size=1, max_size=2), start=st.integers(-2, 8))
def test_charindex_vs_str_find(strings: list[str | None], find: str, start: int) -> None:
    n = len(strings)
    s = pa.array(strings, pa.string())
    got = REGISTRY.get("charindex").kernel([pa.scalar(find), s, pa.scalar(start)],
                                            KernelContext(n)).to_pylist()
    begin = max(start, 1) - 1
    want = [None if x is None else (x.find(find, begin) + 1 if begin <= len(x) else 0)
            for x in strings]
    assert got == want


@pytest.mark.parametrize("path, parts", [
    ("EventEnqueuedUtcTime", ["EventEnqueuedUtcTime"]),
    ("[EventHub].[EventEnqueuedUtcTime]", ["EventHub", "EventEnqueuedUtcTime"]),
    ("IoTHub.EnqueuedTime", ["IoTHub", "EnqueuedTime"]),
    ("[User].[my key]", ["User", "my key"]),
])
def test_metadata_path(path: str, parts: list[str]) -> None:
    from asaql.functions.record import metadata_path

    assert metadata_path(path) == parts


def test_metadata_event_id_is_deterministic_and_per_event() -> None:
    events = [{"k": 1, "v": "a"}, {"k": 2, "v": "a"}, {"v": "a", "k": 1}]
    query = "SELECT GetMetadataPropertyValue(e, 'EventId') AS id FROM e"
    first = [r["id"] for r in asaql.run(query, inputs={"e": events}).rows()]
    again = [r["id"] for r in asaql.run(query, inputs={"e": events}).rows()]
    assert first == again
    assert first[0] != first[1] and first[0] == first[2]  # same content, same id
    assert all(len(i) == 36 for i in first)


def test_metadata_fallbacks_and_event_fields() -> None:
    events = [{"EventEnqueuedUtcTime": "2024-05-14T10:00:01Z", "PartitionId": 3}, {}]
    rows = asaql.run("SELECT GetMetadataPropertyValue(e, 'PartitionId') AS p, "
                     "GetMetadataPropertyValue(e, '[EventHub].[EventEnqueuedUtcTime]') AS q, "
                     "GetMetadataPropertyValue(e, '[User]') AS u FROM e", inputs={"e": events}).rows()
    assert [r["p"] for r in rows] == [3, 0]
    assert rows[0]["q"] is not None and rows[1]["q"] is None
    assert [r["u"] for r in rows] == [None, None]


def test_metadata_path_must_be_constant() -> None:
    with pytest.raises(asaql.AsaqlError, match="constant string"):
        asaql.run("SELECT GetMetadataPropertyValue(e, e.p) AS x FROM e", inputs={"e": [{"p": "PartitionId"}]})
