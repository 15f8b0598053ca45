"""Aggregate functions: COUNT, SUM, AVG, MIN, MAX, STDEV(P), VAR(P), PERCENTILE_CONT/DISC,
TopOne, CollectTop, Collect, and Python user-defined aggregates.

Aggregates run *grouped and vectorized*: the window operator gives every (window, key) group a
dense integer id (``gid``) and hands an accumulator whole batches at a time. There are two
kinds of accumulator, both with the same three steps (DataFusion's ``Accumulator``, by group):

* :class:`PartialAccumulator` keeps a *partial state* per group (COUNT, SUM, AVG, MIN, MAX,
  STDEV...): ``update`` happens inside the operator's per-batch ``group_by`` (the
  aggregations named by :attr:`~PartialAccumulator.updates`), :meth:`absorb` stores the
  per-batch partial rows, ``evaluate`` merges them (``merges``) and finishes. Memory is one
  small row per group and batch, compacted as it grows.
* :class:`ValuesAccumulator` keeps the values themselves, because the result needs all of
  them (percentiles, Collect, TopOne, CollectTop, COUNT(DISTINCT), user aggregates).

``evaluate(gids)`` returns one value per requested group, in the order asked, and frees
their state: that is how a window's state is released when the watermark closes it.

NULL semantics (asa-language.md §7, §14): every aggregate skips NULL except COUNT(*); SUM and
AVG of only NULLs are NULL; COUNT is bigint; AVG, STDEV, VAR and percentiles are float.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "Accumulator",
    "AggregateFunction",
    "AggregateOptions",
    "PartialAccumulator",
    "ValuesAccumulator",
    "aggregate",
    "concat_tables",
    "lookup",
    "user_aggregates",
]

GID = "__gid"
_COMPACT_AT = 32  # partial tables kept before they are merged into one


@dataclass(frozen=True)
class AggregateOptions:
    """What the query wrote besides the arguments: DISTINCT, ``*``, literal parameters
    (percentile fraction, CollectTop count) and ``OVER (ORDER BY ...)`` directions."""

    distinct: bool = False
    star: bool = False
    params: tuple[Any, ...] = ()
    descending: tuple[bool, ...] = ()


@dataclass(frozen=True)
class AggregateFunction:
    """An aggregate: name, arity (value arguments, after the literal ``params``) and a factory
    for its accumulator. ``order_by``: 'required', 'optional' or 'none' (OVER (ORDER BY))."""

    name: str
    make: Callable[[AggregateOptions], Accumulator]
    min_args: int
    max_args: int
    params: int = 0
    order_by: str = "none"
    star: bool = False
    record_default: bool = False  # no argument means the whole event (TopOne(), Collect())
    returns: str | None = None
    doc: str = ""


# ------------------------------------------------------------------ helpers


def concat_tables(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables whose column types differ from batch to batch (types belong to
    values: an int64 column may meet a float64 or a null column). Falls back to Variant."""
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        from asaql.exec.evaluate import unify

        names = tables[0].column_names
        columns = []
        for name in names:
            pieces = [c for t in tables for c in t.column(name).chunks]
            columns.append(pa.chunked_array(unify(pieces)))
        return pa.table(columns, names=names)


def _positions(requested: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Index into ``present`` (unique gids) of each requested gid."""
    order = np.argsort(present, kind="stable")
    return order[np.searchsorted(present, requested, sorter=order)]


def _split(tables: list[pa.Table], gids: np.ndarray) -> tuple[pa.Table | None, pa.Table | None]:
    """(rows of the requested groups, rows of the others)."""
    if not tables:
        return None, None
    table = concat_tables(tables).combine_chunks()
    mask = pc.is_in(table.column(GID), pa.array(gids, pa.int64()))
    return table.filter(mask), table.filter(pc.invert(mask))


def _numeric(arr: pa.Array, what: str) -> pa.Array:
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return arr
    if pa.types.is_null(t):
        return arr.cast(pa.float64())
    if pa.types.is_boolean(t):
        return arr.cast(pa.int64())
    from asaql.errors import ExecutionError
    from asaql.types import asa_type_name

    raise ExecutionError(f"{what} needs bigint or float values, got '{asa_type_name(t)}'")


# ------------------------------------------------------------------ accumulators


class Accumulator:
    """Grouped accumulator. ``kind`` is 'partial' or 'values'."""

    kind = "partial"

    def prepare(self, args: list[pa.Array]) -> list[pa.Array]:
        """The columns this accumulator consumes, computed from its argument values."""
        return args

    def evaluate(self, gids: np.ndarray) -> pa.Array:  # pragma: no cover - interface
        raise NotImplementedError


class PartialAccumulator(Accumulator):
    """Partial states merged by hash aggregates. Subclasses set ``updates`` (per prepared
    column index, or None for all rows: the hash aggregate applied per batch), ``merges``
    (the hash aggregate that combines partial states) and :meth:`finish`."""

    updates: tuple[tuple[int | None, str, Any], ...] = ()
    merges: tuple[tuple[str, Any], ...] = ()

    def __init__(self, options: AggregateOptions) -> None:
        self.options = options
        self._tables: list[pa.Table] = []

    def absorb(self, gids: np.ndarray, partials: list[pa.Array]) -> None:
        names = [GID] + [f"s{i}" for i in range(len(partials))]
        self._tables.append(pa.table([pa.array(gids, pa.int64()), *partials], names=names))
        if len(self._tables) > _COMPACT_AT:
            self._tables = [self._merge(concat_tables(self._tables))]

    def _merge(self, table: pa.Table) -> pa.Table:
        aggs = [(f"s{i}", fn, opts) for i, (fn, opts) in enumerate(self.merges)]
        merged = table.group_by(GID, use_threads=False).aggregate(aggs)
        names = [f"s{i}" for i in range(len(self.merges))]
        return pa.table([merged.column(GID), *(merged.column(f"{n}_{fn}") for n, (fn, _) in
                                               zip(names, self.merges, strict=True))],
                        names=[GID, *names])

    def evaluate(self, gids: np.ndarray) -> pa.Array:
        closed, rest = _split(self._tables, gids)
        self._tables = [rest] if rest is not None and rest.num_rows else []
        if closed is None or len(gids) == 0:
            return pa.nulls(0)
        merged = self._merge(closed)
        pos = _positions(gids, merged.column(GID).to_numpy())
        states = [merged.column(f"s{i}").combine_chunks().take(pa.array(pos)) for i in range(len(self.merges))]
        return self.finish(states)

    def finish(self, states: list[pa.Array]) -> pa.Array:
        return states[0]


_ALL = pc.CountOptions(mode="all")
_VALID = pc.CountOptions(mode="only_valid")
_SUM = pc.ScalarAggregateOptions(min_count=1)


class CountAll(PartialAccumulator):
    updates = ((None, "count", _ALL),)
    merges = (("sum", None),)

    def finish(self, states: list[pa.Array]) -> pa.Array:
        return pc.fill_null(states[0].cast(pa.int64()), 0)


class CountValid(PartialAccumulator):
    updates = ((0, "count", _VALID),)
    merges = (("sum", None),)

    def finish(self, states: list[pa.Array]) -> pa.Array:
        return pc.fill_null(states[0].cast(pa.int64()), 0)


class Sum(PartialAccumulator):
    updates = ((0, "sum", _SUM),)
    merges = (("sum", _SUM),)

    def prepare(self, args: list[pa.Array]) -> list[pa.Array]:
        return [_numeric(args[0], "SUM")]


class Avg(PartialAccumulator):
    updates = ((0, "sum", _SUM), (0, "count", _VALID))
    merges = (("sum", _SUM), ("sum", None))

    def prepare(self, args: list[pa.Array]) -> list[pa.Array]:
        return [_numeric(args[0], "AVG").cast(pa.float64())]

    def finish(self, states: list[pa.Array]) -> pa.Array:
        total, count = states[0].cast(pa.float64()), states[1].cast(pa.float64())
        return pc.if_else(pc.greater(count, 0), pc.divide(total, count), pa.scalar(None, pa.float64()))


class Min(PartialAccumulator):
    updates = ((0, "min", None),)
    merges = (("min", None),)


class Max(PartialAccumulator):
    updates = ((0, "max", None),)
    merges = (("max", None),)


class Moments(PartialAccumulator):
    """STDEV, STDEVP, VAR, VARP from (n, sum(x-K), sum((x-K)^2)), with K the first value seen:
    shifting by a value near the data keeps the sums free of cancellation, and plain sums
    merge exactly."""

    updates = ((0, "count", _VALID), (0, "sum", _SUM), (1, "sum", _SUM))
    merges = (("sum", None), ("sum", _SUM), ("sum", _SUM))

    def __init__(self, options: AggregateOptions, *, sample: bool, root: bool) -> None:
        super().__init__(options)
        self.sample, self.root = sample, root
        self.shift: float | None = None

    def prepare(self, args: list[pa.Array]) -> list[pa.Array]:
        x = _numeric(args[0], "STDEV/VAR").cast(pa.float64())
        if self.shift is None:
            valid = pc.drop_null(x)
            if len(valid):
                self.shift = float(valid[0].as_py())
        d = pc.subtract(x, self.shift or 0.0)
        return [d, pc.multiply(d, d)]

    def finish(self, states: list[pa.Array]) -> pa.Array:
        n = states[0].cast(pa.float64()).to_numpy(zero_copy_only=False)
        s = pc.fill_null(states[1].cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        ss = pc.fill_null(states[2].cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        dof = n - 1 if self.sample else n
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.maximum((ss - s * s / n) / dof, 0.0)
        out = np.sqrt(var) if self.root else var
        return pa.array(out, pa.float64(), mask=~(dof > 0))


class ValuesAccumulator(Accumulator):
    """Keeps the (prepared) values of every row per group until the group is evaluated."""

    kind = "values"

    def __init__(self, options: AggregateOptions) -> None:
        self.options = options
        self._tables: list[pa.Table] = []

    def absorb_rows(self, gids: np.ndarray, columns: list[pa.Array]) -> None:
        names = [GID] + [f"v{i}" for i in range(len(columns))]
        self._tables.append(pa.table([pa.array(gids, pa.int64()), *columns], names=names))

    def evaluate(self, gids: np.ndarray) -> pa.Array:
        closed, rest = _split(self._tables, gids)
        self._tables = [rest] if rest is not None and rest.num_rows else []
        return self.compute(gids, closed)

    def compute(self, gids: np.ndarray, rows: pa.Table | None) -> pa.Array:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _sorted(rows: pa.Table, order_cols: list[str], descending: Sequence[bool]) -> pa.Table:
        """Rows sorted by group, then by the ORDER BY columns (NULL sorts lowest), stable."""
        keys: list[tuple[str, str]] = [(GID, "ascending")]
        extra = {}
        for i, (col, desc) in enumerate(zip(order_cols, descending, strict=True)):
            direction = "descending" if desc else "ascending"
            extra[f"__valid{i}"] = pc.is_valid(rows.column(col))
            keys += [(f"__valid{i}", direction), (col, direction)]
        for name, arr in extra.items():
            rows = rows.append_column(name, arr)
        rows = rows.take(pc.sort_indices(rows, sort_keys=keys))
        return rows.drop_columns(list(extra))

    @staticmethod
    def _group_bounds(sorted_gids: np.ndarray, gids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.searchsorted(sorted_gids, gids, "left"), np.searchsorted(sorted_gids, gids, "right")


def _hashable_values(arr: pa.Array) -> pa.Array:
    """Values a hash aggregate can group: records, arrays and mixed (Variant) values become
    their canonical JSON text (record keys sorted), so equal values count once."""
    from asaql.types import is_variant, to_python

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if is_variant(t) or pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t) \
            or pa.types.is_map(t):
        return pa.array([None if v is None else json.dumps(v, sort_keys=True, default=str)
                         for v in to_python(arr)], pa.string())
    return arr


class CountDistinct(ValuesAccumulator):
    """COUNT(DISTINCT x): distinct non-NULL values; ``COUNT(DISTINCT input)`` counts distinct
    events (whole records compared by value)."""

    def prepare(self, args: list[pa.Array]) -> list[pa.Array]:
        return [_hashable_values(args[0])]

    def compute(self, gids: np.ndarray, rows: pa.Table | None) -> pa.Array:
        counts = np.zeros(len(gids), dtype=np.int64)
        if rows is not None and rows.num_rows:
            rows = rows.filter(pc.is_valid(rows.column("v0")))
            pairs = rows.group_by([GID, "v0"], use_threads=False).aggregate([])
            per = pairs.group_by(GID, use_threads=False).aggregate([([], "count_all")])
            present = per.column(GID).to_numpy()
            found = np.isin(gids, present)
            counts[found] = per.column("count_all").to_numpy()[_positions(gids[found], present)]
        return pa.array(counts, pa.int64())


class Percentile(ValuesAccumulator):
    """PERCENTILE_CONT interpolates at position ``p*(n-1)`` of the ordered values;
    PERCENTILE_DISC is the first value whose cumulative distribution ``i/n`` reaches ``p``."""

    def __init__(self, options: AggregateOptions, *, continuous: bool) -> None:
        super().__init__(options)
        self.continuous = continuous
        p = options.params[0] if options.params else None
        if not isinstance(p, int | float) or not 0 <= p <= 1:
            from asaql.errors import ExecutionError

            raise ExecutionError(f"the percentile must be a number between 0 and 1, got {p!r}")
        self.p = float(p)

    def prepare(self, args: list[pa.Array]) -> list[pa.Array]:
        return [_numeric(args[0], "PERCENTILE").cast(pa.float64())]

    def compute(self, gids: np.ndarray, rows: pa.Table | None) -> pa.Array:
        if rows is None or rows.num_rows == 0:
            return pa.nulls(len(gids), pa.float64())
        rows = rows.filter(pc.is_valid(rows.column("v0")))
        desc = self.options.descending[:1] or (False,)
        rows = self._sorted(rows, ["v0"], desc)
        values = rows.column("v0").to_numpy()
        lo_b, hi_b = self._group_bounds(rows.column(GID).to_numpy(), gids)
        n = hi_b - lo_b
        safe = np.maximum(n, 1)
        if self.continuous:
            pos = self.p * (safe - 1)
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, safe - 1)
            frac = pos - lo
            take_lo = values[np.minimum(lo_b + lo, len(values) - 1)] if len(values) else np.zeros(len(n))
            take_hi = values[np.minimum(lo_b + hi, len(values) - 1)] if len(values) else np.zeros(len(n))
            out = take_lo + frac * (take_hi - take_lo)
        else:
            rank = np.maximum(np.ceil(self.p * safe - 1e-9).astype(np.int64), 1)
            out = values[np.minimum(lo_b + rank - 1, len(values) - 1)] if len(values) else np.zeros(len(n))
        return pa.array(out, pa.float64(), mask=n == 0)


class Collect(ValuesAccumulator):
    """All non-NULL values of the group, as an array (order not guaranteed by ASA; asaql
    keeps arrival order)."""

    def compute(self, gids: np.ndarray, rows: pa.Table | None) -> pa.Array:
        if rows is None or rows.num_rows == 0:
            return pa.array([[]] * len(gids))
        rows = rows.filter(pc.is_valid(rows.column("v0")))
        rows = rows.take(pc.sort_indices(rows.column(GID)))  # stable: arrival order kept
        lo, hi = self._group_bounds(rows.column(GID).to_numpy(), gids)
        values = rows.column("v0").combine_chunks()
        index = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if len(gids) else []
        offsets = np.concatenate([[0], np.cumsum(hi - lo)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(index, pa.int64())))


class Top(ValuesAccumulator):
    """TopOne (``n is None``: the top row's value) and CollectTop(n) (``[{rank, value}]`` of
    the n top rows; equal ORDER BY values share a rank). Column v0 is the value, v1.. the
    ORDER BY columns."""

    def __init__(self, options: AggregateOptions, *, collect: bool) -> None:
        super().__init__(options)
        self.collect = collect
        self.n = int(options.params[0]) if collect and options.params else 1

    def compute(self, gids: np.ndarray, rows: pa.Table | None) -> pa.Array:
        if rows is None or rows.num_rows == 0:
            return pa.nulls(len(gids))
        order_cols = [c for c in rows.column_names if c.startswith("v") and c != "v0"]
        rows = self._sorted(rows, order_cols, self.options.descending)
        lo, hi = self._group_bounds(rows.column(GID).to_numpy(), gids)
        values = rows.column("v0").combine_chunks()
        if not self.collect:
            return values.take(pa.array(lo, pa.int64()))
        ranks = self._ranks(rows, order_cols)
        count = np.minimum(hi - lo, self.n)
        index = np.concatenate([np.arange(a, a + c) for a, c in zip(lo, count, strict=True)]) if len(gids) else np.array([], np.int64)
        index_arr = pa.array(index, pa.int64())
        items = pa.StructArray.from_arrays(
            [pa.array(ranks[index] - np.repeat(lo, count) + 1 if len(index) else [], pa.int64()), values.take(index_arr)],
            names=["rank", "value"])
        offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), items)

    @staticmethod
    def _ranks(rows: pa.Table, order_cols: list[str]) -> np.ndarray:
        """Position (in the sorted rows) of the first row sharing each row's group and keys."""
        n = rows.num_rows
        change = np.zeros(n, dtype=bool)
        if n:
            change[0] = True
        for col in [GID, *order_cols]:
            arr = rows.column(col).combine_chunks()
            if n > 1 and not pa.types.is_null(arr.type):  # an all-NULL column ties every row
                same = pc.fill_null(pc.equal(arr.slice(1), arr.slice(0, n - 1)), False)
                both_null = pc.and_(pc.is_null(arr.slice(1)), pc.is_null(arr.slice(0, n - 1)))
                differs = ~(np.asarray(pc.or_(same, both_null)))
                change[1:] |= differs
        return np.maximum.accumulate(np.where(change, np.arange(n), 0))


class UserAggregate(ValuesAccumulator):
    """A Python user-defined aggregate: ``fn(values) -> value`` per group (non-NULL values,
    in arrival order). Runs one Python call per group and window, not per event."""

    def __init__(self, options: AggregateOptions, fn: Callable[[list[Any]], Any]) -> None:
        super().__init__(options)
        self.fn = fn

    def compute(self, gids: np.ndarray, rows: pa.Table | None) -> pa.Array:
        from asaql.exec.evaluate import from_python
        from asaql.types import to_python

        groups: dict[int, list[Any]] = {int(g): [] for g in gids}
        if rows is not None:
            for gid, value in zip(rows.column(GID).to_pylist(), to_python(rows.column("v0").combine_chunks()), strict=True):
                if value is not None:
                    groups[gid].append(value)
        return from_python([self.fn(groups[int(g)]) for g in gids])


# ------------------------------------------------------------------ the table


def _spec(name: str, make: Callable[[AggregateOptions], Accumulator], lo: int, hi: int, **kw: Any) -> AggregateFunction:
    return AggregateFunction(name=name, make=make, min_args=lo, max_args=hi, **kw)


def _count(options: AggregateOptions) -> Accumulator:
    if options.star:
        return CountAll(options)
    if options.distinct:
        return CountDistinct(options)
    return CountValid(options)


AGGREGATE_FUNCTIONS: dict[str, AggregateFunction] = {
    f.name.lower(): f
    for f in (
        _spec("COUNT", _count, 0, 1, star=True, returns="bigint"),
        _spec("SUM", Sum, 1, 1),
        _spec("AVG", Avg, 1, 1, returns="float"),
        _spec("MIN", Min, 1, 1),
        _spec("MAX", Max, 1, 1),
        _spec("STDEV", lambda o: Moments(o, sample=True, root=True), 1, 1, returns="float"),
        _spec("STDEVP", lambda o: Moments(o, sample=False, root=True), 1, 1, returns="float"),
        _spec("VAR", lambda o: Moments(o, sample=True, root=False), 1, 1, returns="float"),
        _spec("VARP", lambda o: Moments(o, sample=False, root=False), 1, 1, returns="float"),
        _spec("PERCENTILE_CONT", lambda o: Percentile(o, continuous=True), 0, 0, params=1,
              order_by="required", returns="float"),
        _spec("PERCENTILE_DISC", lambda o: Percentile(o, continuous=False), 0, 0, params=1,
              order_by="required", returns="float"),
        _spec("TopOne", lambda o: Top(o, collect=False), 0, 1, order_by="required", record_default=True),
        _spec("CollectTop", lambda o: Top(o, collect=True), 0, 1, params=1, order_by="required",
              record_default=True, returns="array"),
        _spec("Collect", Collect, 0, 1, record_default=True, returns="array"),
    )
}

_USER: dict[str, AggregateFunction] = {}


def aggregate(name: str, *, doc: str = "") -> Callable[[Callable[[list[Any]], Any]], Callable[[list[Any]], Any]]:
    """Register a Python user-defined aggregate, called in a query as ``uda.<name>(expr)``.

    The function gets the group's non-NULL values (Python objects, arrival order) once per
    window and group, and returns the result::

        @aggregate("spread")
        def spread(values):
            return max(values) - min(values) if values else None
    """

    def register(fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
        _USER[name.lower()] = _spec(name, lambda o: UserAggregate(o, fn), 1, 1, doc=doc or (fn.__doc__ or ""))
        return fn

    return register


def user_aggregates() -> dict[str, AggregateFunction]:
    """The registered user-defined aggregates, by lower-case name."""
    return dict(_USER)


def lookup(name: str, *, user: bool = False) -> AggregateFunction | None:
    """A built-in aggregate (or, with ``user=True``, a registered ``uda.`` aggregate)."""
    return (_USER if user else AGGREGATE_FUNCTIONS).get(name.lower())
