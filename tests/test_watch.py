"""Watching a job: the end-of-run summary on stderr, ``--quiet``/``--verbose``, the
``--metrics-json`` document (complete shape, success and failure), and the live progress line
(drawn on a terminal, absent when stderr is piped)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asaql.cli.progress import progress_line, summary, summary_lines
from asaql.exec.operator import ExecContext, Metrics

ROOT = Path(__file__).resolve().parent.parent
QS = ROOT / "examples" / "quickstart"
KEYS = {"status", "error", "elapsed_seconds", "events_in", "events_out", "totals", "data_errors",
        "dropped", "adjusted", "failed_events", "endpoints", "watermark"}


def asaql(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asaql", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_summary_lists_inputs_and_outputs(tmp_path: Path) -> None:
    res = asaql("run", str(QS / "hot.asaql"), "-o", f"alerts={tmp_path / 'a.jsonl'}")
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == ["asaql: events in: devices 4, events 40; out: alerts 1"]


def test_quiet_prints_nothing_and_verbose_adds_timing() -> None:
    quiet = asaql("run", str(QS / "hot.asaql"), "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""
    verbose = asaql("run", str(QS / "hot.asaql"), "--verbose")
    assert verbose.returncode == 0
    assert "asaql: events in: devices 4, events 40; out: alerts 1" in verbose.stderr
    assert "events/s in, 0 failed event(s)" in verbose.stderr
    assert "ev/s" not in verbose.stderr  # no progress line when stderr is piped


def test_metrics_json_has_the_documented_shape(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    res = asaql("run", str(QS / "hot.asaql"), "--quiet", "--metrics-json", str(out))
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert set(data) == KEYS
    assert data["status"] == "ok" and data["error"] is None
    assert data["events_in"] == {"devices": 4, "events": 40}
    assert data["events_out"] == {"alerts": 1}
    assert data["totals"]["events_in"] == 44 and data["totals"]["events_out"] == 1
    assert data["elapsed_seconds"] > 0 and data["totals"]["events_per_second"] > 0
    assert data["data_errors"] == 0 and data["failed_events"] == 0
    assert data["dropped"] == {} and data["adjusted"] == {} and data["endpoints"] == {}


@pytest.fixture
def bad_events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text('{"deviceId": "a", "temperature": 50}\n{not json\n{"deviceId": "b", "temperature": 60}\n')
    return path


def test_malformed_events_are_counted(tmp_path: Path, bad_events: Path) -> None:
    q = tmp_path / "q.asaql"
    q.write_text("SELECT deviceId FROM events WHERE temperature > 40")
    out = tmp_path / "m.json"
    res = asaql("run", str(q), "-i", f"events={bad_events}", "-o", f"output={tmp_path / 'o.jsonl'}",
                "--metrics-json", str(out))
    assert res.returncode == 0, res.stderr
    assert "malformed events skipped: 1" in res.stderr
    data = json.loads(out.read_text())
    assert data["data_errors"] == 1 and data["failed_events"] == 1
    assert data["events_out"] == {"output": 2}


def test_metrics_json_is_written_when_the_job_fails(tmp_path: Path, bad_events: Path) -> None:
    q = tmp_path / "q.asaql"
    q.write_text("SELECT deviceId FROM events")
    out = tmp_path / "m.json"
    res = asaql("run", str(q), "-i", f"events={bad_events}", "--on-data-error", "stop", "-q",
                "--metrics-json", str(out))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    data = json.loads(out.read_text())
    assert set(data) == KEYS
    assert data["status"] == "failed" and data["error"]


def test_endpoint_metrics_in_summary_and_json(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    res = asaql("run", str(ROOT / "examples" / "seed" / "asaql.toml"), "--metrics-json", str(out),
                "-o", f"output_stream={tmp_path / 'o.jsonl'}")
    assert res.returncode == 0, res.stderr
    assert "asaql: endpoint aml_enrichment: 2 requests, 8 events, 0 failed requests" in res.stderr
    ep = json.loads(out.read_text())["endpoints"]["aml_enrichment"]
    assert ep["requests"] == 2 and ep["events"] == 8 and ep["failed_events"] == 0
    assert ep["latency_p50_ms"] is not None


def test_progress_line_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    events = tmp_path / "many.jsonl"
    start = dt.datetime(2024, 5, 14, tzinfo=dt.timezone.utc)
    events.write_text("".join(json.dumps({"k": i, "ts": (start + dt.timedelta(seconds=i)).isoformat()}) + "\n"
                              for i in range(20000)))
    q = tmp_path / "q.asaql"
    q.write_text("SELECT k FROM events TIMESTAMP BY ts WHERE k % 7 = 0")
    child = pexpect.spawn(sys.executable, ["-m", "asaql", "run", str(q), "-i", f"events={events}",
                                           "-o", f"output={tmp_path / 'o.jsonl'}", "--batch-size", "500"],
                          cwd=str(ROOT), env={**os.environ, "TERM": "xterm"}, encoding="utf-8",
                          dimensions=(24, 160), timeout=60)
    child.expect(r"events in [\d,]+ · out [\d,]+ · [\d,]+ ev/s")
    child.expect(r"asaql: events in: events 20,000; out: output 2,858")
    child.expect(pexpect.EOF)
    child.wait()
    assert child.exitstatus == 0


# --------------------------------------------------------------------------- units


class _Endpoint:
    requests = 3
    in_flight = 2

    def as_dict(self) -> dict[str, object]:
        return {"endpoint": "score", "requests": 3, "events": 30, "failed_requests": 1,
                "failed_events": 10, "retries": 2, "cache_hits": 0, "latency_p50_ms": 1.5,
                "latency_p90_ms": 2.0, "latency_p99_ms": 2.5}


def test_progress_line_shows_watermark_and_requests_in_flight() -> None:
    ctx = ExecContext()
    ctx.metrics.events_in["iot"] = 5000
    ctx.metrics.endpoints["score"] = _Endpoint()
    ctx.watermark = dt.datetime(2024, 5, 14, 12, 3, tzinfo=dt.timezone.utc)  # type: ignore[attr-defined]
    line = progress_line(ctx, 2.0)
    assert line == "events in 5,000 · out 0 · 2,500 ev/s · watermark 2024-05-14T12:03:00Z · ML in flight 2 · 2.0 s"


def test_summary_counts_failed_ml_events_and_prints_endpoints() -> None:
    m = Metrics(events_in={"iot": 30}, events_out={"output": 20}, data_errors=1,
                dropped={"iot": 2}, endpoints={"score": _Endpoint()})
    data = summary(m, elapsed=1.0)
    assert data["failed_events"] == 11 and data["totals"]["events_per_second"] == 30.0
    lines = list(summary_lines(data, verbose=True))
    assert lines[0] == "asaql: events in: iot 30; out: output 20"
    assert lines[1] == "asaql: malformed events skipped: 1; dropped: iot 2"
    assert lines[2].startswith("asaql: endpoint score: 3 requests, 30 events, 1 failed requests (10 events), 2 retries")
    assert "p99 2.5 ms" in lines[2]
