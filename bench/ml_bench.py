"""ML scoring benchmark: Scorer throughput against a fixed-latency local server.

    python bench/ml_bench.py                 # full table (about a minute)
    python bench/ml_bench.py --quick         # fewer requests per cell

The server runs in a separate process (asyncio, standard library): it reads each request,
counts its rows, sleeps a fixed ``--latency-ms`` (20 ms) whatever the batch size, and returns
a bare JSON array with one float per row, so the ideal throughput is
``in_flight * batch / latency``. For each batch size (1, 100, 1000) and in-flight count
(1, 4, 16) it prints achieved events/s and the ratio to that ideal. A second run against the
same server with zero latency shows the Scorer's own cost per event next to the cost of
``json.dumps`` on the same rows (the floor for any JSON client) and of a bare ``httpx.Client``
loop posting the same pre-built batches.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import orjson

from asaql.ml.endpoint import EndpointSpec
from asaql.ml.protocols import dumps
from asaql.ml.scorer import Scorer

CHUNK = 1024  # events per input chunk (one record batch of the executor)


# -- the fixed-latency server (runs in its own process) ----------------------------------------
# One thread per keep-alive connection (16 in flight = 16 threads, each sleeping on its own);
# each answer is sent at arrival + latency (time.sleep overshoots by tens of microseconds,
# asyncio timers by about a millisecond), so the server's own parsing does not add to the
# latency, whatever the batch size. It parses with orjson: with json.loads a 1000-row body
# took 0.7 ms, so at 16 in flight x 1000 rows (800 requests/s) the server alone used 0.6 of
# this box's 2 cores, taken from the client it is supposed to measure.

_loads = orjson.loads


class _Handler(socketserver.StreamRequestHandler):
    latency = 0.0
    cache: ClassVar[dict[int, bytes]] = {}

    def handle(self) -> None:
        rfile, wfile = self.rfile, self.wfile
        while True:
            line = rfile.readline()
            if not line:
                return
            arrived = time.perf_counter()
            length = 0
            while line not in (b"\r\n", b"\n", b""):
                line = rfile.readline()
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            rows = len(_loads(rfile.read(length))["data"])
            payload = self.cache.get(rows)
            if payload is None:
                payload = self.cache[rows] = json.dumps([0.5] * rows).encode()
            wait = arrived + self.latency - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode() + b"\r\n\r\n" + payload
            )
            wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def _serve(latency: float) -> None:
    _Handler.latency = latency
    with _Server(("127.0.0.1", 0), _Handler) as server:
        server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        print(server.server_address[1], flush=True)
        server.serve_forever()


def start_server(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/score"


# -- measurements ----------------------------------------------------------------------------


def make_events(n: int) -> list[dict]:
    return [
        {"deviceId": f"dev-{i % 50}", "temperature": 20.0 + (i % 17) * 0.5, "humidity": 40.0 + i % 23}
        for i in range(n)
    ]


def chunked(events: list[dict]) -> list[list[dict]]:
    return [events[i : i + CHUNK] for i in range(0, len(events), CHUNK)]


def run_scorer(url: str, batch: int, in_flight: int, events: list[dict]) -> float:
    spec = EndpointSpec(name="bench", url=url, batch_size=batch, max_in_flight=in_flight)
    chunks = chunked(events)
    with Scorer(spec) as scorer:
        list(scorer.map(chunked(events[: batch * in_flight])))  # warm up connections
        started = time.perf_counter()
        scored = sum(len(c.values) for c in scorer.map(chunks))
        elapsed = time.perf_counter() - started
    assert scored == len(events)
    return len(events) / elapsed


def bare_httpx(url: str, batch: int, events: list[dict]) -> float:
    bodies = [{"data": events[i : i + batch]} for i in range(0, len(events), batch)]
    with httpx.Client() as client:
        client.post(url, json={"data": events[:1]})
        started = time.perf_counter()
        for body in bodies:
            client.post(url, content=dumps(body), headers={"Content-Type": "application/json"}).json()
        elapsed = time.perf_counter() - started
    return len(events) / elapsed


def json_floor(batch: int, events: list[dict]) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        dumps({"data": events[i : i + batch]})
    return len(events) / (time.perf_counter() - started)


def latency_table(url: str, latency: float, seconds: float) -> list[dict]:
    rows = []
    for batch in (1, 100, 1000):
        for in_flight in (1, 4, 16):
            ideal = in_flight * batch / latency
            n = int(min(ideal * seconds, 2_000_000))
            n = max(n - n % batch, batch * in_flight)
            achieved = run_scorer(url, batch, in_flight, make_events(n))
            rows.append(
                {"batch": batch, "in_flight": in_flight, "events": n, "ideal": ideal,
                 "achieved": achieved, "ratio": achieved / ideal}
            )
            print(
                f"| {batch:>5} | {in_flight:>9} | {n:>9} | {ideal:>12,.0f} | {achieved:>12,.0f} "
                f"| {achieved / ideal:>5.2f} |",
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="about 1 s per cell instead of 3")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    if args.serve is not None:
        _serve(args.serve / 1000.0)
        return 0

    seconds = 1.0 if args.quick else 3.0
    print(f"# asaql ML scoring bench ({os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"chunks of {CHUNK} events, azureml body {{\"data\": [...]}}, 3-field records)\n")
    proc, url = start_server(args.latency_ms)
    try:
        print(f"## Fixed latency {args.latency_ms:g} ms per request\n")
        print("| batch | in flight |    events |  ideal ev/s  | achieved ev/s | ratio |")
        print("|------:|----------:|----------:|-------------:|-------------:|------:|")
        table = latency_table(url, args.latency_ms / 1000.0, seconds)
    finally:
        proc.terminate()
        proc.wait()

    proc, url = start_server(0)
    try:
        print("\n## Zero latency: where the time goes (events/s, higher is better)\n")
        print("| batch | json.dumps only | bare httpx loop | Scorer in_flight=1 | Scorer in_flight=4 |")
        print("|------:|----------------:|----------------:|-------------------:|-------------------:|")
        zero = []
        for batch in (100, 1000):
            events = make_events(200_000 if not args.quick else 50_000)
            floor = json_floor(batch, events)
            bare = bare_httpx(url, batch, events)
            one = run_scorer(url, batch, 1, events)
            four = run_scorer(url, batch, 4, events)
            zero.append({"batch": batch, "json_dumps": floor, "bare_httpx": bare,
                         "scorer_1": one, "scorer_4": four})
            print(f"| {batch:>5} | {floor:>15,.0f} | {bare:>15,.0f} | {one:>18,.0f} | {four:>18,.0f} |")
    finally:
        proc.terminate()
        proc.wait()
    if args.json:
        Path(args.json).write_text(json.dumps({"latency": table, "zero": zero}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
