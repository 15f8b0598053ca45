"""Errors, source spans and diagnostics.

Every user-facing failure is an :class:`AsaqlError`. The tree::

    AsaqlError
    ├── QueryError              something is wrong with the query text (has a Span)
    │   ├── AsaqlSyntaxError    the parser rejected the text
    │   └── BindError           names, types, functions, clause rules (binder / validator)
    ├── DataError               an event or a file could not be read or converted
    ├── ExecutionError          the job stopped while running (a CAST failed, ...)
    │   └── EndpointError       an ML endpoint answered with an error (key masked)
    ├── ConfigError             a job file, function definition or option is invalid
    └── InternalError           a bug in asaql

``render()`` is the only formatter: the CLI, the REPL and the library all use it, so a user
sees the same caret display everywhere::

    error[unknown_column]: unknown column 'temprature'
     --> query.asaql:2:12
      |
    2 | SELECT temprature FROM iot
      |        ^^^^^^^^^^
      = help: did you mean 'temperature'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "AsaqlError",
    "AsaqlSyntaxError",
    "BindError",
    "ConfigError",
    "DataError",
    "Diagnostic",
    "EndpointError",
    "ExecutionError",
    "InternalError",
    "QueryError",
    "Span",
    "did_you_mean",
]


@dataclass(frozen=True, slots=True)
class Span:
    """A range of query text: 1-based line/column of the first character, 0-based offsets.

    ``end`` is exclusive. ``Span.none()`` is used for nodes synthesized by the planner.
    """

    start: int
    end: int
    line: int
    column: int
    end_line: int = 0
    end_column: int = 0

    @staticmethod
    def none() -> Span:
        return _NO_SPAN

    @property
    def is_known(self) -> bool:
        return self.line > 0

    def merge(self, other: Span) -> Span:
        if not self.is_known:
            return other
        if not other.is_known:
            return self
        first, last = (self, other) if self.start <= other.start else (other, self)
        return Span(
            first.start,
            max(self.end, other.end),
            first.line,
            first.column,
            last.end_line,
            last.end_column,
        )

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}" if self.is_known else "<unknown>"


_NO_SPAN = Span(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One message about the query: an error, a warning or an extension note."""

    severity: str  # "error" | "warning" | "note"
    code: str
    message: str
    span: Span = field(default_factory=Span.none)
    help: str | None = None

    def render(self, source: str | None = None, filename: str = "query") -> str:
        return _render(self.severity, self.code, self.message, self.span, self.help, source, filename)


def _render(
    severity: str,
    code: str,
    message: str,
    span: Span,
    help_text: str | None,
    source: str | None,
    filename: str,
) -> str:
    head = f"{severity}[{code}]: {message}"
    if not span.is_known or source is None:
        where = f"\n --> {filename}:{span.line}:{span.column}" if span.is_known else ""
        tail = f"\n  = help: {help_text}" if help_text else ""
        return head + where + tail
    lines = source.splitlines() or [""]
    line_text = lines[span.line - 1] if span.line - 1 < len(lines) else ""
    gutter = " " * len(str(span.line))
    if span.end_line in (0, span.line) and span.end > span.start:
        width = max(1, span.end - span.start)
    else:
        width = max(1, len(line_text) - span.column + 1)
    width = min(width, max(1, len(line_text) - span.column + 1))
    out = [
        head,
        f"{gutter}--> {filename}:{span.line}:{span.column}",
        f"{gutter} |",
        f"{span.line} | {line_text}",
        f"{gutter} | {' ' * (span.column - 1)}{'^' * width}",
    ]
    if help_text:
        out.append(f"{gutter} = help: {help_text}")
    return "\n".join(out)


class AsaqlError(Exception):
    """Root of every error asaql raises on purpose."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        span: Span | None = None,
        code: str | None = None,
        help: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span or Span.none()
        if code:
            self.code = code
        self.help = help

    def render(self, source: str | None = None, filename: str = "query") -> str:
        return _render("error", self.code, self.message, self.span, self.help, source, filename)

    def diagnostic(self) -> Diagnostic:
        return Diagnostic("error", self.code, self.message, self.span, self.help)


class QueryError(AsaqlError):
    """The query text is wrong; always carries a span."""

    code = "query_error"


class AsaqlSyntaxError(QueryError):
    code = "syntax_error"


class BindError(QueryError):
    code = "bind_error"


class DataError(AsaqlError):
    """An event could not be read or converted. Carries the input, line and field."""

    code = "data_error"

    def __init__(
        self,
        message: str,
        *,
        input_name: str | None = None,
        path: str | None = None,
        line: int | None = None,
        field_name: str | None = None,
        code: str | None = None,
        span: Span | None = None,
        event: int | None = None,
    ) -> None:
        where = []
        if input_name:
            where.append(f"input '{input_name}'")
        if path:
            where.append(f"file {path}")
        if line is not None:
            where.append(f"line {line}")
        elif event is not None:
            where.append(f"event {event}")
        if field_name:
            where.append(f"field '{field_name}'")
        full = f"{message} ({', '.join(where)})" if where else message
        super().__init__(full, code=code, span=span)
        self.input_name = input_name
        self.path = path
        self.line = line
        self.field_name = field_name
        self.event = event  # 1-based position of the event in its input, when the line is unknown


class ExecutionError(AsaqlError):
    """The job stopped while running (a failed CAST, a wrong argument type, ...)."""

    code = "runtime_error"


class EndpointError(ExecutionError):
    """An ML endpoint call failed. The message never contains the API key."""

    code = "endpoint_error"

    def __init__(self, message: str, *, status: int | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.status = status


class ConfigError(AsaqlError):
    code = "config_error"


class InternalError(AsaqlError):
    """A bug in asaql: please report it."""

    code = "internal_error"

    def __init__(self, message: str, **kwargs: object) -> None:
        super().__init__(f"{message} (this is a bug in asaql)", **kwargs)  # type: ignore[arg-type]


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return a "did you mean" hint for the closest candidate, case-insensitively.

    >>> did_you_mean("temprature", ["temperature", "humidity"])
    "did you mean 'temperature'?"
    """
    by_lower = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"did you mean '{by_lower[match[0]]}'?" if match else None
