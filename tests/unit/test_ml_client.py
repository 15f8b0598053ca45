"""HTTP status paths, retries, timeouts, auth headers, key masking and config re-read.

Each test talks to an ``httpx.MockTransport`` handler; sleeps and clocks are injected, so
retry schedules are checked without waiting.
"""

from __future__ import annotations

import json

import httpx
import pytest

from asaql.errors import ConfigError, EndpointError
from asaql.ml.endpoint import EndpointSpec, load_function_spec
from asaql.ml.scorer import Scorer
from asaql.ml.secrets import SecretRef

KEY = "sk-SECRET-0123456789"
URL = "http://model.local/score"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make(handler, time: FakeTime | None = None, on_error="raise", **spec_kw) -> Scorer:
    time = time or FakeTime()
    spec_kw.setdefault("api_key", SecretRef.parse(f"literal:{KEY}"))
    spec = EndpointSpec(name="score", url=URL, **spec_kw)
    return Scorer(
        spec,
        transport=httpx.MockTransport(handler),
        clock=time.clock,
        sleep=time.sleep,
        on_error=on_error,
    )


def echo(request: httpx.Request) -> httpx.Response:
    rows = json.loads(request.content)["data"]
    return httpx.Response(200, json=[r["x"] * 10 for r in rows])


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text, text


ROWS = [{"x": 1}, {"x": 2}, {"x": 3}]


def test_200_and_default_bearer_header():
    seen = []

    def handler(request):
        seen.append(request.headers)
        return echo(request)

    with make(handler) as scorer:
        assert scorer.score(ROWS).values == [10, 20, 30]
    assert seen[0]["authorization"] == f"Bearer {KEY}"
    assert seen[0]["content-type"] == "application/json"
    assert "azureml-model-deployment" not in seen[0]


def test_api_key_and_deployment_headers():
    seen = []

    def handler(request):
        seen.append(request.headers)
        return echo(request)

    with make(handler, auth_header="api-key", deployment="blue") as scorer:
        scorer.score(ROWS)
    assert seen[0]["api-key"] == KEY
    assert "authorization" not in seen[0]
    assert seen[0]["azureml-model-deployment"] == "blue"


@pytest.mark.parametrize("status", [400, 401, 404, 409])
def test_client_errors_are_not_retried(status):
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(status, json={"status_code": status, "message": f"nope {KEY}"})

    scorer = make(handler)
    with pytest.raises(EndpointError) as info:
        scorer.score(ROWS)
    message = str(info.value)
    assert len(calls) == 1
    assert info.value.status == status
    assert f"answered {status}" in message
    assert "nope ***" in message  # the server echoed the key: masked
    assert "not retried" in message
    assert URL in message
    assert 'first event: {"x":1}' in message
    assert_no_key(message, repr(info.value), scorer.metrics.summary(), repr(scorer))
    assert scorer.metrics.failed_requests == 1 and scorer.metrics.retries == 0


def test_503_retried_then_success():
    answers = [httpx.Response(503, text="busy"), httpx.Response(503, text="busy")]

    def handler(request):
        return answers.pop(0) if answers else echo(request)

    time = FakeTime()
    with make(handler, time, backoff_base=0.5, backoff_max=10) as scorer:
        assert scorer.score(ROWS).values == [10, 20, 30]
        assert scorer.metrics.retries == 2 and scorer.metrics.failed_requests == 0
    # exponential backoff with jitter in [delay/2, delay]
    assert 0.25 <= time.sleeps[0] <= 0.5 and 0.5 <= time.sleeps[1] <= 1.0


def test_429_honours_retry_after():
    answers = [httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "slow down"})]

    def handler(request):
        return answers.pop(0) if answers else echo(request)

    time = FakeTime()
    with make(handler, time) as scorer:
        assert scorer.score(ROWS).values == [10, 20, 30]
    assert time.sleeps == [3.0]


def test_retries_exhausted():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(500, json={"message": "model crashed"})

    with make(handler, retries=3, backoff_base=0.01) as scorer:
        with pytest.raises(EndpointError, match="gave up after 4 attempts") as info:
            scorer.score(ROWS)
    assert len(calls) == 4
    assert "answered 500 Internal Server Error: model crashed" in str(info.value)


def test_total_retry_time_is_bounded():
    def handler(request):
        return httpx.Response(503, headers={"Retry-After": "20"})

    time = FakeTime()
    with make(handler, time, retries=100, max_retry_time=45) as scorer:
        with pytest.raises(EndpointError, match="gave up after 3 attempts in 40.0 s"):
            scorer.score(ROWS)
    assert time.sleeps == [20.0, 20.0]


def test_timeout_is_retried_and_reported():
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with make(handler, retries=2, timeout=1.5, backoff_base=0.01) as scorer:
        with pytest.raises(EndpointError) as info:
            scorer.score(ROWS)
    assert "did not answer within 1.5 s (timeout)" in str(info.value)
    assert "gave up after 3 attempts" in str(info.value)
    assert info.value.status is None


def test_connection_error_is_retried():
    answers = [httpx.ConnectError("refused")]

    def handler(request):
        if answers:
            raise answers.pop(0)
        return echo(request)

    with make(handler, backoff_base=0.01) as scorer:
        assert scorer.score(ROWS).values == [10, 20, 30]


def test_length_mismatch_is_an_error_saying_expected_and_got():
    with make(lambda r: httpx.Response(200, json=[1, 2])) as scorer:
        with pytest.raises(EndpointError) as info:
            scorer.score(ROWS)
    assert "expected 3 results (one per event of the batch)" in str(info.value)
    assert "got 2" in str(info.value)


def test_non_json_body():
    with make(lambda r: httpx.Response(200, text="<html>")) as scorer:
        with pytest.raises(EndpointError, match="not JSON"):
            scorer.score(ROWS)


def test_on_error_null_marks_the_events_and_goes_on():
    def handler(request):
        rows = json.loads(request.content)["data"]
        if any(r["x"] == 4 for r in rows):
            return httpx.Response(400, json={"message": "bad x"})
        return echo(request)

    # linger 5 s: the partial batch [x3] waits for the next chunk, so requests are
    # [1,2] [3,4] [5]; a request crossing the chunk boundary fails for both chunks
    scorer = make(handler, on_error="null", batch_size=2, linger=5.0)
    out = list(scorer.map([[{"x": 1}, {"x": 2}, {"x": 3}], [{"x": 4}, {"x": 5}]]))
    assert out[0].values == [10, 20, None]
    assert out[0].errors[:2] == [None, None] and out[0].errors[2].status == 400
    assert out[1].values == [None, 50]
    assert out[1].errors[0] is out[0].errors[2] and out[1].errors[1] is None
    assert "bad x" in str(out[1].errors[0]) and out[1].failed == 1
    assert scorer.metrics.failed_requests == 1 and scorer.metrics.failed_events == 2
    scorer.close()


def test_default_raises_after_yielding_earlier_chunks():
    def handler(request):
        rows = json.loads(request.content)["data"]
        if any(r["x"] == 4 for r in rows):
            return httpx.Response(409, json={"message": "conflict"})
        return echo(request)

    scorer = make(handler, batch_size=2, max_in_flight=1)
    got = []
    with pytest.raises(EndpointError, match="409") as info:
        for chunk in scorer.map([[{"x": 1}, {"x": 2}], [{"x": 3}, {"x": 4}], [{"x": 5}]]):
            got.append(chunk.values)
    assert got == [[10, 20]]
    assert 'first event: {"x":3}' in str(info.value)
    scorer.close()


def test_key_rotation_via_env_without_restart(monkeypatch):
    monkeypatch.setenv("ASAQL_TEST_KEY", "key-one-1111")
    seen = []

    def handler(request):
        seen.append(request.headers["authorization"])
        return echo(request)

    time = FakeTime()
    scorer = make(handler, time, api_key=SecretRef.parse("env:ASAQL_TEST_KEY"), update_frequency=60)
    scorer.score(ROWS)
    monkeypatch.setenv("ASAQL_TEST_KEY", "key-two-2222")
    scorer.score(ROWS)  # within the update frequency: old key
    time.now += 61
    scorer.score(ROWS)
    assert seen == ["Bearer key-one-1111", "Bearer key-one-1111", "Bearer key-two-2222"]
    scorer.close()


def test_config_file_reread_switches_url_and_deployment(tmp_path):
    path = tmp_path / "score.json"
    path.write_text(json.dumps({"url": "http://a.local/score", "auth": {"deployment": "blue"}}))
    spec = load_function_spec("score", path).with_options(update_frequency=10)
    seen = []

    def handler(request):
        seen.append((request.url.host, request.headers.get("azureml-model-deployment")))
        return echo(request)

    time = FakeTime()
    scorer = Scorer(spec, transport=httpx.MockTransport(handler), clock=time.clock)
    scorer.score(ROWS)
    path.write_text(json.dumps({"url": "http://b.local/score", "auth": {"deployment": "green"}}))
    time.now += 11
    scorer.score(ROWS)
    path.write_text("{broken")  # a broken file keeps the last good configuration
    time.now += 11
    scorer.score(ROWS)
    assert seen == [("a.local", "blue"), ("b.local", "green"), ("b.local", "green")]
    scorer.close()


def test_missing_env_key_is_config_error(monkeypatch):
    monkeypatch.delenv("ASAQL_NOPE", raising=False)
    with pytest.raises(ConfigError, match="ASAQL_NOPE"):
        make(echo, api_key=SecretRef.parse("env:ASAQL_NOPE"))


def test_key_in_url_query_is_masked_in_errors():
    spec = EndpointSpec(name="f", url=f"http://fn.local/api/score?code={KEY}")
    scorer = Scorer(spec, transport=httpx.MockTransport(lambda r: httpx.Response(401)))
    with pytest.raises(EndpointError) as info:
        scorer.score(ROWS)
    assert_no_key(str(info.value), repr(spec), repr(scorer))
    assert "code=***" in str(info.value)


def test_metrics_latency_and_counts():
    with make(echo, batch_size=2) as scorer:
        list(scorer.map([ROWS, ROWS]))
        metrics = scorer.metrics.as_dict()
    assert metrics["requests"] == 3 and metrics["events"] == 6
    assert metrics["latency_p50_ms"] is not None
    assert_no_key(json.dumps(metrics))
