"""Types end to end: what the output writers hold for each ASA type, and how CREATE TABLE
reports the events it drops.

Expected values are worked out from research/asa-language.md §9.5 and §11 and the data types
reference (R:data-types-azure-stream-analytics.md, "Type mappings and serialization formats"):
JSON out writes datetimes as ``...ss.fffffffZ``, bit as true/false, records and arrays as JSON;
CSV out writes records as ``Record``, arrays as ``Array``, bit as ``true``/``false``; Parquet
needs no conversion (typed columns). Column names and order are the query's.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import asaql
from asaql.exec.scan import declared_column
from asaql.io.sink import open_sink
from asaql.types import DATETIME, variant_array

UTC = dt.UTC
WHEN = dt.datetime(2024, 5, 14, 10, 0, 1, 500000, tzinfo=UTC)


def _batch() -> pa.RecordBatch:
    """One row of each ASA type, in a column order that is not alphabetical, plus a NULL row."""
    return pa.RecordBatch.from_arrays(
        [
            pa.array(["d1", None]),
            pa.array(["2024-05-14T12:30:00+02:00", None]),  # pass-through date text
            pa.array([WHEN, None], DATETIME),
            pa.array([True, False]),
            pa.array([{"lat": 47.5, "tag": "n"}, None], pa.struct([("lat", pa.float64()), ("tag", pa.string())])),
            pa.array([[1, 2], []], pa.list_(pa.int64())),
            pa.array([7.0, None]),
            pa.nulls(2),
        ],
        names=["zDevice", "stamp", "When", "ok", "Pos", "vals", "f", "nothing"],
    )


def _write(tmp_path: Path, suffix: str, batch: pa.RecordBatch) -> Path:
    path = tmp_path / f"out.{suffix}"
    sink = open_sink("out", str(path))
    sink.write(batch)
    sink.close()
    return path


def test_json_lines_values_names_and_order(tmp_path: Path) -> None:
    lines = _write(tmp_path, "jsonl", _batch()).read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert list(first) == ["zDevice", "stamp", "When", "ok", "Pos", "vals", "f", "nothing"]
    assert first == {
        "zDevice": "d1", "stamp": "2024-05-14T12:30:00+02:00", "When": "2024-05-14T10:00:01.5000000Z",
        "ok": True, "Pos": {"lat": 47.5, "tag": "n"}, "vals": [1, 2], "f": 7.0, "nothing": None,
    }
    assert second["ok"] is False and second["vals"] == [] and second["Pos"] is None
    assert '"f":7.0' in lines[0].replace(" ", "")  # a float stays a float in the text


def test_csv_values_names_and_order(tmp_path: Path) -> None:
    text = _write(tmp_path, "csv", _batch()).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["zDevice", "stamp", "When", "ok", "Pos", "vals", "f", "nothing"]
    assert rows[1] == ["d1", "2024-05-14T12:30:00+02:00", "2024-05-14T10:00:01.5000000Z", "true",
                       "Record", "Array", "7.0", ""]
    assert rows[2][3] == "false" and rows[2][5] == "Array"
    assert rows[2][0] == rows[2][4] == rows[2][7] == ""  # NULL: an empty field


def test_csv_variant_column_record_and_array(tmp_path: Path) -> None:
    mixed = variant_array([{"a": 1}, [1, "x"], "text", 5])
    batch = pa.RecordBatch.from_arrays([mixed], names=["v"])
    rows = list(csv.reader(io.StringIO(_write(tmp_path, "csv", batch).read_text())))
    assert [r[0] for r in rows[1:]] == ["Record", "Array", "text", "5"]


def test_parquet_keeps_types_names_and_order(tmp_path: Path) -> None:
    table = pq.read_table(_write(tmp_path, "parquet", _batch()))
    assert table.schema.names == ["zDevice", "stamp", "When", "ok", "Pos", "vals", "f", "nothing"]
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    assert pa.types.is_string(types["stamp"]) or pa.types.is_large_string(types["stamp"])
    assert pa.types.is_timestamp(types["When"]) and types["When"].tz == "UTC"
    assert pa.types.is_boolean(types["ok"])
    assert pa.types.is_struct(types["Pos"]) and pa.types.is_list(types["vals"])
    rows = table.to_pylist()
    assert rows[0]["stamp"] == "2024-05-14T12:30:00+02:00"
    assert rows[0]["When"] == WHEN
    assert rows[0]["Pos"] == {"lat": 47.5, "tag": "n"} and rows[0]["vals"] == [1, 2]
    assert rows[1]["Pos"] is None and rows[1]["vals"] == [] and rows[1]["nothing"] is None


def test_parquet_unifies_batches_whose_types_differ(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    sink = open_sink("out", str(path))
    sink.write(pa.RecordBatch.from_arrays([pa.array([1]), pa.nulls(1)], names=["n", "later"]))
    sink.write(pa.RecordBatch.from_arrays([pa.array([2.5]), pa.array(["x"])], names=["n", "later"]))
    sink.close()
    table = pq.read_table(path)
    assert table.column("n").to_pylist() == [1.0, 2.5]
    assert table.column("later").to_pylist() == [None, "x"]


# --------------------------------------------------------------------------- CREATE TABLE


@pytest.mark.parametrize(
    ("values", "type_name", "text", "expected"),
    [
        ([3, -2, None], "float", False, [3.0, -2.0, None]),  # bigint -> float: lossless
        ([2.0, 5.5], "bigint", False, [2, None]),  # a fraction is not a bigint
        (["7", "2.5"], "float", False, [None, None]),  # JSON text is not a number
        (["7", "2.5", "x"], "float", True, [7.0, 2.5, None]),  # CSV text is read
        (["true", "false"], "bit", True, [True, False]),
        (["true"], "bit", False, [None]),
    ],
)
def test_declared_column(values: list[object], type_name: str, text: bool, expected: list[object]) -> None:
    assert declared_column(pa.array(values), type_name, text_input=text).to_pylist() == expected


def test_declared_column_mixed_values() -> None:
    mixed = variant_array([4, "4", 4.5, 5.0, None])
    assert declared_column(mixed, "bigint", text_input=False).to_pylist() == [4, None, None, 5, None]


def test_declared_datetime_from_json_text() -> None:
    out = declared_column(pa.array(["2024-05-14T12:00:00+02:00", "soon"]), "datetime", text_input=False)
    assert out.to_pylist() == [dt.datetime(2024, 5, 14, 10, 0, tzinfo=UTC), None]


def _session(tmp_path: Path, lines: list[str], **options: object) -> tuple[asaql.Session, list[str]]:
    data = tmp_path / "readings.jsonl"
    data.write_text("".join(line + "\n" for line in lines))
    session = asaql.Session(asaql.Options(**options))  # type: ignore[arg-type]
    session.add_input("readings", str(data))
    reports: list[str] = []
    session.report = reports.append
    return session, reports


QUERY = """CREATE TABLE readings (id bigint, value float, ts datetime);
SELECT id, value FROM readings TIMESTAMP BY ts"""

LINES = [
    '{"id": 1, "value": 1.5, "ts": "2024-05-14T10:00:01Z"}',
    '{"id": 2, "value": "n/a", "ts": "2024-05-14T10:00:02Z"}',
    '{"id": 3, "value": 3, "ts": "2024-05-14T10:00:03Z"}',
    '{"id": 4.5, "value": 4, "ts": "2024-05-14T10:00:04Z"}',
]


def test_create_table_drops_and_reports_file_line_field(tmp_path: Path) -> None:
    session, reports = _session(tmp_path, LINES)
    out = tmp_path / "out.jsonl"
    result = session.compile(QUERY).run({"output": str(out)})
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"id": 1, "value": 1.5}, {"id": 3, "value": 3.0}]
    assert result.metrics.data_errors == 2
    dropped = [r for r in reports if "TypeConversionError" in r]
    assert len(dropped) == 2
    assert "line 2" in dropped[0] and "field 'value'" in dropped[0] and "readings.jsonl" in dropped[0]
    assert "line 4" in dropped[1] and "field 'id'" in dropped[1]


def test_create_table_error_policy_stop_names_the_event(tmp_path: Path) -> None:
    session, _ = _session(tmp_path, LINES, on_data_error="stop")
    with pytest.raises(asaql.DataError) as info:
        session.compile(QUERY).run({"output": str(tmp_path / "out.jsonl")})
    err = info.value
    assert (err.line, err.field_name, err.code) == (2, "value", "TypeConversionError")
    assert err.path is not None and err.path.endswith("readings.jsonl")
