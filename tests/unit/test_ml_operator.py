"""The MLScore operator inside the engine: both spellings bind to it, answers come back in
event order, WHERE runs before scoring, TryEvaluate turns failures into NULL, and the key
never leaks. The endpoint is an httpx.MockTransport (no network)."""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest

import asaql
from asaql.plan import logical as lp

KEY = "s3cr3t-key-value"
EVENTS = [{"deviceId": f"d{i}", "temperature": float(i), "humidity": 40.0} for i in range(23)]


def scoring_handler(seen: list[list[dict]], *, fail_on: str | None = None, jitter: bool = False):
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        rows = json.loads(request.content)["data"]
        seen.append(rows)
        if jitter:
            time.sleep(random.uniform(0, 0.01))
        if fail_on and any(r["deviceId"] == fail_on for r in rows):
            return httpx.Response(400, json={"status_code": 400, "message": f"bad row {fail_on}"})
        return httpx.Response(200, json=[{"prediction": r["temperature"] * 10} for r in rows])

    return handle


def session(handler, monkeypatch: pytest.MonkeyPatch, batch_size: int = 4, in_flight: int = 1) -> asaql.Session:
    monkeypatch.setenv("TEST_AML_KEY", KEY)
    s = asaql.Session(asaql.Options(batch_size=5, ml_transport=httpx.MockTransport(handler)))
    s.add_input("iot", EVENTS)
    spec = {"url": "https://ep.example/score", "protocol": "azureml", "api_key": "env:TEST_AML_KEY",
            "batch_size": batch_size, "max_in_flight": in_flight}
    s.add_function("score", spec)
    s.add_ml_input("aml", spec)
    return s


UDF_QUERY = """
WITH m AS (SELECT deviceId, temperature, humidity FROM iot WHERE temperature >= 3)
SELECT deviceId, udf.score(m).prediction AS p FROM m
"""
SEED_QUERY = """
SELECT iot.deviceId, r.prediction AS p
FROM iot
JOIN aml INTO (deviceId nvarchar(max), temperature float, humidity float) AS x
  ON iot.deviceId = x.deviceId AND iot.temperature = x.temperature AND iot.humidity = x.humidity
WHERE iot.temperature >= 3
CROSS APPLY GetRecordProperties(aml) AS r
"""


@pytest.mark.parametrize("query", [UDF_QUERY, SEED_QUERY], ids=["udf", "seed"])
def test_both_spellings_score_in_order_after_where(query: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[dict]] = []
    s = session(scoring_handler(seen, jitter=True), monkeypatch, batch_size=3, in_flight=4)
    job = s.compile(query)
    assert any(isinstance(n, lp.MLScore) for n in job.plan.nodes())
    rows = job.run()["output"].to_pylist()
    assert [r["deviceId"] for r in rows] == [f"d{i}" for i in range(3, 23)]
    assert [r["p"] for r in rows] == [i * 10.0 for i in range(3, 23)]
    assert all(len(batch) <= 3 for batch in seen)
    assert sum(len(b) for b in seen) == 20, "WHERE must run before scoring"


def test_failure_stops_the_job_without_leaking_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    s = session(scoring_handler([], fail_on="d7"), monkeypatch)
    with pytest.raises(asaql.EndpointError) as info:
        s.run(UDF_QUERY)
    message = info.value.render()
    assert "400" in message and "bad row d7" in message
    assert KEY not in message and KEY not in repr(info.value)


def test_tryevaluate_turns_failed_rows_into_null(monkeypatch: pytest.MonkeyPatch) -> None:
    s = session(scoring_handler([], fail_on="d7"), monkeypatch, batch_size=2)
    rows = s.run("""
        WITH m AS (SELECT deviceId, temperature, humidity FROM iot)
        SELECT deviceId, TryEvaluate(udf.score(m).prediction) AS p FROM m
    """)["output"].to_pylist()
    assert len(rows) == 23
    failed = {r["deviceId"] for r in rows if r["p"] is None}
    assert failed == {"d6", "d7"}  # the batch holding d7
    assert rows[8]["p"] == 80.0


def test_plan_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    s = session(scoring_handler([]), monkeypatch)
    text = s.compile(UDF_QUERY).explain()
    assert "MLScore" in text and KEY not in text


def test_progress_sees_requests_in_flight_and_the_watermark(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the live progress line reads: requests on the wire during a call, and the event-time
    watermark the outputs have passed (the end of time once a finite input is done)."""
    seen_in_flight: list[int] = []
    holder: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        ctx = holder["ctx"]
        seen_in_flight.append(ctx.metrics.endpoints["score"].in_flight)  # type: ignore[attr-defined]
        rows = json.loads(request.content)["data"]
        return httpx.Response(200, json=[{"prediction": 1.0} for _ in rows])

    s = session(handler, monkeypatch)
    job = s.compile(UDF_QUERY)
    ctx = job.context()
    holder["ctx"] = ctx
    job.run(ctx=ctx)
    assert seen_in_flight and all(n >= 1 for n in seen_in_flight)
    assert ctx.metrics.endpoints["score"].in_flight == 0
    assert ctx.metrics.watermark is not None and ctx.metrics.watermark.year == 9999


def test_large_batches_are_scored_and_emitted_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 20,000-row input batch goes to the scorer as pieces of whole requests (about 8192 rows)
    and comes out as one batch per piece, in order, every event scored once."""
    from asaql.exec import ml_score

    monkeypatch.setattr(ml_score, "PIECE_ROWS", 700)
    events = [{"deviceId": f"d{i}", "temperature": float(i), "humidity": 40.0} for i in range(2000)]
    seen: list[list[dict]] = []
    s = asaql.Session(asaql.Options(batch_size=1500, ml_transport=httpx.MockTransport(scoring_handler(seen))))
    s.add_input("iot", events)
    s.add_function("score", {"url": "https://ep.example/score", "batch_size": 300, "max_in_flight": 3,
                             "api_key": "literal:" + KEY})
    batches = [b for name, b in s.compile(UDF_QUERY).stream() if name == "output" and b.num_rows]
    rows = [r for b in batches for r in b.to_pylist()]
    assert [r["p"] for r in rows] == [i * 10.0 for i in range(3, 2000)]
    assert max(b.num_rows for b in batches) <= 600  # two requests of 300 a piece
    assert max(len(b) for b in seen) == 300 and sum(len(b) for b in seen) == 1997
