"""Typed run options (configuration only; the runtime state is built from it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Options"]


@dataclass(frozen=True, kw_only=True)
class Options:
    """How a query runs.

    Attributes:
        batch_size: rows per record batch read from an input.
        optimize: apply the plan rewrites (filter and projection pushdown).
        on_data_error: 'skip' (report, count and drop a malformed event; ASA's behaviour) or
            'stop' (fail the job at the first malformed event).
        strict: reject asaql extensions (TryEvaluate, GETUTCDATE, JOIN ... INTO, STRING).
        clock: the wall clock (GETUTCDATE, EventProcessedUtcTime); injectable for tests.
        job_config: ASA JobConfig.json settings (event ordering policies, ...).
        ml_transport: an httpx transport for every ML endpoint (tests use MockTransport).
    """

    batch_size: int = 65536
    optimize: bool = True
    on_data_error: str = "skip"
    strict: bool = False
    clock: Callable[[], dt.datetime] | None = None
    job_config: dict[str, Any] = field(default_factory=dict)
    ml_transport: Any = None

    def with_(self, **changes: Any) -> Options:
        return replace(self, **changes)
