"""A small local model server, standard library only (``asaql serve-model``).

It speaks the Azure ML custom-scoring-script shape that ``udf.<alias>(record)`` sends, so the
seed example runs end to end after a plain ``pip install .``::

    POST /score  {"data": [{"deviceId": "d1", "temperature": 21.5, "humidity": 40.0}, ...]}
             or  {"Inputs": {"WebServiceInput0": [ ...same rows... ]}}
    200          [{"prediction": 0.0123, "is_anomaly": false}, ...]      (one per row, in order)
    400          {"status_code": 400, "message": "row 2: 'temperature' must be a number"}
    401          {"status_code": 401, "message": "missing or wrong API key"}   (when api_key set)
    GET /        Healthy

The ``anomaly`` model is deterministic: z-scores of temperature and humidity against fixed
normal ranges (20 +/- 4 degrees C, 45 +/- 12 % RH), combined as ``d = sqrt(zt^2 + zh^2)``, give
``prediction = 1 / (1 + exp(-2 * (d - 3)))``: about 0.0025 at the centre of both ranges, 0.5 at
three standard deviations out, and ``is_anomaly = prediction >= 0.5``. The ``echo`` model
returns each row unchanged (handy for tests).

>>> server, url = serve(model="anomaly")
>>> import json, urllib.request
>>> body = json.dumps({"data": [{"temperature": 20, "humidity": 45},
...                              {"temperature": 41, "humidity": 95}]}).encode()
>>> with urllib.request.urlopen(urllib.request.Request(url, body)) as response:
...     json.loads(response.read())
[{'prediction': 0.002473, 'is_anomaly': False}, {'prediction': 0.999392, 'is_anomaly': True}]
>>> server.shutdown(); server.server_close()
"""

from __future__ import annotations

import argparse
import hmac
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["MODELS", "ModelServer", "anomaly_model", "main", "serve"]

NORMAL_TEMPERATURE = (20.0, 4.0)  # mean, standard deviation (degrees C)
NORMAL_HUMIDITY = (45.0, 12.0)  # mean, standard deviation (% RH)


class BadRequest(ValueError):
    """The body cannot be scored; becomes a 400 with the message."""


def _number(row: Any, index: int, name: str) -> float:
    if not isinstance(row, dict):
        raise BadRequest(f"row {index}: expected an object with temperature and humidity")
    value = row.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"row {index}: '{name}' must be a number, got {json.dumps(value)}")
    return float(value)


def anomaly_model(rows: list[Any]) -> list[dict[str, Any]]:
    """Score rows of ``{temperature, humidity}``; see the module docstring."""
    results = []
    for index, row in enumerate(rows):
        zt = (_number(row, index, "temperature") - NORMAL_TEMPERATURE[0]) / NORMAL_TEMPERATURE[1]
        zh = (_number(row, index, "humidity") - NORMAL_HUMIDITY[0]) / NORMAL_HUMIDITY[1]
        distance = math.sqrt(zt * zt + zh * zh)
        exponent = -2.0 * (distance - 3.0)
        score = 0.0 if exponent > 700 else 1.0 / (1.0 + math.exp(exponent))
        score = round(score, 6)
        results.append({"prediction": score, "is_anomaly": score >= 0.5})
    return results


def echo_model(rows: list[Any]) -> list[Any]:
    return rows


MODELS: dict[str, Callable[[list[Any]], list[Any]]] = {
    "anomaly": anomaly_model,
    "echo": echo_model,
}


def _rows(payload: Any) -> list[Any]:
    if isinstance(payload, dict):
        if isinstance(payload.get("data"), list):
            return payload["data"]
        inputs = payload.get("Inputs")
        if isinstance(inputs, dict) and inputs:
            first = next(iter(inputs.values()))
            if isinstance(first, list):
                return first
    raise BadRequest('expected {"data": [rows]} or {"Inputs": {"WebServiceInput0": [rows]}}')


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        model: Callable[[list[Any]], list[Any]],
        latency_ms: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.model = model
        self.latency = latency_ms / 1000.0
        self.api_key = api_key
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/score"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ModelServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._send(200, b"Healthy", "text/plain")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        server = self.server
        with server._lock:
            server.requests += 1
        if server.api_key is not None:
            sent = self.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {server.api_key}".encode()):
                self._error(401, "missing or wrong API key (send 'Authorization: Bearer <key>')")
                return
        try:
            rows = _rows(json.loads(body))
            results = server.model(rows)
        except BadRequest as exc:
            self._error(400, str(exc))
            return
        except ValueError as exc:
            self._error(400, f"the body is not valid JSON: {exc}")
            return
        if server.latency:
            time.sleep(server.latency)
        self._send(200, json.dumps(results, separators=(",", ":")).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        payload = json.dumps({"status_code": status, "message": message}).encode()
        self._send(status, payload, "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    model: str = "anomaly",
    latency_ms: float = 0,
    api_key: str | None = None,
) -> tuple[ModelServer, str]:
    """Start a model server on a daemon thread; returns ``(server, scoring_url)``.

    Stop it with ``server.shutdown(); server.server_close()``. ``port=0`` picks a free port.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} (choose {', '.join(MODELS)})")
    server = ModelServer((host, port), model=MODELS[model], latency_ms=latency_ms, api_key=api_key)
    thread = threading.Thread(target=server.serve_forever, name="asaql-model-server", daemon=True)
    thread.start()
    return server, server.url


def main(argv: Sequence[str] | None = None) -> int:
    """``asaql serve-model``: run the local model server in the foreground."""
    parser = argparse.ArgumentParser(
        prog="asaql serve-model", description="Serve a small local ML model over HTTP."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--model", default="anomaly", choices=sorted(MODELS))
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="require 'Authorization: Bearer <key>' with the key from this environment variable",
    )
    args = parser.parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            parser.error(f"environment variable {args.api_key_env} is not set")
    server, url = serve(args.host, args.port, args.model, args.latency_ms, api_key)
    print(f"serving model '{args.model}' at {url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
