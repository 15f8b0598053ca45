"""Per-endpoint counters: requests, events, failures, retries, cache hits, latency percentiles.

Updated once per request (never per event) under a lock, since requests complete on worker
threads. Nothing here ever holds a key or a URL with secrets.

>>> m = EndpointMetrics("score")
>>> m.record_request(events=10, latency=0.020, ok=True, retries=1)
>>> m.as_dict()["events"], m.as_dict()["retries"]
(10, 1)
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["EndpointMetrics"]

_SAMPLES = 100_000  # latency samples kept (the most recent)


class EndpointMetrics:
    """Counters for one endpoint; ``as_dict()`` and ``summary()`` report them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.events = 0
        self.failed_requests = 0
        self.failed_events = 0
        self.retries = 0
        self.cache_hits = 0
        self.in_flight = 0  # requests being encoded or on the wire now (shown by the progress line)
        self._latencies: deque[float] = deque(maxlen=_SAMPLES)
        self._lock = threading.Lock()

    def record_request(self, *, events: int, latency: float, ok: bool, retries: int) -> None:
        with self._lock:
            self.requests += 1
            self.events += events
            self.retries += retries
            if ok:
                self._latencies.append(latency)
            else:
                self.failed_requests += 1
                self.failed_events += events

    def record_cache_hits(self, count: int) -> None:
        with self._lock:
            self.cache_hits += count

    def percentile(self, q: float) -> float | None:
        """Latency (seconds) at quantile ``q`` in [0, 1] over successful requests."""
        with self._lock:
            samples = sorted(self._latencies)
        if not samples:
            return None
        index = min(len(samples) - 1, max(0, round(q * (len(samples) - 1))))
        return samples[index]

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.name,
            "requests": self.requests,
            "events": self.events,
            "failed_requests": self.failed_requests,
            "failed_events": self.failed_events,
            "retries": self.retries,
            "cache_hits": self.cache_hits,
            "latency_p50_ms": _ms(self.percentile(0.50)),
            "latency_p90_ms": _ms(self.percentile(0.90)),
            "latency_p99_ms": _ms(self.percentile(0.99)),
        }

    def summary(self) -> str:
        """One line for the end of a run."""
        d = self.as_dict()
        lat = "-" if d["latency_p50_ms"] is None else (
            f"p50 {d['latency_p50_ms']} ms, p90 {d['latency_p90_ms']} ms, "
            f"p99 {d['latency_p99_ms']} ms"
        )
        return (
            f"endpoint {self.name}: {d['requests']} requests, {d['events']} events, "
            f"{d['failed_requests']} failed requests, {d['retries']} retries, "
            f"{d['cache_hits']} cache hits, latency {lat}"
        )

    def __repr__(self) -> str:
        return f"EndpointMetrics({self.as_dict()!r})"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
