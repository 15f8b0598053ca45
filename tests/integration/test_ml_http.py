"""The Scorer against real HTTP servers on 127.0.0.1: a starlette app under uvicorn (with
injected latency and failure rate) and asaql's own stdlib model server.

Mock transports cannot show real sockets, real timeouts, keep-alive pools or real
concurrency; these tests do.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asaql.errors import EndpointError
from asaql.ml.endpoint import EndpointSpec, load_function_spec
from asaql.ml.scorer import Scorer
from asaql.ml.secrets import SecretRef
from asaql.ml.server import serve

KEY = "integration-key-5550123"


class AppState:
    def __init__(self) -> None:
        self.latency = 0.0
        self.failure_rate = 0.0
        self.rng = random.Random(7)
        self.active = 0
        self.peak = 0
        self.requests = 0
        self.failures = 0


def make_app(state: AppState) -> Starlette:
    async def score(request: Request) -> JSONResponse:
        state.requests += 1
        state.active += 1
        state.peak = max(state.peak, state.active)
        try:
            rows = (await request.json())["data"]
            if state.latency:
                await asyncio.sleep(state.latency)
            if state.rng.random() < state.failure_rate:
                state.failures += 1
                return JSONResponse({"message": "overloaded"}, status_code=503)
            return JSONResponse([{"y": r["x"] * 2} for r in rows])
        finally:
            state.active -= 1

    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(2.0)
        return JSONResponse([])

    async def bad(request: Request) -> JSONResponse:
        return JSONResponse({"status_code": 400, "message": "column x is missing"}, 400)

    async def v2(request: Request) -> JSONResponse:
        body = await request.json()
        (tensor,) = [i for i in body["inputs"] if i["name"] == "x"]
        n = tensor["shape"][0]
        data = [v * 2 for v in tensor["data"]]
        return JSONResponse(
            {"model_name": "m", "outputs": [{"name": "predict", "shape": [n, 1], "datatype": "INT64", "data": data}]}
        )

    async def invocations(request: Request) -> JSONResponse:
        split = (await request.json())["dataframe_split"]
        col = split["columns"].index("x")
        return JSONResponse({"predictions": [row[col] * 2 for row in split["data"]]})

    return Starlette(
        routes=[
            Route("/score", score, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
            Route("/bad", bad, methods=["POST"]),
            Route("/v2/models/m/infer", v2, methods=["POST"]),
            Route("/invocations", invocations, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def asgi_server():
    state = AppState()
    config = uvicorn.Config(make_app(state), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", state
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def app(asgi_server):
    base, state = asgi_server
    state.__init__()
    return base, state


def chunks_of(n_chunks: int, size: int) -> list[list[dict]]:
    return [[{"x": i * size + j} for j in range(size)] for i in range(n_chunks)]


def test_order_with_latency_and_failures(app):
    base, state = app
    state.latency, state.failure_rate = 0.005, 0.2
    spec = EndpointSpec(
        name="s", url=f"{base}/score", batch_size=7, max_in_flight=4, backoff_base=0.005, retries=20
    )
    chunks = chunks_of(30, 11)
    with Scorer(spec) as scorer:
        out = list(scorer.map(chunks))
        metrics = scorer.metrics
    assert [o.values for o in out] == [[{"y": r["x"] * 2} for r in c] for c in chunks]
    assert state.failures > 0 and metrics.retries == state.failures
    assert state.peak <= 4
    assert metrics.events == 330


def test_concurrency_is_real(app):
    base, state = app
    state.latency = 0.05
    spec = EndpointSpec(name="s", url=f"{base}/score", batch_size=10, max_in_flight=8)
    started = time.perf_counter()
    with Scorer(spec) as scorer:
        out = list(scorer.map(chunks_of(16, 10)))  # 16 requests, 8 at a time: ~2 x 50 ms
    elapsed = time.perf_counter() - started
    assert len(out) == 16 and state.peak == 8
    assert elapsed < 0.6, f"16 requests of 50 ms at 8 in flight took {elapsed:.2f} s"


def test_real_timeout(app):
    base, _ = app
    spec = EndpointSpec(name="s", url=f"{base}/slow", timeout=0.2, retries=1, backoff_base=0.01)
    with Scorer(spec) as scorer:
        with pytest.raises(EndpointError, match=r"did not answer within 0.2 s \(timeout\)"):
            scorer.score([{"x": 1}])


def test_400_not_retried_with_server_message(app):
    base, state = app
    spec = EndpointSpec(name="s", url=f"{base}/bad", api_key=SecretRef.parse(f"literal:{KEY}"))
    with Scorer(spec) as scorer:
        with pytest.raises(EndpointError) as info:
            scorer.score([{"x": 1}])
    assert "answered 400 Bad Request: column x is missing (not retried)" in str(info.value)
    assert KEY not in str(info.value)


def test_v2_and_mlflow_round_trip(app):
    base, _ = app
    rows = [{"x": i, "z": 0.5} for i in range(5)]
    for url in (f"{base}/v2/models/m/infer", f"{base}/invocations"):
        with Scorer(EndpointSpec(name="s", url=url, batch_size=2)) as scorer:
            assert scorer.score(rows).values == [0, 2, 4, 6, 8], url


# -- asaql's own stdlib server -------------------------------------------------------------


@pytest.fixture
def model_server():
    server, url = serve(model="anomaly", api_key=KEY)
    yield server, url
    server.shutdown()
    server.server_close()


READINGS = [
    {"deviceId": "d1", "temperature": 21.0, "humidity": 44.0},
    {"deviceId": "d2", "temperature": 45.0, "humidity": 90.0},
    {"deviceId": "d3", "temperature": 19.0, "humidity": 50.0},
]


def test_stdlib_server_anomaly_model(model_server, monkeypatch):
    _, url = model_server
    monkeypatch.setenv("ASAQL_IT_KEY", KEY)
    spec = load_function_spec(
        "score", {"url": url, "api_key": "env:ASAQL_IT_KEY", "batch_size": 2, "max_in_flight": 2}
    )
    with Scorer(spec) as scorer:
        (out,) = list(scorer.map([READINGS]))
    assert [v["is_anomaly"] for v in out.values] == [False, True, False]
    assert all(0.0 <= v["prediction"] <= 1.0 for v in out.values)
    assert out.values[1]["prediction"] > 0.99 > 0.01 > out.values[0]["prediction"]


def test_stdlib_server_designer_shape(model_server):
    _, url = model_server
    spec = EndpointSpec(
        name="score",
        url=url,
        api_key=SecretRef.parse(KEY),
        input_request_name="Inputs",
        input_names=("WebServiceInput0",),
    )
    with Scorer(spec) as scorer:
        assert [v["is_anomaly"] for v in scorer.score(READINGS).values] == [False, True, False]


def test_stdlib_server_wrong_key_and_bad_row(model_server):
    _, url = model_server
    wrong = EndpointSpec(name="score", url=url, api_key=SecretRef.parse("literal:wrong-key-000"))
    with Scorer(wrong) as scorer:
        with pytest.raises(EndpointError) as info:
            scorer.score(READINGS)
    assert info.value.status == 401 and "wrong-key-000" not in str(info.value)
    right = EndpointSpec(name="score", url=url, api_key=SecretRef.parse(KEY))
    with Scorer(right, on_error="null") as scorer:
        out = scorer.score([{"temperature": "hot", "humidity": 1}])
    assert out.values == [None]
    assert "row 0: 'temperature' must be a number" in str(out.errors[0])
    assert KEY not in str(out.errors[0])


def test_stdlib_server_health_and_malformed_body(model_server):
    _, url = model_server
    base = url.rsplit("/", 1)[0]
    assert httpx.get(base + "/").text == "Healthy"
    response = httpx.post(url, content=b"{nope", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 400 and response.json()["status_code"] == 400
    response = httpx.post(url, json={"rows": []}, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 400 and "expected" in json.loads(response.content)["message"]


def test_stdlib_server_latency_with_parallel_requests():
    server, url = serve(model="echo", latency_ms=50)
    try:
        spec = EndpointSpec(name="e", url=url, batch_size=5, max_in_flight=4)
        started = time.perf_counter()
        with Scorer(spec) as scorer:
            out = list(scorer.map(chunks_of(8, 5)))  # 8 requests, 4 at a time: ~2 x 50 ms
        elapsed = time.perf_counter() - started
        assert [o.values for o in out] == chunks_of(8, 5)
        assert elapsed < 0.45, elapsed
    finally:
        server.shutdown()
        server.server_close()
