"""Watching a job: a live progress line while ``asaql run`` works, and the summary after it.

* :class:`Watch` wraps a compiled job so that the run uses a context it can read
  (``ctx.metrics``), times the run, and — when ``show`` is true — keeps one ``rich`` line on
  stderr up to date (events in, events out, events/s, the watermark when the engine exposes
  one, ML requests in flight when an endpoint exposes them). The line is transient: it is
  gone when the run ends, and it is never drawn when stderr is not a terminal.
* :func:`summary` is the end-of-run report as a dict (the ``--metrics-json`` document) and
  :func:`summary_lines` the same for people.

``--metrics-json FILE`` document (every key always present)::

    {
      "status": "ok",                 # "failed" (then "error" holds the message), "interrupted" (Ctrl-C)
      "error": null,
      "elapsed_seconds": 0.41,
      "events_in": {"events": 40, "devices": 4},    # per input (reference data included)
      "events_out": {"alerts": 1},                  # per output
      "totals": {"events_in": 44, "events_out": 1, "events_per_second": 107.3},
      "data_errors": 0,               # malformed events skipped (bad-data policy "skip")
      "dropped": {"events": 2},       # per input or reason: late/out-of-order events dropped
      "adjusted": {"events": 3},      # per input: event times adjusted by the ordering policy
      "failed_events": 0,             # data_errors + events whose ML request failed
      "endpoints": {"score": {"endpoint": "score", "requests": 3, "events": 40,
                              "failed_requests": 0, "failed_events": 0, "retries": 0,
                              "cache_hits": 0, "latency_p50_ms": 2.1,
                              "latency_p90_ms": 3.0, "latency_p99_ms": 3.4}},
      "watermark": null               # last event-time watermark, when the engine reports one
    }
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["Watch", "progress_line", "summary", "summary_lines"]


class Watch:
    """Context manager around one run of ``compiled`` (a :class:`asaql.compiled.Job`).

    Use ``watch.job`` where the job is run: it is the same job, bound to ``watch.ctx``.
    """

    def __init__(self, compiled: Any, *, show: bool, stream: IO[str] | None = None,
                 refresh_per_second: float = 4.0) -> None:
        self.compiled = compiled
        self.ctx = compiled.context()
        self.show = show
        self.stream = stream or sys.stderr
        self.refresh = refresh_per_second
        self.started = time.perf_counter()
        self.ended: float | None = None
        self._live: Any = None
        self.job = _BoundJob(compiled, self.ctx)

    @property
    def metrics(self) -> Any:
        return self.ctx.metrics

    @property
    def elapsed(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def __enter__(self) -> Watch:
        self.started = time.perf_counter()
        if self.show:
            from rich.console import Console
            from rich.live import Live
            from rich.text import Text

            console = Console(file=self.stream, highlight=False)
            self._live = Live(console=console, transient=True, refresh_per_second=self.refresh,
                              redirect_stdout=False, redirect_stderr=True,
                              get_renderable=lambda: Text(self.line(), style="dim"))
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ended = time.perf_counter()
        if self._live is not None:
            self._live.stop()
            self._live = None

    def line(self) -> str:
        try:
            return progress_line(self.ctx, self.elapsed)
        except RuntimeError:  # a dict changed size while the run thread updated it
            return "running…"


class _BoundJob:
    """The compiled job with its run bound to one context (what CliJob.execute calls)."""

    def __init__(self, job: Any, ctx: Any) -> None:
        self._job, self._ctx = job, ctx

    @property
    def output_names(self) -> list[str]:
        return list(self._job.output_names)

    def run(self, sinks: dict[str, Any] | None = None) -> Any:
        return self._job.run(sinks, ctx=self._ctx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)


def _watermark(ctx: Any) -> Any:
    for owner in (ctx, getattr(ctx, "metrics", None)):
        wm = getattr(owner, "watermark", None)
        if wm is not None:
            inner = getattr(wm, "time", None)  # a Watermark carries .time; a datetime is itself
            return inner if isinstance(inner, dt.datetime) else wm
    return None


def _in_flight(endpoints: dict[str, Any]) -> int | None:
    found = None
    for m in list(endpoints.values()):
        n = getattr(m, "in_flight", None)
        if isinstance(n, int):
            found = (found or 0) + n
    return found


def _fmt_time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.year >= 9999:
            return "end"
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def progress_line(ctx: Any, elapsed: float) -> str:
    """The live line, e.g. ``events in 12,000 · out 310 · 24,000 ev/s · watermark
    2024-05-14T12:03:00Z · ML in flight 2 · 0.5 s``.

    >>> from asaql.exec.operator import ExecContext
    >>> ctx = ExecContext(); ctx.metrics.events_in["iot"] = 1000; ctx.metrics.events_out["out"] = 5
    >>> progress_line(ctx, 2.0)
    'events in 1,000 · out 5 · 500 ev/s · 2.0 s'
    """
    m = ctx.metrics
    ins = sum(dict(m.events_in).values())
    outs = sum(dict(m.events_out).values())
    parts = [f"events in {ins:,}", f"out {outs:,}", f"{ins / elapsed if elapsed > 0 else 0:,.0f} ev/s"]
    wm = _watermark(ctx)
    if wm is not None:
        parts.append(f"watermark {_fmt_time(wm)}")
    flying = _in_flight(dict(m.endpoints))
    if flying is not None:
        parts.append(f"ML in flight {flying}")
    elif m.endpoints:
        reqs = sum(getattr(e, "requests", 0) for e in list(m.endpoints.values()))
        parts.append(f"ML requests {reqs:,}")
    if m.data_errors:
        parts.append(f"malformed {m.data_errors:,}")
    parts.append(f"{elapsed:.1f} s")
    return " · ".join(parts)


def summary(metrics: Any, *, elapsed: float | None = None, error: BaseException | None = None,
            ctx: Any = None) -> dict[str, Any]:
    """The run summary as a dict: :class:`~asaql.exec.operator.Metrics` ``as_dict()`` plus
    status, timing, totals and failed events (the ``--metrics-json`` document)."""
    data = metrics.as_dict()
    total_in = sum(data["events_in"].values())
    total_out = sum(data["events_out"].values())
    failed_ml = sum(int(e.get("failed_events") or 0) for e in data["endpoints"].values() if isinstance(e, dict))
    wm = _watermark(ctx) if ctx is not None else None
    status = "ok" if error is None else "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
    return {
        "status": status,
        "error": None if error is None else str(getattr(error, "message", error)) or status,
        "elapsed_seconds": None if elapsed is None else round(elapsed, 3),
        **data,
        "totals": {
            "events_in": total_in,
            "events_out": total_out,
            "events_per_second": None if not elapsed else round(total_in / elapsed, 1),
        },
        "failed_events": data["data_errors"] + failed_ml,
        "watermark": None if wm is None else _fmt_time(wm),
    }


def _pairs(table: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in table.items())


def summary_lines(data: dict[str, Any], *, verbose: bool = False) -> Iterator[str]:
    """The summary for people, one ``asaql:`` line per topic.

    >>> d = {"events_in": {"iot": 3}, "events_out": {"output": 2}, "data_errors": 1, "dropped": {},
    ...      "adjusted": {"iot": 1}, "endpoints": {}, "elapsed_seconds": 0.5, "failed_events": 1,
    ...      "totals": {"events_in": 3, "events_out": 2, "events_per_second": 6.0}, "watermark": None}
    >>> print("\\n".join(summary_lines(d, verbose=True)))
    asaql: events in: iot 3; out: output 2
    asaql: malformed events skipped: 1; adjusted: iot 1
    asaql: 0.500 s, 6 events/s in, 1 failed event(s)
    """
    yield f"asaql: events in: {_pairs(data['events_in']) or 'none'}; out: {_pairs(data['events_out']) or 'none'}"
    problems = []
    if data["data_errors"]:
        problems.append(f"malformed events skipped: {data['data_errors']:,}")
    for kind in ("dropped", "adjusted"):
        if data[kind]:
            problems.append(f"{kind}: {_pairs(data[kind])}")
    if problems:
        yield "asaql: " + "; ".join(problems)
    for name, e in data["endpoints"].items():
        yield "asaql: " + _endpoint_line(name, e, verbose)
    if verbose:
        rate = data["totals"]["events_per_second"]
        timing = f"{data['elapsed_seconds']:.3f} s" if data.get("elapsed_seconds") is not None else "-"
        line = f"asaql: {timing}, {rate:,.0f} events/s in" if rate is not None else f"asaql: {timing}"
        line += f", {data['failed_events']:,} failed event(s)"
        if data.get("watermark"):
            line += f", last watermark {data['watermark']}"
        yield line


def _endpoint_line(name: str, e: Any, verbose: bool) -> str:
    if not isinstance(e, dict):
        return f"endpoint {name}: {e}"
    text = (f"endpoint {name}: {e.get('requests', 0):,} requests, {e.get('events', 0):,} events, "
            f"{e.get('failed_requests', 0):,} failed requests ({e.get('failed_events', 0):,} events), "
            f"{e.get('retries', 0):,} retries")
    if e.get("cache_hits"):
        text += f", {e['cache_hits']:,} cache hits"
    if e.get("latency_p50_ms") is not None:
        text += f", latency p50 {e['latency_p50_ms']} ms"
        if verbose:
            text += f" p90 {e.get('latency_p90_ms')} ms p99 {e.get('latency_p99_ms')} ms"
    return text
