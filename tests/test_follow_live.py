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


def test_results_appear_before_the_input_ends(tmp_path: Path) -> None:
    query = tmp_path / "q.asaql"
    query.write_text(QUERY)
    src = tmp_path / "src.jsonl"
    src.write_text("")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "asaql", "run", str(query), "-i", f"src={src}", "-o", "output=-",
         "--follow", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None
    sel.register(proc.stdout, selectors.EVENT_READ)
    results: list[dict[str, object]] = []
    try:
        with src.open("a") as f:
            for i in range(1, 26):  # 10:00:01 .. 10:00:25, one event every 50 ms
                f.write(_event(i))
                f.flush()
                time.sleep(0.05)
            deadline = time.monotonic() + 20
            pending = b""
            while len(results) < 2 and time.monotonic() < deadline:
                if sel.select(timeout=0.5):
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    results += [json.loads(x) for x in lines if x.strip()]
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # (10:00:00, 10:00:10] and (10:00:10, 10:00:20] are closed by the watermark; the window
    # holding 10:00:21..25 stays open because the input has not ended
    assert [r["n"] for r in results[:2]] == [10, 10]
    assert results[1]["windowEnd"] == "2024-05-14T10:00:20.0000000Z"
