"""Opt-in: the Scorer against real model servers serving a scikit-learn model it trains.

    pip install mlflow mlserver mlserver-sklearn scikit-learn      (large; any venv)
    ASAQL_MODELSERVER_VENV=/path/to/that/venv pytest -m modelserver tests/modelserver -s

The servers (``mlflow models serve --env-manager local``, ``mlserver start``) and the training
script run with that venv's Python (default: the current one), so the test process itself only
needs asaql. Both servers bind to 127.0.0.1. The throughput test prints asaql's rows/s end to
end (JSON lines in, scored JSON lines out, checked against the model's own predictions) next to
a bare httpx client sending the same batches to the same server (target: at least 85%).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from asaql.errors import EndpointError
from asaql.ml.endpoint import EndpointSpec
from asaql.ml.protocols import dumps
from asaql.ml.scorer import Scorer

pytestmark = pytest.mark.modelserver

VENV = Path(os.environ.get("ASAQL_MODELSERVER_VENV", sys.prefix))
PYTHON = VENV / "bin" / "python"

TRAIN = textwrap.dedent(
    """
    import json, sys, pathlib
    import numpy as np, pandas as pd, joblib
    from sklearn.linear_model import LogisticRegression
    out = pathlib.Path(sys.argv[1])
    rng = np.random.default_rng(7)
    n = 2000
    X = pd.DataFrame({"temperature": rng.normal(22, 8, n), "humidity": rng.normal(45, 15, n)})
    y = ((X.temperature - 20).abs() / 4 + (X.humidity - 45).abs() / 12 > 3).astype(int)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    probe = pd.DataFrame({"temperature": rng.normal(22, 8, 500), "humidity": rng.normal(45, 15, 500)})
    expected = {"rows": probe.to_dict(orient="records"),
                "predict": model.predict(probe).tolist(),
                "proba": model.predict_proba(probe).tolist()}
    (out / "expected.json").write_text(json.dumps(expected))
    import mlflow.sklearn
    from mlflow.models import infer_signature
    mlflow.sklearn.save_model(model, str(out / "mlflow_model"),
                              signature=infer_signature(X, model.predict(X)))
    repo = out / "mlserver"; (repo / "iot").mkdir(parents=True)
    joblib.dump(model, repo / "iot" / "model.joblib")
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not become ready in {seconds} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    probe = subprocess.run(
        [str(PYTHON), "-c", "import mlflow, mlserver, mlserver_sklearn, sklearn"],
        capture_output=True, check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"mlflow/mlserver/scikit-learn not installed in {VENV}")
    out = tmp_path_factory.mktemp("models")
    subprocess.run([str(PYTHON), "-c", TRAIN, str(out)], check=True)
    return out, json.loads((out / "expected.json").read_text())


@pytest.fixture(scope="module")
def mlflow_url(trained):
    out, _ = trained
    port = _free_port()
    env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        [str(VENV / "bin" / "mlflow"), "models", "serve", "-m", str(out / "mlflow_model"),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/ping", proc)
        yield f"http://127.0.0.1:{port}/invocations"
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def mlserver_url(trained):
    out, _ = trained
    repo = out / "mlserver"
    http, grpc, metrics = _free_port(), _free_port(), _free_port()
    (repo / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": metrics,
        "parallel_workers": 0,
    }))
    (repo / "iot" / "model-settings.json").write_text(json.dumps({
        "name": "iot", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }))
    env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        [str(VENV / "bin" / "mlserver"), "start", str(repo)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait(f"http://127.0.0.1:{http}/v2/models/iot/ready", proc)
        yield f"http://127.0.0.1:{http}/v2/models/iot/infer"
    finally:
        _stop(proc)


def _chunks(rows, size=100):
    return [rows[i : i + size] for i in range(0, len(rows), size)]


@pytest.mark.parametrize("fmt", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_mlflow_formats(mlflow_url, trained, fmt):
    _, expected = trained
    spec = EndpointSpec(name="m", url=mlflow_url, request_format=fmt, batch_size=64, max_in_flight=4)
    with Scorer(spec) as scorer:
        values = [v for chunk in scorer.map(_chunks(expected["rows"])) for v in chunk.values]
    assert values == expected["predict"]


def test_mlflow_schema_error_is_reported(mlflow_url):
    spec = EndpointSpec(name="m", url=mlflow_url, retries=0)
    with Scorer(spec) as scorer, pytest.raises(EndpointError) as info:
        scorer.score([{"temperature": 20.0}])
    assert info.value.status == 400
    print("\nMLflow error as reported:", info.value)


@pytest.mark.parametrize("fmt", ["columns", "tensor"])
def test_mlserver_v2(mlserver_url, trained, fmt):
    _, expected = trained
    spec = EndpointSpec(
        name="v", url=mlserver_url, request_format=fmt, batch_size=64, max_in_flight=4,
        input_columns=("temperature", "humidity"),
    )
    with Scorer(spec) as scorer:
        values = [v for chunk in scorer.map(_chunks(expected["rows"])) for v in chunk.values]
    assert values == expected["predict"]


def test_mlserver_v2_proba_output(mlserver_url, trained):
    _, expected = trained
    spec = EndpointSpec(
        name="v", url=mlserver_url, output_names=("predict_proba",),
        input_columns=("temperature", "humidity"), batch_size=100,
    )
    with Scorer(spec) as scorer:
        values = scorer.score(expected["rows"][:100]).values
    assert [p for row in values for p in row] == pytest.approx(
        [p for row in expected["proba"][:100] for p in row]
    )


def test_mlserver_unknown_model(mlserver_url):
    spec = EndpointSpec(name="v", url=mlserver_url.replace("/iot/", "/nope/"), retries=0)
    with Scorer(spec) as scorer, pytest.raises(EndpointError, match="404") as info:
        scorer.score([{"temperature": 1.0, "humidity": 2.0}])
    print("\nMLServer error as reported:", info.value)


def bare_httpx(url: str, spec: EndpointSpec, rows: list, batch: int, in_flight: int) -> float:
    """Rows/s of a bare httpx client: ``in_flight`` threads posting the batches, encoded with
    the same codec (the baseline of the issue's 85% target)."""
    from concurrent.futures import ThreadPoolExecutor

    from asaql.ml.protocols import make_codec

    codec = make_codec(spec)
    batches = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    headers = {"Content-Type": "application/json"}
    with httpx.Client(limits=httpx.Limits(max_connections=in_flight)) as client:
        def post(rows_of_batch):  # the bare client encodes too: same bodies, same codec
            body = dumps(codec.encode(rows_of_batch))
            return client.post(url, content=body, headers=headers).json()

        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(post, batches[:in_flight]))
            started = time.perf_counter()
            list(pool.map(post, batches))
            return len(rows) / (time.perf_counter() - started)


def end_to_end(function: dict, events: Path, n: int, out: Path) -> float:
    """Rows/s of asaql end to end: a JSON-lines file in, ``udf.score(m)`` on every event, a
    JSON-lines file with the score out (the whole engine, as ``asaql run`` does it)."""
    import asaql

    session = asaql.Session()
    session.add_input("iot", str(events))
    session.add_function("score", function)
    job = session.compile(
        "WITH m AS (SELECT temperature, humidity FROM iot) "
        "SELECT temperature, humidity, udf.score(m) AS score INTO scored FROM m"
    )
    started = time.perf_counter()
    result = job.run({"scored": str(out)})
    elapsed = time.perf_counter() - started
    assert result.metrics.events_out["scored"] == n
    return n / elapsed


@pytest.mark.parametrize("server", ["mlflow", "mlserver"])
@pytest.mark.parametrize(("batch", "in_flight"), [(100, 1), (1000, 1), (1000, 4)])
def test_throughput_vs_bare_client(request, trained, tmp_path, server, batch, in_flight):
    _, expected = trained
    url = request.getfixturevalue(f"{server}_url")
    rows = (expected["rows"] * 200)[:100_000]
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in rows))
    function = {"url": url, "batch_size": batch, "max_in_flight": in_flight,
                "input_columns": ["temperature", "humidity"]}
    spec = EndpointSpec(name="t", **{**function, "input_columns": ("temperature", "humidity")})
    bare = ours = 0.0
    for _ in range(3):  # in turn, best of three: load bursts on a shared box (and the servers'
        # own jitter, +-30% for MLflow between runs) hit both
        bare = max(bare, bare_httpx(url, spec, rows, batch, in_flight))
        ours = max(ours, end_to_end(function, events, len(rows), tmp_path / "out.jsonl"))
    scored = [json.loads(line)["score"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert scored == (expected["predict"] * 200)[:100_000]
    print(f"\n{server} batch={batch} in_flight={in_flight}: asaql end to end {ours:,.0f} rows/s, "
          f"bare httpx {bare:,.0f} rows/s, ratio {ours / bare:.2f}")
    assert ours > 0.3 * bare  # sanity floor; the target (0.85) is reported, not asserted
