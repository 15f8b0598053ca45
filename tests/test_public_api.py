"""The public API: `asaql.__all__` is sorted and complete, and the library runs queries."""

from __future__ import annotations

import pyarrow as pa

import asaql


def test_all_is_sorted_and_exported() -> None:
    assert asaql.__all__ == sorted(asaql.__all__)
    for name in asaql.__all__:
        assert hasattr(asaql, name), name


def test_compile_once_run_on_tables() -> None:
    table = pa.table({"deviceId": ["a", "b"], "t": [30.5, 10.0]})
    session = asaql.Session()
    session.add_input("iot", table)
    job = session.compile("SELECT deviceId, t * 2 AS t2 INTO hot FROM iot WHERE t > 20")
    assert job.output_names == ["hot"]
    first = job.run()["hot"].to_pylist()
    second = job.run()["hot"].to_pylist()
    assert first == second == [{"deviceId": "a", "t2": 61.0}]


def test_stream_yields_batches_per_output() -> None:
    session = asaql.Session(batch_size=1)
    session.add_input("iot", [{"k": i} for i in range(5)])
    job = session.compile("SELECT k INTO a FROM iot WHERE k % 2 = 0 SELECT k INTO b FROM iot WHERE k % 2 = 1")
    seen = {"a": [], "b": []}
    for name, batch in job.stream():
        seen[name].extend(batch.column("k").to_pylist())
    assert seen == {"a": [0, 2, 4], "b": [1, 3]}


def test_query_error_has_position() -> None:
    try:
        asaql.compile("SELECT a FROM src WHERE", inputs={"src": [{"a": 1}]})
    except asaql.AsaqlSyntaxError as exc:
        assert exc.span.line == 1
        assert "expected" in exc.message
    else:
        raise AssertionError("no error")


def test_stream_batches_hold_only_the_selected_columns() -> None:
    job = asaql.compile("SELECT k FROM iot TIMESTAMP BY t",
                        inputs={"iot": [{"k": 1, "t": "2024-01-01T00:00:00Z"}]})
    assert [batch.schema.names for _, batch in job.stream()] == [["k"]]


def test_iterator_input_of_single_events_is_batched() -> None:
    sizes = []
    session = asaql.Session(batch_size=4)
    session.add_input("iot", ({"k": i} for i in range(10)))
    for _, batch in session.compile("SELECT k FROM iot").stream():
        sizes.append(batch.num_rows)
    assert sizes == [4, 4, 2]


def test_iterator_input_mixing_lists_and_batches() -> None:
    items = iter([[{"k": 1}, {"k": 2}], pa.record_batch({"k": [3]}), {"k": 4}, []])
    result = asaql.run("SELECT k FROM iot", inputs={"iot": items})
    assert [r["k"] for r in result.rows()] == [1, 2, 3, 4]


def test_iterator_input_with_a_bad_item_names_it() -> None:
    try:
        asaql.run("SELECT k FROM iot", inputs={"iot": iter([{"k": 1}, 42])})
    except TypeError as exc:
        assert "item 1" in str(exc) and "int" in str(exc)
    else:
        raise AssertionError("a non-event item must be reported")


def test_iterator_input_none_lets_time_pass() -> None:
    """``None`` from a live iterator means "nothing new": with a bounded late-arrival tolerance
    the watermark follows the (injectable) clock, so a window closes before the next event."""
    import datetime as dt

    now = [dt.datetime(2030, 1, 1, tzinfo=dt.UTC)]
    progress: list[str] = []

    def events():
        yield {"t": "2024-01-01T00:00:01Z"}
        yield {"t": "2024-01-01T00:00:03Z"}
        yield None  # no silence yet: nothing closes
        progress.append("first idle")
        now[0] += dt.timedelta(seconds=10)  # 3 s + 10 s - 1 s tolerance: past 00:00:10
        yield None
        progress.append("second idle")
        yield {"t": "2024-01-01T00:00:30Z"}

    session = asaql.Session(asaql.Options(clock=lambda: now[0],
                                          job_config={"EventsLateArrivalMaxDelayInSeconds": 1}))
    session.add_input("s", events())
    job = session.compile("SELECT COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY TumblingWindow(second, 10)")
    seen = [(list(progress), batch.to_pylist()) for _, batch in job.stream()]
    assert seen == [(["first idle"], [{"n": 2}]), (["first idle", "second idle"], [{"n": 1}])]
