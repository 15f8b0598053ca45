"""Review of the live-input changes: self-joins and self-unions of a live input or of a WITH
step over one, two outputs of one live step, the ML operator's watermark markers, and the
memory-mapped JSON chunk reader.

Pins: (1) an idle live input read twice inside one merge (a self-join, a UNION of a step with
itself) queued one repeated watermark per idle tick for the reader the merge does not pull
(memory growing for as long as the input idles); (2) a reader of a shared step handed the end
of the stream on twice; (3) a live input's idle ticks, each a marker chunk to the scorer, kept
a partial ML request waiting (``linger``) for as long as they came: scored rows stalled while
the input idled; (4) a BOM was not stripped when the first mapped chunk was shorter than it.

Every job runs in a thread joined with a deadline, so a hang fails instead of blocking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import asaql
from asaql.exec import step as step_module
from asaql.exec.operator import Watermark

DEADLINE = 20.0

SELF_JOIN = ("SELECT a.k AS ak, b.k AS bk FROM s a TIMESTAMP BY ts JOIN s b TIMESTAMP BY ts "
             "ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN 0 AND 5")
STEP_SELF_JOIN = ("WITH st AS (SELECT k, ts FROM s TIMESTAMP BY ts) "
                  "SELECT a.k AS ak, b.k AS bk FROM st a JOIN st b "
                  "ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN 0 AND 5")
STEP_SELF_UNION = "WITH st AS (SELECT k FROM s TIMESTAMP BY ts) SELECT k FROM st UNION SELECT k FROM st"
TWO_SPEEDS = ("WITH st AS (SELECT k FROM s TIMESTAMP BY ts) SELECT k INTO o1 FROM st "
              "SELECT COUNT(*) AS n INTO o2 FROM st GROUP BY TumblingWindow(second, 2)")


def _ev(i: int) -> dict[str, Any]:
    return {"ts": f"2024-05-14T10:00:{i:02d}Z", "k": i}


def _in_thread(fn: Callable[[], Any], timeout: float = DEADLINE) -> Any:
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            box["error"] = exc

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the job did not finish (hang)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _rows(query: str, data: Any, **session: Any) -> list[tuple[str, dict[str, Any]]]:
    s = asaql.Session(**session)
    s.add_input("s", data)
    job = s.compile(query)
    return _in_thread(lambda: [(name, row) for name, batch in job.stream() for row in batch.to_pylist()])


@pytest.fixture
def shared_steps(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every SharedStep the run builds (to look at its readers' queues)."""
    made: list[Any] = []
    original = step_module.SharedStep.__init__

    def init(self: Any, source: Iterator[Any]) -> None:
        original(self, source)
        made.append(self)

    monkeypatch.setattr(step_module.SharedStep, "__init__", init)
    return made


def _longest_queue(steps: list[Any]) -> int:
    return max((len(q) for s in steps for q in s._queues), default=0)


@pytest.mark.parametrize("query", [SELF_JOIN, STEP_SELF_JOIN, STEP_SELF_UNION])
def test_an_idle_live_input_read_twice_in_one_merge_keeps_its_queues_short(
        query: str, shared_steps: list[Any]) -> None:
    longest: list[int] = []

    def live() -> Iterator[Any]:
        for i in range(3):
            yield [_ev(i)]
            yield None
        for _ in range(500):  # idle: the event time does not move
            longest.append(_longest_queue(shared_steps))
            yield None

    got = _rows(query, live())
    keys = sorted(tuple(v for v in row.values()) for _, row in got)
    want = [(i, i) for i in range(3)] if "JOIN" in query else [(i,) for i in range(3) for _ in range(2)]
    assert keys == want
    assert max(longest) <= 3, f"queues grew with idle ticks: {max(longest)}"


@pytest.mark.parametrize("query", [SELF_JOIN, STEP_SELF_JOIN, STEP_SELF_UNION])
def test_finite_self_join_and_union(query: str) -> None:
    got = _rows(query, [_ev(i) for i in range(20)])
    keys = sorted(tuple(row.values()) for _, row in got)
    want = [(i, i) for i in range(20)] if "JOIN" in query else [(i,) for i in range(20) for _ in range(2)]
    assert keys == want


def test_a_live_self_join_answers_while_the_input_is_live() -> None:
    progress = [-1]

    def live() -> Iterator[Any]:
        for i in range(5):
            progress[0] = i
            yield [_ev(2 * i)]
            yield None
        for _ in range(50):
            yield None
        progress[0] = 99  # the end

    s = asaql.Session()
    s.add_input("s", live())
    job = s.compile(SELF_JOIN)
    got = _in_thread(lambda: [(b.column("ak").to_pylist(), progress[0]) for _, b in job.stream()])
    assert [k for k, _ in got] == [[0], [2], [4], [6], [8]]
    assert all(seen <= i + 1 for i, (_, seen) in enumerate(got[:4])), got


def test_an_idle_live_self_join_does_not_spin() -> None:
    marks: dict[str, float] = {}

    def live() -> Iterator[Any]:
        for i in range(3):
            yield [_ev(i)]
        time.sleep(0.2)
        marks["cpu"], marks["wall"] = time.process_time(), time.monotonic()
        while time.monotonic() - marks["wall"] < 1.0:
            time.sleep(0.02)  # an input with nothing new, polled
            yield None
        marks["cpu"] = time.process_time() - marks["cpu"]

    got = _rows(STEP_SELF_JOIN, live())
    assert len(got) == 3
    assert marks["cpu"] < 0.5, f"{marks['cpu']:.2f} s of CPU in 1 s of idle time"


@pytest.mark.parametrize("live", [True, False])
def test_two_outputs_of_one_step_at_different_speeds_lose_and_repeat_nothing(live: bool) -> None:
    events = [_ev(i) for i in range(12)]

    def ticking() -> Iterator[Any]:
        for e in events:
            yield [e]
            yield None
            yield None
        for _ in range(20):
            yield None

    got = _rows(TWO_SPEEDS, ticking() if live else events)
    assert [row["k"] for name, row in got if name == "o1"] == list(range(12))
    # (0 .. 10:00:00], (00, 02], ... (10, 12]: 1, 2, 2, 2, 2, 2, 1
    assert [row["n"] for name, row in got if name == "o2"] == [1, 2, 2, 2, 2, 2, 1]


def test_a_shared_step_reader_hands_on_the_end_once() -> None:
    w1 = Watermark(Watermark.END.time.replace(year=2024))
    shared = step_module.SharedStep(iter([w1, w1, w1, Watermark.END]))
    ahead, behind = shared.reader(), shared.reader()
    items = list(ahead)
    assert sum(1 for x in items if isinstance(x, Watermark) and x.is_end) == 1
    assert items[-1] is Watermark.END
    assert list(behind)[-1] is Watermark.END


# ---------------------------------------------------------------------- the ML operator


def _double(rows: list[Any]) -> list[Any]:
    return [None if r is None else r * 2 for r in rows]


def test_scored_rows_leave_while_a_live_input_ticks() -> None:
    got: list[Any] = []
    waited: list[float] = []

    def live() -> Iterator[Any]:
        for i in range(3):
            yield [_ev(i)]
        start = time.monotonic()
        while len(got) < 3 and time.monotonic() - start < 10:
            time.sleep(0.0002)  # idle ticks faster than the scorer's linger (2 ms)
            yield None
        waited.append(time.monotonic() - start)

    s = asaql.Session()
    s.add_input("s", live())
    s.add_function("f", _double)
    job = s.compile("SELECT k, udf.f(k) AS d FROM s TIMESTAMP BY ts")

    def run() -> None:
        for _, batch in job.stream():
            got.extend(batch.to_pylist())

    _in_thread(run)
    assert got == [{"k": i, "d": 2 * i} for i in range(3)]
    # answered within milliseconds; before the fix each tick's marker chunk restarted the
    # linger wait of the partial request, and the rows waited for a gap between ticks (seconds)
    assert waited[0] < 0.5, f"scored rows waited {waited[0]:.2f} s behind the idle ticks"


@pytest.mark.parametrize("ticks", [0, 1, 30])
def test_scored_windows_match_with_any_number_of_ticks(ticks: int) -> None:
    def live() -> Iterator[Any]:
        for i in range(10):
            yield [_ev(i), _ev(i)]
            for _ in range(ticks):
                yield None

    query = ("SELECT SUM(udf.f(k)) AS s, COUNT(*) AS n FROM s TIMESTAMP BY ts "
             "GROUP BY TumblingWindow(second, 3)")
    s = asaql.Session()
    s.add_input("s", live())
    s.add_function("f", _double)
    job = s.compile(query)
    got = _in_thread(lambda: [row for _, b in job.stream() for row in b.to_pylist()])
    # (..00] (00..03] (03..06] (06..09]
    assert [(r["s"], r["n"]) for r in got] == [(0, 2), (24, 6), (60, 6), (96, 6)]


def test_a_failing_function_on_a_live_input_fails_the_run_without_a_hang() -> None:
    def live() -> Iterator[Any]:
        for i in range(5):
            yield [_ev(i)]
            yield None
        for _ in range(10_000):
            yield None

    def bad(rows: list[Any]) -> list[Any]:
        if 3 in rows:
            raise ValueError("no threes")
        return rows

    s = asaql.Session()
    s.add_input("s", live())
    s.add_function("f", bad)
    job = s.compile("SELECT k, udf.f(k) AS d FROM s TIMESTAMP BY ts")
    with pytest.raises(asaql.AsaqlError):
        _in_thread(lambda: [row for _, b in job.stream() for row in b.to_pylist()])


def test_closing_a_scored_live_stream_early_stops_its_threads() -> None:
    stopped = threading.Event()

    def live() -> Iterator[Any]:
        try:
            i = 0
            while True:
                yield [_ev(i % 60)]
                yield None
                i += 1
                time.sleep(0.001)
        finally:
            stopped.set()

    s = asaql.Session()
    s.add_input("s", live())
    s.add_function("f", _double)
    job = s.compile("SELECT k, udf.f(k) AS d FROM s TIMESTAMP BY ts")

    def first_rows() -> list[Any]:
        with job.stream() as results:
            for _, batch in results:
                return batch.to_pylist()
        return []

    assert _in_thread(first_rows) == [{"k": 0, "d": 0}]
    assert stopped.wait(10), "the live input was not closed"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(t.name.startswith("asaql-ml-") for t in threading.enumerate()):
        time.sleep(0.02)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("asaql-ml-")]


# ---------------------------------------------------------------------- memory-mapped JSON


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 64])
def test_mapped_chunks_strip_the_bom_and_keep_every_byte(tmp_path: Path, chunk_bytes: int) -> None:
    from asaql.io.jsonl import JsonSource

    lines = [b'{"a": %d}\n' % i for i in range(40)] + [b'{"a": "' + b"x" * 300 + b'"}']
    path = tmp_path / "in.json"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(lines))
    source = JsonSource("s", str(path), on_error=lambda e: None, chunk_bytes=chunk_bytes)
    chunks = [bytes(c) for c in source._mapped_chunks()]
    assert b"".join(chunks) == b"".join(lines)
    assert all(c.endswith(b"\n") for c in chunks[:-1])
    rows = [r for b in JsonSource("s", str(path), on_error=lambda e: None,
                                  chunk_bytes=chunk_bytes).batches() for r in b.to_pylist()]
    assert [r["a"] for r in rows[:40]] == list(range(40))

