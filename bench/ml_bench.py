"""ML scoring benchmark: Scorer throughput against a fixed-latency local server.

    python bench/ml_bench.py                 # full table (about a minute)
    python bench/ml_bench.py --quick         # fewer requests per cell

The server runs in a separate process (standard library, one thread per connection): it reads
each request, counts its rows, answers at arrival + ``--latency-ms`` (20 ms) whatever the batch
size with a bare JSON array of one float per row, so the ideal throughput is
``in_flight * batch / latency``. For each batch size (1, 100, 1000) and in-flight count
(1, 4, 16) it prints

* **bare wire**: the least asaql's HTTP client can do against this server on this box right
  now (``in_flight`` threads posting the batches over :class:`asaql.ml.wire.WireClient`,
  keep-alive ``http.client`` connections, no bookkeeping);
* **Scorer**: asaql's scorer on the same events (3-field records in chunks of 1024, the
  azureml ``{"data": [...]}`` body), its ratio to the ideal and to bare wire.

The two run back to back per cell, so both see the same load on a shared box. A second run
against the same server with zero latency shows where the client's time goes: events/s that
one thread can encode into bodies (orjson; the ceiling for any client in one process), a bare
``httpx.Client`` loop, bare wire with one thread (the same codec's bodies, from Arrow slices in
the Arrow cases), the Scorer with 1 and 4 in flight, and client CPU per event (this process
only) of encoding alone, of bare wire and of the Scorer: the Scorer minus bare wire is the
operator's own cost (``own``: ordering, slots, thread hand-offs), to be set against the
encoding's. Then the operator's own work alone: the Scorer over a caller that answers at once
(no encoding, no HTTP), client CPU per request and per event next to the encoding of the same
rows. Last, the client CPU per request (least of 5 rounds that
take turns) of one thread posting the same body over ``WireClient``, a bare
``http.client.HTTPConnection`` (``request`` + ``getresponse`` + ``read``) and
``httpx.Client.post``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import socketserver
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import orjson
import pyarrow as pa

from asaql.exec.ml_score import piece_rows
from asaql.ml.endpoint import EndpointSpec
from asaql.ml.metrics import EndpointMetrics
from asaql.ml.protocols import dumps, make_codec
from asaql.ml.scorer import Scorer
from asaql.ml.wire import WireClient

# -- the fixed-latency server (runs in its own process) ----------------------------------------
# One thread per keep-alive connection (16 in flight = 16 threads, each sleeping on its own);
# each answer is sent at arrival + latency (time.sleep overshoots by tens of microseconds,
# asyncio timers by about a millisecond), so the server's own parsing does not add to the
# latency, whatever the batch size. It parses with orjson: with json.loads a 1000-row body
# took 0.7 ms, so at 16 in flight x 1000 rows (800 requests/s) the server alone used 0.6 of
# this box's 2 cores, taken from the client it is supposed to measure.

_loads = orjson.loads


def _count(body: dict) -> int:
    """Rows in an azureml ``{"data": [...]}`` or MLflow ``dataframe_split`` body."""
    if "data" in body:
        return len(body["data"])
    return len(body["dataframe_split"]["data"])


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
            rows = _count(_loads(rfile.read(length)))
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


def chunked(events: list[dict], batch: int, arrow: bool = False) -> list:
    """Chunks as the MLScore operator hands them to the scorer (pieces of whole requests),
    as Python records or (``arrow``) one Arrow struct array each."""
    step = piece_rows(batch)
    chunks = [events[i : i + step] for i in range(0, len(events), step)]
    return [pa.array(c) for c in chunks] if arrow else chunks


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process only: the server is another
    return usage.ru_utime + usage.ru_stime


def run_scorer(
    url: str, batch: int, in_flight: int, events: list[dict], arrow: bool = False
) -> tuple[float, float]:
    """(events/s, client CPU seconds per event) of the Scorer over these events."""
    spec = EndpointSpec(name="bench", url=url, batch_size=batch, max_in_flight=in_flight)
    chunks = chunked(events, batch, arrow)
    with Scorer(spec) as scorer:
        list(scorer.map(chunked(events[: batch * in_flight], batch, arrow)))  # warm up
        cpu, started = _cpu(), time.perf_counter()
        scored = sum(len(c.values) for c in scorer.map(chunks))
        elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    assert scored == len(events)
    return len(events) / elapsed, cpu / len(events)


def request_rows(events: list[dict], batch: int, arrow: bool) -> list:
    """The events as the rows of each request: lists of dicts, or Arrow slices (``arrow``)."""
    if arrow:
        table = pa.array(events)
        return [table.slice(i, batch) for i in range(0, len(events), batch)]
    return [events[i : i + batch] for i in range(0, len(events), batch)]


def bare_wire(
    url: str, batch: int, in_flight: int, events: list[dict], arrow: bool = False
) -> tuple[float, float]:
    """(events/s, client CPU seconds per event) of the least a client can do: ``in_flight``
    threads encoding each batch with the endpoint's codec (from Arrow slices when ``arrow``),
    posting it over asaql.ml.wire (keep-alive http.client) and parsing the answer, with no
    bookkeeping (no ordering, no slots, no hand-offs between threads)."""
    codec = make_codec(EndpointSpec(name="bench", url=url, batch_size=batch))
    batches = request_rows(events, batch, arrow)
    headers = {"Content-Type": "application/json"}
    client = WireClient(timeout=30.0, connect_timeout=10.0, max_idle=in_flight)
    lanes = [batches[i::in_flight] for i in range(in_flight)]

    def lane(own: list) -> None:
        for rows in own:
            orjson.loads(client.post(url, dumps(codec.encode_rows(rows)), headers).content)

    try:
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(lane, [lane_batches[:1] for lane_batches in lanes]))  # connect
            cpu, started = _cpu(), time.perf_counter()
            list(pool.map(lane, lanes))
            elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
            return len(events) / elapsed, cpu / len(events)
    finally:
        client.close()


def bare_httpx(url: str, batch: int, events: list[dict]) -> float:
    bodies = [{"data": events[i : i + batch]} for i in range(0, len(events), batch)]
    with httpx.Client() as client:
        client.post(url, json={"data": events[:1]})
        started = time.perf_counter()
        for body in bodies:
            client.post(url, content=dumps(body), headers={"Content-Type": "application/json"}).json()
        elapsed = time.perf_counter() - started
    return len(events) / elapsed


def json_floor(url: str, batch: int, events: list[dict], arrow: bool = False) -> float:
    """Events/s one thread turns into request bodies (the codec of ``url``, orjson; from Arrow
    arrays when ``arrow``): the ceiling for any client in this process, whatever the server."""
    codec = make_codec(EndpointSpec(name="bench", url=url, batch_size=batch))
    batches = request_rows(events, batch, arrow)
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for rows in batches:
            dumps(codec.encode_rows(rows))
        best = max(best, len(events) / (time.perf_counter() - started))
    return best


def latency_table(url: str, latency: float, seconds: float) -> list[dict]:
    rows = []
    for batch in (1, 100, 1000):
        for in_flight in (1, 4, 16):
            ideal = in_flight * batch / latency
            n = int(min(ideal * seconds, 2_000_000))
            n = max(n - n % batch, batch * in_flight)
            events = make_events(n)
            bare, _ = bare_wire(url, batch, in_flight, events)
            achieved, _ = run_scorer(url, batch, in_flight, events)
            rows.append(
                {"batch": batch, "in_flight": in_flight, "events": n, "ideal": ideal,
                 "bare_wire": bare, "achieved": achieved, "ratio": achieved / ideal,
                 "ratio_bare": achieved / bare}
            )
            print(
                f"| {batch:>5} | {in_flight:>9} | {n:>9} | {ideal:>10,.0f} | {bare:>10,.0f} "
                f"| {achieved:>10,.0f} | {achieved / ideal:>5.2f} | {achieved / bare:>5.2f} |",
                flush=True,
            )
    return rows


ZERO_CASES = [  # (label, batch, arrow chunks, path: /score = azureml records, /invocations = mlflow split)
    ("100, records", 100, False, "/score"),
    ("1000, records", 1000, False, "/score"),
    ("1000, Arrow records", 1000, True, "/score"),
    ("1000, Arrow split", 1000, True, "/invocations"),
]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def zero_table(base: str, n: int) -> list[dict]:
    """Where the client's CPU goes at zero latency. ``own`` is the operator's own cost per
    event: the Scorer's CPU minus that of a bare client sending the same bodies (encoding,
    HTTP and parsing the answer are in both)."""
    rows = []
    events = make_events(n)
    for label, batch, arrow, path in ZERO_CASES:
        url = base + path
        floor = json_floor(url, batch, events, arrow)
        plain = not arrow and path == "/score"
        httpx_rate = bare_httpx(url, batch, events) if plain else None  # same body only
        wire_rate, wire_cpu = bare_wire(url, batch, 1, events, arrow)
        one, cpu_one = run_scorer(url, batch, 1, events, arrow)
        four, _ = run_scorer(url, batch, 4, events, arrow)
        encode_ns, wire_ns, scorer_ns = 1e9 / floor, wire_cpu * 1e9, cpu_one * 1e9
        own_ns = scorer_ns - wire_ns
        rows.append({"case": label, "batch": batch, "encode_only": floor,
                     "bare_httpx": httpx_rate, "bare_wire": wire_rate, "scorer_1": one,
                     "scorer_4": four, "scorer_cpu_ns_per_event": scorer_ns,
                     "bare_wire_cpu_ns_per_event": wire_ns, "own_ns_per_event": own_ns,
                     "encode_ns_per_event": encode_ns, "encode_share": encode_ns / scorer_ns,
                     "own_share": own_ns / scorer_ns})
        print(f"| {label:<19} | {floor:>11,.0f} | {_rate(httpx_rate):>10} | {wire_rate:>10,.0f} "
              f"| {one:>10,.0f} | {four:>10,.0f} | {encode_ns:>6.0f} | {wire_ns:>7.0f} "
              f"| {scorer_ns:>7.0f} | {own_ns:>5.0f} | {encode_ns / scorer_ns:>5.0%} "
              f"| {own_ns / scorer_ns:>5.0%} |", flush=True)
    return rows


class _InstantCaller:
    """A BatchCaller that answers at once (no encoding, no HTTP): what is left of a Scorer run
    over it is the operator's own work (slots, ordering, dispatch, thread hand-offs)."""

    lookahead = 1
    takes_arrow = True

    def __init__(self) -> None:
        self.metrics = EndpointMetrics("instant")

    def prepare(self, rows: list) -> list:
        return rows

    def send(self, call: list) -> None:
        pass

    def finish(self, call: list) -> list:
        return [0.0] * len(call)

    def score(self, rows: list) -> list:
        return [0.0] * len(rows)

    def close(self) -> None:
        pass


class _InstantScorer(Scorer):
    def _make_caller(self, *args: object) -> _InstantCaller:  # type: ignore[override]
        return _InstantCaller()


def bookkeeping_table(n: int) -> list[dict]:
    """The Scorer's own CPU per request and per event (one in flight, least of 5 runs), over a
    caller that answers at once, next to the JSON encoding of the same rows."""
    rows = []
    events = make_events(n)
    for batch in (1, 100, 1000):
        count = n if batch > 1 else n // 20
        spec = EndpointSpec(name="bench", url="http://127.0.0.1:9/score", batch_size=batch)
        chunks = chunked(events[:count], batch)
        best = float("inf")
        with _InstantScorer(spec) as scorer:
            for _ in range(5):
                cpu = _cpu()
                scored = sum(len(c.values) for c in scorer.map(chunks))
                best = min(best, (_cpu() - cpu) / scored)
        encode_ns = 1e9 / json_floor("http://127.0.0.1:9/score", batch, events[:count])
        per_request = best * batch * 1e6
        rows.append({"batch": batch, "own_us_per_request": per_request,
                     "own_ns_per_event": best * 1e9, "encode_ns_per_event": encode_ns})
        print(f"| {batch:>5} | {per_request:>8.1f} | {best * 1e9:>8.0f} | {encode_ns:>9.0f} "
              f"| {best * 1e9 / encode_ns:>6.2f} |", flush=True)
    return rows


def _cpu_per_request(posts: dict[str, Callable[[], object]], requests: int) -> dict[str, float]:
    """Client CPU µs per call of each ``post``: 100 calls to warm up, then 5 rounds of
    ``requests`` calls that take turns between the clients (so a burst of load on the box
    hits all of them), the least of each."""
    for post in posts.values():
        for _ in range(100):
            post()
    best = dict.fromkeys(posts, float("inf"))
    for _ in range(5):
        for name, post in posts.items():
            cpu = _cpu()
            for _ in range(requests):
                post()
            best[name] = min(best[name], (_cpu() - cpu) / requests * 1e6)
    return best


def cpu_table(url: str, requests: int) -> list[dict]:
    """Client CPU µs per request over WireClient, bare http.client and httpx (one thread)."""
    headers = {"Content-Type": "application/json"}
    _, _, netloc, path = url.split("/", 3)
    host, port = netloc.rsplit(":", 1)
    wire = WireClient(timeout=30.0, connect_timeout=10.0, max_idle=1)
    conn = http.client.HTTPConnection(host, int(port))
    hx = httpx.Client()
    rows = []
    try:
        for batch in (1, 100, 1000):
            body = dumps({"data": make_events(batch)})

            def stdlib(body: bytes = body) -> bytes:
                conn.request("POST", "/" + path, body, headers)
                return conn.getresponse().read()

            posts = {
                "wire": partial(wire.post, url, body, headers),
                "http_client": stdlib,
                "httpx": partial(hx.post, url, content=body, headers=headers),
            }
            row: dict = {"batch": batch, "body_bytes": len(body)}
            row.update(_cpu_per_request(posts, requests))
            rows.append(row)
            print(f"| {batch:>5} | {len(body):>10,} | {row['wire']:>4.0f} "
                  f"| {row['http_client']:>11.0f} | {row['httpx']:>5.0f} |", flush=True)
    finally:
        wire.close()
        conn.close()
        hx.close()
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
          f"chunks of about {piece_rows(1)} events, azureml body {{\"data\": [...]}}, 3-field records, "
          f"load average {os.getloadavg()[0]:.1f})\n")
    proc, url = start_server(args.latency_ms)
    try:
        print(f"## Fixed latency {args.latency_ms:g} ms per request\n")
        print("| batch | in flight |    events |   ideal/s  | bare wire/s | Scorer/s | "
              "ratio | / bare |")
        print("|------:|----------:|----------:|-----------:|-----------:|-----------:|"
              "------:|------:|")
        table = latency_table(url, args.latency_ms / 1000.0, seconds)
    finally:
        proc.terminate()
        proc.wait()

    proc, url = start_server(0)
    try:
        print("\n## Zero latency: where the time goes (events/s; client CPU ns per event)\n")
        print("| batch, rows         | encode only | bare httpx | bare wire | Scorer x1 "
              "| Scorer x4 | encode ns | bare wire ns | Scorer ns | own ns | encode share "
              "| own share |")
        print("|---------------------|------------:|-----------:|-----------:|-----------:"
              "|-----------:|-------:|--------:|--------:|------:|------:|------:|")
        zero = zero_table(url.rsplit("/", 1)[0], 200_000 if not args.quick else 50_000)
        print("\n## The operator's own work: a caller that answers at once (client CPU)\n")
        print("| batch | µs / request | ns / event | encode ns / event | own / encode |")
        print("|------:|---------:|---------:|----------:|-------:|")
        own = bookkeeping_table(200_000 if not args.quick else 50_000)
        print("\n## Client CPU per request (µs, one thread, zero latency)\n")
        print("| batch | body bytes | wire | http.client | httpx |")
        print("|------:|-----------:|-----:|------------:|------:|")
        cpu = cpu_table(url, 500 if args.quick else 2000)
    finally:
        proc.terminate()
        proc.wait()
    if args.json:
        Path(args.json).write_text(
            json.dumps({"latency": table, "zero": zero, "own": own, "cpu_per_request": cpu},
                       indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
