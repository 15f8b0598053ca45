"""Scorer mechanics: order under random completion, in-flight bound, batch size, partial
batches when input pauses, the cache, early close, and upstream errors.

The ordering property is the one the executor relies on: one ScoredChunk per input chunk, in
input order, whatever order the requests complete in.
"""

from __future__ import annotations

import json
import random
import threading
import time

import httpx
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asaql.ml.endpoint import EndpointSpec
from asaql.ml.scorer import Scorer


class Recorder:
    """A mock endpoint that sleeps a random time and records concurrency and batch sizes."""

    def __init__(self, max_sleep: float = 0.005, seed: int = 0) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.sizes: list[int] = []
        self.rng = random.Random(seed)
        self.max_sleep = max_sleep

    def __call__(self, request: httpx.Request) -> httpx.Response:
        rows = json.loads(request.content)["data"]
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.sizes.append(len(rows))
            delay = self.rng.random() * self.max_sleep
        time.sleep(delay)
        with self.lock:
            self.active -= 1
        return httpx.Response(200, json=[{"y": r["x"] + 1} for r in rows])


def scorer_for(handler, **kw) -> Scorer:
    spec = EndpointSpec(name="s", url="http://m.local/score", **kw)
    return Scorer(spec, transport=httpx.MockTransport(handler))


def expected(chunks):
    return [[{"y": r["x"] + 1} for r in chunk] for chunk in chunks]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(0, 40), min_size=0, max_size=25),
    batch=st.integers(1, 17),
    in_flight=st.integers(1, 8),
    seed=st.integers(0, 1000),
)
def test_order_and_bounds_under_random_completion(sizes, batch, in_flight, seed):
    recorder = Recorder(max_sleep=0.003, seed=seed)
    counter = iter(range(10**6))
    chunks = [[{"x": next(counter)} for _ in range(n)] for n in sizes]
    with scorer_for(recorder, batch_size=batch, max_in_flight=in_flight) as scorer:
        out = list(scorer.map(iter(chunks)))
    assert [o.values for o in out] == expected(chunks)
    assert all(o.errors is None for o in out)
    assert recorder.peak <= in_flight
    assert all(1 <= size <= batch for size in recorder.sizes)
    assert sum(recorder.sizes) == sum(sizes)


def test_in_flight_reaches_the_limit_and_never_exceeds_it():
    recorder = Recorder(max_sleep=0.02)
    chunks = [[{"x": i * 10 + j} for j in range(10)] for i in range(40)]
    with scorer_for(recorder, batch_size=5, max_in_flight=6) as scorer:
        out = list(scorer.map(chunks))
    assert [o.values for o in out] == expected(chunks)
    assert recorder.peak == 6


def test_full_batches_cross_chunk_boundaries():
    recorder = Recorder(max_sleep=0)
    chunks = [[{"x": i * 10 + j} for j in range(3)] for i in range(10)]  # 30 events
    with scorer_for(recorder, batch_size=10, max_in_flight=1, linger=1.0) as scorer:
        out = list(scorer.map(chunks))
    assert [o.values for o in out] == expected(chunks)
    assert recorder.sizes == [10, 10, 10]


def test_partial_batch_is_sent_when_input_pauses():
    recorder = Recorder(max_sleep=0)
    release = threading.Event()
    answered_before_more_input = []

    def chunks():
        yield [{"x": 1}, {"x": 2}]
        # the input pauses here; the 2 events must not wait for a full batch of 1000
        answered_before_more_input.append(release.wait(timeout=5))
        yield [{"x": 3}]

    with scorer_for(recorder, batch_size=1000, linger=0.001) as scorer:
        results = scorer.map(chunks())
        first = next(results)
        release.set()
        rest = list(results)
    assert first.values == [{"y": 2}, {"y": 3}]
    assert answered_before_more_input == [True]
    assert rest[0].values == [{"y": 4}]
    assert recorder.sizes == [2, 1]


def test_empty_chunks_keep_their_place():
    chunks = [[], [{"x": 1}], [], [], [{"x": 2}], []]
    with scorer_for(Recorder(0), batch_size=1) as scorer:
        out = list(scorer.map(chunks))
    assert [o.values for o in out] == [[], [{"y": 2}], [], [], [{"y": 3}], []]


def test_cache_answers_identical_payloads():
    recorder = Recorder(max_sleep=0)
    chunks = [[{"x": 1}, {"x": 2}], [{"x": 1}, {"x": 3}], [{"x": 2}, {"x": 1}]]
    with scorer_for(recorder, batch_size=10, cache_size=100, linger=0) as scorer:
        out = [scorer.score(chunk) for chunk in chunks]
        assert scorer.metrics.cache_hits == 3
        assert scorer.metrics.events == 3  # only x=1, 2, 3 went to the endpoint
    assert [o.values for o in out] == expected(chunks)


def test_cache_is_bounded_and_expires():
    now = [0.0]
    recorder = Recorder(max_sleep=0)
    spec = EndpointSpec(name="s", url="http://m.local/score", cache_size=2, cache_ttl=10.0)
    scorer = Scorer(spec, transport=httpx.MockTransport(recorder), clock=lambda: now[0])
    scorer.score([{"x": 1}, {"x": 2}, {"x": 3}])  # x=1 evicted (size 2)
    scorer.score([{"x": 1}, {"x": 3}])
    assert scorer.metrics.cache_hits == 1
    now[0] = 11.0
    scorer.score([{"x": 3}])
    assert scorer.metrics.cache_hits == 1
    scorer.close()


def test_upstream_error_propagates():
    def chunks():
        yield [{"x": 1}]
        raise RuntimeError("upstream broke")

    with scorer_for(Recorder(0)) as scorer, pytest.raises(RuntimeError, match="upstream broke"):
        list(scorer.map(chunks()))


def test_closing_map_early_stops_the_input():
    pulled = []
    closed = threading.Event()

    def chunks():
        try:
            for i in range(10_000):
                pulled.append(i)
                yield [{"x": i}]
        finally:
            closed.set()

    with scorer_for(Recorder(0), batch_size=1, prefetch=2) as scorer:
        results = scorer.map(chunks())
        assert next(results).values == [{"y": 1}]
        results.close()
        assert closed.wait(timeout=5)
    assert len(pulled) < 100


def test_python_protocol_runs_through_the_same_path():
    seen_sizes = []

    def model(rows):
        seen_sizes.append(len(rows))
        return [r["x"] * 3 for r in rows]

    spec = EndpointSpec(name="p", url="python:whatever", protocol="python", batch_size=4)
    with Scorer(spec, function=model) as scorer:
        out = list(scorer.map([[{"x": i} for i in range(6)], [{"x": 9}]]))
    assert [o.values for o in out] == [[0, 3, 6, 9, 12, 15], [27]]
    assert max(seen_sizes) <= 4


# -- Arrow chunks ----------------------------------------------------------------------------


@pytest.mark.parametrize("cache_size", [0, 100])
def test_arrow_chunks_are_scored_in_order_across_chunk_boundaries(cache_size):
    chunks = [[{"x": i * 10 + j} for j in range(size)] for i, size in enumerate([7, 0, 3, 12, 5])]
    recorder = Recorder()
    with scorer_for(recorder, batch_size=4, max_in_flight=3, cache_size=cache_size) as scorer:
        out = list(scorer.map(pa.array(c, pa.struct([("x", pa.int64())])) for c in chunks))
    assert [o.values for o in out] == expected(chunks)
    assert sum(recorder.sizes) == sum(map(len, chunks)) and max(recorder.sizes) <= 4


def test_arrow_chunks_of_different_types_share_a_request():
    bodies = []

    def handler(request):
        rows = json.loads(request.content)["data"]
        bodies.append(rows)
        return httpx.Response(200, json=[r["x"] for r in rows])

    chunks = [pa.array([{"x": 1}, {"x": 2}]), pa.array([{"x": 2.5}]), pa.chunked_array([[{"x": 3}]])]
    with scorer_for(handler, batch_size=10, linger=0.05) as scorer:
        out = list(scorer.map(chunks))
    assert [o.values for o in out] == [[1, 2], [2.5], [3]]
    assert bodies == [[{"x": 1}, {"x": 2}, {"x": 2.5}, {"x": 3}]]


def test_python_functions_receive_python_rows_from_arrow_chunks():
    seen = []

    def model(rows):
        seen.append(rows)
        return [r["x"] * 2 for r in rows]

    spec = EndpointSpec(name="p", url="python:model", batch_size=3)
    with Scorer(spec, function=model) as scorer:
        out = list(scorer.map([pa.array([{"x": 1}, {"x": 2}]), pa.array([{"x": 3}, {"x": 4}])]))
    assert [o.values for o in out] == [[2, 4], [6, 8]]
    assert all(isinstance(rows, list) for rows in seen)


def test_a_worker_does_not_take_ahead_a_request_an_idle_worker_could_send():
    """Each worker prepares its next request while its own is on the wire, but only when no
    other worker is idle: N requests with N in flight all go at once."""
    lock = threading.Lock()
    active = [0, 0]  # now, peak

    def handler(request):
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        return httpx.Response(200, json=[1] * len(json.loads(request.content)["data"]))

    for requests in (2, 3, 6):
        active[1] = 0
        with scorer_for(handler, batch_size=1, max_in_flight=3) as scorer:
            started = time.perf_counter()
            out = list(scorer.map([[{"x": i}] for i in range(requests)]))
            elapsed = time.perf_counter() - started
        assert [o.values for o in out] == [[1]] * requests
        assert active[1] == min(requests, 3)
        rounds = -(-requests // 3)
        assert elapsed < 0.15 * rounds + 0.12, (requests, elapsed)
