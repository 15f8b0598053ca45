"""Scorer: ordered, batched, parallel scoring of a stream of chunks.

The executor is synchronous and pull-based; the Scorer turns its chunks (the argument value of
each event of one record batch, in event order) into ScoredChunks, one per input chunk, in
input order, while keeping up to ``max_in_flight`` requests of up to ``batch_size`` events in
flight across chunk boundaries.

Why threads and blocking sockets rather than an asyncio loop on a side thread: the caller is
synchronous, so an event loop would need a thread anyway plus a cross-thread hand-off per
request (``run_coroutine_threadsafe``) and per completion; a pool of ``max_in_flight`` workers
sharing one keep-alive connection pool gives the same concurrency with less machinery,
blocking sockets release the GIL while waiting, and the ``python`` protocol (local model
functions, which are blocking code) runs through the very same pool. Measured on the 2-core
bench box (raw keep-alive requests, 1-row bodies, same server; with an earlier socket-level
client, before :mod:`asaql.ml.wire` moved onto ``http.client``): asyncio streams and threads
reached the same requests/s at 1 and 16 in flight (22-24 k/s at zero latency, 750-770/s of an
ideal 800 at 20 ms x 16), asyncio using 10-30 µs less CPU per request at 16 in flight; not
enough to pay for the hand-offs. The cost is one thread per in-flight
request, and in-flight counts are small (ASA's own default is 1 per partition).

Data flow (the main thread is the caller's, inside ``map``; everything it waits for arrives
on one queue, so it never polls)::

    upstream chunks ──feeder thread──► events queue ◄── workers' "done" (results or error)
      (≤ prefetch chunks taken and         │
       not yet fully dispatched)           ▼
                                  main thread (map generator)
      slots:   [chunk0 ✓][chunk1 ··][chunk2 · ][chunk3    ]   one per input chunk, in order;
                  │ yield when the head slot has every result (✓)
      pending: events of chunk2/chunk3 not yet sent ── cut into requests of ≤ batch_size
      submitted (≤ max_in_flight + lookahead) ──► job queue ──► max_in_flight workers
         req7 = chunk1[600:1000] + chunk2[0:600]    worker 0: req7 on the wire, req9 encoded
         req8 = chunk2[600:1000] ...                worker 1: req8 on the wire
         req9, req10 ...                            (a worker encodes its next request while
                                                     its own answer is on the way: _Workers)

A request is sent when it is full, or when it is partial, a connection is free, and no more
input is immediately available: the queue holds no chunk and none arrived for ``linger`` seconds, or the input ended.
An empty chunk gives an empty ScoredChunk at its place in the order, so the caller can use one
as a marker (for example to release a held watermark once every earlier event is answered).

A chunk is a list of Python values or one Arrow array (the MLScore operator passes the
argument column as evaluated). Arrow chunks stay Arrow up to the HTTP caller: a request is a
zero-copy slice of one chunk, or ``pa.concat_arrays`` of the slices of several, and the codec
builds column-shaped bodies from the struct's children without one dict per event (see
:mod:`asaql.ml.protocols`). When the result cache is on (it keys every event) or the caller is
a local Python function (it receives rows), the feeder thread converts each Arrow chunk to
Python values first, 4096 rows at a time (one conversion of a 64k-row batch holds the GIL for
~100 ms, stalling workers whose answers are waiting).

The chunks iterable is pulled on the feeder thread (``asaql-ml-<name>-feed``); when the caller
stops iterating ``map`` early, the feeder stops and closes the iterable itself.

GIL switch interval: the engine around ``map`` is CPU-bound Python and Arrow (parsing input,
building rows, writing output) while the workers only need the GIL for a moment to hand a
response over. With CPython's default 5 ms switch interval a worker whose answer has arrived
can wait up to 5 ms for the GIL behind that work, which caps a fast endpoint (2-3 ms per
request, MLServer on loopback) at half its speed with one request in flight. While any
``map`` of an HTTP endpoint runs, the interval is lowered to ``SWITCH_INTERVAL`` (0.5 ms) and
restored when the last one ends (the ``python`` protocol keeps the default: its workers are
CPU-bound themselves).

Failures: a request that fails after retries marks all its events. With ``on_error="raise"``
(default) ``map`` yields every chunk before the first failed event, then raises its
EndpointError (no new requests are started once a failure is known). With ``on_error="null"``
(TryEvaluate) failed events get the value None and their error in ``ScoredChunk.errors``.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any, Protocol, Self

import httpx
import pyarrow as pa

from asaql.errors import AsaqlError, ConfigError, EndpointError
from asaql.ml.cache import ResultCache
from asaql.ml.endpoint import EndpointSpec
from asaql.ml.metrics import EndpointMetrics
from asaql.ml.protocols import python_rows

__all__ = ["BatchCaller", "ScoredChunk", "Scorer"]

ON_ERROR = ("raise", "null")
SWITCH_INTERVAL = 0.0005  # seconds; see "GIL switch interval" in the module docstring


class _SwitchInterval:
    """Lowers sys.getswitchinterval() while at least one HTTP scorer is mapping."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0.0

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                self._saved = sys.getswitchinterval()
                if self._saved > SWITCH_INTERVAL:
                    sys.setswitchinterval(SWITCH_INTERVAL)
            self._users += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and sys.getswitchinterval() == min(self._saved, SWITCH_INTERVAL):
                sys.setswitchinterval(self._saved)


_switch_interval = _SwitchInterval()


@dataclass
class ScoredChunk:
    """Results for one input chunk: ``values[i]`` belongs to event ``i`` of the chunk."""

    values: list[Any]
    errors: list[EndpointError | None] | None = None

    @property
    def failed(self) -> int:
        return 0 if self.errors is None else sum(e is not None for e in self.errors)


class BatchCaller(Protocol):
    """Scores one batch: one result per row, or raises EndpointError."""

    metrics: EndpointMetrics
    lookahead: int  # requests that may be prepared ahead of those on the wire (0: none)
    takes_arrow: bool  # score() also accepts one Arrow array of rows

    def score(self, rows: list[Any]) -> list[Any]: ...

    # score() in three steps, so that a worker can prepare its next batch in between:
    def prepare(self, rows: list[Any]) -> Any: ...

    def send(self, call: Any) -> None: ...

    def finish(self, call: Any) -> list[Any]: ...

    def close(self) -> None: ...


class _Slot:
    """One input chunk on its way through the pipeline."""

    __slots__ = ("errors", "index", "keys", "released", "remaining", "send", "values")

    def __init__(self, rows: list[Any] | pa.Array) -> None:
        self.values: list[Any] = [None] * len(rows)
        self.errors: list[EndpointError | None] | None = None
        self.send = rows  # rows still to send (all of them unless the cache answered some)
        self.index: list[int] | None = None  # send position -> event position (cache only)
        self.keys: list[Hashable] | None = None  # cache keys of the rows in ``send``
        self.remaining = len(rows)
        self.released = False


class _Request:
    __slots__ = ("parts", "rows")

    def __init__(self, parts: list[tuple[_Slot, int, int]], rows: list[Any] | pa.Array) -> None:
        self.parts = parts  # (slot, start, stop) ranges of slot.send, in order
        self.rows = rows


class Scorer:
    """Scores chunks of events against one endpoint; see the module docstring."""

    def __init__(
        self,
        spec: EndpointSpec,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_error: str = "raise",
        sleep: Callable[[float], None] = time.sleep,
        function: Callable[..., Any] | None = None,
    ) -> None:
        if on_error not in ON_ERROR:
            raise ConfigError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.spec = spec
        self.on_error = on_error
        self.metrics = EndpointMetrics(spec.name)
        self._remote = spec.resolved_protocol != "python" and function is None
        self._caller = self._make_caller(transport, clock, sleep, function)
        self._cache: ResultCache | None = None
        if spec.cache_size:
            ttl = spec.cache_ttl if spec.cache_ttl is not None else spec.update_frequency
            self._cache = ResultCache(spec.cache_size, ttl=ttl, clock=clock)
        self._tasks = spec.max_in_flight + self._caller.lookahead
        self._arrow = self._caller.takes_arrow and self._cache is None
        self._pool = _Workers(f"asaql-ml-{spec.name}", self._caller, spec.max_in_flight)

    def _make_caller(
        self,
        transport: httpx.BaseTransport | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        function: Callable[..., Any] | None,
    ) -> BatchCaller:
        if self.spec.resolved_protocol == "python" or function is not None:
            from asaql.ml.python_udf import PythonCaller

            return PythonCaller(self.spec, function=function, metrics=self.metrics)
        from asaql.ml.client import EndpointClient

        return EndpointClient(
            self.spec, transport=transport, clock=clock, sleep=sleep, metrics=self.metrics
        )

    def __repr__(self) -> str:
        return f"Scorer({self.spec!r}, on_error={self.on_error!r})"

    def score(self, rows: list[Any]) -> ScoredChunk:
        """Score one list of events (a convenience over :meth:`map`)."""
        return next(iter(self.map([rows])))

    def map(self, chunks: Iterable[list[Any] | pa.Array]) -> Iterator[ScoredChunk]:
        """Yield one ScoredChunk per chunk, in input order (see the module docstring)."""
        run = _Run(self, chunks)
        fast_switch = self._remote
        if fast_switch:
            _switch_interval.__enter__()
        try:
            yield from run.loop()
        finally:
            run.stop()
            if fast_switch:
                _switch_interval.__exit__()

    def close(self) -> None:
        self._pool.close()
        self._caller.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Run:
    """The state of one ``map`` call (lives on the caller's thread)."""

    def __init__(self, scorer: Scorer, chunks: Iterable[list[Any] | pa.Array]) -> None:
        spec = scorer.spec
        self.scorer = scorer
        self.batch_size = spec.batch_size
        self.max_in_flight = spec.max_in_flight
        self.max_tasks = scorer._tasks
        self.linger = spec.linger
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.slots: deque[_Slot] = deque()
        self.pending: deque[tuple[_Slot, int]] = deque()  # (slot, first unsent position)
        self.pending_count = 0
        self.in_flight = 0  # requests submitted and not yet answered
        self.input_done = False
        self.failed = False
        self.last_input = time.perf_counter()
        self.stopping = threading.Event()
        self.credits = threading.Semaphore(spec.prefetch)
        self.feeder = threading.Thread(
            target=self._feed, args=(chunks,), name=f"asaql-ml-{spec.name}-feed", daemon=True
        )
        self.feeder.start()

    # -- feeder thread ------------------------------------------------------------------------

    def _feed(self, chunks: Iterable[list[Any] | pa.Array]) -> None:
        iterator = iter(chunks)
        arrow = self.scorer._arrow
        try:
            while True:
                while not self.credits.acquire(timeout=0.05):
                    if self.stopping.is_set():
                        return
                if self.stopping.is_set():
                    return
                try:
                    chunk = next(iterator)
                except StopIteration:
                    self.events.put(("end",))
                    return
                if isinstance(chunk, pa.ChunkedArray):
                    chunk = chunk.combine_chunks()
                if isinstance(chunk, pa.Array) and not arrow:
                    chunk = _python_rows(chunk)
                self.events.put(("chunk", chunk))
        except BaseException as exc:  # noqa: BLE001 - forwarded to the caller's thread, raised there
            self.events.put(("error", exc))
        finally:
            if self.stopping.is_set() and hasattr(iterator, "close"):
                with contextlib.suppress(Exception):  # best effort while abandoning the input
                    iterator.close()

    # -- main loop ----------------------------------------------------------------------------

    def loop(self) -> Iterator[ScoredChunk]:
        while True:
            while self.slots and (self.slots[0].remaining == 0 or self._failed_head()):
                yield self._finish(self.slots.popleft())
            if self.input_done and not self.slots:
                return
            timeout = self._dispatch()
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                continue
            self._handle(event)
            while True:  # take everything that is already there before deciding again
                try:
                    event = self.events.get_nowait()
                except queue.Empty:
                    break
                self._handle(event)

    def _dispatch(self) -> float | None:
        """Send what should be sent now; return how long to wait for the next event."""
        if self.failed:
            return None
        while self.pending_count >= self.batch_size and self.in_flight < self.max_tasks:
            self._send(self.batch_size)  # full batches may also take the lookahead worker
        if not self.pending_count or self.in_flight >= self.max_tasks:
            return None
        if self.input_done:  # nothing more will come: flush everything
            while self.pending_count and self.in_flight < self.max_tasks:
                self._send(min(self.batch_size, self.pending_count))
            return None
        if self.in_flight >= self.max_in_flight:
            return None  # a partial batch only goes out when a connection is free
        waited = time.perf_counter() - self.last_input
        if waited >= self.linger:
            self._send(self.pending_count)
            return None
        return self.linger - waited

    def _handle(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "done":
            self._complete(event[1], event[2], event[3])
        elif kind == "chunk":
            self.last_input = time.perf_counter()
            self._intake(event[1])
        elif kind == "end":
            self.input_done = True
        elif kind == "error":
            raise event[1]

    def _intake(self, rows: list[Any] | pa.Array) -> None:
        if not isinstance(rows, list | pa.Array):
            rows = list(rows)
        slot = _Slot(rows)
        self.slots.append(slot)
        cache = self.scorer._cache
        if cache is not None and rows:
            self._answer_from_cache(cache, slot, rows)
        if slot.send:
            self.pending.append((slot, 0))
            self.pending_count += len(slot.send)
        else:
            self._release(slot)

    def _answer_from_cache(self, cache: ResultCache, slot: _Slot, rows: list[Any]) -> None:
        send: list[Any] = []
        index: list[int] = []
        keys: list[Hashable] = []
        hits = 0
        for position, row in enumerate(rows):
            key = cache.key(row)
            found, result = cache.get(key)
            if found:
                slot.values[position] = result
                hits += 1
            else:
                send.append(row)
                index.append(position)
                keys.append(key)
        slot.remaining -= hits
        slot.send, slot.index, slot.keys = send, index, keys
        if hits:
            self.scorer.metrics.record_cache_hits(hits)

    def _send(self, count: int) -> None:
        parts: list[tuple[_Slot, int, int]] = []
        pieces: list[list[Any] | pa.Array] = []
        while count:
            slot, start = self.pending[0]
            send = slot.send
            stop = min(len(send), start + count)
            parts.append((slot, start, stop))
            pieces.append(send if start == 0 and stop == len(send) else send[start:stop])
            count -= stop - start
            self.pending_count -= stop - start
            if stop == len(send):
                self.pending.popleft()
                self._release(slot)
            else:
                self.pending[0] = (slot, stop)
        rows = pieces[0] if len(pieces) == 1 else _concat(pieces)
        self.in_flight += 1
        self.scorer.metrics.in_flight = self.in_flight  # before the worker can start
        self.scorer._pool.submit(self, _Request(parts, rows), self.in_flight)

    def _release(self, slot: _Slot) -> None:
        if not slot.released:
            slot.released = True
            self.credits.release()

    def _complete(self, request: _Request, results: Any, exc: BaseException | None) -> None:
        self.in_flight -= 1
        self.scorer.metrics.in_flight = self.in_flight
        if exc is not None:
            if not isinstance(exc, AsaqlError):
                raise exc  # a bug, not an endpoint failure: the caller sees it
            error = exc if isinstance(exc, EndpointError) else EndpointError(exc.message)
            self._fail(request, error)
            return
        parts = request.parts
        if len(parts) == 1 and parts[0][0].index is None:  # the common case: no copies
            slot, start, stop = parts[0]
            if start == 0 and stop == len(slot.values) and self.scorer._remote:
                slot.values = results  # a fresh list decoded from the answer
            else:
                slot.values[start:stop] = results
            slot.remaining -= stop - start
            return
        offset = 0
        cache = self.scorer._cache
        for slot, start, stop in parts:
            size = stop - start
            chunk_results = results[offset : offset + size]
            if slot.index is None:
                slot.values[start:stop] = chunk_results
            else:
                for position, result in zip(slot.index[start:stop], chunk_results, strict=True):
                    slot.values[position] = result
                if cache is not None and slot.keys is not None:
                    for key, result in zip(slot.keys[start:stop], chunk_results, strict=True):
                        cache.put(key, result)
            slot.remaining -= size
            offset += size

    def _fail(self, request: _Request, error: EndpointError) -> None:
        if self.scorer.on_error == "raise":
            self.failed = True
        for slot, start, stop in request.parts:
            if slot.errors is None:
                slot.errors = [None] * len(slot.values)
            positions = range(start, stop) if slot.index is None else slot.index[start:stop]
            for position in positions:
                slot.errors[position] = error
            slot.remaining -= stop - start

    def _failed_head(self) -> bool:
        # raise mode: the head chunk has a failed event; nothing before it is outstanding
        return self.failed and self.slots[0].errors is not None

    def _finish(self, slot: _Slot) -> ScoredChunk:
        if slot.errors is not None and self.scorer.on_error == "raise":
            first = next(e for e in slot.errors if e is not None)
            raise first
        return ScoredChunk(slot.values, slot.errors)

    def stop(self) -> None:
        self.stopping.set()  # workers skip this run's requests that have not started
        self.credits.release()


class _Workers:
    """The ``max_in_flight`` threads that score submitted requests: a ThreadPoolExecutor
    without the Future, Condition and Semaphore it creates or takes per call (pure-Python
    locking that cost ~20 µs of GIL time per request); jobs and answers travel on C
    ``SimpleQueue``s.

    Each worker overlaps its next request with the one on the wire::

        prepare(A) ─ send(A) ─ prepare(B) ─ finish(A) ─ send(B) ─ prepare(C) ─ finish(B) ...
                        └── A on the wire ──┘              └── B on the wire ──┘

    taking B from the queue only when no worker is idle and the queue holds a job for every
    worker (else B may be the next job of a worker about to be free), so at most one request
    per worker is on the wire and none waits behind another worker's answer while a worker is
    free. With one request in flight (where it matters most) every next job is prepared ahead. Against a fast server this keeps encoding off the
    critical path without the extra thread, wake-up and hand-over of a shared lookahead
    worker (each wake-up of a waiting thread costs ~15 µs of CPU on the bench box). Callers
    with ``lookahead == 0`` (local Python functions) take one job at a time.

    A thread is started when more requests are outstanding than there are threads, up to
    ``limit``. A job of a run that has stopped (the caller left ``map``) is skipped; ``close``
    skips what is still queued and waits for the running calls to return.
    """

    def __init__(self, name: str, caller: BatchCaller, limit: int) -> None:
        self._name = name
        self._caller = caller
        self._ahead = caller.lookahead > 0
        self._limit = limit
        self._jobs: queue.SimpleQueue[tuple[_Run, _Request] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a job
        self._idle_lock = threading.Lock()
        self._closed = False

    def submit(self, run: _Run, request: _Request, outstanding: int) -> None:
        if self._closed:
            raise RuntimeError("the scorer is closed")
        if outstanding > len(self._threads) < self._limit:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._jobs.put((run, request))

    def _next(self, block: bool) -> tuple[_Run, _Request] | None:
        """A job to prepare: waiting for one (``block``), or one already queued that no idle
        worker is about to take; None when there is none. Raises _Exit at the sentinel."""
        jobs = self._jobs
        if block:
            with self._idle_lock:
                self._idle += 1
            try:
                job = jobs.get()
            finally:
                with self._idle_lock:
                    self._idle -= 1
        else:
            # ahead only when the queue holds work for every worker: otherwise a worker that
            # is just finishing could go idle while this one holds the job it would send now
            if self._idle or jobs.qsize() < self._limit:
                return None
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                return None
        if job is None:
            raise _Exit
        return job

    def _prepare(self, job: tuple[_Run, _Request]) -> tuple[_Run, _Request, Any] | None:
        run, request = job
        if self._closed or run.stopping.is_set():
            return None
        try:
            return run, request, self._caller.prepare(request.rows)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            run.events.put(("done", request, None, exc))
            return None

    def _work(self) -> None:
        caller = self._caller
        held: tuple[_Run, _Request, Any] | None = None
        exiting = False
        while True:
            if held is None:
                if exiting:
                    return
                try:
                    held = self._prepare(self._next(block=True))  # type: ignore[arg-type]
                except _Exit:
                    return
                continue
            run, request, call = held
            held = None
            if self._closed or run.stopping.is_set():
                continue
            try:
                caller.send(call)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                run.events.put(("done", request, None, exc))
                continue
            if self._ahead and not exiting:
                try:
                    job = self._next(block=False)
                except _Exit:
                    exiting = True
                else:
                    if job is not None:
                        held = self._prepare(job)
            try:
                results = caller.finish(call)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                run.events.put(("done", request, None, exc))
            else:
                run.events.put(("done", request, results, None))

    def close(self) -> None:
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()


class _Exit(Exception):
    """The close sentinel came out of the job queue."""


_SLICE = 4096


def _python_rows(arg: pa.Array) -> list[Any]:
    """The array's Python values, converted a slice at a time (see the module docstring)."""
    if len(arg) <= _SLICE:
        return python_rows(arg)
    rows: list[Any] = []
    for start in range(0, len(arg), _SLICE):
        rows.extend(python_rows(arg.slice(start, _SLICE)))
    return rows


def _concat(pieces: list[list[Any] | pa.Array]) -> list[Any] | pa.Array:
    """One request's rows from the pieces of several chunks."""
    if all(isinstance(p, pa.Array) for p in pieces):
        try:
            return pa.concat_arrays(pieces)  # type: ignore[arg-type]
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # chunks typed differently
            pass
    return list(chain.from_iterable(python_rows(p) for p in pieces))
