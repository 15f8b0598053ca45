"""The layout of the library modules: what ``asaql.session`` held before it was split (into
``asaql.inputs``, ``asaql.compiled`` and ``asaql.result``) is still importable from it, and a
session's Python functions leave the process-wide registry of ``asaql.ml.python_udf`` when the
session is garbage-collected (it used to grow with every session)."""

from __future__ import annotations

import gc
import threading

import asaql
import asaql.session
from asaql import compiled, inputs, result
from asaql.ml import python_udf


def test_session_re_exports_what_moved() -> None:
    assert asaql.session.Job is compiled.Job is asaql.Job
    assert asaql.session.RunResult is result.RunResult is asaql.RunResult
    assert asaql.session.ResultStream is result.ResultStream is asaql.ResultStream
    assert asaql.session.InputData is inputs.InputData
    assert asaql.session._to_table is result.to_table  # imported by asaql.cli.repl
    assert asaql.session.MAX_KEPT_ERRORS == result.MAX_KEPT_ERRORS == 1000
    assert set(asaql.session.__all__) == {"InputData", "Job", "ResultStream", "RunResult", "Session"}


def test_new_modules_all_is_sorted_and_complete() -> None:
    for module in (compiled, inputs, result):
        assert module.__all__ == sorted(module.__all__), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


def test_register_and_unregister() -> None:
    def double(rows: list[int]) -> list[int]:
        return [2 * r for r in rows]

    first = python_udf.register(double, name="Twice")
    second = python_udf.register(double, name="Twice")
    try:
        assert first != second and first.startswith("twice.")
        entry = python_udf.registered()[first]
        assert (entry.name, entry.function, entry.batch, entry.arrow) == ("twice", double, True, False)
        assert python_udf.resolve_function(f"python:{first}") is entry
    finally:
        python_udf.unregister(first)
        python_udf.unregister(second)
    assert first not in python_udf.registered() and second not in python_udf.registered()
    python_udf.unregister(first)  # twice is fine


def test_register_keeps_the_decorators_options() -> None:
    @asaql.udf("layout_arrow_fn", arrow=True, batch=True)
    def scaled(table):  # type: ignore[no-untyped-def]
        return table.column("value")

    key = python_udf.register(scaled, name="s")
    try:
        assert python_udf.registered()[key].arrow is True
        own = python_udf.register(scaled, key="Own", arrow=False)
        assert own == "own" and python_udf.registered()[own].arrow is False
    finally:
        python_udf.unregister(key)
        python_udf.unregister("own")
        python_udf.unregister("layout_arrow_fn")


def _session_with_functions() -> asaql.Session:
    session = asaql.Session()
    session.add_input("t", [{"k": 1}])
    session.add_function("f", lambda rows: rows)
    session.add_ml_input("m", lambda rows: [{"x": 1} for _ in rows])
    return session


def test_dropped_sessions_release_their_functions() -> None:
    gc.collect()
    before = len(python_udf.registered())
    for _ in range(1000):
        _session_with_functions()
    gc.collect()
    assert len(python_udf.registered()) == before


def test_a_job_keeps_its_sessions_functions() -> None:
    gc.collect()
    before = len(python_udf.registered())
    job = asaql.compile("SELECT udf.f(k) AS v FROM t", inputs={"t": [{"k": 3}]},
                        functions={"f": lambda rows: [r * 10 for r in rows]})
    gc.collect()
    assert len(python_udf.registered()) == before + 1
    assert job.run().rows() == [{"v": 30}]
    del job
    gc.collect()
    assert len(python_udf.registered()) == before


def test_sessions_in_threads_release_their_functions() -> None:
    gc.collect()
    before = len(python_udf.registered())

    def work() -> None:
        for _ in range(200):
            assert _session_with_functions().compile("SELECT udf.f(k) AS v FROM t").run().rows() == [{"v": 1}]

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gc.collect()
    assert len(python_udf.registered()) == before
