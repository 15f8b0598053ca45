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

The walk is spread over modules, one responsibility each: :mod:`asaql.inputs` (what an input's
data may be, and opening it for a run), :mod:`asaql.compiled` (:class:`Job`, the compiled
query, and its runs) and :mod:`asaql.result` (:class:`RunResult`, :class:`ResultStream`).
They are importable from here too.

Python functions given to ``add_function`` / ``add_ml_input`` are registered in
:mod:`asaql.ml.python_udf` under keys of the session's own; they are released when the session
is garbage-collected (a :class:`Job` keeps its session alive).
"""

from __future__ import annotations

import datetime as dt
import re
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from asaql.compiled import Job
from asaql.config import Options
from asaql.errors import AsaqlError, ConfigError, Diagnostic
from asaql.exec.operator import ExecContext
from asaql.inputs import (
    InputData,
    InputEntry,
    check_data,
    check_name,
    check_run_inputs,
    known_fields,
    mark_read,
    open_data,
    peek_fields,
)
from asaql.plan.bind import bind
from asaql.plan.catalog import Catalog, InputInfo
from asaql.result import MAX_KEPT_ERRORS, ResultStream, RunResult  # noqa: F401 - its old home
from asaql.result import RunContext as _RunContext  # noqa: F401 - its name before the split
from asaql.result import to_table as _to_table  # noqa: F401 - imported by asaql.cli.repl

__all__ = ["InputData", "Job", "ResultStream", "RunResult", "Session"]

_Input = InputEntry  # its name before the split

_PYTHON_REFERENCE = re.compile(r"(python:)?[A-Za-z_][\w.]*:[A-Za-z_][\w.]*|python:[A-Za-z_][\w.]*")


class Session:
    """Inputs, functions and options; compiles and runs queries against them.

    Options are given as an :class:`~asaql.config.Options` or as its fields:
    ``Session(batch_size=100, job_config={...})``. ``report`` is called with each warning
    of a run (a skipped malformed event); it does nothing by default.
    """

    def __init__(self, options: Options | None = None, **kwargs: Any) -> None:
        self.options = (options or Options()).with_(**kwargs) if kwargs else (options or Options())
        self._inputs: dict[str, InputEntry] = {}
        self._functions: dict[str, Any] = {}
        self.report: Callable[[str], None] = lambda message: None
        # keys of this session's Python functions in asaql.ml.python_udf, released with it
        self._registered: set[str] = set()

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
        check_name(name, "input")
        kind = "reference" if reference else "stream"
        if not isinstance(data, str | Path):
            data = check_data(name, data, reference)
        self._inputs[name.lower()] = InputEntry(name, kind, data, format, follow=follow)

    def add_reference(self, name: str, data: InputData, *, format: str | None = None) -> None:
        """Register reference data: ``add_input(name, data, format=format, reference=True)``."""
        self.add_input(name, data, format=format, reference=True)

    def add_ml_input(self, name: str, spec: Any) -> None:
        """Register an ML endpoint as a reference input (the seed ``JOIN name INTO (...)`` form)."""
        check_name(name, "ML input")
        self._inputs[name.lower()] = InputEntry(name, "ml", spec=self._endpoint(name, spec))

    def add_function(self, name: str, spec: Any) -> None:
        """Register ``udf.<name>``.

        ``spec`` is an ``EndpointSpec``; a function definition (a ``.json``/``.toml`` path, or
        a dict: Azure ML's ARM/REST form or asaql's own); a Python callable scoring a list of
        rows in-process (one result per row; one decorated with ``asaql.udf(...)`` keeps its
        options); or ``"python:module:function"`` / ``"python:<name registered with
        asaql.udf>"`` (``"module:function"`` alone when no such file exists).
        """
        check_name(name, "function")
        self._functions[name.lower()] = self._endpoint(name, spec)

    @property
    def inputs(self) -> dict[str, str]:
        """Input name -> kind ('stream', 'reference' or 'ml')."""
        return {i.name: i.kind for i in self._inputs.values()}

    def catalog(self, *, open_: bool = False, peek: bool = False) -> Catalog:
        """The binder's view of the inputs. With ``peek``, the fields of file inputs are read
        from their first block, so unknown names get a "did you mean" warning."""
        cat = Catalog(open=open_)
        for inp in self._inputs.values():
            fields = known_fields(inp) or (peek_fields(inp) if peek else None)
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
            bound = bind(script, self.catalog(open_=True, peek=True), strict=self.options.strict,
                         collect_errors=True)
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
                inp = InputEntry(inp.name, inp.kind, overrides[name.lower()], None)
            mark_read(inp)
            return open_data(inp, columns, ctx)

        return opener

    def run_inputs(self, inputs: Mapping[str, InputData] | None) -> dict[str, Any]:
        """Check a run's ``inputs=`` (name -> data replacing the session's for that run)
        against the session's inputs; returns lower-case name -> data. Raises ConfigError
        for a name that is no stream or reference input, or data no run could read."""
        return check_run_inputs(self._inputs, inputs)

    # ------------------------------------------------------------ functions

    def _endpoint(self, name: str, spec: Any) -> Any:
        """The EndpointSpec of ``udf.<name>`` / ML input ``name`` (see :meth:`add_function`)."""
        from asaql.ml.endpoint import EndpointSpec, load_function_spec

        if isinstance(spec, EndpointSpec):
            return spec
        if callable(spec):
            return self._python_function(name, spec)
        if isinstance(spec, str) and _PYTHON_REFERENCE.fullmatch(spec) and not Path(spec).exists():
            url = spec if spec.startswith("python:") else f"python:{spec}"
            return EndpointSpec(name=name, url=url, protocol="python")
        return load_function_spec(name, spec)

    def _python_function(self, name: str, function: Callable[..., Any]) -> Any:
        """An in-process scoring function. It is registered under a key of its own (the alias
        and a sequence number), so two sessions giving different functions the same alias, or
        two threads doing so, do not replace each other's; a function decorated with
        ``asaql.udf`` keeps its options (``batch``, ``arrow``). The key is released with the
        session."""
        from asaql.ml import python_udf
        from asaql.ml.endpoint import EndpointSpec

        key = python_udf.register(function, name=name)
        if not self._registered:  # the first one: release them all with the session
            weakref.finalize(self, _unregister_all, self._registered).atexit = False
        self._registered.add(key)
        return EndpointSpec(name=name, url=f"python:{key}", protocol="python")


def _unregister_all(keys: set[str]) -> None:
    """A session's finalizer: release its Python functions' registrations."""
    if not keys:
        return
    from asaql.ml import python_udf

    for key in list(keys):
        python_udf.unregister(key)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
