"""ML scoring against real model servers: asaql end to end vs a bare httpx client.

    python bench/ml_real.py --venv /work/venv-ms          # MLflow + MLServer (about 2 minutes)

The venv must hold mlflow, mlserver, mlserver-sklearn and scikit-learn; the model (a
LogisticRegression on two float features) is trained with that venv's Python, then served by
``mlflow models serve --env-manager local`` and ``mlserver start`` (``parallel_workers: 0``),
both on 127.0.0.1. For each server and (batch, in flight) it measures rows/s of

* **bare httpx**: a thread pool of ``in_flight`` workers posting pre-built Python batches
  (encoded with the same codec, decoded with ``.json()``): the issue's baseline;
* **bare wire**: the same loop over :class:`asaql.ml.wire.WireClient` (the keep-alive
  ``http.client`` pool asaql itself uses for plain ``http://``) and orjson: what the server
  gives a client with little per-request cost and no engine around it;
* **asaql end to end**: ``Session`` reading a JSON-lines file, ``udf.score(m)`` on every
  event, writing a JSON-lines file with the score;

and prints the ratios asaql / bare httpx (target: at least 0.85) and asaql / bare wire. The
three run in turn ``--repeat`` times (so a burst of load on the shared box hits all of them)
and each cell keeps its best run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "modelserver"))

from asaql.ml.endpoint import EndpointSpec
from asaql.ml.protocols import dumps, loads, make_codec
from asaql.ml.wire import WireClient


def bare_wire(url: str, spec: EndpointSpec, rows: list[dict], batch: int, in_flight: int) -> float:
    codec = make_codec(spec)
    batches = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    headers = {"Content-Type": "application/json"}
    client = WireClient(timeout=30.0, connect_timeout=10.0, max_idle=in_flight)

    def post(part: list[dict]) -> object:
        response = client.post(url, dumps(codec.encode(part)), headers)
        assert response.status_code == 200, response.content[:200]
        return loads(response.content)

    try:
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(post, batches[:in_flight]))
            started = time.perf_counter()
            list(pool.map(post, batches))
            return len(rows) / (time.perf_counter() - started)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=os.environ.get("ASAQL_MODELSERVER_VENV", sys.prefix))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per cell")
    args = parser.parse_args(argv)
    os.environ["ASAQL_MODELSERVER_VENV"] = args.venv
    import test_real_servers as real  # the fixtures' server starters, as plain generators

    tmp = Path(tempfile.mkdtemp(prefix="asaql-mlreal-"))
    import subprocess

    subprocess.run([str(real.PYTHON), "-c", real.TRAIN, str(tmp)], check=True)
    expected = json.loads((tmp / "expected.json").read_text())
    rows = (expected["rows"] * (args.rows // len(expected["rows"]) + 1))[: args.rows]
    data = tmp / "events.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trained = (tmp, expected)
    servers = {
        "mlflow": real.mlflow_url.__wrapped__(trained),
        "mlserver": real.mlserver_url.__wrapped__(trained),
    }
    print(f"# asaql vs bare httpx on real model servers ({os.cpu_count()} CPUs, {args.rows} rows, "
          f"best of {args.repeat})\n")
    print("| server | batch | in flight | bare httpx rows/s | bare wire rows/s "
          "| asaql end to end rows/s | asaql / httpx | asaql / wire |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    try:
        for name, gen in servers.items():
            url = next(gen)
            for batch, in_flight in ((100, 1), (1000, 1), (1000, 4)):
                own = {"url": url, "batch_size": batch, "max_in_flight": in_flight,
                       "input_columns": ["temperature", "humidity"]}
                spec = EndpointSpec(name="score", **{**own, "input_columns": ("temperature", "humidity")})
                b = w = ours = 0.0
                for _ in range(args.repeat):
                    b = max(b, real.bare_httpx(url, spec, rows, batch, in_flight))
                    w = max(w, bare_wire(url, spec, rows, batch, in_flight))
                    ours = max(ours, real.end_to_end(own, data, len(rows), tmp / "out.jsonl"))
                print(f"| {name} | {batch} | {in_flight} | {b:,.0f} | {w:,.0f} | {ours:,.0f} "
                      f"| {ours / b:.2f} | {ours / w:.2f} |", flush=True)
    finally:
        for gen in servers.values():
            gen.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
