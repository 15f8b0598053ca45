"""What flows between operators, and the context they share.

An operator is a pull-based iterator of :data:`Item`: Arrow record batches interleaved with
:class:`Watermark` markers. A watermark promises that no later batch on that stream carries an
event time at or before it; a finite input ends with ``Watermark.END``.

Row layout inside the engine (between Scan and Project)::

    | <scope 1> struct | <scope 2> struct | ... | __ts timestamp[us, UTC] |

one record-valued column per alias (input, WITH step, APPLY, ML result), plus the event time.
``Project`` turns that into the flat columns of a step or an output, still with ``__ts``;
sinks drop ``__ts``.

Operators yield a batch for every batch they pull, even an empty one: an input read by several
statements is shared (see ``physical.Builder.scan``), and the runtime pulls each output one
item at a time, so a statement that filters everything out must not race ahead and make the
other readers buffer the whole input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from asaql.errors import DataError

__all__ = ["TS", "ExecContext", "Item", "Metrics", "Watermark", "batch_items"]

TS = "__ts"
ML_ERROR_PREFIX = "__mlerr."


@dataclass(frozen=True, slots=True)
class Watermark:
    """Event-time progress marker: no later event on this stream has time <= ``time``."""

    time: dt.datetime

    END: ClassVar[Watermark]  # set below

    @property
    def is_end(self) -> bool:
        return self.time == dt.datetime.max.replace(tzinfo=dt.timezone.utc)


Watermark.END = Watermark(dt.datetime.max.replace(tzinfo=dt.timezone.utc))  # type: ignore[misc]

Item = pa.RecordBatch | Watermark


@dataclass
class Metrics:
    """Counters for a run: per input and output, and what was dropped or adjusted."""

    events_in: dict[str, int] = field(default_factory=dict)
    events_out: dict[str, int] = field(default_factory=dict)
    data_errors: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    adjusted: dict[str, int] = field(default_factory=dict)
    endpoints: dict[str, Any] = field(default_factory=dict)
    #: event-time progress: the lowest watermark the outputs have passed (None before any)
    watermark: dt.datetime | None = None

    def add(self, table: dict[str, int], key: str, n: int) -> None:
        table[key] = table.get(key, 0) + n

    def as_dict(self) -> dict[str, Any]:
        endpoints = {
            name: (m.as_dict() if hasattr(m, "as_dict") else m) for name, m in self.endpoints.items()
        }
        return {
            "events_in": dict(self.events_in),
            "events_out": dict(self.events_out),
            "data_errors": self.data_errors,
            "dropped": dict(self.dropped),
            "adjusted": dict(self.adjusted),
            "endpoints": endpoints,
        }


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class ExecContext:
    """Shared by every operator of one run."""

    batch_size: int = 65536
    clock: Callable[[], dt.datetime] = _utcnow
    on_data_error: str = "skip"  # skip | stop
    metrics: Metrics = field(default_factory=Metrics)
    report: Callable[[str], None] = lambda message: None
    options: Any = None
    start_time: dt.datetime = field(default_factory=_utcnow)

    def data_error(self, error: DataError) -> None:
        """Apply the bad-data policy: count and report, then stop or skip."""
        self.metrics.data_errors += 1
        if self.on_data_error == "stop":
            raise error
        self.report(f"warning: skipped malformed event: {error.message}")


def batch_items(items: Iterator[Item]) -> Iterator[pa.RecordBatch]:
    """Only the record batches of a stream (drops watermarks)."""
    for item in items:
        if isinstance(item, pa.RecordBatch):
            yield item
