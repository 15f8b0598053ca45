"""Array functions: GetArrayElement, GetArrayLength (scalar) and the table functions used by
CROSS / OUTER APPLY: :func:`get_array_elements` and :func:`get_record_properties`.

Arrays are Arrow list arrays, records are struct arrays; Variant columns (mixed types) take
the per-value slow path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.functions.args import (
    arg_type_error,
    as_array,
    batch_length,
    from_python,
    map_values,
    python_values,
    to_int64,
)
from asaql.functions.registry import KernelContext, scalar
from asaql.types import asa_type_name, is_variant, variant_array

__all__ = ["get_array_elements", "get_record_properties"]

I64 = pa.int64()


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _list_array(arr: pa.Array) -> pa.Array:
    if pa.types.is_fixed_size_list(arr.type):
        return arr.cast(pa.list_(arr.type.value_type))
    return arr


# --------------------------------------------------------------------------- scalars


@scalar("GetArrayElement", args=(2, 2))
def getarrayelement(args: list[Any], ctx: KernelContext) -> pa.Array:
    """GetArrayElement(array, index): the element at 0-based ``index`` (NULL out of range)."""
    n = batch_length(args, ctx.length)
    arr = as_array(args[0], n)
    idx = to_int64(args[1], n, "getarrayelement", 2)
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(n)
    if is_variant(t):
        def one(a: Any, i: int) -> Any:
            return a[i] if isinstance(a, list) and 0 <= i < len(a) else None
        return map_values(one, arr, idx, length=n)
    if not _is_list(t):
        raise arg_type_error("getarrayelement", 1, asa_type_name(t), ("array",))
    arr = _list_array(arr)
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.asarray(arr.offsets)[:-1].astype(np.int64)
    i = idx.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    ok = (i >= 0) & (i < lengths) & np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False))
    take = pa.array(np.where(ok, starts + np.where(ok, i, 0), 0), I64)
    take = pc.if_else(pa.array(ok), take, pa.scalar(None, I64))
    values = arr.values
    if len(values) == 0:
        return pa.nulls(n, values.type)
    return values.take(take)


@scalar("GetArrayLength", args=(1, 1), returns="bigint")
def getarraylength(args: list[Any], ctx: KernelContext) -> pa.Array:
    """GetArrayLength(array): the number of elements (bigint)."""
    n = batch_length(args, ctx.length)
    arr = as_array(args[0], n)
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(n, I64)
    if is_variant(t):
        return map_values(lambda a: len(a) if isinstance(a, list) else None, arr, length=n, type=I64)
    if not _is_list(t):
        raise arg_type_error("getarraylength", 1, asa_type_name(t), ("array",))
    return pc.cast(pc.list_value_length(arr), I64)


# --------------------------------------------------------------------------- table functions


def _empty(names: tuple[str, str], types: tuple[pa.DataType, pa.DataType]) -> tuple[pa.Array, pa.StructArray]:
    return pa.array([], I64), pa.StructArray.from_arrays(
        [pa.array([], types[0]), pa.array([], types[1])], names=list(names)
    )


def get_array_elements(arr: pa.Array) -> tuple[pa.Array, pa.StructArray]:
    """GetArrayElements(array) for APPLY: one row per element.

    Returns (parent row index int64, struct<ArrayIndex: int64, ArrayValue: element type>).
    NULL and empty arrays produce no rows.
    """
    names = ("ArrayIndex", "ArrayValue")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_null(t):
        return _empty(names, (I64, pa.null()))
    if is_variant(t):  # slow path: values decoded one by one
        parents: list[int] = []
        index: list[int] = []
        values: list[Any] = []
        for row, v in enumerate(python_values(arr)):
            if isinstance(v, list):
                for i, e in enumerate(v):
                    parents.append(row)
                    index.append(i)
                    values.append(e)
        return pa.array(parents, I64), pa.StructArray.from_arrays(
            [pa.array(index, I64), from_python(values)], names=list(names)
        )
    if not _is_list(t):
        raise arg_type_error("getarrayelements", 1, asa_type_name(t), ("array",))
    arr = _list_array(arr)
    parents_arr = pc.cast(pc.list_parent_indices(arr), I64)
    flat = pc.list_flatten(arr)
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    idx = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)
    return parents_arr, pa.StructArray.from_arrays([pa.array(idx, I64), flat], names=list(names))


def get_record_properties(arr: pa.Array) -> tuple[pa.Array, pa.StructArray]:
    """GetRecordProperties(record) for APPLY: one row per property, in field order.

    Returns (parent row index int64, struct<PropertyName: string, PropertyValue: ...>).
    PropertyValue has the fields' common type, or is a Variant column when the fields' types
    differ (each value keeps its own type). NULL records produce no rows; a property whose
    value is NULL is skipped too (a struct column cannot tell a JSON null from a field that the
    event did not have).
    """
    names = ("PropertyName", "PropertyValue")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_null(t):
        return _empty(names, (pa.string(), pa.null()))
    if is_variant(t):  # slow path
        parents: list[int] = []
        keys: list[str] = []
        values: list[Any] = []
        for row, v in enumerate(python_values(arr)):
            if isinstance(v, dict):
                for k, e in v.items():
                    if e is None:
                        continue
                    parents.append(row)
                    keys.append(k)
                    values.append(e)
        return pa.array(parents, I64), pa.StructArray.from_arrays(
            [pa.array(keys, pa.string()), from_python(values)], names=list(names)
        )
    if not pa.types.is_struct(t):
        raise arg_type_error("getrecordproperties", 1, asa_type_name(t), ("record",))
    n = len(arr)
    k = t.num_fields
    if k == 0 or n == 0:
        return _empty(names, (pa.string(), pa.null()))
    fields = arr.flatten()  # parent NULLs applied to each field
    rows = np.arange(n, dtype=np.int64)
    parents_all = pa.array(np.tile(rows, k), I64)  # field-major
    names_all = pa.array(np.repeat([t.field(i).name for i in range(k)], n).tolist(), pa.string())
    types = {f.type for f in fields if not pa.types.is_null(f.type)}
    if len(types) <= 1:
        ft = types.pop() if types else pa.null()
        values_all = pa.concat_arrays([f.cast(ft) if f.type != ft else f for f in fields])
    else:
        values_all = _concat_as_variant(fields)
    valid = pc.is_valid(values_all.storage if is_variant(values_all.type) else values_all)
    order = pc.sort_indices(parents_all)  # stable: row-major, fields in declaration order
    keep = order.filter(valid.take(order))
    parents_out = parents_all.take(keep)
    names_out = names_all.take(keep)
    values_out = values_all.take(keep)
    return parents_out, pa.StructArray.from_arrays([names_out, values_out], names=list(names))


def _concat_as_variant(fields: list[pa.Array]) -> pa.Array:
    """Fields of different types as one Variant column (each value keeps its type)."""
    values: list[Any] = []
    for f in fields:
        values.extend(python_values(f))
    return variant_array(values)
