"""The command line as a user runs it: `python -m asaql ...` in a subprocess, checking what
it prints and its exit code (0 ok, 1 query/data error without traceback, 2 usage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def asaql(*args: str, stdin: str | None = None, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asaql", *args],
        input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def iot(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    rows = [
        {"deviceId": "a", "temperature": 31.5, "ts": "2024-05-14T12:00:01Z"},
        {"deviceId": "b", "temperature": 20.0, "ts": "2024-05-14T12:00:02Z"},
        {"deviceId": "c", "temperature": 35.0, "ts": "2024-05-14T12:00:03Z"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_query(tmp_path: Path, text: str) -> Path:
    q = tmp_path / "q.asaql"
    q.write_text(text)
    return q


def test_run_prints_json_lines_without_output(tmp_path: Path, iot: Path) -> None:
    q = write_query(tmp_path, "SELECT deviceId, System.Timestamp() AS t FROM iot TIMESTAMP BY ts WHERE temperature > 30")
    res = asaql("run", str(q), "--input", f"iot={iot}", "--quiet")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert rows == [
        {"deviceId": "a", "t": "2024-05-14T12:00:01.0000000Z"},
        {"deviceId": "c", "t": "2024-05-14T12:00:03.0000000Z"},
    ]


def test_run_writes_each_output_to_its_file(tmp_path: Path, iot: Path) -> None:
    q = write_query(tmp_path, """
        SELECT deviceId INTO hot FROM iot WHERE temperature > 30
        SELECT deviceId INTO cold FROM iot WHERE temperature <= 30
    """)
    hot, cold = tmp_path / "hot.jsonl", tmp_path / "cold.csv"
    res = asaql("run", str(q), "-i", f"iot={iot}", "-o", f"hot={hot}", "-o", f"cold={cold}")
    assert res.returncode == 0, res.stderr
    assert [json.loads(x)["deviceId"] for x in hot.read_text().splitlines()] == ["a", "c"]
    assert cold.read_text().splitlines() == ["deviceId", "b"]
    assert "events in: iot 3" in res.stderr


def test_stdin_input(tmp_path: Path, iot: Path) -> None:
    q = write_query(tmp_path, "SELECT deviceId FROM iot WHERE temperature > 34")
    res = asaql("run", str(q), "-i", "iot=-", "--quiet", stdin=iot.read_text())
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == '{"deviceId": "c"}' or json.loads(res.stdout) == {"deviceId": "c"}


def test_reference_join_from_csv(tmp_path: Path, iot: Path) -> None:
    devices = tmp_path / "devices.csv"
    devices.write_text("deviceId,room\na,lab\nc,office\n")
    q = write_query(tmp_path, "SELECT i.deviceId, d.room FROM iot i JOIN devices d ON i.deviceId = d.deviceId")
    res = asaql("run", str(q), "-i", f"iot={iot}", "--ref", f"devices={devices}", "-q")
    assert res.returncode == 0, res.stderr
    assert [json.loads(x) for x in res.stdout.splitlines()] == [
        {"deviceId": "a", "room": "lab"}, {"deviceId": "c", "room": "office"}]


def test_syntax_error_renders_caret_and_exits_1(tmp_path: Path, iot: Path) -> None:
    q = write_query(tmp_path, "SELECT deviceId,\nFROM iot")
    res = asaql("run", str(q), "-i", f"iot={iot}")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "q.asaql:2:1" in res.stderr
    assert "^^^^" in res.stderr


def test_unknown_function_did_you_mean(tmp_path: Path, iot: Path) -> None:
    q = write_query(tmp_path, "SELECT UPPR(deviceId) AS d FROM iot")
    res = asaql("check", str(q))
    assert res.returncode == 1
    assert "unknown function 'UPPR'" in res.stdout
    assert "did you mean 'UPPER'" in res.stdout


def test_runtime_cast_error_names_position(tmp_path: Path) -> None:
    data = tmp_path / "src.jsonl"
    data.write_text('{"code": "12"}\n{"code": "twelve"}\n')
    q = write_query(tmp_path, "SELECT CAST(code AS bigint) AS n\nFROM src")
    res = asaql("run", str(q), "-i", f"src={data}")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "TRY_CAST" in res.stderr
    assert "q.asaql:1:8" in res.stderr


def test_malformed_event_is_reported_and_skipped(tmp_path: Path) -> None:
    data = tmp_path / "src.jsonl"
    data.write_text('{"k": 1}\n{"k": \n{"k": 3}\n')
    q = write_query(tmp_path, "SELECT k FROM src")
    res = asaql("run", str(q), "-i", f"src={data}")
    assert res.returncode == 0, res.stderr
    assert [json.loads(x)["k"] for x in res.stdout.splitlines()] == [1, 3]
    assert "line 2" in res.stderr
    stopped = asaql("run", str(q), "-i", f"src={data}", "--on-data-error", "stop")
    assert stopped.returncode == 1
    assert "line 2" in stopped.stderr


def test_check_strict_lists_extensions(tmp_path: Path) -> None:
    q = write_query(tmp_path, "SELECT TryEvaluate(x + 1) AS y, CAST(x AS STRING) AS s FROM src")
    lenient = asaql("check", str(q))
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    strict = asaql("check", str(q), "--strict")
    assert strict.returncode == 1
    assert "TryEvaluate" in strict.stdout
    assert "q.asaql:1:8" in strict.stdout


def test_explain_prints_all_plans(tmp_path: Path) -> None:
    q = write_query(tmp_path, "SELECT a FROM src WHERE b > 1")
    res = asaql("explain", str(q))
    assert res.returncode == 0, res.stderr
    for heading in ("== Logical plan ==", "== Optimized plan ==", "== Physical plan =="):
        assert heading in res.stdout
    assert "Scan src AS src [a, b]" in res.stdout
    assert "FilterExec" in res.stdout


def test_usage_error_exits_2() -> None:
    res = asaql("run")
    assert res.returncode == 2


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    q = write_query(tmp_path, "SELECT a FROM nowhere")
    res = asaql("run", str(q), "-i", "somewhere=x.jsonl")
    assert res.returncode == 1
    assert "unknown input or step 'nowhere'" in res.stderr


def test_seed_example_runs() -> None:
    res = asaql("run", "examples/seed/query.asaql", "--quiet")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    expected = [json.loads(x) for x in (ROOT / "examples/seed/expected/output_stream.jsonl").read_text().splitlines()]
    assert rows == expected
