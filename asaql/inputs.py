"""The inputs a :class:`~asaql.session.Session` holds: what an input's data may be, the checks
made when it is given, and how a run opens it as a stream of RecordBatches.

An input given as an iterator is read once: a second read is a ``ConfigError`` (give the run a
new iterator with ``inputs=``). Reference data given as an iterator is read when it is given,
and kept: every run reads reference data whole.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from asaql.errors import AsaqlError, ConfigError, did_you_mean
from asaql.exec.operator import ExecContext

__all__ = ["InputData", "InputEntry", "check_data", "check_name", "check_run_inputs", "known_fields",
           "mark_read", "open_data", "peek_fields"]

#: What an input can be given as (see :meth:`Session.add_input`).
InputData = str | Path | pa.Table | pa.RecordBatch | pa.RecordBatchReader | Sequence[Any] | Iterator[Any]

_LOCK = threading.Lock()  # guards the "read once" mark of iterator inputs

_SYSTEM_FIELDS = ["EventEnqueuedUtcTime", "EventProcessedUtcTime", "PartitionId"]


@dataclass
class InputEntry:
    """One input of a session: its name as given, its kind, and its data or endpoint spec."""

    name: str
    kind: str  # stream | reference | ml
    data: Any = None
    format: str | None = None
    spec: Any = None
    follow: bool = False
    read: bool = False  # an iterator input that a run has opened


def check_name(name: Any, what: str) -> None:
    """Raise ConfigError unless ``name`` is a non-empty string (``what`` names the catalog entry)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"an {what} needs a name (a non-empty string), got {name!r}")


def check_data(name: str, data: Any, reference: bool) -> Any:
    """Fail at ``add_input`` on data that no run could read. Reference data from an iterator
    is read now: every run reads reference data whole."""
    from asaql.io.memory import MemorySource, check_events

    check_events(name, data)
    if reference and isinstance(data, Iterator | pa.RecordBatchReader):
        return list(MemorySource(name, data).batches()) or []
    return data


def check_run_inputs(entries: Mapping[str, InputEntry],
                     inputs: Mapping[str, InputData] | None) -> dict[str, Any]:
    """Check a run's ``inputs=`` against the session's inputs ``entries`` (lower-case name ->
    entry); returns lower-case name -> data. ML inputs cannot be replaced."""
    out: dict[str, Any] = {}
    known = {key: entry for key, entry in entries.items() if entry.kind != "ml"}
    for name, data in (inputs or {}).items():
        entry = known.get(name.lower()) if isinstance(name, str) else None
        if entry is None:
            names = [e.name for e in known.values()]
            raise ConfigError(
                f"inputs: {name!r} is not an input of this job (inputs: {', '.join(names) or 'none'})",
                help=did_you_mean(str(name), names))
        out[name.lower()] = check_data(entry.name, data, entry.kind == "reference")
    return out


def mark_read(entry: InputEntry) -> None:
    """Note that a run opens ``entry``; a second read of an iterator is a ConfigError."""
    if not isinstance(entry.data, Iterator | pa.RecordBatchReader):
        return
    with _LOCK:
        if entry.read:
            raise ConfigError(
                f"input '{entry.name}' is an iterator, and an earlier run (or another reader in "
                "this run) has read it: an iterator is read once",
                help=f"give each run its own: job.run(inputs={{{entry.name!r}: ...}})")
        entry.read = True


def open_data(entry: InputEntry, columns: list[str] | None, ctx: ExecContext) -> Iterator[pa.RecordBatch]:
    """The batches of ``entry`` (a file, or data in memory cut to ``ctx.batch_size`` rows);
    the source is closed when the iterator ends or is closed."""
    if isinstance(entry.data, str | Path):
        from asaql.io.source import open_source

        source = open_source(entry.name, str(entry.data), format=entry.format, on_error=ctx.data_error,
                             batch_rows=ctx.batch_size, reference=entry.kind == "reference",
                             follow=entry.follow)
        try:
            yield from source.batches(columns)
        finally:
            source.close()
        return
    from asaql.io.memory import MemorySource

    memory = MemorySource(entry.name, entry.data, batch_rows=ctx.batch_size)
    try:
        yield from _rebatch(memory.batches(columns), ctx.batch_size)
    finally:
        memory.close()


def _rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if not batch.num_rows:
            yield batch  # a followed input's "no new data" tick
            continue
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size)


def known_fields(entry: InputEntry) -> list[str] | None:
    """The fields of in-memory data (for "did you mean" warnings): a table's columns, or the
    keys of a list of dicts (not too long to look through); None when unknown."""
    names: list[str] | None = None
    if isinstance(entry.data, pa.Table | pa.RecordBatch):
        names = list(entry.data.schema.names)
    elif (isinstance(entry.data, list | tuple) and 0 < len(entry.data) <= 10_000
          and all(isinstance(row, dict) for row in entry.data)):
        names = list(dict.fromkeys(str(k) for row in entry.data for k in row))
    return None if names is None else names + _SYSTEM_FIELDS


def peek_fields(entry: InputEntry) -> list[str] | None:
    """Field names in the first block of a file input (None when it cannot be read)."""
    if not isinstance(entry.data, str | Path) or str(entry.data) == "-":
        return None
    from asaql.io.source import open_source

    try:
        source = open_source(entry.name, str(entry.data), format=entry.format, on_error=lambda e: None,
                             batch_rows=1000)
        try:
            first = next(iter(source.batches(None)), None)
        finally:
            source.close()
    except (AsaqlError, OSError):
        return None
    if first is None or entry.kind == "stream" and first.num_rows < 1:
        return None
    return list(first.schema.names) + _SYSTEM_FIELDS
