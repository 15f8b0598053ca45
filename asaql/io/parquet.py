"""Parquet input and output.

Input: ``pyarrow.parquet`` ``iter_batches`` with the requested columns pushed down (matched
case-insensitively). A file that is not Parquet stops the job with a :class:`DataError` naming
it (there is no event to skip). Column types are brought to asaql's: integers -> int64, float32/decimal ->
float64, timestamps/dates -> ``timestamp[us, UTC]``, dictionary columns decoded. A column written
by asaql as a Variant (field metadata ``asaql.type = variant``) comes back as a Variant.

Output: Parquet needs one schema per file while asaql's batches may differ (types belong to
values), so the batches are kept until :meth:`ParquetSink.close`, then their schemas are unified
(``pa.unify_schemas(promote_options='permissive')``: int + float -> float, NULL columns take the
other type); a column whose types cannot be unified is written as a Variant: JSON text per value.
Variant columns are stored as their JSON text (large_string) marked with field metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from asaql.errors import DataError
from asaql.io.formats import json_text, match_columns
from asaql.io.memory import engine_array
from asaql.types import VARIANT, is_variant

__all__ = ["ParquetSink", "ParquetSource"]

ErrorHandler = Callable[[DataError], None]
_MARK = {b"asaql.type": b"variant"}


def _normalize(arr: pa.Array, fld: pa.Field) -> pa.Array:
    if fld.metadata and fld.metadata.get(b"asaql.type") == b"variant":
        storage = arr.cast(pa.large_string())
        return pa.ExtensionArray.from_storage(VARIANT, storage)
    return engine_array(arr)  # the same types as a table given to the library


class ParquetSource:
    def __init__(self, name: str, path: str, *, on_error: ErrorHandler, batch_rows: int = 65536) -> None:
        self.name = name
        self.path = path
        self.on_error = on_error
        self.batch_rows = max(1, batch_rows)
        self._file: pq.ParquetFile | None = None

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        try:
            self._file = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            # the whole input is unreadable: no event to skip, so the job stops
            raise DataError(f"not a readable Parquet file: {exc}", input_name=self.name,
                            path=self.path, code="InvalidData") from exc
        schema = self._file.schema_arrow
        wanted = match_columns(schema.names, columns)
        read = wanted if wanted else schema.names[:1]
        for batch in self._file.iter_batches(batch_size=self.batch_rows, columns=read):
            if not wanted:
                yield batch.select([])
                continue
            arrays = [_normalize(col, schema.field(name))
                      for name, col in zip(batch.schema.names, batch.columns, strict=True)]
            yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ParquetSink:
    def __init__(self, name: str, path: str, *, compression: str = "snappy") -> None:
        self.name = name
        self.path = path
        self.compression = compression
        self._batches: list[pa.RecordBatch] = []
        self._closed = False

    def write(self, batch: pa.RecordBatch) -> None:
        self._batches.append(batch)

    def _schema(self) -> pa.Schema:
        order: dict[str, list[pa.Field]] = {}
        for b in self._batches:
            for fld in b.schema:
                order.setdefault(fld.name, []).append(fld)
        fields = []
        for name, flds in order.items():
            if any(is_variant(f.type) for f in flds):
                fields.append(pa.field(name, pa.large_string(), metadata=_MARK))
                continue
            try:
                unified = pa.unify_schemas([pa.schema([f.remove_metadata()]) for f in flds],
                                           promote_options="permissive")
                fields.append(unified.field(0))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                fields.append(pa.field(name, pa.large_string(), metadata=_MARK))
        return pa.schema(fields)

    def _conform(self, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
        index = {n: i for i, n in enumerate(batch.schema.names)}
        arrays: list[Any] = []
        for fld in schema:
            if fld.name not in index:
                arrays.append(pa.nulls(batch.num_rows, fld.type))
                continue
            col = batch.column(index[fld.name])
            if fld.metadata == _MARK or (fld.metadata and fld.metadata.get(b"asaql.type") == b"variant"):
                if is_variant(col.type):
                    text = col.storage
                else:
                    text = json_text(col)
                    text = pc.if_else(col.is_valid(), text, pa.scalar(None, pa.string()))
                arrays.append(text.cast(pa.large_string()))
            elif col.type != fld.type:
                arrays.append(col.cast(fld.type))
            else:
                arrays.append(col)
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        schema = self._schema()
        with pq.ParquetWriter(self.path, schema, compression=self.compression) as writer:
            for batch in self._batches:
                if batch.num_rows:
                    writer.write_batch(self._conform(batch, schema))
        self._batches = []

