"""Events the scan cannot type or time are data errors that name the event and the field;
each bad event is counted once, and the good events around it are kept."""

from __future__ import annotations

import pytest

import asaql

EVENTS = [
    {"a": 1, "t": "2024-01-01T00:00:00Z"},
    {"a": "x", "t": "bad"},  # both fields fail: one error, for the first declared field
    {"a": 3, "t": "2024-01-01T00:00:02Z"},
]


def _run(query: str, policy: str = "skip", events: list[dict] = EVENTS) -> asaql.RunResult:
    session = asaql.Session(asaql.Options(on_data_error=policy))
    session.add_input("s", events)
    return session.compile(query).run()


def test_create_table_failure_counted_once_per_event() -> None:
    result = _run("CREATE TABLE s (a bigint, t datetime); SELECT a FROM s")
    assert result.rows() == [{"a": 1}, {"a": 3}]
    assert result.metrics.data_errors == 1


def test_create_table_failure_names_event_and_field() -> None:
    with pytest.raises(asaql.DataError) as info:
        _run("CREATE TABLE s (a bigint, t datetime); SELECT a FROM s", policy="stop")
    err = info.value
    assert (err.event, err.field_name, err.code) == (2, "a", "TypeConversionError")
    assert "event 2" in str(err) and "'x'" in str(err)


def test_bad_timestamp_names_event_and_value() -> None:
    with pytest.raises(asaql.DataError) as info:
        _run("SELECT a FROM s TIMESTAMP BY t", policy="stop")
    err = info.value
    assert (err.event, err.code) == (2, "InvalidInputTimeStamp")
    assert "'bad'" in str(err)


def test_event_positions_continue_across_batches() -> None:
    events = [{"a": i, "t": "2024-01-01T00:00:00Z"} for i in range(10)]
    events[7]["t"] = "never"
    session = asaql.Session(asaql.Options(on_data_error="stop", batch_size=3))
    session.add_input("s", events)
    with pytest.raises(asaql.DataError) as info:
        session.compile("SELECT a FROM s TIMESTAMP BY t").run()
    assert info.value.event == 8


@pytest.mark.parametrize("text, line", [
    # every line an event: the line comes from the batch's first line
    ('{"a": 1}\n{"a": "x"}\n{"a": 3}\n', 2),
    # a malformed line and blank lines before: the reader's slow path keeps each event's line
    ('\n{"a": 1}\n{"a": \n\n{"a": "x"}\n', 5),
])
def test_create_table_failure_in_a_file_names_the_line(tmp_path, text: str, line: int) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(text)
    session = asaql.Session()
    reports: list[str] = []
    session.report = reports.append
    session.add_input("s", str(path))
    result = session.compile("CREATE TABLE s (a bigint); SELECT a FROM s").run()
    assert [r["a"] for r in result.rows()] == [1] + ([3] if line == 2 else [])
    (conversion,) = [r for r in reports if "TypeConversionError" in r]
    assert f"events.jsonl, line {line}, field 'a'" in conversion


def test_early_event_is_dropped_counted_and_reported() -> None:
    session = asaql.Session()
    reports: list[str] = []
    session.report = reports.append
    session.add_input("s", [
        {"a": 1, "t": "2024-01-01T00:00:00Z", "EventEnqueuedUtcTime": "2024-01-01T00:00:00Z"},
        {"a": 2, "t": "2024-01-01T00:05:01Z", "EventEnqueuedUtcTime": "2024-01-01T00:00:00Z"},
    ])
    result = session.compile("SELECT a FROM s TIMESTAMP BY t").run()
    assert [r["a"] for r in result.rows()] == [1]
    assert result.metrics.dropped == {"s": 1}
    assert any("EarlyInputEvent" in r and "input 's'" in r for r in reports)
