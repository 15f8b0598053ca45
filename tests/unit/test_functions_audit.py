"""Audit of the scalar function library against the ASA reference (research asa-language.md
§9, §14): edges the data-driven cases do not reach. Expected values are worked out from the
reference pages named in each test, never copied from engine output.

Kernels are called straight from the registry, once with constant (``pa.Scalar``) arguments
and once with one-row columns, so both the fast constant paths and the column paths run.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from asaql.errors import ExecutionError
from asaql.functions import conversion, geo
from asaql.functions.registry import REGISTRY, KernelContext
from asaql.functions.string import stuff_py
from asaql.types import to_python

SHAPES = ["const", "column"]


def _arg(value: Any, shape: str) -> Any:
    if isinstance(value, pa.Array):
        return value
    scalar = pa.scalar(value) if value is not None else pa.scalar(None, pa.null())
    return scalar if shape == "const" else pa.array([value], scalar.type)


def call(name: str, *values: Any, shape: str = "column") -> Any:
    """The single value of ``name(*values)``."""
    fn = REGISTRY.get(name)
    assert fn is not None, name
    args = [pa.scalar(v) if i in fn.datepart_args else _arg(v, shape) for i, v in enumerate(values)]
    out = fn.kernel(args, KernelContext(length=1))
    if isinstance(out, pa.Scalar):
        return out.as_py()
    return to_python(out)[0]


def col_type(name: str, *values: Any) -> str:
    """GetType of the result."""
    fn = REGISTRY.get(name)
    assert fn is not None
    out = fn.kernel([_arg(v, "column") for v in values], KernelContext(length=1))
    return conversion.get_type(out)[0].as_py()


# --------------------------------------------------------------------------- 9.3 math


@pytest.mark.parametrize("shape", SHAPES)
def test_power_domain_error_is_null_not_overflow(shape: str) -> None:
    # POWER(-8, 0.5) has no real value; asaql policy (math.py docstring): NULL, like SQRT(-1).
    # It used to report "Arithmetic overflow" for a bigint base.
    assert call("POWER", -8, 0.5, shape=shape) is None
    assert call("POWER", -8.0, 0.5, shape=shape) is None
    assert call("SQRT", -1, shape=shape) is None


@pytest.mark.parametrize("shape", SHAPES)
def test_power_bigint_base_is_bigint(shape: str) -> None:
    # R:power: "if a bigint was submitted as float_expression, the result returned is bigint"
    assert call("POWER", 2, 10, shape=shape) == 1024
    assert col_type("POWER", 2, 10) == "bigint"
    assert col_type("POWER", 2, 0.5) == "bigint"
    assert col_type("POWER", 2.0, 2) == "float"


@pytest.mark.parametrize("shape", SHAPES)
def test_power_overflow_still_fails(shape: str) -> None:
    with pytest.raises(ExecutionError):
        call("POWER", 3, 40, shape=shape)


def test_big_bigint_to_float_math_is_not_an_error() -> None:
    # R:data-types: a loss of precision converting to float "is not considered an error"
    assert call("SQRT", 2**62) == pytest.approx(2.0**31)
    assert call("SQUARE", 2**60) == pytest.approx(2.0**120)
    assert call("EXP", 0) == 1.0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("x", "length", "want"),
    [
        (0.5, 0, 1.0), (-0.5, 0, -1.0), (1.234, 2, 1.23), (123.4, -1, 120.0),
        (123.4, -10, 0.0), (501.0101, -3, 1000.0), (123.9995, 3, 124.0),  # R:round table
        (2.5, 0, 3.0), (-2.5, 0, -3.0), (1.005, 2, 1.01), (125, -1, 130), (-125, -1, -130),
        (550, -3, 1000), (449, -3, 0),
    ],
)
def test_round_half_away_from_zero(x: Any, length: int, want: Any, shape: str) -> None:
    got = call("ROUND", x, length, shape=shape)
    assert got == want and type(got) is type(want)


# --------------------------------------------------------------------------- 9.5 conversion


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (2.5, "2.5"), (7.0, "7"), (-60.0, "-60"), (0.1, "0.1"), (0.0001, "0.0001"),
        (1e-05, "1E-05"), (1e15, "1E+15"), (123456789012345.0, "123456789012345"),
        (1e20, "1E+20"), (-1.5e-07, "-1.5E-07"), (1.7976931348623157e308, "1.7976931348623157E+308"),
        (float("nan"), "NaN"), (float("inf"), "Infinity"),
    ],
)
def test_float_text_is_dotnet_shortest_round_trip(x: float, text: str) -> None:
    # ASA runs on .NET: double.ToString() (shortest round-trip, "E+XX" exponents, fixed
    # notation up to 15 integer digits). Column and Variant paths must agree.
    assert conversion.format_float(x) == text
    assert conversion.cast(pa.array([x]), "nvarchar(max)")[0].as_py() == text


def test_float_text_same_on_variant_and_typed_columns() -> None:
    from asaql.types import variant_array

    values = [1e20, 2.5, 123456789012345.0, 1e-05]
    typed = conversion.cast(pa.array(values), "nvarchar(max)").to_pylist()
    variant = conversion.cast(variant_array([*values, "x"]), "nvarchar(max)").to_pylist()[:-1]
    assert typed == variant == ["1E+20", "2.5", "123456789012345", "1E-05"]


def test_cast_big_bigint_to_float_loses_precision_without_error() -> None:
    out = conversion.cast(pa.array([2**53 + 1, -(2**63)]), "float").to_pylist()
    assert out == [float(2**53), -(2.0**63)]


@pytest.mark.parametrize(("x", "want"), [(0.0, False), (-0.25, True), (1e-300, True), (None, None)])
def test_float_to_bit(x: float | None, want: bool | None) -> None:
    # R:data-types "Conversion to bit": 0.0 -> 0, any other value -> 1, NULL -> NULL
    assert conversion.cast(pa.array([x], pa.float64()), "bit")[0].as_py() is want


# --------------------------------------------------------------------------- 9.2 strings


@pytest.mark.parametrize(
    ("s", "start", "length", "ins", "want"),
    [
        ("abcdef", 2, 3, "ijklmn", "aijklmnef"),  # R:stuff example
        ("abcdef", 5, 10, "Z", "abcdZ"),  # start + length past the end: all deleted
        ("abcdef", 2, 0, "XY", "aXYbcdef"),  # length 0: insertion only
        ("abc", 4, 1, "X", ""),  # start past the end: zero-length result (not NULL)
        ("abcdef", 0, 3, "XY", "XYcdef"),  # start < 1: positions 0..2 -> only 1..2 deleted
        ("abcdef", -5, 3, "XY", "XYabcdef"),  # nothing of [-5, -3] is in the string
    ],
)
@pytest.mark.parametrize("shape", SHAPES)
def test_stuff_follows_asa_reference(s: str, start: int, length: int, ins: str, want: str,
                                     shape: str) -> None:
    assert call("STUFF", s, start, length, ins, shape=shape) == want
    assert stuff_py(s, start, length, ins) == want


@pytest.mark.parametrize("shape", SHAPES)
def test_stuff_negative_length_fails(shape: str) -> None:
    # R:stuff: "If length is negative, an error is generated and the statement is terminated."
    with pytest.raises(ExecutionError, match="length"):
        call("STUFF", "abcdef", 2, -1, "x", shape=shape)


@pytest.mark.parametrize("shape", SHAPES)
def test_stuff_null_argument_is_null(shape: str) -> None:
    assert call("STUFF", "abcdef", 2, 3, None, shape=shape) is None
    assert call("STUFF", None, 2, 3, "x", shape=shape) is None


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("fn", "args"),
    [
        ("LEFT", ("abc", -1)),
        ("RIGHT", ("abc", -1)),
        ("SUBSTRING", ("abc", 1, -1)),
        ("TRANSLATE", ("abc", "ab", "x")),
    ],
)
def test_documented_string_errors(fn: str, args: tuple[Any, ...], shape: str) -> None:
    with pytest.raises(ExecutionError):
        call(fn, *args, shape=shape)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("fn", "args", "want"),
    [
        ("CONCAT", (None, None), ""),
        ("CONCAT_WS", ("-", None, None), ""),
        ("CONCAT_WS", (", ", "a", None, "b"), "a, b"),
        ("REPLACE", (None, "a", "b"), None),
        ("REPLACE", ("abc", None, "b"), None),
        ("REPLACE", ("abc", "a", None), None),
        ("REPLACE", ("abcde", "", "xxx"), "abcde"),
        ("TRANSLATE", ("abc", None, "x"), None),
        ("REGEXMATCH", (None, "a"), None),
        ("REGEXMATCH", ("abc", None), None),
        ("REGEXMATCH", ("abc", "("), 0),
        ("REPLICATE", ("ab", -1), None),
        ("SPACE", (-1,), None),
        ("NCHAR", (0x110000,), None),
        ("NCHAR", (-1,), None),
        ("LEN", ("ab  ",), 2),
        ("LEN", (None,), None),
        ("CHARINDEX", ("a", "banana", 0), 2),
        ("CHARINDEX", ("a", "banana", -4), 2),
        ("CHARINDEX", ("a", "banana", 3), 4),
        ("CHARINDEX", ("z", "banana"), 0),
        ("SUBSTRING", ("banana", 0, 3), "ba"),
        ("SUBSTRING", ("banana", 7, 3), ""),
        ("PATINDEX", ("%na%", "banana"), 3),
        ("PATINDEX", ("%zz%", "banana"), 0),
        ("TRIM", ("\u00a0\u2028x\u3000\u0085",), "x"),
    ],
)
def test_string_edges_and_nulls(fn: str, args: tuple[Any, ...], want: Any, shape: str) -> None:
    got = call(fn, *args, shape=shape)
    assert got == want and type(got) is type(want)


# --------------------------------------------------------------------------- 9.1 date/time


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("part", "a", "b", "want"),
    [
        ("minute", "2024-05-14T10:00:59Z", "2024-05-14T10:01:00Z", 1),  # research §9.1
        ("year", "2023-12-31T23:59:59Z", "2024-01-01T00:00:00Z", 1),
        ("wk", "2024-05-18T23:59:59Z", "2024-05-19T00:00:00Z", 1),  # Saturday -> Sunday
        ("wk", "2024-05-19T00:00:00Z", "2024-05-25T23:59:59Z", 0),  # within one week
        ("month", "2024-01-31T00:00:00Z", "2024-02-01T00:00:00Z", 1),
        ("ms", "1969-12-31T23:59:59.9995Z", "1970-01-01T00:00:00.0004Z", 1),
        ("second", "1969-12-31T23:59:59.9Z", "1970-01-01T00:00:00.1Z", 1),
        ("day", "2024-05-14T00:00:00Z", "2024-05-13T23:59:59Z", -1),
    ],
)
def test_datediff_counts_boundaries(part: str, a: str, b: str, want: int, shape: str) -> None:
    assert call("DATEDIFF", part, a, b, shape=shape) == want


@pytest.mark.parametrize("shape", SHAPES)
def test_datediff_null_is_null(shape: str) -> None:
    assert call("DATEDIFF", "day", None, "2024-01-01T00:00:00Z", shape=shape) is None


@pytest.mark.parametrize("shape", SHAPES)
def test_dateadd_truncates_toward_zero(shape: str) -> None:
    # R:dateadd: "the fraction is truncated and not rounded": -1.9 -> -1
    got = call("DATEADD", "hour", -1.9, "2024-01-31T10:00:00Z", shape=shape)
    assert got.isoformat() == "2024-01-31T09:00:00+00:00"


def test_invalid_datepart_names_the_valid_ones() -> None:
    with pytest.raises(ExecutionError, match="Invalid datepart 'fortnight'"):
        call("DATEPART", "fortnight", "2024-01-01T00:00:00Z")


# --------------------------------------------------------------------------- 9.7 geospatial

SQUARE_0_20 = {"type": "Polygon", "coordinates": [[[0.0, 0.0], [20.0, 0.0], [20.0, 20.0],
                                                   [0.0, 20.0], [0.0, 0.0]]]}
SQUARE_2_5 = {"type": "Polygon", "coordinates": [[[2.0, 2.0], [5.0, 2.0], [5.0, 5.0],
                                                  [2.0, 5.0], [2.0, 2.0]]]}
SQUARE_10_30 = {"type": "Polygon", "coordinates": [[[10.0, 0.0], [30.0, 0.0], [30.0, 20.0],
                                                    [10.0, 20.0], [10.0, 0.0]]]}
SQUARE_20_30 = {"type": "Polygon", "coordinates": [[[20.0, 0.0], [30.0, 0.0], [30.0, 20.0],
                                                    [20.0, 20.0], [20.0, 0.0]]]}


def _geo_call(name: str, a: Any, b: Any) -> Any:
    fn = REGISTRY.get(name)
    assert fn is not None
    from asaql.types import variant_array

    out = fn.kernel([variant_array([a]), variant_array([b])], KernelContext(length=1))
    return out[0].as_py()


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        (SQUARE_0_20, SQUARE_2_5, 0),  # R:st-overlaps: "one is within another" -> 0
        (SQUARE_2_5, SQUARE_0_20, 0),
        (SQUARE_0_20, SQUARE_0_20, 0),
        (SQUARE_0_20, SQUARE_10_30, 1),  # partial overlap
        (SQUARE_0_20, SQUARE_20_30, 0),  # shared edge only
        ({"type": "Point", "coordinates": [3.0, 3.0]}, SQUARE_0_20, 0),
    ],
)
def test_st_overlaps(a: Any, b: Any, want: int) -> None:
    assert _geo_call("ST_OVERLAPS", a, b) == want


def test_st_overlaps_reference_example_with_unnested_ring() -> None:
    # R:st-overlaps writes its polygons without the ring nesting; read them as one ring
    a = {"type": "Polygon", "coordinates": [[0.0, 0.0], [20.0, 0.0], [20.0, 20.0], [0.0, 20.0],
                                            [0.0, 0.0]]}
    b = {"type": "Polygon", "coordinates": [[10.0, 10.0], [40.0, 10.0], [40.0, 40.0],
                                            [40.0, 20.0], [40.0, 40.0]]}
    far = {"type": "Polygon", "coordinates": [[30.0, 30.0], [40.0, 30.0], [40.0, 40.0],
                                              [30.0, 40.0], [30.0, 30.0]]}
    assert _geo_call("ST_OVERLAPS", a, b) == 1
    assert _geo_call("ST_OVERLAPS", a, far) == 0


def test_st_distance_with_polygon_is_zero() -> None:
    # R:st-distance: "If used with Polygons will return 0."
    outside = {"type": "Point", "coordinates": [-5.0, -5.0]}
    assert _geo_call("ST_DISTANCE", outside, SQUARE_0_20) == 0.0
    assert _geo_call("ST_DISTANCE", SQUARE_0_20, outside) == 0.0


def test_st_distance_documented_value_within_a_millimetre() -> None:
    got = _geo_call("ST_DISTANCE", {"type": "Point", "coordinates": [-5.0, -5.0]},
                    {"type": "Point", "coordinates": [0.0, 0.0]})
    assert math.isclose(got, 784028.74077501823, abs_tol=0.001)


def test_st_within_and_intersects_reference_examples() -> None:
    fence = {"type": "Polygon", "coordinates": [[[10.0, 10.0], [20.0, 10.0], [20.0, 20.0],
                                                 [10.0, 20.0], [10.0, 10.0]]]}
    assert _geo_call("ST_WITHIN", {"type": "Point", "coordinates": [15.0, 15.0]}, fence) == 1
    assert _geo_call("ST_WITHIN", {"type": "Point", "coordinates": [76.6, 10.1]}, fence) == 0
    road = {"type": "LineString", "coordinates": [[-10.0, 0.0], [0.0, 0.0], [10.0, 0.0]]}
    cross = {"type": "LineString", "coordinates": [[0.0, 10.0], [0.0, 0.0], [0.0, -10.0]]}
    parallel = {"type": "LineString", "coordinates": [[-10.0, 10.0], [0.0, 10.0], [10.0, 10.0]]}
    assert _geo_call("ST_INTERSECTS", road, cross) == 1
    assert _geo_call("ST_INTERSECTS", road, parallel) == 0


def test_parse_geo_keeps_nested_polygons() -> None:
    kind, coords = geo.parse_geo(SQUARE_2_5) or ("", None)
    assert kind == "polygon" and coords == SQUARE_2_5["coordinates"]
