"""Session: the catalog of inputs, reference data, outputs and functions, and the walk from
query text to results::

    text -> parse -> bind -> optimize -> build operators -> drive -> sinks

>>> import asaql
>>> s = asaql.Session()
>>> s.add_input("iot", [{"deviceId": "d1", "temperature": 31.5}, {"deviceId": "d2", "temperature": 20.0}])
>>> s.run("SELECT deviceId FROM iot WHERE temperature > 30")["output"].to_pylist()
[{'deviceId': 'd1'}]
>>> s
Session(inputs={'iot': 'stream'})

A compiled :class:`Job` holds no run state: each ``run()`` / ``stream()`` builds its operators
and its :class:`~asaql.exec.operator.ExecContext` (metrics, skipped events) afresh, so a job
runs any number of times, from several threads at once, each run with its own inputs if
``inputs=`` is given. An input given as an iterator is read once: a second read is a
``ConfigError`` (give the run a new iterator with ``inputs=``).
"""

from __future__ import annotations

import datetime as dt
import io as _io
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pyarrow as pa

from asaql.config import Options
from asaql.errors import (
    AsaqlError,
    ConfigError,
    DataError,
    Diagnostic,
    ExecutionError,
    did_you_mean,
)
from asaql.exec import physical
from asaql.exec.operator import ExecContext, Metrics
from asaql.exec.runtime import pull, strip_internal
from asaql.plan import logical as lp
from asaql.plan.bind import bind
from asaql.plan.catalog import Catalog, InputInfo
from asaql.plan.optimizer import optimize

__all__ = ["InputData", "Job", "ResultStream", "RunResult", "Session"]

#: What an input can be given as (see :meth:`Session.add_input`).
InputData = str | Path | pa.Table | pa.RecordBatch | pa.RecordBatchReader | Sequence[Any] | Iterator[Any]

#: Skipped malformed events kept per run on ``RunResult.errors`` (all are counted in metrics).
MAX_KEPT_ERRORS = 1000

_LOCK = threading.Lock()  # guards the "read once" mark of iterator inputs


@dataclass
class _Input:
    name: str
    kind: str  # stream | reference | ml
    data: Any = None
    format: str | None = None
    spec: Any = None
    follow: bool = False
    read: bool = False  # an iterator input that a run has opened


@dataclass
class _RunContext(ExecContext):
    """An ExecContext that also keeps the malformed events it skipped (up to MAX_KEPT_ERRORS)."""

    errors: list[DataError] = field(default_factory=list)

    def data_error(self, error: DataError) -> None:
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(error)
        super().data_error(error)


@dataclass
class RunResult:
    """What a run produced: one table per output, the run's metrics, and the malformed events
    it skipped (``errors``: DataErrors with input, line or event, and field)."""

    outputs: dict[str, pa.Table]
    metrics: Metrics
    errors: list[DataError] = field(default_factory=list)

    def __getitem__(self, name: str) -> pa.Table:
        try:
            return self.outputs[name]
        except KeyError:
            raise KeyError(_unknown_output(name, list(self.outputs))) from None

    def __contains__(self, name: object) -> bool:
        return name in self.outputs

    def rows(self, name: str | None = None) -> list[dict[str, Any]]:
        """The rows of output ``name`` (optional when the query has one output) as Python
        dicts. Unlike ``Table.to_pylist()``, values of mixed-type (Variant) columns come back as
        Python values, not their JSON text."""
        from asaql.types import to_python

        if name is None:
            name = next(iter(self.outputs)) if len(self.outputs) == 1 else "output"
        table = self[name]
        columns = {col: to_python(table.column(col)) for col in table.column_names}
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]

    def __repr__(self) -> str:
        outputs = ", ".join(f"{n!r}: {_rows(t.num_rows)}" for n, t in self.outputs.items())
        return (f"RunResult(outputs={{{outputs}}}, events_in={self.metrics.events_in}, "
                f"data_errors={self.metrics.data_errors})")


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _unknown_output(name: str, names: list[str]) -> str:
    hint = did_you_mean(name, names)
    known = ", ".join(repr(n) for n in names) or "none"
    return f"no output named {name!r} (outputs: {known})" + (f"; {hint}" if hint else "")


class Session:
    """Inputs, functions and options; compiles and runs queries against them.

    Options are given as an :class:`~asaql.config.Options` or as its fields:
    ``Session(batch_size=100, job_config={...})``. ``report`` is called with each warning
    of a run (a skipped malformed event); it does nothing by default.
    """

    def __init__(self, options: Options | None = None, **kwargs: Any) -> None:
        self.options = (options or Options()).with_(**kwargs) if kwargs else (options or Options())
        self._inputs: dict[str, _Input] = {}
        self._functions: dict[str, Any] = {}
        self.report: Callable[[str], None] = lambda message: None

    def __repr__(self) -> str:
        parts = [f"inputs={self.inputs}"]
        if self._functions:
            parts.append(f"functions={sorted(s.name for s in self._functions.values())}")
        if self.options != Options():
            parts.append(f"options={self.options!r}")
        return f"Session({', '.join(parts)})"

    # ------------------------------------------------------------ catalog

    def add_input(self, name: str, data: InputData, *, format: str | None = None,
                  reference: bool = False, follow: bool = False) -> None:
        """Register a stream input (or reference data with ``reference=True``).

        Args:
            name: the name the query reads (``FROM name``), matched case-insensitively.
            data: a file path ('-' for stdin), a pyarrow Table / RecordBatch /
                RecordBatchReader, a list of dicts or of RecordBatches, an object with the
                Arrow stream interface (a pandas or polars DataFrame), or an iterator of
                events (dicts), lists of events, RecordBatches and ``None`` (an idle tick),
                read as it produces them: a live input, read once. Reference data given as an
                iterator is read here, once, and kept.
            format: the file format when the path's extension does not say (jsonl, csv, parquet).
            reference: reference data (read whole before the stream; joined by key).
            follow: keep reading a file as it grows (like ``tail -f``).

        Raises:
            TypeError: ``data`` is none of these.
        """
        _check_name(name, "input")
        kind = "reference" if reference else "stream"
        if not isinstance(data, str | Path):
            data = _check_data(name, data, reference)
        self._inputs[name.lower()] = _Input(name, kind, data, format, follow=follow)

    def add_reference(self, name: str, data: InputData, *, format: str | None = None) -> None:
        """Register reference data: ``add_input(name, data, format=format, reference=True)``."""
        self.add_input(name, data, format=format, reference=True)

    def add_ml_input(self, name: str, spec: Any) -> None:
        """Register an ML endpoint as a reference input (the seed ``JOIN name INTO (...)`` form)."""
        _check_name(name, "ML input")
        self._inputs[name.lower()] = _Input(name, "ml", spec=_endpoint(name, spec))

    def add_function(self, name: str, spec: Any) -> None:
        """Register ``udf.<name>``.

        ``spec`` is an ``EndpointSpec``; a function definition (a ``.json``/``.toml`` path, or
        a dict: Azure ML's ARM/REST form or asaql's own); a Python callable scoring a list of
        rows in-process (one result per row; one decorated with ``asaql.udf(...)`` keeps its
        options); or ``"python:module:function"`` / ``"python:<name registered with
        asaql.udf>"`` (``"module:function"`` alone when no such file exists).
        """
        _check_name(name, "function")
        self._functions[name.lower()] = _endpoint(name, spec)

    @property
    def inputs(self) -> dict[str, str]:
        """Input name -> kind ('stream', 'reference' or 'ml')."""
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
        """Compile and run ``text``; ``outputs`` maps output names to sinks (see ``Job.run``)."""
        return self.compile(text).run(outputs)

    # ------------------------------------------------------------ sources

    def open_input(self, ctx: ExecContext, overrides: Mapping[str, Any] | None = None,
                   ) -> Callable[[str, list[str] | None], Iterator[pa.RecordBatch]]:
        """The scan's source factory for one run; ``overrides`` (lower-case name -> data)
        replace the session's data for that run."""
        def opener(name: str, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
            inp = self._inputs.get(name.lower())
            if inp is None:
                raise ConfigError(f"input '{name}' has no data: give it with --input {name}=PATH "
                                  f"or session.add_input({name!r}, ...)")
            if overrides and name.lower() in overrides:
                inp = _Input(inp.name, inp.kind, overrides[name.lower()], None)
            _mark_read(inp)
            return _open(inp, columns, ctx)

        return opener


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"an {what} needs a name (a non-empty string), got {name!r}")


def _check_data(name: str, data: Any, reference: bool) -> Any:
    """Fail at ``add_input`` on data that no run could read. Reference data from an iterator
    is read now: every run reads reference data whole."""
    from asaql.io.memory import MemorySource, check_events

    check_events(name, data)
    if reference and isinstance(data, Iterator | pa.RecordBatchReader):
        return list(MemorySource(name, data).batches()) or []
    return data


def _mark_read(inp: _Input) -> None:
    if not isinstance(inp.data, Iterator | pa.RecordBatchReader):
        return
    with _LOCK:
        if inp.read:
            raise ConfigError(
                f"input '{inp.name}' is an iterator, and an earlier run (or another reader in "
                "this run) has read it: an iterator is read once",
                help=f"give each run its own: job.run(inputs={{{inp.name!r}: ...}})")
        inp.read = True


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


_SYSTEM_FIELDS = ["EventEnqueuedUtcTime", "EventProcessedUtcTime", "PartitionId"]


def _known_fields(inp: _Input) -> list[str] | None:
    """The fields of in-memory data (for "did you mean" warnings): a table's columns, or the
    keys of a list of dicts (not too long to look through); None when unknown."""
    names: list[str] | None = None
    if isinstance(inp.data, pa.Table | pa.RecordBatch):
        names = list(inp.data.schema.names)
    elif (isinstance(inp.data, list | tuple) and 0 < len(inp.data) <= 10_000
          and all(isinstance(row, dict) for row in inp.data)):
        names = list(dict.fromkeys(str(k) for row in inp.data for k in row))
    return None if names is None else names + _SYSTEM_FIELDS


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
    return list(first.schema.names) + _SYSTEM_FIELDS


_PYTHON_REFERENCE = re.compile(r"(python:)?[A-Za-z_][\w.]*:[A-Za-z_][\w.]*|python:[A-Za-z_][\w.]*")


def _endpoint(name: str, spec: Any) -> Any:
    from asaql.ml.endpoint import EndpointSpec, load_function_spec

    if isinstance(spec, EndpointSpec):
        return spec
    if callable(spec):
        return _python_function(name, spec)
    if isinstance(spec, str) and _PYTHON_REFERENCE.fullmatch(spec) and not Path(spec).exists():
        url = spec if spec.startswith("python:") else f"python:{spec}"
        return EndpointSpec(name=name, url=url, protocol="python")
    return load_function_spec(name, spec)


def _python_function(name: str, function: Callable[..., Any]) -> Any:
    """An in-process scoring function. It is registered under a key of its own (the alias and
    the function's id), so two sessions giving different functions the same alias, or two
    threads doing so, do not replace each other's; a function decorated with ``asaql.udf``
    keeps its options (``batch``, ``arrow``)."""
    from asaql.ml import python_udf
    from asaql.ml.endpoint import EndpointSpec

    decorated = next((f for f in python_udf.registered().values() if f.function is function), None)
    key = f"{name.lower()}.{id(function):x}"
    entry = python_udf.PythonFunction(
        name.lower(), function,
        batch=decorated.batch if decorated else True, arrow=decorated.arrow if decorated else False)
    with python_udf._LOCK:
        python_udf._REGISTRY[key] = entry
    return EndpointSpec(name=name, url=f"python:{key}", protocol="python")


@dataclass(repr=False)
class Job:
    """A compiled query: AST, logical plan, optimized plan; runs any number of times.

    A run's state (operators, metrics, the events it skipped) lives in the run, never on the
    job: runs do not see each other, and two threads may run one job at once.
    """

    session: Session
    text: str
    filename: str
    script: Any
    logical: lp.LogicalPlan
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __repr__(self) -> str:
        query = " ".join(self.text.split())
        query = query if len(query) <= 60 else query[:57] + "..."
        return f"Job({query!r}, inputs={self.input_names}, outputs={self.output_names})"

    @property
    def plan(self) -> lp.LogicalPlan:
        """The optimized plan (a fresh copy: runs never share plan nodes)."""
        import copy

        return optimize(copy.deepcopy(self.logical), enabled=self.session.options.optimize)

    @property
    def output_names(self) -> list[str]:
        """The outputs, in script order (``INTO`` targets, then dead-letter outputs)."""
        names = [o.name for o in self.logical.outputs] + self.logical.dead_letters()
        return list(dict.fromkeys(names))

    @property
    def input_names(self) -> list[str]:
        """The inputs the query reads (stream, reference data and ML reference inputs)."""
        ml_inputs = {name.lower() for name, kind in self.session.inputs.items() if kind == "ml"}
        names = [n.input_name for n in self.logical.nodes() if isinstance(n, lp.Scan)]
        names += [n.function for n in self.logical.nodes()
                  if isinstance(n, lp.MLScore) and n.function.lower() in ml_inputs]  # not udf.<name>
        return list(dict.fromkeys(names))

    @property
    def function_names(self) -> list[str]:
        """The ML functions and endpoints the query calls."""
        return list(dict.fromkeys(n.function for n in self.logical.nodes() if isinstance(n, lp.MLScore)))

    def explain(self) -> str:
        """The logical, optimized and physical plans, as text."""
        plan = self.plan
        return "\n".join([
            "== Logical plan ==", self.logical.explain(), "",
            "== Optimized plan ==", plan.explain(), "",
            "== Physical plan ==", physical.describe_physical(plan),
        ])

    def context(self) -> ExecContext:
        """A fresh run context (metrics, clock, bad-data policy) from the session's options."""
        opts = self.session.options
        ctx = _RunContext(batch_size=opts.batch_size, on_data_error=opts.on_data_error,
                          options=opts, report=self.session.report)
        if opts.clock is not None:
            ctx.clock = opts.clock
            ctx.start_time = opts.clock()
        return ctx

    def stream(self, ctx: ExecContext | None = None, *,
               inputs: Mapping[str, InputData] | None = None) -> ResultStream:
        """Start a run; iterate the result for (output name, batch) pairs as results are
        produced (a window's rows as soon as the watermark closes it).

        Args:
            ctx: a run context (default: a fresh one, see :meth:`context`).
            inputs: data for this run only, by input name, replacing what the session holds
                (the same kinds of data as ``Session.add_input``).

        The run is lazy: nothing is read before the first item is asked for. Closing the
        stream (``close()``, leaving a ``with`` block, or dropping it) stops the run: inputs,
        sinks and ML worker threads are released.
        """
        ctx = ctx or self.context()
        overrides = self._overrides(inputs)
        return ResultStream(self._results(ctx, overrides), ctx)

    def _results(self, ctx: ExecContext, overrides: dict[str, Any]) -> Iterator[tuple[str, pa.RecordBatch]]:
        operators = physical.build(self.plan, ctx, self.session.open_input(ctx, overrides))
        for name, batch in pull(operators, ctx):
            yield name, strip_internal(batch)

    def _overrides(self, inputs: Mapping[str, InputData] | None) -> dict[str, Any]:
        """Check the per-run ``inputs`` against the job's inputs (lower-case name -> data)."""
        out: dict[str, Any] = {}
        known = {i.name.lower(): i for i in self.session._inputs.values() if i.kind != "ml"}
        for name, data in (inputs or {}).items():
            inp = known.get(name.lower()) if isinstance(name, str) else None
            if inp is None:
                names = [i.name for i in known.values()]
                raise ConfigError(
                    f"inputs: {name!r} is not an input of this job (inputs: {', '.join(names) or 'none'})",
                    help=did_you_mean(str(name), names))
            out[name.lower()] = _check_data(inp.name, data, inp.kind == "reference")
        return out

    def run(self, sinks: dict[str, Any] | None = None, *, inputs: Mapping[str, InputData] | None = None,
            ctx: ExecContext | None = None) -> RunResult:
        """Run to the end.

        Args:
            sinks: output name -> a path or a Sink object (``write(batch)``, ``close()``);
                outputs without a sink are collected and returned as tables.
            inputs: data for this run only (see :meth:`stream`).
            ctx: a run context (default: a fresh one).

        Returns:
            One table per collected output (an output that produced no rows is an empty table
            without columns), the metrics, and the malformed events skipped.
        """
        from asaql.io.sink import shielded

        for name in sinks or {}:
            if name not in self.output_names:
                raise ConfigError(_unknown_output(name, self.output_names))
        stream = self.stream(ctx, inputs=inputs)
        opened = {name: _sink(name, target) for name, target in (sinks or {}).items()}
        collected: dict[str, list[pa.RecordBatch]] = {n: [] for n in self.output_names if n not in opened}

        try:
            with stream:
                for name, batch in stream:
                    if name in opened:
                        with shielded():  # a Ctrl-C waits for the whole batch to be written
                            _write(name, opened[name], batch)
                    else:
                        collected.setdefault(name, []).append(batch)
        finally:
            with shielded():
                _close_all(list(opened.values()))
        return RunResult({n: _to_table(b) for n, b in collected.items()}, stream.metrics, stream.errors)


class ResultStream(Iterator[tuple[str, pa.RecordBatch]]):
    """The results of one run, as ``(output name, RecordBatch)`` pairs in the order they are
    produced; ``metrics`` and ``errors`` (skipped malformed events) grow as it goes. One
    consumer at a time; use it as a context manager, or ``close()`` it, to stop a run early.
    """

    def __init__(self, items: Iterator[tuple[str, pa.RecordBatch]], ctx: ExecContext) -> None:
        self._items = items
        self.ctx = ctx

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> tuple[str, pa.RecordBatch]:
        return next(self._items)

    @property
    def metrics(self) -> Metrics:
        """The run's metrics so far (final once the stream is exhausted)."""
        return self.ctx.metrics

    @property
    def errors(self) -> list[DataError]:
        """The malformed events skipped so far (see ``RunResult.errors``)."""
        return list(getattr(self.ctx, "errors", []))

    def close(self) -> None:
        """Stop the run: inputs are closed and ML worker threads end (idempotent)."""
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStream(events_in={self.metrics.events_in}, events_out={self.metrics.events_out})"


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
    from asaql.io.memory import concat_batches

    return concat_batches(batches)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
