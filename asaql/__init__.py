"""asaql: Azure Stream Analytics queries, locally, on Apache Arrow.

>>> import asaql
>>> result = asaql.run(
...     "SELECT deviceId, temperature * 2 AS doubled FROM iot WHERE temperature > 20",
...     inputs={"iot": [{"deviceId": "a", "temperature": 21}, {"deviceId": "b", "temperature": 5}]},
... )
>>> result["output"].to_pylist()
[{'deviceId': 'a', 'doubled': 42}]
"""

from __future__ import annotations

from typing import Any

from asaql.config import Options
from asaql.errors import (
    AsaqlError,
    AsaqlSyntaxError,
    BindError,
    ConfigError,
    DataError,
    Diagnostic,
    EndpointError,
    ExecutionError,
    InternalError,
    QueryError,
    Span,
)
from asaql.session import Job, RunResult, Session

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
    "Job",
    "Options",
    "QueryError",
    "RunResult",
    "Session",
    "Span",
    "compile",
    "parse",
    "run",
]

__version__ = "0.1.0"


def parse(text: str) -> Any:
    """Parse SAQL text into an AST (``asaql.sql.ast.Script``)."""
    from asaql.sql.parser import parse as _parse

    return _parse(text)


def compile(  # noqa: A001 - the natural name for "compile a query"
    text: str,
    *,
    inputs: dict[str, Any] | None = None,
    references: dict[str, Any] | None = None,
    functions: dict[str, Any] | None = None,
    options: Options | None = None,
) -> Job:
    """Compile ``text`` against inputs (paths, pyarrow tables or lists of dicts)."""
    session = Session(options)
    for name, data in (inputs or {}).items():
        session.add_input(name, data)
    for name, data in (references or {}).items():
        session.add_reference(name, data)
    for name, spec in (functions or {}).items():
        session.add_function(name, spec)
    return session.compile(text)


def run(text: str, **kwargs: Any) -> RunResult:
    """Compile and run ``text``; returns one pyarrow Table per output."""
    return compile(text, **kwargs).run()
