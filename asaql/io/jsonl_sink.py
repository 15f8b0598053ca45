"""JSON lines output: one JSON object per row, ASA's line-separated JSON.

:class:`JsonLinesSink` encodes a whole batch at once with pyarrow string kernels
(:func:`~asaql.io.formats.json_text` per column, joined element-wise) and writes the resulting
buffer without copying it; a large batch is encoded in slices on a few threads (the kernels
release the GIL) and written in order. Each batch is flushed, so a live run's results reach the
file as they are made.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from asaql.io.formats import ByteSink, json_text, string_bytes

__all__ = ["JsonLinesSink", "encode_lines"]

#: threads encoding one large output batch (measured to hurt on a busy 2-core machine)
SINK_WORKERS = min(4, os.cpu_count() or 1) if (os.cpu_count() or 1) >= 4 else 1
_PARALLEL_ROWS = 4096  # a batch of at least twice this is encoded on several threads

def encode_lines(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """One JSON object per row, each ending with a newline, as a string array (column order kept,
    NULL columns written as ``null``)."""
    n = batch.num_rows
    if batch.num_columns == 0:
        return pa.array(["{}\n"] * n, pa.string())
    parts: list[Any] = []
    for i, (name, col) in enumerate(zip(batch.schema.names, batch.columns, strict=True)):
        parts.append(("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":")
        parts.append(json_text(col))
    parts.append("}\n")
    return pc.binary_join_element_wise(*parts, "")


class JsonLinesSink(ByteSink):
    """Writes each row as one JSON object per line (ASA's line-separated JSON output)."""

    def __init__(self, name: str, path: str, *, stream: BinaryIO | None = None) -> None:
        super().__init__(name, path, stream=stream)
        self.rows = 0
        self._pool: ThreadPoolExecutor | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        n = batch.num_rows
        if SINK_WORKERS > 1 and n >= 2 * _PARALLEL_ROWS:
            # pyarrow kernels release the GIL: encode slices on threads, write them in order
            if self._pool is None:
                self._pool = ThreadPoolExecutor(SINK_WORKERS, thread_name_prefix="asaql-jsonl")
            step = -(-n // SINK_WORKERS)
            parts = [batch.slice(i, step) for i in range(0, n, step)]
            for lines in self._pool.map(encode_lines, parts):
                self._f.write(string_bytes(lines))
        else:
            self._f.write(string_bytes(encode_lines(batch)))
        self.rows += n
        self._f.flush()  # per batch, so a live run's results reach the file as they are made

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        super().close()

