"""ASA types and how they live in Arrow.

In Stream Analytics, types belong to *values*, not columns: the same field may hold a bigint in
one event and a string in the next. asaql keeps each column as one Arrow array, and picks the
Arrow type per batch:

==============  ==========================================  ===============================
ASA type        Arrow type                                  notes
==============  ==========================================  ===============================
bigint          int64
float           float64
nvarchar(max)   string / large_string
datetime        timestamp[us, tz=UTC]                       written as ...ss.fffffffZ
bit             bool
record          struct<...>
array           list<...> / large_list<...>
(mixed)         :class:`VariantType` (JSON text storage)     a column whose values' types
                                                            differ inside one batch
==============  ==========================================  ===============================

A :class:`VariantType` column holds each value as JSON text (``null`` for NULL). Kernels that
get one decode it per value (the slow path, used only where the data really is mixed).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa

__all__ = [
    "ASA_TYPES",
    "DATETIME",
    "VariantType",
    "asa_type_name",
    "asa_type_of_value",
    "format_datetime",
    "is_variant",
    "normalize_type_name",
    "to_python",
    "variant_array",
]

DATETIME = pa.timestamp("us", tz="UTC")

#: canonical ASA type names (as written in CAST / CREATE TABLE / GetType)
ASA_TYPES = ("bigint", "float", "nvarchar(max)", "datetime", "bit", "record", "array")

_TYPE_ALIASES = {
    "bigint": "bigint",
    "int": "bigint",
    "float": "float",
    "double": "float",
    "real": "float",
    "nvarchar": "nvarchar(max)",
    "nvarchar(max)": "nvarchar(max)",
    "varchar": "nvarchar(max)",
    "string": "nvarchar(max)",  # asaql extension (the seed example's spelling); warned about
    "datetime": "datetime",
    "bit": "bit",
    "boolean": "bit",
    "record": "record",
    "array": "array",
}


def normalize_type_name(name: str) -> str | None:
    """Map a type name as written in a query to the canonical ASA name (None if unknown).

    >>> normalize_type_name("NVARCHAR(MAX)")
    'nvarchar(max)'
    """
    key = "".join(name.lower().split())
    return _TYPE_ALIASES.get(key)


class VariantType(pa.ExtensionType):
    """A column whose values have different ASA types; storage is JSON text per value."""

    def __init__(self) -> None:
        super().__init__(pa.large_string(), "asaql.variant")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> VariantType:
        return VariantType()


VARIANT = VariantType()
try:
    pa.register_extension_type(VARIANT)
except pa.ArrowKeyError:  # already registered (module reloaded)
    pass


def is_variant(t: pa.DataType) -> bool:
    return isinstance(t, VariantType)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$datetime": format_datetime(value)}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot encode {type(value).__name__}")


def _decode_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$datetime" in obj:
        return parse_datetime_text(obj["$datetime"])
    return obj


def variant_array(values: list[Any]) -> pa.ExtensionArray:
    """Build a Variant column from Python values (None -> NULL)."""
    storage = pa.array(
        [None if v is None else json.dumps(v, default=_json_default) for v in values],
        type=pa.large_string(),
    )
    return pa.ExtensionArray.from_storage(VARIANT, storage)


def variant_values(arr: pa.Array) -> list[Any]:
    """Decode a Variant column into Python values."""
    storage = arr.storage if isinstance(arr, pa.ExtensionArray) else arr
    return [None if s is None else json.loads(s, object_hook=_decode_hook) for s in storage.to_pylist()]


def to_python(arr: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Python values of any asaql column (datetimes as tz-aware UTC datetimes); Variant
    values nested in records and arrays are decoded too."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if is_variant(arr.type):
        return variant_values(arr)
    if not has_variant(arr.type):
        return arr.to_pylist()
    if pa.types.is_struct(arr.type):
        import pyarrow.compute as pc

        names = [arr.type.field(i).name for i in range(arr.type.num_fields)]
        children = [to_python(pc.struct_field(arr, [i])) for i in range(len(names))]
        valid = arr.is_valid().to_pylist()
        return [
            dict(zip(names, values, strict=True)) if ok else None
            for ok, values in zip(valid, zip(*children, strict=True) if children else [()] * len(arr), strict=True)
        ]
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        flat = to_python(arr.flatten())
        offsets = arr.offsets.to_pylist()
        valid = arr.is_valid().to_pylist()
        base = offsets[0]
        return [
            flat[offsets[i] - base : offsets[i + 1] - base] if valid[i] else None for i in range(len(arr))
        ]
    return arr.to_pylist()


def has_variant(t: pa.DataType) -> bool:
    """Whether a Variant column hides anywhere inside ``t``."""
    if is_variant(t):
        return True
    if pa.types.is_struct(t):
        return any(has_variant(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return has_variant(t.value_type)
    return False


def asa_type_name(t: pa.DataType) -> str:
    """ASA type name of an Arrow type (a Variant has no single name: 'any')."""
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "nvarchar(max)"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    if pa.types.is_boolean(t):
        return "bit"
    if pa.types.is_struct(t) or pa.types.is_map(t):
        return "record"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "array"
    if pa.types.is_null(t):
        return "null"
    return "any"


def asa_type_of_value(value: Any) -> str | None:
    """ASA type name of one Python value (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bit"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "nvarchar(max)"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dict):
        return "record"
    if isinstance(value, list | tuple):
        return "array"
    return "any"


def format_datetime(value: dt.datetime) -> str:
    """ASA's JSON datetime text: 7 fractional digits and Z.

    >>> format_datetime(dt.datetime(2024, 5, 14, 12, 0, 10, tzinfo=dt.timezone.utc))
    '2024-05-14T12:00:10.0000000Z'
    """
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def parse_datetime_text(text: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp (offset normalized to UTC; no offset means UTC)."""
    from dateutil import parser as _dp

    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        value = _dp.isoparse(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)
