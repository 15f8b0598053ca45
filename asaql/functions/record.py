"""Record functions: GetRecordPropertyValue, JSON_PARSE (GetType lives in conversion.py).

Records are Arrow struct arrays, or Variant columns whose values are JSON objects.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import ExecutionError
from asaql.functions.args import (
    arg_type_error,
    as_array,
    batch_length,
    const_value,
    from_python,
    is_string,
    map_values,
    python_values,
)
from asaql.functions.registry import KernelContext, scalar
from asaql.types import asa_type_name, is_variant, variant_array

__all__ = ["json_parse_py", "metadata_path", "property_value"]


def _unbracket(name: str) -> str:
    """'[my field]' -> 'my field' (the documented way to quote a property name)."""
    if len(name) >= 2 and name[0] == "[" and name[-1] == "]" and "[" not in name[1:-1]:
        return name[1:-1]
    return name


def _field_index(t: pa.StructType, name: str) -> int | None:
    names = [t.field(i).name for i in range(t.num_fields)]
    if name in names:
        return names.index(name)
    lowered = [n.lower() for n in names]
    if name.lower() in lowered:  # field references resolve case-insensitively
        return lowered.index(name.lower())
    return None


def _get_py(record: Any, name: str) -> Any:
    if not isinstance(record, dict):
        return None
    name = _unbracket(name)
    if name in record:
        return record[name]
    for k, v in record.items():
        if k.lower() == name.lower():
            return v
    return None


def property_value(rec: pa.Array, name: Any, n: int) -> pa.Array:
    """The property ``name`` (constant or per-row) of each record in ``rec``."""
    t = rec.type
    if pa.types.is_null(t):
        return pa.nulls(n)
    if is_variant(t):
        return map_values(_get_py, rec, as_array(name, n), length=n)
    if not pa.types.is_struct(t):
        raise arg_type_error("getrecordpropertyvalue", 1, asa_type_name(t), ("record",))
    if isinstance(name, pa.Scalar):
        key = const_value(name)
        if key is None:
            return pa.nulls(n)
        idx = _field_index(t, _unbracket(str(key)))
        if idx is None:
            return pa.nulls(n)
        return pc.struct_field(rec, [idx])
    names = as_array(name, n)
    if not is_string(names.type):
        if pa.types.is_null(names.type):
            return pa.nulls(n)
        raise arg_type_error("getrecordpropertyvalue", 2, asa_type_name(names.type), ("nvarchar(max)",))
    fields = [pc.struct_field(rec, [i]) for i in range(t.num_fields)]
    types = {f.type for f in fields}
    if len(types) == 1:
        # one type: choose the field per row with vectorized masks
        out = pa.nulls(n, fields[0].type)
        unb = pc.replace_substring_regex(names, r"^\[([^\[]*)\]$", r"\1")
        low = pc.utf8_lower(unb)
        for i, f in enumerate(fields):
            fname = t.field(i).name
            hit = pc.or_(pc.equal(unb, fname), pc.equal(low, fname.lower())).fill_null(False)
            out = pc.if_else(hit, f, out)
        return out
    # fields of different types: the result is a Variant column (slow path)
    return map_values(_get_py, rec, names, length=n)


@scalar("GetRecordPropertyValue", args=(2, 2))
def getrecordpropertyvalue(args: list[Any], ctx: KernelContext) -> pa.Array:
    """GetRecordPropertyValue(record, name): the value of the property called ``name``
    (NULL if absent). ``name`` may be a column."""
    n = batch_length(args, ctx.length)
    return property_value(as_array(args[0], n), args[1], n)


#: GetMetadataPropertyValue: adapter prefixes a local input may be asked about; the property
#: after the prefix is read from the event's own fields (local inputs carry their metadata, if
#: any, as fields such as EventEnqueuedUtcTime or an IoTHub record)
_ADAPTERS = ("eventhub", "blob")
_EVENT_ID_NAMESPACE = uuid.UUID("6b0c3f1e-5a8e-4d39-9b1e-8f0e2a7c4d11")


def metadata_path(path: str) -> list[str]:
    """'[EventHub].[EventEnqueuedUtcTime]' -> ['EventHub', 'EventEnqueuedUtcTime'];
    'IoTHub.EnqueuedTime' -> ['IoTHub', 'EnqueuedTime']."""
    parts = re.findall(r"\[([^\]]*)\]|([^.\[\]]+)", path)
    return [a or b for a, b in parts if (a or b).strip()]


def _metadata_fallback(name: str, n: int, ctx: KernelContext) -> pa.Array:
    """Metadata a local input has even when the event does not carry it."""
    if name == "partitionid":
        return pa.repeat(pa.scalar(0, pa.int64()), n)
    if name == "eventprocessedutctime":
        start = ctx.extra.get("start_time") or ctx.clock()
        return pa.repeat(pa.scalar(start, pa.timestamp("us", tz="UTC")), n)
    return pa.nulls(n)


#: the Event Hubs metadata a local input can answer, in the order of the 'EventHub' record
_EVENT_HUB_FIELDS = ("EventEnqueuedUtcTime", "PartitionId")


def _event_hub_record(rec: pa.Array, n: int, ctx: KernelContext) -> pa.Array:
    """GetMetadataPropertyValue(input, 'EventHub'): all adapter properties as one record
    (R:getmetadatapropertyvalue.md), each read as its own path would be."""
    fields = []
    for name in _EVENT_HUB_FIELDS:
        value = property_value(rec, pa.scalar(name), n)
        fallback = _metadata_fallback(name.lower(), n, ctx)
        if pa.types.is_null(value.type):
            value = fallback
        elif value.null_count and not pa.types.is_null(fallback.type):
            try:
                value = pc.coalesce(value, fallback)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                pass  # the event's field has another type: it is kept as given
        fields.append(value)
    return pa.StructArray.from_arrays(fields, names=list(_EVENT_HUB_FIELDS))


def _event_ids(rec: pa.Array) -> pa.Array:
    """A deterministic GUID per event: the same event (same fields and values) gets the same id
    in every run (uuid5 of its canonical JSON). Per-event Python, asked for by name only."""
    from asaql.types import to_python

    def one(value: Any) -> str:
        text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
        return str(uuid.uuid5(_EVENT_ID_NAMESPACE, text))

    return pa.array([one(v) for v in to_python(rec)], pa.string())


@scalar("GetMetadataPropertyValue", args=(2, 2), deterministic=False)
def getmetadatapropertyvalue(args: list[Any], ctx: KernelContext) -> pa.Array:
    """GetMetadataPropertyValue(input, 'path'): input metadata. For local inputs a property is
    read from the event's fields when it carries them (EventEnqueuedUtcTime, PartitionId, an
    IoTHub record, ...; an adapter prefix such as [EventHub] is accepted), PartitionId is 0 and
    EventProcessedUtcTime the run's start when absent, EventId is a deterministic GUID per
    event, and user properties ([User].[key]) are NULL: local files have none."""
    n = batch_length(args, ctx.length)
    rec = as_array(args[0], n)
    key = const_value(args[1]) if isinstance(args[1], pa.Scalar) else None
    if not isinstance(key, str):
        raise ExecutionError("GetMetadataPropertyValue: the property path must be a constant string, "
                             "e.g. '[EventHub].[EventEnqueuedUtcTime]'")
    parts = metadata_path(key)
    if len(parts) == 1 and parts[0].lower() == "eventhub":
        return _event_hub_record(rec, n, ctx)
    if parts and parts[0].lower() in _ADAPTERS and len(parts) > 1:
        parts = parts[1:]
    if not parts or parts[0].lower() == "user":
        return pa.nulls(n)
    if len(parts) == 1 and parts[0].lower() == "eventid":
        return _event_ids(rec)
    value = rec
    for part in parts:
        value = property_value(value, pa.scalar(part), n)
    if not value.null_count or len(parts) != 1:
        return value
    fallback = _metadata_fallback(parts[0].lower(), n, ctx)
    if value.null_count == n:
        return fallback
    try:
        return pc.coalesce(value, fallback)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return value  # the event's field has another type: it is kept as given


def json_parse_py(text: str) -> dict[str, Any] | None:
    """One JSON object text -> dict; anything else (bad JSON, not an object) -> None."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


@scalar("JSON_PARSE", args=(1, 1), returns="record")
def json_parse(args: list[Any], ctx: KernelContext) -> pa.Array:
    """JSON_PARSE(s): the record held by the JSON object text s; NULL on bad input.
    Per-value slow path (json.loads); the result is a struct column, or a Variant when the
    objects' shapes cannot share one struct type."""
    n = batch_length(args, ctx.length)
    s = as_array(args[0], n)
    if pa.types.is_null(s.type):
        return pa.nulls(n, pa.struct([]))
    if not (is_string(s.type) or is_variant(s.type)):
        raise arg_type_error("json_parse", 1, asa_type_name(s.type), ("nvarchar(max)",))
    values = [json_parse_py(v) if isinstance(v, str) else None for v in python_values(s)]
    if all(v is None for v in values):
        return pa.nulls(n, pa.struct([]))
    try:
        out = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return variant_array(values)
    if not pa.types.is_struct(out.type) or not out.type.num_fields:
        return from_python(values)
    return out


_ = ExecutionError
