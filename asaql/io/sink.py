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
"""

from __future__ import annotations

import sys
from typing import IO, Any, Protocol, runtime_checkable

import pyarrow as pa

from asaql.errors import ConfigError
from asaql.io.formats import CSV, JSON, PARQUET, detect_format, json_text
from asaql.io.memory import MemorySink
from asaql.types import is_variant

__all__ = ["MemorySink", "Sink", "TableSink", "open_sink"]


@runtime_checkable
class Sink(Protocol):
    name: str

    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


def open_sink(name: str, path: str, *, format: str | None = None) -> Sink:  # noqa: A002
    """Open the output ``name`` at ``path`` ('-' is stdout), creating its folder if needed."""
    fmt = detect_format(path, format)
    if path != "-":
        import os

        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"output '{name}': cannot create the folder {folder}: {exc.strerror}") from exc
    if fmt == JSON:
        from asaql.io.jsonl_sink import JsonLinesSink

        return JsonLinesSink(name, path)
    if fmt == CSV:
        from asaql.io.csv import CsvSink

        return CsvSink(name, path)
    if fmt == PARQUET:
        if path == "-":
            raise ConfigError(f"output '{name}': Parquet cannot be written to stdout")
        from asaql.io.parquet import ParquetSink

        return ParquetSink(name, path)
    raise ConfigError(f"output '{name}': unsupported format {fmt}")  # pragma: no cover


def _cell_text(arr: pa.Array) -> list[str]:
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
        cols = {n: _cell_text(c) for n, c in zip(batch.schema.names, batch.columns, strict=True)}
        for i in range(batch.num_rows):
            self._rows.append({n: v[i] for n, v in cols.items()})

    def render(self) -> Any:
        from rich.table import Table

        table = Table(title=self.name, show_lines=False)
        for name in self._columns:
            table.add_column(name, overflow="fold")
        for row in self._rows:
            table.add_row(*(row.get(n, "") for n in self._columns))
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
