"""Dead-letter output of ML calls: failed events go on (NULL result) and a copy of each, with
the endpoint name, the HTTP status and the error (key masked), goes to an extra output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import asaql
from asaql.errors import ConfigError, EndpointError
from asaql.ml.endpoint import load_function_spec
from asaql.ml.server import serve

ROOT = Path(__file__).resolve().parents[2]
KEY = "dl-s3cr3t-value"
EVENTS = [
    {"deviceId": "a", "temperature": 20.0, "humidity": 45.0},
    {"deviceId": "b", "temperature": None, "humidity": 45.0},  # the built-in model answers 400
    {"deviceId": "c", "temperature": 41.0, "humidity": 95.0},
    {"deviceId": "d", "temperature": None, "humidity": 10.0},
]
QUERY = """
WITH m AS (SELECT deviceId, temperature, humidity FROM iot)
SELECT deviceId, udf.score(m).is_anomaly AS anomaly INTO alerts FROM m
"""


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DL_KEY", KEY)
    server, url = serve(model="anomaly", api_key=KEY)
    yield url
    server.shutdown()
    server.server_close()


def _spec(url: str, **extra: object) -> dict:
    return {"url": url, "api_key": "env:DL_KEY", "batch_size": 1, "max_in_flight": 2,
            "retries": 0, "dead_letter": "failed", **extra}


def test_library_failed_events_go_to_the_dead_letter_output(model: str) -> None:
    session = asaql.Session()
    session.add_input("iot", EVENTS)
    session.add_function("score", _spec(model))
    job = session.compile(QUERY)
    assert job.output_names == ["alerts", "failed"]
    assert "dead_letter=failed" in job.explain()
    result = job.run()
    assert result["alerts"].to_pylist() == [
        {"deviceId": "a", "anomaly": False},
        {"deviceId": "b", "anomaly": None},
        {"deviceId": "c", "anomaly": True},
        {"deviceId": "d", "anomaly": None},
    ]
    failed = result["failed"].to_pylist()
    assert [f["event"]["deviceId"] for f in failed] == ["b", "d"]
    assert {f["endpoint"] for f in failed} == {"score"}
    assert {f["status"] for f in failed} == {400}
    assert "'temperature' must be a number" in failed[0]["error"]
    assert KEY not in json.dumps(failed)
    assert result.metrics.endpoints["score"].as_dict()["failed_requests"] == 2


def test_without_dead_letter_the_job_stops(model: str) -> None:
    session = asaql.Session()
    session.add_input("iot", EVENTS)
    spec = _spec(model)
    del spec["dead_letter"]
    session.add_function("score", spec)
    with pytest.raises(EndpointError, match="400"):
        session.run(QUERY)


def test_dead_letters_of_two_functions_share_one_output() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        rows = json.loads(request.content)["data"]
        if request.url.path == "/bad":
            return httpx.Response(409, json={"message": "conflict"})
        return httpx.Response(200, json=[1.0 for _ in rows])

    session = asaql.Session(asaql.Options(ml_transport=httpx.MockTransport(handler)))
    session.add_input("iot", EVENTS)
    session.add_function("good", {"url": "http://m/good", "dead_letter": "dl"})
    session.add_function("bad", {"url": "http://m/bad", "dead_letter": "dl", "batch_size": 3})
    result = session.run(
        "WITH m AS (SELECT deviceId FROM iot) "
        "SELECT deviceId, udf.good(m) AS g, udf.bad(m) AS b INTO out FROM m"
    )
    assert [r["g"] for r in result["out"].to_pylist()] == [1.0] * 4
    assert [r["b"] for r in result["out"].to_pylist()] == [None] * 4
    dead = result["dl"].to_pylist()
    assert [(d["endpoint"], d["status"], d["event"]["deviceId"]) for d in dead] == [
        ("bad", 409, "a"), ("bad", 409, "b"), ("bad", 409, "c"), ("bad", 409, "d"),
    ]


def test_dead_letter_name_must_not_be_a_query_output() -> None:
    session = asaql.Session(asaql.Options(ml_transport=httpx.MockTransport(lambda r: httpx.Response(500))))
    session.add_input("iot", EVENTS)
    session.add_function("score", {"url": "http://m/score", "dead_letter": "alerts"})
    with pytest.raises(ConfigError, match="dead-letter output 'alerts'"):
        session.run(QUERY)


def test_spec_file_plus_overrides(tmp_path: Path) -> None:
    arm = tmp_path / "score.json"
    arm.write_text(json.dumps({"properties": {"binding": {
        "type": "Microsoft.MachineLearningServices",
        "properties": {"endpoint": "https://ep.example/score", "batchSize": 10}}}}))
    spec = load_function_spec("score", {"file": str(arm), "dead_letter": "failed"})
    assert (spec.url, spec.batch_size, spec.dead_letter) == ("https://ep.example/score", 10, "failed")
    with pytest.raises(ConfigError, match="dead_letter"):
        load_function_spec("score", {"url": "http://h/score", "dead_letter": ""})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asaql", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={**os.environ, "DL_KEY": KEY})


def test_cli_dead_letter_output_file(model: str, tmp_path: Path) -> None:
    events = tmp_path / "iot.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    (tmp_path / "q.asaql").write_text(QUERY)
    (tmp_path / "score.json").write_text(json.dumps(_spec(model)))
    alerts, failed = tmp_path / "alerts.jsonl", tmp_path / "failed.jsonl"
    res = _cli("run", str(tmp_path / "q.asaql"), "--input", f"iot={events}",
               "--function", f"score={tmp_path / 'score.json'}",
               "--output", f"alerts={alerts}", "--output", f"failed={failed}", "--quiet")
    assert res.returncode == 0, res.stderr
    assert [json.loads(line)["deviceId"] for line in alerts.read_text().splitlines()] == list("abcd")
    dead = [json.loads(line) for line in failed.read_text().splitlines()]
    assert [d["event"]["deviceId"] for d in dead] == ["b", "d"]
    assert all(d["endpoint"] == "score" and d["status"] == 400 for d in dead)
    assert KEY not in failed.read_text() + res.stderr + res.stdout


def test_cli_job_file_dead_letter(model: str, tmp_path: Path) -> None:
    events = tmp_path / "iot.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    (tmp_path / "q.asaql").write_text(QUERY)
    (tmp_path / "score.json").write_text(json.dumps({"url": model, "api_key": "env:DL_KEY"}))
    (tmp_path / "job.toml").write_text("""
query = "q.asaql"
[inputs.iot]
path = "iot.jsonl"
[outputs.alerts]
path = "alerts.jsonl"
[outputs.failed]
path = "failed.jsonl"
[functions.score]
file = "score.json"
batch_size = 1
retries = 0
dead_letter = "failed"
""")
    res = _cli("run", str(tmp_path / "job.toml"), "--quiet")
    assert res.returncode == 0, res.stderr
    dead = [json.loads(line) for line in (tmp_path / "failed.jsonl").read_text().splitlines()]
    assert [d["event"]["deviceId"] for d in dead] == ["b", "d"]
