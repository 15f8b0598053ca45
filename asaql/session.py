"""Session: the catalog of inputs, reference data, outputs and functions, and the walk from
query text to results::

    text -> parse -> bind -> optimize -> build operators -> drive -> sinks

>>> import asaql
>>> s = asaql.Session()
>>> s.add_input("iot", [{"deviceId": "d1", "temperature": 31.5}, {"deviceId": "d2", "temperature": 20.0}])
>>> s.run("SELECT deviceId FROM iot WHERE temperature > 30")["output"].to_pylist()
[{'deviceId': 'd1'}]
"""

from __future__ import annotations

import datetime as dt
import io as _io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from asaql.config import Options
from asaql.errors import AsaqlError, ConfigError, Diagnostic, ExecutionError
from asaql.exec import physical
from asaql.exec.operator import ExecContext, Metrics
from asaql.exec.runtime import pull, strip_internal
from asaql.plan import logical as lp
from asaql.plan.bind import bind
from asaql.plan.catalog import Catalog, InputInfo
from asaql.plan.optimizer import optimize

__all__ = ["Job", "RunResult", "Session"]

InputData = str | Path | pa.Table | pa.RecordBatch | list[Any] | Iterator[Any]


@dataclass
class _Input:
    name: str
    kind: str  # stream | reference | ml
    data: Any = None
    format: str | None = None
    spec: Any = None
    follow: bool = False


@dataclass
class RunResult:
    """What a run produced: one table per output, and the run's metrics."""

    outputs: dict[str, pa.Table]
    metrics: Metrics

    def __getitem__(self, name: str) -> pa.Table:
        return self.outputs[name]

    def rows(self, name: str = "output") -> list[dict[str, Any]]:
        """The rows of output ``name`` as Python dicts. Unlike ``Table.to_pylist()``, values of
        mixed-type (Variant) columns come back as Python values, not their JSON text."""
        from asaql.types import to_python

        table = self.outputs[name]
        columns = {col: to_python(table.column(col)) for col in table.column_names}
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


class Session:
    """Inputs, functions and options; compiles and runs queries against them."""

    def __init__(self, options: Options | None = None, **kwargs: Any) -> None:
        self.options = (options or Options()).with_(**kwargs) if kwargs else (options or Options())
        self._inputs: dict[str, _Input] = {}
        self._functions: dict[str, Any] = {}
        self.report: Callable[[str], None] = lambda message: None

    # ------------------------------------------------------------ catalog

    def add_input(self, name: str, data: InputData, *, format: str | None = None,
                  reference: bool = False, follow: bool = False) -> None:
        """Register a stream input (or reference data with ``reference=True``): a file path
        ('-' for stdin), a pyarrow Table/RecordBatch, a list of dicts, or an iterator of
        events (dicts), lists of events or RecordBatches, read as it produces them (a live
        input: ``Job.stream()`` gives results as the watermark passes; it is read once)."""
        kind = "reference" if reference else "stream"
        self._inputs[name.lower()] = _Input(name, kind, data, format, follow=follow)

    def add_reference(self, name: str, data: InputData, *, format: str | None = None) -> None:
        self.add_input(name, data, format=format, reference=True)

    def add_ml_input(self, name: str, spec: Any) -> None:
        """Register an ML endpoint as a reference input (the seed ``JOIN name INTO (...)`` form)."""
        self._inputs[name.lower()] = _Input(name, "ml", spec=_endpoint(name, spec))

    def add_function(self, name: str, spec: Any) -> None:
        """Register ``udf.<name>``: an EndpointSpec, a function definition file or dict, or a
        Python function scoring a list of rows in-process (one result per row)."""
        self._functions[name.lower()] = _endpoint(name, spec)

    @property
    def inputs(self) -> dict[str, str]:
        return {i.name: i.kind for i in self._inputs.values()}

    def catalog(self, *, open_: bool = False, peek: bool = False) -> Catalog:
        """The binder's view of the inputs. With ``peek``, the fields of file inputs are read
        from their first block, so unknown names get a "did you mean" warning."""
        cat = Catalog(open=open_)
        for inp in self._inputs.values():
            fields = _known_fields(inp) or (_peek_fields(inp) if peek else None)
            cat.add_input(InputInfo(name=inp.name, kind=inp.kind, fields=fields, spec=inp.spec))
        cat.functions = dict(self._functions)
        return cat

    # ------------------------------------------------------------ compile / run

    def compile(self, text: str, *, filename: str = "query", open_catalog: bool = False) -> Job:
        """Parse, bind and optimize ``text``; raises a QueryError with a position."""
        from asaql.sql.parser import parse

        script = parse(text)
        bound = bind(script, self.catalog(open_=open_catalog), strict=self.options.strict)
        return Job(self, text, filename, script, bound.plan, bound.diagnostics)

    def check(self, text: str) -> list[Diagnostic]:
        """Every diagnostic for ``text`` without running it (errors included, never raised)."""
        from asaql.sql.parser import parse

        try:
            script = parse(text)
            bound = bind(script, self.catalog(open_=True, peek=True), strict=self.options.strict)
        except AsaqlError as exc:
            return [exc.diagnostic()]
        return bound.diagnostics

    def run(self, text: str, outputs: dict[str, Any] | None = None) -> RunResult:
        return self.compile(text).run(outputs)

    # ------------------------------------------------------------ sources

    def open_input(self, ctx: ExecContext) -> Callable[[str, list[str] | None], Iterator[pa.RecordBatch]]:
        def opener(name: str, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
            inp = self._inputs.get(name.lower())
            if inp is None:
                raise ConfigError(f"input '{name}' has no data: give it with --input {name}=PATH")
            return _open(inp, columns, ctx)

        return opener


def _open(inp: _Input, columns: list[str] | None, ctx: ExecContext) -> Iterator[pa.RecordBatch]:
    if isinstance(inp.data, str | Path):
        from asaql.io.source import open_source

        source = open_source(inp.name, str(inp.data), format=inp.format, on_error=ctx.data_error,
                             batch_rows=ctx.batch_size, reference=inp.kind == "reference",
                             follow=inp.follow)
        try:
            yield from source.batches(columns)
        finally:
            source.close()
        return
    from asaql.io.memory import MemorySource

    source = MemorySource(inp.name, inp.data, batch_rows=ctx.batch_size)
    try:
        yield from _rebatch(source.batches(columns), ctx.batch_size)
    finally:
        source.close()


def _rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if not batch.num_rows:
            yield batch  # a followed input's "no new data" tick
            continue
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size)


def _known_fields(inp: _Input) -> list[str] | None:
    if isinstance(inp.data, pa.Table | pa.RecordBatch):
        return list(inp.data.schema.names)
    return None


def _peek_fields(inp: _Input) -> list[str] | None:
    """Field names in the first block of a file input (None when it cannot be read)."""
    if not isinstance(inp.data, str | Path) or str(inp.data) == "-":
        return None
    from asaql.io.source import open_source

    try:
        source = open_source(inp.name, str(inp.data), format=inp.format, on_error=lambda e: None,
                             batch_rows=1000)
        try:
            first = next(iter(source.batches(None)), None)
        finally:
            source.close()
    except (AsaqlError, OSError):
        return None
    if first is None or inp.kind == "stream" and first.num_rows < 1:
        return None
    return list(first.schema.names) + ["EventEnqueuedUtcTime", "EventProcessedUtcTime", "PartitionId"]


def _endpoint(name: str, spec: Any) -> Any:
    from asaql.ml.endpoint import EndpointSpec, load_function_spec

    if isinstance(spec, EndpointSpec):
        return spec
    if callable(spec):
        from asaql.ml.python_udf import udf

        udf(name)(spec)
        return EndpointSpec(name=name, url=f"python:{name}", protocol="python")
    return load_function_spec(name, spec)


@dataclass
class Job:
    """A compiled query: AST, logical plan, optimized plan; runs any number of times."""

    session: Session
    text: str
    filename: str
    script: Any
    logical: lp.LogicalPlan
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def plan(self) -> lp.LogicalPlan:
        import copy

        return optimize(copy.deepcopy(self.logical), enabled=self.session.options.optimize)

    @property
    def output_names(self) -> list[str]:
        names = [o.name for o in self.logical.outputs] + self.logical.dead_letters()
        return list(dict.fromkeys(names))

    @property
    def input_names(self) -> list[str]:
        """The inputs the query reads (stream, reference data and ML reference inputs)."""
        names = [n.input_name for n in self.logical.nodes() if isinstance(n, lp.Scan)]
        names += [n.function for n in self.logical.nodes() if isinstance(n, lp.MLScore)]
        return list(dict.fromkeys(names))

    @property
    def function_names(self) -> list[str]:
        """The ML functions and endpoints the query calls."""
        return list(dict.fromkeys(n.function for n in self.logical.nodes() if isinstance(n, lp.MLScore)))

    def explain(self) -> str:
        plan = self.plan
        return "\n".join([
            "== Logical plan ==", self.logical.explain(), "",
            "== Optimized plan ==", plan.explain(), "",
            "== Physical plan ==", physical.describe_physical(plan),
        ])

    def context(self) -> ExecContext:
        opts = self.session.options
        ctx = ExecContext(batch_size=opts.batch_size, on_data_error=opts.on_data_error,
                          options=opts, report=self.session.report)
        if opts.clock is not None:
            ctx.clock = opts.clock
            ctx.start_time = opts.clock()
        return ctx

    def stream(self, ctx: ExecContext | None = None) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Yield (output name, batch) as results are produced (a window's rows as soon as
        the watermark closes it)."""
        ctx = ctx or self.context()
        for name, batch in pull(physical.build(self.plan, ctx, self.session.open_input(ctx)), ctx):
            yield name, strip_internal(batch)

    def run(self, sinks: dict[str, Any] | None = None, *, ctx: ExecContext | None = None) -> RunResult:
        """Run to the end. ``sinks`` maps output names to paths or Sink objects; outputs
        without a sink are collected and returned as tables."""
        from asaql.io.sink import shielded

        ctx = ctx or self.context()
        opened = {name: _sink(name, target) for name, target in (sinks or {}).items()}
        collected: dict[str, list[pa.RecordBatch]] = {n: [] for n in self.output_names if n not in opened}

        try:
            for name, batch in self.stream(ctx):
                if name in opened:
                    with shielded():  # a Ctrl-C waits for the whole batch to be written
                        _write(name, opened[name], batch)
                else:
                    collected.setdefault(name, []).append(batch)
        finally:
            with shielded():
                _close_all(list(opened.values()))
        return RunResult({n: _to_table(b) for n, b in collected.items()}, ctx.metrics)


def _write(name: str, sink: Any, batch: pa.RecordBatch) -> None:
    try:
        sink.write(batch)
    except BrokenPipeError:
        raise  # stdout's reader went away (`| head`): the CLI ends quietly
    except OSError as exc:
        raise ExecutionError(f"output '{name}': cannot write: {exc.strerror or exc}") from exc


def _close_all(sinks: list[Any]) -> None:
    """Close every sink, even when one fails to (the first failure is raised)."""
    failure: BaseException | None = None
    for sink in sinks:
        try:
            sink.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others closed
            failure = failure or exc
    if failure is not None:
        raise failure


def _sink(name: str, target: Any) -> Any:
    if hasattr(target, "write") and hasattr(target, "close") and not isinstance(target, _io.IOBase):
        return target
    from asaql.io.sink import open_sink

    return open_sink(name, str(target))


def _to_table(batches: list[pa.RecordBatch]) -> pa.Table:
    if not batches:
        return pa.table({})
    try:
        return pa.Table.from_batches(batches)
    except pa.ArrowInvalid:
        tables = [pa.Table.from_batches([b]) for b in batches]
        return pa.concat_tables(tables, promote_options="permissive")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
