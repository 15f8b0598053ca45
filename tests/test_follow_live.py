"""A live input: ``asaql run --follow`` on a file that is still being written produces window
results as the watermark passes them, long before the input ends (it never ends here: the
test stops the process). Pins the scan's watermarks and their flow through the operators."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

QUERY = """SELECT COUNT(*) AS n, System.Timestamp() AS windowEnd
FROM src TIMESTAMP BY ts
GROUP BY TumblingWindow(second, 10)
"""


def _event(i: int) -> str:
    return json.dumps({"ts": f"2024-05-14T10:{i // 60:02d}:{i % 60:02d}Z"}) + "\n"


def _follow(tmp_path: Path, query_text: str, events: list[str], want: int, *extra: str) -> list[dict[str, object]]:
    """Run ``asaql run --follow`` on a file, append ``events`` (50 ms apart), then wait (up to
    20 s, the file no longer growing) for ``want`` result rows; the process is still running."""
    query = tmp_path / "q.asaql"
    query.write_text(query_text)
    src = tmp_path / "src.jsonl"
    src.write_text("")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "asaql", "run", str(query), "-i", f"src={src}", "-o", "output=-",
         "--follow", "-q", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        with src.open("a") as f:
            for line in events:
                f.write(line)
                f.flush()
                time.sleep(0.05)
        return _read_rows(proc, want)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _read_rows(proc: subprocess.Popen[bytes], want: int) -> list[dict[str, object]]:
    """JSON lines from a running process's stdout until ``want`` rows (or 20 s); it must still
    be running then."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    results: list[dict[str, object]] = []
    deadline = time.monotonic() + 20
    pending = b""
    while len(results) < want and time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            results += [json.loads(x) for x in lines if x.strip()]
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    return results


def test_results_appear_before_the_input_ends(tmp_path: Path) -> None:
    # 10:00:01 .. 10:00:25, one event every 50 ms
    results = _follow(tmp_path, QUERY, [_event(i) for i in range(1, 26)], 2)
    # (10:00:00, 10:00:10] and (10:00:10, 10:00:20] are closed by the watermark; the window
    # holding 10:00:21..25 stays open because the input has not ended
    assert [r["n"] for r in results[:2]] == [10, 10]
    assert results[1]["windowEnd"] == "2024-05-14T10:00:20.0000000Z"


def test_an_idle_input_closes_windows_with_the_wall_clock(tmp_path: Path) -> None:
    """With a bounded late-arrival tolerance, an input that stops growing still moves time
    forward (ASA: estimated arrival time - tolerance): the last window closes without a later
    event. Here the last event is at 10:00:03 and the tolerance 1 s, so the window ending at
    10:00:04 closes after about 2 s of silence."""
    config = tmp_path / "JobConfig.json"
    config.write_text(json.dumps({"EventsLateArrivalMaxDelayInSeconds": 1}))
    query = QUERY.replace("TumblingWindow(second, 10)", "TumblingWindow(second, 2)")
    results = _follow(tmp_path, query, [_event(i) for i in (1, 2, 3)], 2, "--job-config", str(config))
    assert [(r["n"], r["windowEnd"]) for r in results] == [
        (2, "2024-05-14T10:00:02.0000000Z"), (1, "2024-05-14T10:00:04.0000000Z")]


def test_stdin_results_appear_while_the_pipe_is_open(tmp_path: Path) -> None:
    """A producer piping events slowly into ``asaql run --input src=-`` gets each window's rows
    as soon as the watermark passes it, not when a full read chunk has arrived or the pipe
    closes; with a bounded late tolerance the last window closes during the silence too."""
    query = tmp_path / "q.asaql"
    query.write_text(QUERY.replace("TumblingWindow(second, 10)", "TumblingWindow(second, 2)"))
    config = tmp_path / "JobConfig.json"
    config.write_text(json.dumps({"EventsLateArrivalMaxDelayInSeconds": 1}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "asaql", "run", str(query), "-i", "src=-", "-o", "output=-", "-q",
         "--job-config", str(config)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert proc.stdin is not None
    try:
        for i in (1, 2, 3):
            proc.stdin.write(_event(i).encode())
            proc.stdin.flush()
        results = _read_rows(proc, 2)
    finally:
        proc.stdin.close()
        proc.terminate()
        proc.wait(timeout=10)
    assert [(r["n"], r["windowEnd"]) for r in results] == [
        (2, "2024-05-14T10:00:02.0000000Z"), (1, "2024-05-14T10:00:04.0000000Z")]
