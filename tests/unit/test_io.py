"""asaql.io: sources and sinks."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asaql.errors import ConfigError, DataError
from asaql.io.csv import CsvSink
from asaql.io.formats import detect_format, json_text, rows_to_batch
from asaql.io.jsonl import JsonSource
from asaql.io.jsonl_sink import JsonLinesSink
from asaql.io.memory import MemorySink, MemorySource
from asaql.io.sink import TableSink, open_sink
from asaql.io.source import open_source
from asaql.types import DATETIME, is_variant, to_python, variant_array

DATA = Path(__file__).resolve().parents[1] / "data" / "io"
ROOT = Path(__file__).resolve().parents[2]


def rows_of(batches: list[pa.RecordBatch]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for b in batches:
        cols = {n: to_python(c) for n, c in zip(b.schema.names, b.columns, strict=True)}
        out.extend({n: v[i] for n, v in cols.items()} for i in range(b.num_rows))
    return out


def strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def read(path: Path | str, columns: list[str] | None = None, **kw: Any) -> tuple[list[pa.RecordBatch], list[DataError]]:
    errors: list[DataError] = []
    src = open_source("in", str(path), on_error=errors.append, **kw)
    try:
        return list(src.batches(columns)), errors
    finally:
        src.close()


def read_bytes(data: bytes, columns: list[str] | None = None, **kw: Any) -> tuple[list[pa.RecordBatch], list[DataError]]:
    errors: list[DataError] = []
    src = JsonSource("in", "mem.jsonl", on_error=errors.append, stream=io.BytesIO(data), **kw)
    return list(src.batches(columns)), errors


# ----------------------------------------------------------------------------------- JSON in


def test_heterogeneous_json_lines() -> None:
    batches, errors = read(DATA / "hetero.jsonl")
    rows = rows_of(batches)
    assert [r["deviceId"] for r in rows] == ["d1", "d2", "d3", "d5"]  # good events kept, in order
    # malformed line 4 reported with its file line number
    assert len(errors) == 1 and errors[0].line == 4 and errors[0].code == "InvalidData"
    assert errors[0].input_name == "in" and errors[0].path.endswith("hetero.jsonl")
    # temperature: int, float, string in one chunk -> Variant keeping each value's type
    (batch,) = batches
    assert is_variant(batch.schema.field("temperature").type)
    assert [r["temperature"] for r in rows] == [21, 22.5, "hot", 24.25]
    assert isinstance(rows[0]["temperature"], int)
    # timestamp-looking strings stay strings with their original text (also nested)
    assert batch.schema.field("ts").type == pa.string()
    assert [r["ts"] for r in rows] == ["2024-05-14T12:00:00Z", "2024-05-14T12:00:01.5Z",
                                       "2024-05-14T12:00:02Z", "2024-05-14T12:00:04Z"]
    assert rows[0]["meta"] == {"fw": "1.0", "at": "2024-05-14"}
    assert rows[0]["tags"] == ["a", "b"] and rows[1]["tags"] == []
    assert [r["ok"] for r in rows] == [True, False, None, None]
    assert batch.schema.field("ok").type == pa.bool_()
    assert rows[1]["extra"] == 1 and rows[0]["extra"] is None  # missing field -> NULL


def test_fast_path_types_and_timestamps() -> None:
    data = b"".join(
        json.dumps({"id": i, "v": i + 0.5 if i % 2 else i, "when": "2024-05-14T12:00:00Z",
                    "d": "2024-05-14", "rec": {"at": "2024-05-14T12:00:00+02:00", "n": i}}).encode() + b"\n"
        for i in range(100)
    )
    batches, errors = read_bytes(data)
    assert not errors
    schema = batches[0].schema
    assert schema.names == ["id", "v", "when", "d", "rec"]  # data order kept
    assert schema.field("id").type == pa.int64()
    assert schema.field("v").type == pa.float64()  # int + float -> float
    assert schema.field("when").type == pa.string() and schema.field("d").type == pa.string()
    assert schema.field("rec").type == pa.struct([("at", pa.string()), ("n", pa.int64())])
    rows = rows_of(batches)
    assert rows[3]["when"] == "2024-05-14T12:00:00Z" and rows[3]["d"] == "2024-05-14"
    assert rows[3]["rec"]["at"] == "2024-05-14T12:00:00+02:00"


def test_timestamp_field_first_seen_in_a_later_chunk() -> None:
    first = b"".join(b'{"a": %d}\n' % i for i in range(50))
    later = b"".join(b'{"a": %d, "t": "2024-05-14T12:00:00Z"}\n' % i for i in range(50))
    batches, errors = read_bytes(first + later, chunk_bytes=200)
    rows = rows_of(batches)
    assert not errors and len(rows) == 100
    assert all(r.get("t") in (None, "2024-05-14T12:00:00Z") for r in rows)
    assert rows[-1]["t"] == "2024-05-14T12:00:00Z"
    assert all(b.schema.field("t").type == pa.string() for b in batches if "t" in b.schema.names)


def test_type_change_between_chunks_and_bool() -> None:
    data = b'{"x": 1, "b": true}\n' * 20 + b'{"x": "one", "b": false}\n' * 20
    batches, errors = read_bytes(data, chunk_bytes=64)
    rows = rows_of(batches)
    assert not errors
    assert [r["x"] for r in rows] == [1] * 20 + ["one"] * 20
    assert all(r["b"] in (True, False) for r in rows)


def test_integer_out_of_range_is_a_data_error() -> None:
    data = b'{"a": 1}\n{"a": 99999999999999999999}\n{"a": 3}\n{"a": 1.5e300}\n'
    batches, errors = read_bytes(data)
    assert [e.line for e in errors] == [2]
    assert "out of range" in errors[0].message
    assert [r["a"] for r in rows_of(batches)] == [1, 3, 1.5e300]


def test_malformed_lines_line_numbers_across_chunks() -> None:
    lines = []
    for i in range(1, 301):
        lines.append(b"{oops" if i % 37 == 0 else b'{"n": %d}' % i)
    data = b"\n".join(lines) + b"\n"
    batches, errors = read_bytes(data, chunk_bytes=256)
    assert [e.line for e in errors] == [i for i in range(1, 301) if i % 37 == 0]
    assert [r["n"] for r in rows_of(batches)] == [i for i in range(1, 301) if i % 37]


def test_non_object_line_and_nan() -> None:
    batches, errors = read_bytes(b'{"a":1}\n[1,2]\n{"a":NaN}\n"str"\n{"a":2}\n')
    assert [e.line for e in errors] == [2, 3, 4]
    assert [r["a"] for r in rows_of(batches)] == [1, 2]


def test_bom_blank_lines_crlf() -> None:
    batches, errors = read(DATA / "bom_crlf.jsonl")
    assert not errors
    assert rows_of(batches) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}]
    # fallback path too: the BOM never reaches a field name
    batches, errors = read_bytes(b'\xef\xbb\xbf{"a":1}\r\n{"a":"s"}\r\n\r\n{bad}\r\n')
    assert rows_of(batches) == [{"a": 1}, {"a": "s"}] and [e.line for e in errors] == [4]


def test_json_array_file() -> None:
    batches, errors = read(DATA / "array.json")
    assert not errors
    rows = rows_of(batches)
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert [r["when"] for r in rows] == ["2024-05-14T12:00:00Z", "2024-05-14T12:01:00Z",
                                         "2024-05-14T12:02:00Z"]
    assert [r["v"] for r in rows] == [1.5, 2, "n/a"]
    batches, _ = read(DATA / "array.json", ["ID"], batch_rows=2)
    assert [b.num_rows for b in batches] == [2, 1]
    assert rows_of(batches) == [{"id": 1}, {"id": 2}, {"id": 3}]


def test_json_array_malformed() -> None:
    batches, errors = read_bytes(b'[{"a": 1},\n {"a": 2,,}]')
    assert batches == [] and len(errors) == 1 and errors[0].line == 2


def test_case_differing_field_names_kept() -> None:
    batches, _ = read_bytes(b'{"Temp": 1, "temp": 2}\n{"Temp": 3}\n')
    assert rows_of(batches) == [{"Temp": 1, "temp": 2}, {"Temp": 3, "temp": None}]
    batches, _ = read_bytes(b'{"Temp": 1, "temp": 2, "x": 0}\n', ["TEMP"])
    assert rows_of(batches) == [{"Temp": 1, "temp": 2}]


def test_projection_pushdown() -> None:
    batches, errors = read(DATA / "hetero.jsonl", ["DEVICEID", "missing", "ok"])
    assert len(errors) == 1
    for b in batches:
        assert set(b.schema.names) <= {"deviceId", "ok"}
    assert [r["deviceId"] for r in rows_of(batches)] == ["d1", "d2", "d3", "d5"]
    # fast path with a later-appearing requested field, and no requested field present at all
    data = b'{"a": 1, "b": 2}\n' * 30 + b'{"a": 3, "late": "2024-05-14T00:00:00Z"}\n' * 30
    batches, errors = read_bytes(data, ["a", "LATE"], chunk_bytes=128)
    rows = rows_of(batches)
    assert not errors and len(rows) == 60
    assert all("b" not in r for r in rows)
    assert [r.get("late") for r in rows] == [None] * 30 + ["2024-05-14T00:00:00Z"] * 30
    batches, _ = read_bytes(data, ["nothing"])
    assert sum(b.num_rows for b in batches) == 60 and all(b.num_columns == 0 for b in batches)
    batches, _ = read_bytes(data, [])
    assert sum(b.num_rows for b in batches) == 60


def test_projection_type_change() -> None:
    data = b'{"a": 1, "z": 0}\n' * 10 + b'{"a": 1.5}\n' * 10 + b'{"a": "x"}\n' * 10
    batches, errors = read_bytes(data, ["a"], chunk_bytes=64)
    assert not errors
    assert [r["a"] for r in rows_of(batches)] == [1] * 10 + [1.5] * 10 + ["x"] * 10


def test_batch_rows_limit() -> None:
    data = b"".join(b'{"i": %d}\n' % i for i in range(1000))
    batches, _ = read_bytes(data, batch_rows=128)
    assert all(b.num_rows <= 128 for b in batches)
    assert [r["i"] for r in rows_of(batches)] == list(range(1000))


def test_event_longer_than_a_chunk() -> None:
    big = "x" * 5000
    data = (json.dumps({"s": big}) + "\n" + json.dumps({"s": "y"}) + "\n").encode()
    batches, errors = read_bytes(data, chunk_bytes=64)
    assert not errors and [r["s"] for r in rows_of(batches)] == [big, "y"]


def test_no_trailing_newline_and_empty_input() -> None:
    batches, _ = read_bytes(b'{"a":1}\n{"a":2}')
    assert [r["a"] for r in rows_of(batches)] == [1, 2]
    assert read_bytes(b"")[0] == [] and read_bytes(b"\n \n")[0] == []


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "a", "2024-05-14T12:00:00Z", "2024-05-14", "2024-05-14 10:00:00", "é\n\"q\""]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["x", "y", "X"]), inner, max_size=3)),
    max_leaves=6,
)
_events = st.lists(st.dictionaries(st.sampled_from(["a", "b", "A", "ts", "rec"]), _values, max_size=4),
                   max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_events, chunk=st.integers(min_value=1, max_value=400), malformed=st.sets(st.integers(0, 30)))
def test_chunk_boundaries_do_not_change_results(events: list[dict[str, Any]], chunk: int,
                                                malformed: set[int]) -> None:
    lines = []
    expected = []
    bad_lines = []
    for i, ev in enumerate(events):
        if i in malformed:
            lines.append(b'{"broken": ')
            bad_lines.append(len(lines))
        lines.append(json.dumps(ev).encode())
        expected.append(strip_nulls(ev))
    data = b"\n".join(lines) + b"\n"
    whole, errs1 = read_bytes(data)
    tiny, errs2 = read_bytes(data, chunk_bytes=chunk, batch_rows=3)
    assert [e.line for e in errs1] == bad_lines == [e.line for e in errs2]
    got_whole = [strip_nulls(r) for r in rows_of(whole)]
    got_tiny = [strip_nulls(r) for r in rows_of(tiny)]
    assert got_whole == expected
    assert got_tiny == expected
    # projection pushdown gives the same values for the requested fields (case-insensitive;
    # "a"/"A" are not requested: a case variant first seen in a later chunk is a documented gap)
    wanted = {"rec", "ts"}
    projected, _ = read_bytes(data, ["REC", "ts"], chunk_bytes=chunk)
    assert [strip_nulls(r) for r in rows_of(projected)] == [
        {k: v for k, v in e.items() if k.lower() in wanted} for e in expected]
    # strings never become datetimes
    for r in got_tiny:
        assert not any(isinstance(v, dt.datetime) for v in r.values())


def test_stdin(tmp_path: Path) -> None:
    code = (
        "import sys; from asaql.io.source import open_source\n"
        "src = open_source('s', '-', on_error=lambda e: print('ERR', e.line))\n"
        "for b in src.batches(['a']): print(b.to_pylist())\n"
    )
    res = subprocess.run([sys.executable, "-c", code], input=b'{"a":"x","b":2}\n{x\n{"a":"2024-01-01"}\n',
                         capture_output=True, cwd=ROOT, check=True)
    assert res.stdout.decode().splitlines() == ["ERR 2", "[{'a': 'x'}, {'a': '2024-01-01'}]"]


def test_follow_mode(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    path.write_bytes(b'{"n": 1}\n')
    src = JsonSource("live", str(path), on_error=lambda e: None, follow=True, poll_seconds=0.02)
    got: list[int] = []

    idle: list[int] = []

    def consume() -> None:
        for b in src.batches():
            if not b.num_rows:  # the file has not grown since the last poll
                idle.append(1)
                continue
            got.extend(b.column("n").to_pylist())

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    with path.open("ab") as f:
        for i in range(2, 6):
            time.sleep(0.05)
            f.write(b'{"n": %d}\n{"n": ' % i)  # half a line: only complete lines are read
            f.flush()
            time.sleep(0.05)
            f.write(b'%d}\n' % (i * 10))
            f.flush()
    deadline = time.time() + 5
    while len(got) < 9 and time.time() < deadline:
        time.sleep(0.02)
    src.close()
    t.join(timeout=5)
    assert not t.is_alive()
    assert got == [1, 2, 20, 3, 30, 4, 40, 5, 50]
    assert idle  # polls that found nothing new are reported, for the scan's idle time


# ----------------------------------------------------------------------------------- CSV in


def test_csv_all_strings() -> None:
    batches, errors = read(DATA / "devices.csv")
    assert not errors
    (b,) = batches
    assert all(f.type == pa.string() for f in b.schema)
    assert b.to_pylist() == [
        {"deviceId": "d1", "model": "M-100", "location": "Hall A, north", "capacity": "10"},
        {"deviceId": "d2", "model": "M-200", "location": "", "capacity": ""},  # empty -> ''
        {"deviceId": "d3", "model": "M-100", "location": 'say "hi"', "capacity": "7"},
    ]
    batches, _ = read(DATA / "devices.csv", ["DEVICEID", "Capacity", "nope"])
    assert batches[0].schema.names == ["deviceId", "capacity"]


def test_csv_duplicate_header() -> None:
    with pytest.raises(DataError) as info:
        list(open_source("ref", str(DATA / "dup_header.csv"), on_error=_raise).batches())
    assert info.value.code == "InvalidHeader" and info.value.line == 1
    batches, errors = read(DATA / "dup_header.csv")
    assert batches == [] and [e.code for e in errors] == ["InvalidHeader"]


def test_csv_bad_row_and_semicolons(tmp_path: Path) -> None:
    p = tmp_path / "semi.csv"
    p.write_text("a;b\n1;2\n3\n4;5\n")
    batches, errors = read(p)
    assert rows_of(batches) == [{"a": "1", "b": "2"}, {"a": "4", "b": "5"}]
    assert [(e.line, e.code) for e in errors] == [(3, "InvalidData")]


def _raise(e: DataError) -> None:
    raise e


# ----------------------------------------------------------------------------------- Parquet


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    sink = open_sink("o", str(path))
    sink.write(pa.record_batch({"a": [1, 2], "t": pa.array([0, 1_000_000], DATETIME),
                                "v": variant_array([1, "x"]), "r": [{"k": 1}, None]}))
    sink.write(pa.record_batch({"a": [2.5], "b": ["new"], "mix": [1]}))
    sink.write(pa.record_batch({"a": pa.nulls(1), "mix": ["s"]}))
    sink.close()
    assert pq.read_schema(path).field("a").type == pa.float64()
    batches, errors = read(path)
    assert not errors
    rows = rows_of(batches)
    assert [r["a"] for r in rows] == [1.0, 2.0, 2.5, None]
    assert rows[0]["t"] == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    assert [r["v"] for r in rows] == [1, "x", None, None]  # Variant survives
    assert [r["mix"] for r in rows] == [None, None, 1, "s"]  # int + string -> Variant
    assert rows[2]["b"] == "new"
    batches, _ = read(path, ["A", "zz"], batch_rows=2)
    assert [b.schema.names for b in batches] == [["a"], ["a"]]


def test_parquet_type_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"i": pa.array([1], pa.int32()), "f": pa.array([1.5], pa.float32()),
                             "t": pa.array([0], pa.timestamp("ms")),
                             "s": pa.array(["x"]).dictionary_encode()}), path)
    (b,), _ = read(path)
    assert b.schema.types == [pa.int64(), pa.float64(), DATETIME, pa.string()]


# ----------------------------------------------------------------------------------- sinks


def test_jsonl_writer_formats() -> None:
    out = io.BytesIO()
    sink = JsonLinesSink("o", "x", stream=out)
    batch = pa.record_batch({
        "t": pa.array([1715688010_000000, None], DATETIME),
        "f": [7.0, float("nan")],
        "g": [0.1, float("inf")],
        "i": [3, None],
        "s": ['q"\\', "line\nbreak\u00e9"],
        "b": [True, False],
        "r": pa.array([{"at": 1715688010_123456, "x": [1, 2]}, None],
                      pa.struct([("at", DATETIME), ("x", pa.list_(pa.int64()))])),
        "n": pa.nulls(2),
        "v": variant_array([{"k": [1, "a"]}, "2024-05-14T12:00:00Z"]),
    })
    sink.write(batch)
    sink.write(batch.slice(1, 1))
    sink.close()
    lines = out.getvalue().decode().splitlines()
    assert lines[0] == (
        '{"t":"2024-05-14T12:00:10.0000000Z","f":7.0,"g":0.1,"i":3,"s":"q\\"\\\\","b":true,'
        '"r":{"at":"2024-05-14T12:00:10.1234560Z","x":[1,2]},"n":null,"v":{"k": [1, "a"]}}'
    )
    second = json.loads(lines[1])
    assert second == {"t": None, "f": None, "g": None, "i": None, "s": "line\nbreak\u00e9", "b": False,
                      "r": None, "n": None, "v": "2024-05-14T12:00:00Z"}
    assert lines[2] == lines[1]
    assert list(json.loads(lines[0])) == list(batch.schema.names)  # column order kept


def test_json_text_lists_sliced_and_nulls() -> None:
    arr = pa.array([[1, 2], None, [], [3, None]]).slice(1)
    assert json_text(arr).to_pylist() == ["null", "[]", "[3,null]"]
    nested = pa.array([[{"a": 1.0}], [{"a": None}]])
    assert json_text(nested).to_pylist() == ['[{"a":1.0}]', '[{"a":null}]']


def test_stdout_sink() -> None:
    code = (
        "import pyarrow as pa; from asaql.io.sink import open_sink\n"
        "s = open_sink('o', '-'); s.write(pa.record_batch({'a': [1, 2]})); s.close()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, check=True)
    assert res.stdout == b'{"a":1}\n{"a":2}\n'


def test_csv_sink(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    sink = open_sink("o", str(path))
    sink.write(pa.record_batch({"id": [1, 2], "rec": [{"x": 1}, None], "arr": [[1], [2]],
                                "t": pa.array([0, None], DATETIME), "s": ["a,b", 'q"'],
                                "f": [7.0, 0.5], "b": [True, None]}))
    sink.write(pa.record_batch({"id": [3], "other": ["dropped"], "v": variant_array([1])}))
    sink.close()
    assert path.read_text().splitlines() == [
        "id,rec,arr,t,s,f,b",
        '1,Record,Array,1970-01-01T00:00:00.0000000Z,"a,b",7.0,true',
        '2,,Array,,"q""",0.5,',
        "3,,,,,,",
    ]
    assert isinstance(sink, CsvSink)


def test_table_sink_truncates() -> None:
    buf = io.StringIO()
    sink = TableSink("out", max_rows=3, file=buf)
    sink.write(pa.record_batch({"a": [1, 2], "t": pa.array([0, None], DATETIME)}))
    sink.write(pa.record_batch({"a": [3, 4], "s": ["x", "y"]}))
    sink.close()
    text = buf.getvalue()
    assert "1970-01-01T00:00:00.0000000Z" in text and "NULL" in text
    assert "1 more rows not shown" in text and "4" not in text.split("more rows")[0].split("\n")[-1]


def test_memory_source_and_sink() -> None:
    src = MemorySource("m", [{"a": 1, "b": "x"}, {"a": 2.5}, {"a": "s", "T": dt.datetime(2024, 5, 14)}])
    (b,) = list(src.batches(["A", "t"]))
    assert b.schema.names == ["a", "T"]
    assert is_variant(b.schema.field("a").type) and b.schema.field("T").type == DATETIME
    table = pa.table({"x": [1, 2, 3]})
    assert [x.num_rows for x in MemorySource("m", table, batch_rows=2).batches()] == [2, 1]
    sink = MemorySink("o")
    sink.write(pa.record_batch({"x": [1]}))
    sink.write(pa.record_batch({"x": [2.5], "y": ["z"]}))
    sink.close()
    assert sink.table().to_pylist() == [{"x": 1.0, "y": None}, {"x": 2.5, "y": "z"}]


def test_rows_to_batch_typing() -> None:
    b = rows_to_batch([{"a": 1, "r": {"x": 1}, "l": [1, 2.5]}, {"a": 2.0, "r": {"x": "s"}, "l": []}])
    assert b.schema.field("a").type == pa.float64()
    assert is_variant(b.schema.field("r").type)  # nested mixed -> Variant
    assert b.schema.field("l").type == pa.list_(pa.float64())
    assert to_python(b.column("r")) == [{"x": 1}, {"x": "s"}]


def test_format_detection_and_errors(tmp_path: Path) -> None:
    assert detect_format("a.NDJSON") == "json" and detect_format("a.csv.gz") == "csv"
    assert detect_format("x", "Parquet") == "parquet"
    with pytest.raises(ConfigError):
        detect_format("x", "xml")
    with pytest.raises(ConfigError):
        open_source("in", str(tmp_path / "nope.jsonl"), on_error=_raise)
    gz = tmp_path / "e.jsonl.gz"
    import gzip

    gz.write_bytes(gzip.compress(b'{"a":1}\n{"a":2}\n'))
    assert [r["a"] for r in rows_of(read(gz)[0])] == [1, 2]


def test_bench_script_runs() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "io_bench.py"), "2000"],
                         capture_output=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr.decode()
    assert "read  all columns" in res.stdout.decode()


def test_pyarrow_list_workarounds() -> None:
    # pyarrow 26 builds invalid columns for arrays starting with null ([null, 1]) and list<null>
    data = b'{"a": [null, 1], "b": [null, null], "c": [[], [null, "x"]]}\n{"a": [2], "b": []}\n'
    batches, errors = read_bytes(data)
    assert not errors
    for b in batches:
        b.validate(full=True)
    assert rows_of(batches) == [{"a": [None, 1], "b": [None, None], "c": [[], [None, "x"]]},
                                {"a": [2], "b": [], "c": None}]


def test_projection_keeps_record_keys_seen_later() -> None:
    data = b'{"rec": {}, "z": 1}\n' * 20 + b'{"rec": {"x": 1, "y": "s"}, "z": 2}\n' * 20
    batches, errors = read_bytes(data, ["rec"], chunk_bytes=64)
    assert not errors
    rows = rows_of(batches)
    assert all(set(r) == {"rec"} for r in rows)
    assert strip_nulls(rows[-1]) == {"rec": {"x": 1, "y": "s"}}


def test_jsonl_writer_large_batch_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asaql.io.jsonl_sink as jsonl_mod

    monkeypatch.setattr(jsonl_mod, "SINK_WORKERS", 3)  # the threaded path, whatever the machine
    n = 20_000
    batch = pa.record_batch({"i": list(range(n)), "s": [f"v{i}" for i in range(n)]})
    path = tmp_path / "big.jsonl"
    sink = open_sink("o", str(path))
    sink.write(batch)
    sink.close()
    lines = path.read_text().splitlines()
    assert len(lines) == n and lines[0] == '{"i":0,"s":"v0"}' and lines[-1] == f'{{"i":{n - 1},"s":"v{n - 1}"}}'
    assert [json.loads(x)["i"] for x in lines] == list(range(n))


def test_parquet_types_become_the_engines_nested_and_out_of_range_ones_too(tmp_path: Path) -> None:
    # uint64 beyond bigint: the nearest float (was a crash); nested small ints: bigint; dates:
    # datetimes; decimals: floats (the same rules as a table given to the library)
    import datetime as dt
    import decimal

    import pyarrow.parquet as pq

    import asaql

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({
        "u": pa.array([1, 2**63 + 5], pa.uint64()),
        "d": pa.array([dt.date(2024, 5, 14), None], pa.date32()),
        "rec": pa.array([{"a": 1}, None], pa.struct([("a", pa.int8())])),
        "dec": pa.array([decimal.Decimal("1.5"), decimal.Decimal("2.25")], pa.decimal128(5, 2)),
    }), path)
    rows = asaql.run("SELECT u, GetType(u) AS tu, GetType(d) AS td, GetType(rec.a) AS ta, dec FROM x",
                     inputs={"x": str(path)}).rows()
    assert [r["u"] for r in rows] == [1.0, float(2**63 + 5)]
    assert rows[0]["tu"] == "float" and rows[0]["td"] == "datetime" and rows[0]["ta"] == "bigint"
    assert [r["dec"] for r in rows] == [1.5, 2.25]
