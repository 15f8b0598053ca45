"""In-memory inputs and outputs (library use, tests, the REPL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from asaql.io.formats import match_columns, rows_to_batch

__all__ = ["MemorySink", "MemorySource"]


class MemorySource:
    """An input given as a ``pa.Table``, a RecordBatch, a list of RecordBatches or a list of dicts,
    or as an iterator (a generator, a queue reader) of those: a live input, read as the program
    produces it. From an iterator, each RecordBatch, Table or list of dicts is one batch as
    given (the caller chooses the latency); single dicts are grouped ``batch_rows`` at a time;
    ``None`` means "nothing new": grouped events go on at once, and an idle input lets time pass
    (with a bounded late-arrival tolerance, see EventOrderer.idle).

    Dicts are typed with the JSON rules (int + float -> float, other mixes -> Variant, Python
    datetimes -> datetime).
    """

    def __init__(self, name: str, data: Any, *, batch_rows: int = 65536) -> None:
        self.name = name
        self.batch_rows = max(1, batch_rows)
        self._live: Iterator[Any] | None = None
        if isinstance(data, Iterator):
            self._live = data
            self._batches = []
        elif isinstance(data, pa.Table):
            self._batches = data.to_batches()
        elif isinstance(data, pa.RecordBatch):
            self._batches = [data]
        elif isinstance(data, list | tuple) and all(isinstance(b, pa.RecordBatch) for b in data) and data:
            self._batches = list(data)
        elif isinstance(data, list | tuple):
            rows = list(data)
            for i, row in enumerate(rows):
                if not isinstance(row, dict):
                    raise TypeError(f"input '{name}': event {i} is not a dict")
            self._batches = [
                rows_to_batch(rows[s : s + self.batch_rows]) for s in range(0, len(rows), self.batch_rows)
            ]
        else:
            raise TypeError(f"input '{name}': cannot read {type(data).__name__} as events")

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        for batch in self._batches if self._live is None else self._from_live():
            if columns is not None:
                names = batch.schema.names
                keep = set(match_columns(names, columns))
                batch = batch.select([i for i, n in enumerate(names) if n in keep])
            if not batch.num_rows:
                yield batch  # an idle tick of a live input
                continue
            for start in range(0, batch.num_rows, self.batch_rows):
                yield batch.slice(start, self.batch_rows)

    def _from_live(self) -> Iterator[pa.RecordBatch]:
        assert self._live is not None
        pending: list[dict[str, Any]] = []
        for i, item in enumerate(self._live):
            if item is None:  # "nothing new": pass on what waits, and let time pass (idle)
                if pending:
                    yield rows_to_batch(pending)
                    pending = []
                yield pa.RecordBatch.from_pydict({})
                continue
            if isinstance(item, dict):
                pending.append(item)
                if len(pending) >= self.batch_rows:
                    yield rows_to_batch(pending)
                    pending = []
                continue
            if pending:
                yield rows_to_batch(pending)
                pending = []
            if isinstance(item, pa.RecordBatch):
                yield item
            elif isinstance(item, pa.Table):
                yield from item.to_batches()
            elif isinstance(item, list | tuple) and all(isinstance(r, dict) for r in item):
                if item:
                    yield rows_to_batch(list(item))
            else:
                raise TypeError(f"input '{self.name}': item {i} of the iterator is a {type(item).__name__}, "
                                "not an event (dict), a list of events, a RecordBatch or a Table")
        if pending:
            yield rows_to_batch(pending)

    def close(self) -> None:
        close = getattr(self._live, "close", None)
        if close is not None:
            close()


class MemorySink:
    """Collects the output batches; :meth:`table` gives them as one table."""

    def __init__(self, name: str = "output") -> None:
        self.name = name
        self.batches: list[pa.RecordBatch] = []
        self.closed = False

    def write(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def close(self) -> None:
        self.closed = True

    def table(self) -> pa.Table:
        if not self.batches:
            return pa.table({})
        try:
            return pa.Table.from_batches(self.batches)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            tables = [pa.Table.from_batches([b]) for b in self.batches]
            return pa.concat_tables(tables, promote_options="permissive")

    def rows(self) -> list[dict[str, Any]]:
        from asaql.types import to_python

        out: list[dict[str, Any]] = []
        for b in self.batches:
            cols = {n: to_python(c) for n, c in zip(b.schema.names, b.columns, strict=True)}
            out.extend({n: v[i] for n, v in cols.items()} for i in range(b.num_rows))
        return out
