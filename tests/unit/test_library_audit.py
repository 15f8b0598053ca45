"""The library as a program embedding asaql uses it (issue: library audit).

Each test pins a problem found by using ``import asaql`` from a service: per-run inputs and
no state leaking between runs, Arrow types a program really has (dictionary-encoded strings,
timestamps in any unit and zone, uint64, float16, string views), dicts holding numpy/Decimal/
date values, outputs whose batches disagree on a column's type, iterators read twice, two
sessions giving different Python functions one alias, runs in two threads, a stream closed
early, options checked when they are made, and reprs that say what a thing is.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gc
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pytest

import asaql
from asaql.errors import ConfigError, DataError

QUERY = "SELECT k INTO o FROM iot"


# ------------------------------------------------------------------ compile once, run many


def test_each_run_takes_its_own_inputs() -> None:
    session = asaql.Session()
    session.add_input("iot", [{"k": 0}])
    job = session.compile(QUERY)
    assert job.run(inputs={"iot": [{"k": 1}, {"k": 2}]}).rows() == [{"k": 1}, {"k": 2}]
    assert job.run(inputs={"IOT": pa.table({"k": [3]})}).rows() == [{"k": 3}]
    assert job.run().rows() == [{"k": 0}]  # the session's data is untouched


def test_metrics_and_skipped_events_do_not_leak_between_runs() -> None:
    job = asaql.compile("SELECT v FROM t TIMESTAMP BY ts", inputs={"t": [{"v": 1, "ts": "2024-01-01T00:00:00Z"}]})
    bad = [{"v": 1, "ts": "garbage"}, {"v": 2, "ts": "2024-01-01T00:00:01Z"}]
    first = job.run(inputs={"t": bad})
    second = job.run()
    assert (first.metrics.data_errors, len(first.errors)) == (1, 1)
    assert (second.metrics.data_errors, second.errors) == (0, [])
    assert second.metrics.events_in == {"t": 1}


def test_an_unknown_run_input_says_did_you_mean() -> None:
    job = asaql.compile(QUERY, inputs={"iot": []})
    with pytest.raises(ConfigError) as info:
        job.run(inputs={"iott": []})
    assert "'iott' is not an input of this job" in info.value.message
    assert info.value.help == "did you mean 'iot'?"


def test_an_iterator_read_by_a_run_cannot_be_read_again_silently() -> None:
    job = asaql.compile(QUERY, inputs={"iot": iter([{"k": 1}])})
    assert job.run().rows() == [{"k": 1}]
    with pytest.raises(ConfigError, match="read once"):
        job.run()
    assert job.run(inputs={"iot": iter([{"k": 2}])}).rows() == [{"k": 2}]


def test_reference_data_from_an_iterator_serves_every_run() -> None:
    job = asaql.compile("SELECT i.k, r.v FROM iot i JOIN ref r ON i.k = r.k", inputs={"iot": [{"k": 1}]},
                        references={"ref": iter([{"k": 1, "v": "x"}])})
    assert job.run().rows() == job.run().rows() == [{"k": 1, "v": "x"}]


def test_a_list_filled_between_runs_is_read_as_it_is_at_each_run() -> None:
    events: list[dict[str, Any]] = []
    job = asaql.compile(QUERY, inputs={"iot": events})
    events.append({"k": 1})
    assert job.run().rows() == [{"k": 1}]
    events[:] = [{"k": 2}]
    assert job.run().rows() == [{"k": 2}]


# ------------------------------------------------------------------ Arrow and Python types


@pytest.mark.parametrize(("column", "query", "expected"), [
    (pa.array(["a", "b"]).dictionary_encode(), "SELECT UPPER(c) AS v FROM t WHERE c = 'a'", ["A"]),
    (pa.array(["a", "b"], pa.string_view()), "SELECT c AS v FROM t WHERE c = 'a'", ["a"]),
    (pa.array([2**63 + 1], pa.uint64()), "SELECT c AS v FROM t WHERE c > 0", [float(2**63)]),
    (pa.array([1.5], pa.float16()), "SELECT c * 2 AS v FROM t", [3.0]),
    (pa.array([decimal.Decimal("1.25")], pa.decimal128(5, 2)), "SELECT c + 1 AS v FROM t", [2.25]),
])
def test_arrow_types_are_brought_to_the_engines(column: pa.Array, query: str, expected: list[Any]) -> None:
    assert [r["v"] for r in asaql.run(query, inputs={"t": pa.table({"c": column})}).rows()] == expected


def test_timestamps_without_zone_are_utc_and_other_zones_are_converted() -> None:
    naive = pa.array([dt.datetime(2024, 1, 1, 0, 0, 1)], pa.timestamp("ns"))
    plus2 = pa.array([dt.datetime(2024, 1, 1, 2, 0, 3, tzinfo=dt.timezone(dt.timedelta(hours=2)))],
                     pa.timestamp("s", "+02:00"))
    table = pa.table({"a": naive, "b": plus2, "r": pa.StructArray.from_arrays([naive], ["at"])})
    result = asaql.run("SELECT a, b, r.at AS at, DATEDIFF(second, a, b) AS d FROM t", inputs={"t": table})
    utc = dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    assert result.rows() == [{"a": utc, "b": utc + dt.timedelta(seconds=2), "at": utc, "d": 2}]
    assert {str(t) for t in result["output"].schema.types} == {"timestamp[us, tz=UTC]", "int64"}


def test_windows_over_a_table_with_zoned_timestamps() -> None:
    ts = pa.array([dt.datetime(2024, 1, 1, 2, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))] * 2,
                  pa.timestamp("ms", "+02:00"))
    rows = asaql.run("SELECT COUNT(*) AS n, System.Timestamp() AS w FROM t TIMESTAMP BY ts "
                     "GROUP BY TumblingWindow(second, 10)", inputs={"t": pa.table({"ts": ts})}).rows()
    assert rows == [{"n": 2, "w": dt.datetime(2024, 1, 1, 0, 0, 10, tzinfo=dt.UTC)}]


def test_dicts_holding_numpy_decimal_and_date_values() -> None:
    np = pytest.importorskip("numpy")
    events = [{"i": np.int64(2), "f": np.float32(0.5), "d": decimal.Decimal("1.5"), "day": dt.date(2024, 5, 1)}]
    assert asaql.run("SELECT i * 2 AS i, f, d, day FROM t", inputs={"t": events}).rows() == [
        {"i": 4, "f": 0.5, "d": 1.5, "day": dt.datetime(2024, 5, 1, tzinfo=dt.UTC)}]


def test_a_dict_value_json_cannot_hold_names_the_event() -> None:
    with pytest.raises(TypeError, match=r"input 't': event 2: cannot read a object value"):
        asaql.run("SELECT v FROM t", inputs={"t": [{"v": 1}, {"v": object()}]})


def test_nested_records_and_arrays_from_a_table_and_from_dicts() -> None:
    query = "SELECT r.x AS x, GetArrayElement(l, 1) AS e FROM t"
    table = pa.table({"r": [{"x": 1}], "l": pa.array([[5, 6]], pa.large_list(pa.int32()))})
    assert asaql.run(query, inputs={"t": table}).rows() == [{"x": 1, "e": 6}]
    assert asaql.run(query, inputs={"t": [{"r": {"x": 1}, "l": [5, 6]}]}).rows() == [{"x": 1, "e": 6}]


def test_an_output_whose_batches_disagree_on_a_type_becomes_a_variant() -> None:
    """A live input's batches are typed one by one: k is a number in one, text in the next."""
    items = iter([[{"k": 1}], [{"k": "one"}]])
    result = asaql.run("SELECT k FROM t", inputs={"t": items})
    assert result.rows() == [{"k": 1}, {"k": "one"}]
    assert result["output"].column("k").to_pylist() == ["1", '"one"']  # JSON text in the table


@pytest.mark.parametrize("data", [42, {"k": [1, 2]}, [{"k": 1}, 2]], ids=["int", "dict", "list-with-int"])
def test_data_no_run_could_read_fails_when_added(data: Any) -> None:
    with pytest.raises(TypeError, match="input 'iot'"):
        asaql.Session().add_input("iot", data)


def test_a_record_batch_reader_is_a_live_input() -> None:
    reader = pa.RecordBatchReader.from_batches(pa.schema([("k", pa.int64())]),
                                               [pa.record_batch({"k": [1]}), pa.record_batch({"k": [2]})])
    assert asaql.run("SELECT k FROM t", inputs={"t": reader}).rows() == [{"k": 1}, {"k": 2}]


def test_empty_inputs_give_empty_outputs() -> None:
    for data in ([], iter([]), pa.table({"k": pa.array([], pa.int64())})):
        result = asaql.run("SELECT k INTO a FROM t SELECT k INTO b FROM t", inputs={"t": data})
        assert (result["a"].num_rows, result["b"].num_rows) == (0, 0)


# ------------------------------------------------------------------ results, errors, reprs


def test_rows_defaults_to_the_only_output_and_names_the_outputs_otherwise() -> None:
    result = asaql.run("SELECT k INTO alerts FROM t", inputs={"t": [{"k": 1}]})
    assert result.rows() == [{"k": 1}]
    with pytest.raises(KeyError, match=r"no output named 'alert' \(outputs: 'alerts'\); did you mean 'alerts'"):
        result["alert"]


def test_sinks_for_an_unknown_output_are_refused_before_the_run() -> None:
    job = asaql.compile(QUERY, inputs={"iot": [{"k": 1}]})
    with pytest.raises(ConfigError, match="no output named 'oo'"):
        job.run({"oo": asaql.Session})


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_a_data_error_under_each_policy_says_where_the_event_is(policy: str) -> None:
    events = [{"v": 1}, {"v": "x"}, {"v": 3}]
    run = lambda: asaql.run("CREATE TABLE t (v bigint); SELECT v FROM t",
                            inputs={"t": events}, on_data_error=policy)
    if policy == "stop":
        with pytest.raises(DataError) as info:
            run()
        error = info.value
    else:
        result = run()
        assert result.rows() == [{"v": 1}, {"v": 3}]
        assert result.metrics.data_errors == 1
        [error] = result.errors
    assert (error.input_name, error.event, error.field_name) == ("t", 2, "v")


def test_options_are_checked_when_made() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        asaql.Options(batch_size=0)
    with pytest.raises(ConfigError, match="on_data_error"):
        asaql.Options(on_data_error="ignore")
    with pytest.raises(ConfigError) as info:
        asaql.Options(job_config={"EventsOutOfOrderMaxDelayInSecond": 5})
    assert info.value.help == "did you mean 'EventsOutOfOrderMaxDelayInSeconds'?"
    with pytest.raises(TypeError, match="did you mean 'batch_size'"):
        asaql.Session(batchsize=10)
    assert asaql.Options(job_config={"eventsoutoforderpolicy": "drop"}).job_config == {"EventsOutOfOrderPolicy": "Drop"}


def test_run_takes_option_fields() -> None:
    clock = lambda: dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    result = asaql.run("SELECT GETUTCDATE() AS now FROM t", inputs={"t": [{"k": 1}]}, clock=clock,
                       job_config={"EventsOutOfOrderPolicy": "Drop"})
    assert result.rows() == [{"now": clock()}]


def test_reprs_say_what_a_thing_is() -> None:
    session = asaql.Session(batch_size=10)
    session.add_input("iot", [{"k": 1}])
    session.add_reference("devices", [])
    job = session.compile(QUERY)
    assert repr(session) == ("Session(inputs={'iot': 'stream', 'devices': 'reference'}, "
                             "options=Options(batch_size=10))")
    assert repr(job) == "Job('SELECT k INTO o FROM iot', inputs=['iot'], outputs=['o'])"
    assert repr(job.run()) == "RunResult(outputs={'o': 1 row}, events_in={'iot': 1}, data_errors=0)"


def test_the_public_api_is_typed_and_errors_are_importable() -> None:
    import inspect

    from asaql import errors

    for name in ("compile", "run", "parse", "udf"):
        signature = inspect.signature(getattr(asaql, name))
        assert signature.return_annotation is not inspect.Signature.empty, name
    for name in ("AsaqlError", "QueryError", "DataError", "ExecutionError", "EndpointError", "ConfigError"):
        assert getattr(errors, name) is getattr(asaql, name)
        assert name in errors.__doc__


# ------------------------------------------------------------------ Python functions


def test_two_sessions_may_give_different_functions_one_alias() -> None:
    jobs = []
    for word in ("one", "two"):
        session = asaql.Session()
        session.add_input("t", [{"k": 1}])
        session.add_function("label", lambda rows, word=word: [word] * len(rows))
        jobs.append(session.compile("SELECT udf.label(k) AS x FROM t"))
    assert [job.run().rows() for job in jobs] == [[{"x": "one"}], [{"x": "two"}]]


def test_functions_by_decorator_and_by_module_reference() -> None:
    @asaql.udf("audit_double")
    def double(rows: list[Any]) -> list[Any]:
        return [r * 2 for r in rows]

    result = asaql.run("SELECT udf.d(k) AS d, udf.m(k) AS m, udf.f(k) AS f FROM t", inputs={"t": [{"k": 4}]},
                       functions={"d": "python:audit_double", "m": "builtins:list", "f": double})
    assert result.rows() == [{"d": 8, "m": 4, "f": 8}]  # builtins.list: each row as it is


# ------------------------------------------------------------------ live inputs, threads, closing


def test_results_of_a_live_input_come_before_it_ends() -> None:
    produced: list[int] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for i in range(3):
            produced.append(i)
            yield pa.record_batch({"k": [i]})

    seen = [(len(produced), batch.num_rows) for _, batch in asaql.compile(QUERY, inputs={"iot": batches()}).stream()]
    assert seen == [(1, 1), (2, 1), (3, 1)]


def _endless(closed: list[bool]) -> Iterator[dict[str, int]]:
    try:
        i = 0
        while True:
            yield {"k": i}
            i += 1
    finally:
        closed.append(True)


@pytest.mark.parametrize("how", ["close", "with", "drop"])
def test_a_stream_stopped_early_closes_its_input_and_ml_workers(how: str) -> None:
    closed: list[bool] = []
    session = asaql.Session(batch_size=10)
    session.add_input("t", _endless(closed))
    session.add_function("f", lambda rows: rows)
    job = session.compile("SELECT udf.f(k) AS v FROM t")
    before = set(threading.enumerate())
    if how == "with":
        with job.stream() as results:
            next(results)
            assert results.metrics.events_in["t"] >= 10
    else:
        results = job.stream()
        next(results)
        if how == "close":
            results.close()
        else:
            del results
            gc.collect()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed == [True]
    assert not {t.name for t in set(threading.enumerate()) - before}


def test_two_threads_run_one_job_and_two_jobs_at_once() -> None:
    rows = [{"k": i, "ts": f"2024-01-01T00:00:{i % 60:02d}Z"} for i in range(600)]
    query = ("SELECT k % 3 AS g, COUNT(*) AS n, SUM(k) AS s INTO w FROM t TIMESTAMP BY ts "
             "GROUP BY k % 3, TumblingWindow(second, 10) "
             "SELECT k, udf.f(k) AS v INTO scored FROM t")

    def job_for(factor: int) -> asaql.Job:
        session = asaql.Session(batch_size=37)
        session.add_input("t", rows)
        session.add_function("f", lambda values: [v * factor for v in values])
        return session.compile(query)

    def outcome(job: asaql.Job) -> tuple[list[Any], list[Any]]:
        result = job.run()
        return sorted(map(tuple, (r.values() for r in result.rows("w")))), [r["v"] for r in result.rows("scored")]

    shared = job_for(1)
    expected = {1: outcome(shared), 2: outcome(job_for(2))}
    jobs = [(1, shared), (2, job_for(2))] * 4
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda pair: (pair[0], outcome(pair[1])), jobs))
    assert all(got == expected[factor] for factor, got in results)
