"""Sources: where a query's input events come from.

The executor calls exactly this::

    source = open_source(name, path, format=None, on_error=handler, batch_rows=65536,
                         reference=False, follow=False)
    for batch in source.batches(columns):   # columns: the top-level fields the query uses, or None
        ...
    source.close()

``columns`` are matched case-insensitively; a requested field missing from the data is simply
absent from the batches (the executor treats it as NULL). Batches hold at most ``batch_rows``
rows; their schemas may differ (in ASA types belong to values). Malformed events are passed to
``on_error`` as :class:`~asaql.errors.DataError` — it raises to stop the job or returns to skip
the event.

Formats (from the extension or ``format=``): JSON (``.json``/``.jsonl``/``.ndjson``; lines or one
top-level array), CSV (``.csv``, header row, every value a string) and Parquet (``.parquet``).
``-`` reads JSON lines from stdin. ``follow=True`` tails a growing JSON lines file (``tail -f``)
until :meth:`Source.close`; each poll that finds nothing new yields an empty batch (no rows, no
columns), so the scan can let time pass on an idle input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import pyarrow as pa

from asaql.errors import ConfigError, DataError
from asaql.io.formats import CSV, JSON, PARQUET, detect_format

__all__ = ["ErrorHandler", "Source", "open_source", "raise_errors"]

ErrorHandler = Callable[[DataError], None]


@runtime_checkable
class Source(Protocol):
    name: str

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]: ...

    def close(self) -> None: ...


def raise_errors(error: DataError) -> None:
    """An ``on_error`` handler that stops at the first malformed event."""
    raise error


def open_source(
    name: str,
    path: str,
    *,
    format: str | None = None,  # noqa: A002 - the executor's keyword
    on_error: ErrorHandler = raise_errors,
    batch_rows: int = 65536,
    reference: bool = False,
    follow: bool = False,
) -> Source:
    """Open an input. ``reference`` (reference data, loaded whole) changes nothing in how it is
    read; ``follow`` is for JSON lines files only."""
    fmt = detect_format(path, format)
    if path != "-" and not os.path.exists(path):
        raise ConfigError(f"input '{name}': file not found: {path}")
    if path != "-" and os.path.isdir(path):
        raise ConfigError(f"input '{name}': {path} is a directory, not a file")
    if path != "-":
        _check_readable(name, path)
    if follow and (fmt != JSON or reference):
        raise ConfigError(f"input '{name}': follow mode needs a JSON lines stream input")
    if fmt == JSON:
        from asaql.io.jsonl import JsonSource

        return JsonSource(name, path, on_error=on_error, batch_rows=batch_rows, follow=follow)
    if fmt == CSV:
        from asaql.io.csv import CsvSource

        return CsvSource(name, path, on_error=on_error, batch_rows=batch_rows)
    if fmt == PARQUET:
        if path == "-":
            raise ConfigError(f"input '{name}': Parquet cannot be read from stdin")
        from asaql.io.parquet import ParquetSource

        return ParquetSource(name, path, on_error=on_error, batch_rows=batch_rows)
    raise ConfigError(f"input '{name}': unsupported format {fmt}")  # pragma: no cover


def _check_readable(name: str, path: str) -> None:
    """A regular file is opened once, so that one that cannot be read (permissions) is a
    :class:`ConfigError` naming the input now rather than a failure inside a reader. Pipes and
    devices (``<(zcat x.gz)``, ``/dev/stdin``) are left alone: opening one may consume it."""
    import stat

    mode = os.stat(path).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return
    if not stat.S_ISREG(mode):
        raise ConfigError(f"input '{name}': {path} is not a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"input '{name}': cannot read {path}: {exc.strerror or exc}") from exc
