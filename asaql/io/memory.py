"""In-memory inputs and outputs (library use, tests, the REPL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from asaql.io.formats import match_columns, rows_to_batch

__all__ = ["MemorySink", "MemorySource"]


class MemorySource:
    """An input given as a ``pa.Table``, a RecordBatch, a list of RecordBatches or a list of dicts.

    Dicts are typed with the JSON rules (int + float -> float, other mixes -> Variant, Python
    datetimes -> datetime).
    """

    def __init__(self, name: str, data: Any, *, batch_rows: int = 65536) -> None:
        self.name = name
        self.batch_rows = max(1, batch_rows)
        if isinstance(data, pa.Table):
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
        for batch in self._batches:
            if columns is not None:
                names = batch.schema.names
                keep = set(match_columns(names, columns))
                batch = batch.select([i for i, n in enumerate(names) if n in keep])
            for start in range(0, batch.num_rows, self.batch_rows):
                yield batch.slice(start, self.batch_rows)

    def close(self) -> None:
        pass


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
