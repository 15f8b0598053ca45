"""A bounded LRU cache of results keyed by an event's argument value, with a time to live.

The key is the canonical JSON of the argument (sorted keys), so two events with the same
payload share one result until ``ttl`` seconds pass (the endpoint's update frequency: after a
model switch old answers expire). Only successful results are stored. Thread-safe, because
results are stored by worker threads.

>>> now = [0.0]
>>> cache = ResultCache(2, ttl=10.0, clock=lambda: now[0])
>>> cache.put(cache.key({"t": 1}), 0.5)
>>> cache.get(cache.key({"t": 1}))
(True, 0.5)
>>> now[0] = 11.0
>>> cache.get(cache.key({"t": 1}))
(False, None)
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["ResultCache"]


class ResultCache:
    """LRU of ``key -> (stored_at, result)``; at most ``size`` entries, each valid ``ttl`` s."""

    def __init__(
        self, size: int, *, ttl: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(value: Any) -> Hashable:
        if isinstance(value, str | int | float | bool) or value is None:
            return (type(value).__name__, value)
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)

    def get(self, key: Hashable) -> tuple[bool, Any]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            stored_at, result = entry
            if self.ttl is not None and self._clock() - stored_at >= self.ttl:
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, result

    def put(self, key: Hashable, result: Any) -> None:
        with self._lock:
            self._entries[key] = (self._clock(), result)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
