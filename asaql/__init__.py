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

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from asaql.compiled import Job
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
from asaql.inputs import InputData
from asaql.result import ResultStream, RunResult
from asaql.session import Session

if TYPE_CHECKING:
    from asaql.sql.ast import Script

__all__ = [
    "AsaqlError",
    "AsaqlSyntaxError",
    "BindError",
    "ConfigError",
    "DataError",
    "Diagnostic",
    "EndpointError",
    "ExecutionError",
    "InputData",
    "InternalError",
    "Job",
    "Options",
    "QueryError",
    "ResultStream",
    "RunResult",
    "Session",
    "Span",
    "compile",
    "parse",
    "run",
    "udf",
]

__version__ = "0.1.0"

F = TypeVar("F", bound=Callable[..., Any])


def parse(text: str) -> Script:
    """Parse SAQL text into an AST (``asaql.sql.ast.Script``); raises ``AsaqlSyntaxError``."""
    from asaql.sql.parser import parse as _parse

    return _parse(text)


def compile(
    text: str,
    *,
    inputs: Mapping[str, InputData] | None = None,
    references: Mapping[str, InputData] | None = None,
    functions: Mapping[str, Any] | None = None,
    options: Options | None = None,
    **settings: Any,
) -> Job:
    """Compile ``text`` into a :class:`Job` that runs any number of times.

    Args:
        text: the query.
        inputs: stream inputs by name (what ``Session.add_input`` takes: paths, pyarrow
            tables, lists of dicts, iterators).
        references: reference data by name.
        functions: ``udf.<name>`` functions by name (what ``Session.add_function`` takes).
        options: run options; ``settings`` are Options fields that override them
            (``batch_size=``, ``job_config=``, ``on_data_error=``, ``clock=``, ...).

    Raises:
        QueryError: the query is wrong (with a span: line and column).
        ConfigError: an option or a function definition is invalid.
    """
    session = Session(options, **settings)
    for name, data in (inputs or {}).items():
        session.add_input(name, data)
    for name, data in (references or {}).items():
        session.add_reference(name, data)
    for name, spec in (functions or {}).items():
        session.add_function(name, spec)
    return session.compile(text)


def run(
    text: str,
    *,
    inputs: Mapping[str, InputData] | None = None,
    references: Mapping[str, InputData] | None = None,
    functions: Mapping[str, Any] | None = None,
    options: Options | None = None,
    sinks: dict[str, Any] | None = None,
    **settings: Any,
) -> RunResult:
    """Compile and run ``text`` (arguments as for :func:`compile`; ``sinks`` as for
    ``Job.run``); returns one pyarrow Table per output."""
    job = compile(text, inputs=inputs, references=references, functions=functions, options=options,
                  **settings)
    return job.run(sinks)


def udf(name: str | None = None, *, batch: bool = True, arrow: bool = False) -> Callable[[F], F]:
    """Register a Python scoring function as ``python:<name>`` (default: the function's name).

    It receives a list of rows (``batch=False``: one row per call; ``arrow=True``: a pyarrow
    Table) and returns one result per row. Give it to ``Session.add_function(alias, fn)`` or
    as ``"python:<name>"``; see :mod:`asaql.ml.python_udf`.
    """
    from asaql.ml.python_udf import udf as _udf

    return _udf(name, batch=batch, arrow=arrow)
