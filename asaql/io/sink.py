"""Sinks: where a query's output rows go.

::

    sink = open_sink(name, path, format=None)   # '-' = stdout (JSON lines)
    sink.write(batch)                           # any number of times; schemas may differ
    sink.close()

Formats (from the extension or ``format=``): JSON lines (default; ``.json``/``.jsonl``/``.ndjson``
and stdout), CSV (``.csv``) and Parquet (``.parquet``). Values are written as ASA writes them:
datetimes ``2024-05-14T12:00:10.0000000Z``, bit -> true/false, records/arrays -> JSON (CSV:
``Record`` / ``Array``), NULL -> ``null`` (CSV: empty), Variant values -> their JSON text.

:class:`TableSink` renders rows on a terminal with ``rich``; :class:`MemorySink` keeps them.

Ctrl-C and sinks: inside :func:`interrupts_deferred` (the CLI's run), a SIGINT that arrives
while a sink writes or closes (:func:`shielded`) is held until that write is done, so files
and stdout end on a whole row; a second Ctrl-C while one is held interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any, Protocol, runtime_checkable

import pyarrow as pa

from asaql.errors import ConfigError
from asaql.io.formats import CSV, JSON, PARQUET, detect_format, json_text
from asaql.io.memory import MemorySink
from asaql.types import is_variant

__all__ = ["MemorySink", "Sink", "TableSink", "cell_text", "interrupts_deferred", "open_sink", "shielded"]


@runtime_checkable
class Sink(Protocol):
    name: str

    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


class _Deferral:
    """The state of Ctrl-C handling (signals only reach the main thread)."""

    installed = False
    depth = 0  # sinks writing or closing right now
    pending = False  # a Ctrl-C arrived during a write and is held


def _on_sigint(signum: int, frame: Any) -> None:
    if _Deferral.depth and not _Deferral.pending:
        _Deferral.pending = True
        return
    _Deferral.pending = False
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives during a sink's write or close until it is done (then raise
    KeyboardInterrupt). Does nothing off the main thread or when SIGINT is not Python's."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    signal.signal(signal.SIGINT, _on_sigint)
    _Deferral.installed, _Deferral.pending = True, False
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _Deferral.installed, _Deferral.pending = False, False


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Run a sink write or close whole: a Ctrl-C during it is raised when it ends."""
    _Deferral.depth += 1
    try:
        yield
    finally:
        _Deferral.depth -= 1
        if not _Deferral.depth and _Deferral.pending:
            _Deferral.pending = False
            raise KeyboardInterrupt


def open_sink(name: str, path: str, *, format: str | None = None) -> Sink:  # noqa: A002
    """Open the output ``name`` at ``path`` ('-' is stdout), creating its folder if needed.
    A place that cannot be written is a :class:`ConfigError` naming the output and the path."""
    fmt = detect_format(path, format)
    if fmt == PARQUET and path == "-":
        raise ConfigError(f"output '{name}': Parquet cannot be written to stdout",
                          help=f"give a file: --output {name}=PATH.parquet")
    if path != "-":
        import os

        if os.path.isdir(path):
            raise ConfigError(f"output '{name}': {path} is a folder; give a file name")
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"output '{name}': cannot create the folder {folder}: {exc.strerror}") from exc
    try:
        return _make_sink(name, path, fmt)
    except OSError as exc:
        raise ConfigError(f"output '{name}': cannot write {path}: {exc.strerror or exc}") from exc


def _probe_writable(path: str) -> None:
    import os

    existed = os.path.exists(path)
    with open(path, "ab"):
        pass
    if not existed:
        os.remove(path)


class _WholeWrites:
    """Standard output that writes every byte it is given. A signal that arrives while a
    write blocks on a pipe (a Ctrl-C held by :func:`shielded`) makes ``BufferedWriter.write``
    return after part of the data; the rest would be lost."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            done += self._stream.write(view[done:]) or 0
        return done

    def flush(self) -> None:
        self._stream.flush()


def _make_sink(name: str, path: str, fmt: str) -> Sink:
    stream = _WholeWrites(sys.stdout.buffer) if path == "-" else None
    if fmt == JSON:
        from asaql.io.jsonl_sink import JsonLinesSink

        return JsonLinesSink(name, path, stream=stream)  # type: ignore[arg-type]
    if fmt == CSV:
        from asaql.io.csv import CsvSink

        return CsvSink(name, path, stream=stream)  # type: ignore[arg-type]
    if fmt == PARQUET:
        from asaql.io.parquet import ParquetSink

        _probe_writable(path)  # the file is written at close: fail now, not after the run
        return ParquetSink(name, path)
    raise ConfigError(f"output '{name}': unsupported format {fmt}")  # pragma: no cover


def cell_text(arr: pa.Array) -> list[str]:
    """Display text of each value: strings bare, NULL as 'NULL', the rest as their JSON text."""
    t = arr.type
    text = json_text(arr).to_pylist()
    nulls = arr.is_null().to_pylist() if arr.null_count else None
    bare = pa.types.is_string(t) or pa.types.is_large_string(t)
    quoted = bare or pa.types.is_timestamp(t) or pa.types.is_date(t)
    out = []
    for i, s in enumerate(text):
        if nulls is not None and nulls[i]:
            out.append("NULL")
        elif bare:
            out.append(arr[i].as_py())
        elif quoted or (is_variant(t) and s.startswith('"')):
            out.append(s[1:-1] if not is_variant(t) else str(_loads(s)))
        else:
            out.append(s)
    return out


def _loads(s: str) -> Any:
    import json

    return json.loads(s)


class TableSink:
    """Rows rendered as a table on a terminal (``rich``), printed when the sink is closed.

    At most ``max_rows`` rows are kept; a note tells how many more there were.
    """

    def __init__(self, name: str, *, max_rows: int = 200, console: Any = None,
                 file: IO[str] | None = None) -> None:
        self.name = name
        self.max_rows = max_rows
        self.total = 0
        self._columns: list[str] = []
        self._rows: list[dict[str, str]] = []
        if console is None:
            from rich.console import Console

            console = Console(file=file or sys.stdout)
        self.console = console
        self._closed = False

    def write(self, batch: pa.RecordBatch) -> None:
        self.total += batch.num_rows
        room = self.max_rows - len(self._rows)
        if room <= 0 or batch.num_rows == 0:
            return
        batch = batch.slice(0, room)
        for name in batch.schema.names:
            if name not in self._columns:
                self._columns.append(name)
        cols = {n: cell_text(c) for n, c in zip(batch.schema.names, batch.columns, strict=True)}
        for i in range(batch.num_rows):
            self._rows.append({n: v[i] for n, v in cols.items()})

    def render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(self.name), show_lines=False)
        for name in self._columns:
            table.add_column(Text(name), overflow="fold")
        for row in self._rows:  # values as plain text: '[b]' in the data is not rich markup
            table.add_row(*(Text(row.get(n, "")) for n in self._columns))
        return table

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.console.print(self.render())
        shown = len(self._rows)
        if self.total > shown:
            self.console.print(f"[dim]… {self.total - shown:,} more rows not shown "
                               f"({self.total:,} in all)[/dim]")
        else:
            self.console.print(f"[dim]{self.total:,} row{'s' if self.total != 1 else ''}[/dim]")
