"""Live inputs end to end, as a user meets them: stdin fed slowly, a followed file, library
iterators with pauses and ``None`` ticks, joins and unions of live inputs, several outputs.

Pins two bugs: (1) a statement reading a live input shared with a windowed statement lagged
one event or more behind (the window's pull waited on the input while the stateless rows sat
in the shared queue; after the last event they never came out, not even on Ctrl-C); (2) an
output over an idle live input kept the runtime waiting, so another input's output got
nothing. Every wait below is for output, with a generous deadline, never a fixed sleep.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asaql

QUERY = """SELECT i, System.Timestamp() AS t INTO raw FROM src TIMESTAMP BY ts
SELECT COUNT(*) AS n, System.Timestamp() AS windowEnd INTO win FROM src TIMESTAMP BY ts
GROUP BY TumblingWindow(second, 1)
"""
DEADLINE = 15.0


def _event(i: int) -> dict[str, Any]:
    """Two events a second of event time: 10:00:00.0, 10:00:00.5, 10:00:01.0, ..."""
    return {"ts": f"2024-05-14T10:00:{i // 2:02d}.{5 * (i % 2)}Z", "i": i}


class _Lines:
    """JSON lines read from a running process's stdout as they come."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc, self.fd = proc, proc.stdout.fileno()
        self.sel = selectors.DefaultSelector()
        self.sel.register(proc.stdout, selectors.EVENT_READ)
        self.rows: list[dict[str, Any]] = []
        self._pending = b""

    def until(self, done: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + DEADLINE
        while not done(self.rows) and time.monotonic() < deadline:
            if self.sel.select(timeout=0.2):
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                *lines, self._pending = (self._pending + chunk).split(b"\n")
                self.rows += [json.loads(x) for x in lines if x.strip()]
        return self.rows


def _raw(rows: list[dict[str, Any]]) -> list[int]:
    return [r["i"] for r in rows if r.get("__output") == "raw"]


def _win(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(r["n"], r["windowEnd"][17:19]) for r in rows if r.get("__output") == "win"]


def _asaql(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "asaql", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1"), **kwargs)


def test_stdin_rows_leave_as_events_arrive_and_eof_closes_the_rest(tmp_path: Path) -> None:
    query = tmp_path / "q.asaql"
    query.write_text(QUERY)
    proc = _asaql(str(query), "-i", "src=-", "-q", stdin=subprocess.PIPE)
    out = _Lines(proc)
    assert proc.stdin is not None
    try:
        for i in range(6):  # one event at a time: its stateless row comes before the next
            proc.stdin.write((json.dumps(_event(i)) + "\n").encode())
            proc.stdin.flush()
            assert _raw(out.until(lambda rows, i=i: i in _raw(rows))) == list(range(i + 1))
        # 10:00:02.5 has passed (10:00:01, 10:00:02]: windows closed while the pipe is open
        assert _win(out.until(lambda rows: len(_win(rows)) >= 3)) == [(1, "00"), (2, "01"), (2, "02")]
        assert proc.poll() is None
    finally:
        proc.stdin.close()  # EOF: the final watermark closes the last window
    proc.wait(timeout=DEADLINE)
    assert _win(out.until(lambda rows: False)) == [(1, "00"), (2, "01"), (2, "02"), (1, "03")]
    assert proc.returncode == 0


def test_follow_writes_rows_to_files_as_they_come_and_sigint_flushes(tmp_path: Path) -> None:
    query = tmp_path / "q.asaql"
    query.write_text(QUERY)
    src, raw, win = tmp_path / "src.jsonl", tmp_path / "raw.jsonl", tmp_path / "win.jsonl"
    src.write_text("")
    proc = _asaql(str(query), "-i", f"src={src}", "--follow", "-o", f"raw={raw}", "-o", f"win={win}")

    def lines(path: Path, want: int) -> list[dict[str, Any]]:  # what `tail -f` would see
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            text = path.read_text() if path.exists() else ""
            if text.count("\n") >= want:
                break
            time.sleep(0.05)
        return [json.loads(x) for x in text.splitlines()]

    try:
        with src.open("a") as f:
            for i in range(5):
                f.write(json.dumps(_event(i)) + "\n")
                f.flush()
                assert [r["i"] for r in lines(raw, i + 1)] == list(range(i + 1))
        assert [r["n"] for r in lines(win, 2)] == [1, 2]  # (.., 10:00:00], (10:00:00, 10:00:01]
        assert proc.poll() is None  # a followed file never ends
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 130, err.decode()
    assert [r["i"] for r in lines(raw, 5)] == [0, 1, 2, 3, 4]
    assert b"Traceback" not in err


class _Clock:
    """The run's clock (``Options(clock=)``), moved by the test's generators."""

    def __init__(self) -> None:
        self.now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def test_library_stream_closes_a_window_by_idle_time() -> None:
    clock = _Clock()
    progress: list[str] = []

    def events() -> Iterator[Any]:
        for i in range(4):  # 10:00:00.0 .. 10:00:01.5
            progress.append(f"event {i}")
            yield [_event(i)]
            yield None
        for _ in range(4):  # silence: 1 s at a time
            clock.advance(1)
            progress.append(f"idle {clock.now:%S}")
            yield None
        progress.append("end")

    session = asaql.Session(clock=clock, job_config={"EventsLateArrivalMaxDelayInSeconds": 1})
    session.add_input("src", events())
    seen: list[tuple[str, list[Any], str]] = []
    with session.compile(QUERY).stream() as results:
        for name, batch in results:
            column = "i" if name == "raw" else "windowEnd"
            seen.append((name, [v if name == "raw" else f"{v:%S}" for v in batch.column(column).to_pylist()],
                         progress[-1]))
    # each event's row comes before the next event is produced
    assert [s for s in seen if s[0] == "raw"] == [("raw", [i], f"event {i}") for i in range(4)]
    wins = [(s[1], s[2]) for s in seen if s[0] == "win"]
    # (10:00:01, 10:00:02] closes when the estimated arrival 10:00:01.5 + idle - 1 s passes
    # 10:00:02, i.e. after 2 s of silence; nothing is left for the end of the input
    assert wins == [(["00"], "event 1"), (["01"], "event 3"), (["02"], "idle 02")]


def test_an_idle_live_input_does_not_hold_back_another_inputs_output() -> None:
    produced: list[int] = []
    done = {"idle": False}

    def idle() -> Iterator[Any]:
        deadline = time.monotonic() + DEADLINE
        while len(produced) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
            yield None
        done["idle"] = True

    def busy() -> Iterator[Any]:
        for i in range(3):
            produced.append(i)
            yield [_event(i)]
            time.sleep(0.05)

    session = asaql.Session()
    session.add_input("quiet", idle())
    session.add_input("busy", busy())
    job = session.compile("SELECT i INTO a FROM quiet TIMESTAMP BY ts\nSELECT i INTO b FROM busy TIMESTAMP BY ts")
    got = [(name, batch.column("i").to_pylist(), done["idle"]) for name, batch in job.stream()]
    assert got[:3] == [("b", [0], False), ("b", [1], False), ("b", [2], False)]


def test_a_join_of_two_live_iterators_answers_as_both_advance() -> None:
    progress = {"a": -1, "b": -1}

    def side(name: str, offset: int) -> Iterator[Any]:
        for i in range(5):
            progress[name] = i
            yield [{"ts": f"2024-05-14T10:00:{2 * i + offset:02d}Z", "k": i}]
            yield None

    session = asaql.Session()
    session.add_input("a", side("a", 0))
    session.add_input("b", side("b", 1))
    job = session.compile("""SELECT a.k AS k FROM a TIMESTAMP BY ts JOIN b TIMESTAMP BY ts
        ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN 0 AND 5""")
    got = [(batch.column("k").to_pylist(), dict(progress)) for _, batch in job.stream()]
    assert [k for k, _ in got] == [[0], [1], [2], [3], [4]]
    # pair k is known once both sides have passed its time (b's event k + 1 has been read)
    for k, (_, seen) in enumerate(got[:4]):
        assert seen["a"] <= k + 2 and seen["b"] <= k + 1, (k, seen)


def test_a_union_of_a_live_iterator_and_a_finite_input_streams() -> None:
    produced: list[int] = []

    def live() -> Iterator[Any]:
        for i in range(6):
            produced.append(i)
            yield [{"ts": f"2024-05-14T10:00:{2 * i:02d}Z", "k": i, "src": "live"}]

    finite = [{"ts": f"2024-05-14T10:00:{2 * i + 1:02d}Z", "k": i, "src": "file"} for i in range(3)]
    session = asaql.Session()
    session.add_input("live", live())
    session.add_input("file", finite)
    job = session.compile("SELECT k, src FROM live TIMESTAMP BY ts UNION SELECT k, src FROM file TIMESTAMP BY ts")
    got = [(row["src"], row["k"], len(produced)) for _, batch in job.stream() for row in batch.to_pylist()]
    assert [(s, k) for s, k, _ in got] == [("live", 0), ("file", 0), ("live", 1), ("file", 1), ("live", 2),
                                           ("file", 2), ("live", 3), ("live", 4), ("live", 5)]
    first_live = next(n for s, k, n in got if s == "live" and k == 1)
    assert first_live <= 3  # the live side's rows leave as time passes, not at its end


def test_a_window_after_ml_scoring_closes_by_idle_time_without_a_next_event() -> None:
    # the ML operator releases a watermark once every earlier event is answered, not when the
    # next event is scored: a window downstream of scoring closes on a live input's idle time.
    # (The input is pulled on the scorer's own thread, so the generator waits, up to a few
    # seconds, for the last window before it ends.)
    import threading

    clock = _Clock()
    progress: list[str] = []
    last_window = threading.Event()

    def events() -> Iterator[Any]:
        for i in range(4):
            progress.append(f"event {i}")
            yield [_event(i)]
            yield None
        for _ in range(4):
            clock.advance(1)
            progress.append(f"idle {clock.now:%S}")
            yield None
        last_window.wait(timeout=5)
        progress.append("end")

    def double(rows: list[Any]) -> list[Any]:
        return [None if r is None else r * 2 for r in rows]

    session = asaql.Session(clock=clock, job_config={"EventsLateArrivalMaxDelayInSeconds": 1})
    session.add_input("src", events())
    session.add_function("f", double)
    query = ("SELECT SUM(udf.f(i)) AS s, System.Timestamp() AS windowEnd INTO win FROM src TIMESTAMP BY ts "
             "GROUP BY TumblingWindow(second, 1)")
    seen = []
    for _, batch in session.compile(query).stream():
        end = f"{batch.column('windowEnd')[0].as_py():%S}"
        seen.append((end, batch.column("s").to_pylist(), progress[-1]))
        if end == "02":
            last_window.set()
    assert [s[:2] for s in seen] == [("00", [0]), ("01", [2 * (1 + 2)]), ("02", [2 * 3])]
    assert seen[-1][2] != "end"  # released by idle time, not held back to the end of the input
