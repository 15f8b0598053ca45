"""What a run produces: :class:`ResultStream` (``(output name, RecordBatch)`` pairs as they are
produced), :class:`RunResult` (one table per output, once the run has ended), the run context
that keeps the malformed events a run skipped, and :func:`collect`, which drains a stream into
sinks and tables.

>>> import asaql
>>> result = asaql.run("SELECT k INTO hot FROM t WHERE k > 1", inputs={"t": [{"k": 1}, {"k": 2}]})
>>> result
RunResult(outputs={'hot': 1 row}, events_in={'t': 2}, data_errors=0)
>>> result["hto"]
Traceback (most recent call last):
KeyError: "no output named 'hto' (outputs: 'hot'); did you mean 'hot'?"
"""

from __future__ import annotations

import io as _io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import pyarrow as pa

from asaql.errors import DataError, ExecutionError, did_you_mean
from asaql.exec.operator import ExecContext, Metrics

__all__ = ["MAX_KEPT_ERRORS", "ResultStream", "RunContext", "RunResult", "collect", "to_table",
           "unknown_output"]

#: Skipped malformed events kept per run on ``RunResult.errors`` (all are counted in metrics).
MAX_KEPT_ERRORS = 1000


@dataclass
class RunContext(ExecContext):
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
            raise KeyError(unknown_output(name, list(self.outputs))) from None

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


def unknown_output(name: str, names: list[str]) -> str:
    """The message for an output name that is none of ``names`` (with "did you mean")."""
    hint = did_you_mean(name, names)
    known = ", ".join(repr(n) for n in names) or "none"
    return f"no output named {name!r} (outputs: {known})" + (f"; {hint}" if hint else "")


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


def collect(stream: ResultStream, sinks: dict[str, Any], output_names: list[str]) -> RunResult:
    """Drain ``stream``: batches of an output in ``sinks`` (output name -> a path or a Sink
    object) are written there, the others are collected into one table per output (an
    output that produced no rows is an empty table without columns). Once the sinks are
    open, every one is closed, and the stream too, whatever happens."""
    from asaql.io.sink import shielded

    opened = {name: _sink(name, target) for name, target in sinks.items()}
    collected: dict[str, list[pa.RecordBatch]] = {n: [] for n in output_names if n not in opened}
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
    return RunResult({n: to_table(b) for n, b in collected.items()}, stream.metrics, stream.errors)


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


def to_table(batches: list[pa.RecordBatch]) -> pa.Table:
    """One table of ``batches`` (an empty table without columns when there are none)."""
    from asaql.io.memory import concat_batches

    return concat_batches(batches)
