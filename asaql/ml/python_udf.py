"""Local Python scoring through the same Scorer (protocol ``python``).

A model that runs in-process is a Python function that receives a whole batch of events and
returns one result per event, in order. It is named in an endpoint spec by ``url``:

* ``python:package.module:function`` — imported on first use, or
* ``python:<name>`` — a function registered with the :func:`udf` decorator, or with
  :func:`register` (what ``Session.add_function(alias, callable)`` does, under a key of its
  own that :func:`unregister` releases).

``batch=True`` (default) functions receive a list of rows (dicts for record arguments);
``arrow=True`` ones receive a ``pyarrow.Table`` (record rows become columns; scalar rows a
single column ``value``) and may return a list, a pyarrow array or a numpy array.
``batch=False`` functions are called once per row (inside the worker thread). Functions run on
the Scorer's worker pool, so ``max_in_flight > 1`` only helps code that releases the GIL
(numpy, scikit-learn's native parts, ONNX Runtime).

>>> @udf("double_x")
... def double_x(rows):
...     return [r["x"] * 2 for r in rows]
>>> from asaql.ml.endpoint import EndpointSpec
>>> from asaql.ml.scorer import Scorer
>>> with Scorer(EndpointSpec(name="d", url="python:double_x")) as scorer:
...     scorer.score([{"x": 1}, {"x": 2}]).values
[2, 4]
"""

from __future__ import annotations

import importlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from asaql.errors import ConfigError, EndpointError
from asaql.ml.endpoint import EndpointSpec
from asaql.ml.metrics import EndpointMetrics

__all__ = [
    "PythonCaller",
    "PythonFunction",
    "register",
    "registered",
    "resolve_function",
    "udf",
    "unregister",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PythonFunction:
    name: str
    function: Callable[..., Any]
    batch: bool = True
    arrow: bool = False


_REGISTRY: dict[str, PythonFunction] = {}
# Reentrant: a Session's finalizer (garbage collection, see ``unregister``) may run in a thread
# that already holds it.
_LOCK = threading.RLock()
_SEQUENCE = itertools.count(1)  # makes the keys of ``register(key=None)`` unique


def udf(name: str | None = None, *, batch: bool = True, arrow: bool = False) -> Callable[[F], F]:
    """Register a scoring function under ``name`` (default: the function's own name)."""

    def decorate(function: F) -> F:
        key = (name or function.__name__).lower()
        with _LOCK:
            _REGISTRY[key] = PythonFunction(key, function, batch=batch, arrow=arrow)
        return function

    return decorate


def register(function: Callable[..., Any], *, key: str | None = None, name: str | None = None,
             batch: bool | None = None, arrow: bool | None = None) -> str:
    """Register ``function`` for ``python:<key>`` and return the key.

    Args:
        function: the scoring function.
        key: the name to register it under (lower-cased); by default a new, unique one made
            from ``name`` (``"<name>.<n>"``), so that registrations never replace each other.
        name: the name errors give the function (default: the key; lower-cased).
        batch: called with a list of rows (default: as the :func:`udf` decorator gave it, else
            True).
        arrow: called with a pyarrow Table (default: as the decorator gave it, else False).

    Returns:
        The key; ``unregister(key)`` releases it.

    >>> key = register(lambda rows: rows, name="Echo")
    >>> key.startswith("echo.") and registered()[key].name
    'echo'
    >>> unregister(key)
    >>> key in registered()
    False
    """
    decorated = _decorated(function)
    display = (name or key or function.__name__).lower()
    key = key.lower() if key else f"{display}.{next(_SEQUENCE)}"
    entry = PythonFunction(
        display, function,
        batch=batch if batch is not None else decorated.batch if decorated else True,
        arrow=arrow if arrow is not None else decorated.arrow if decorated else False)
    with _LOCK:
        _REGISTRY[key] = entry
    return key


def unregister(key: str) -> None:
    """Forget the function registered under ``key`` (nothing happens when there is none)."""
    with _LOCK:
        _REGISTRY.pop(key.lower(), None)


def _decorated(function: Callable[..., Any]) -> PythonFunction | None:
    """The :func:`udf` registration of ``function`` (its options), if it has one."""
    with _LOCK:
        return next((f for key, f in _REGISTRY.items() if f.function is function and key == f.name),
                    None)


def registered() -> dict[str, PythonFunction]:
    """A snapshot of the registered functions (lower-cased names)."""
    with _LOCK:
        return dict(_REGISTRY)


def resolve_function(reference: str, *, arrow: bool = False) -> PythonFunction:
    """Find ``module:function`` or a registered name (an optional ``python:`` prefix is ok)."""
    reference = reference.removeprefix("python:")
    found = registered().get(reference.lower())
    if found is not None:
        return found
    if ":" not in reference:
        names = ", ".join(sorted(registered())) or "none"
        raise ConfigError(
            f"no Python scoring function named {reference!r} (registered: {names}); "
            "use 'module:function' or the @udf decorator"
        )
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} for {reference!r}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"module {module_name!r} has no attribute {attribute!r}")
    if not callable(target):
        raise ConfigError(f"{reference!r} is not callable")
    again = registered().get(attribute.lower())  # decorated at import time?
    if again is not None and again.function is target:
        return again
    return PythonFunction(attribute, target, batch=True, arrow=arrow)


def _to_table(rows: list[Any]) -> Any:
    import pyarrow as pa

    if rows and isinstance(rows[0], dict):
        return pa.Table.from_pylist(rows)
    return pa.table({"value": rows})


def _to_list(result: Any) -> list[Any]:
    if isinstance(result, list):
        return result
    if hasattr(result, "to_pylist"):
        return list(result.to_pylist())
    if hasattr(result, "tolist"):
        return list(result.tolist())
    return list(result)


class PythonCaller:
    """Calls a local Python function with a batch; same contract as the HTTP client."""

    def __init__(
        self,
        spec: EndpointSpec,
        *,
        function: Callable[..., Any] | None = None,
        metrics: EndpointMetrics | None = None,
    ) -> None:
        self.spec = spec
        self.metrics = metrics or EndpointMetrics(spec.name)
        self.lookahead = 0
        self.takes_arrow = False  # functions receive Python rows (or build their own table)
        if function is not None:
            self.function = PythonFunction(spec.name, function, arrow=spec.batch_arrow)
        else:
            self.function = resolve_function(spec.url, arrow=spec.batch_arrow)

    # the Scorer's worker protocol (see EndpointClient.prepare): nothing to do ahead of time
    def prepare(self, rows: list[Any]) -> list[Any]:
        return rows

    def send(self, call: list[Any]) -> None:
        pass

    def finish(self, call: list[Any]) -> list[Any]:
        return self.score(call)

    def score(self, rows: list[Any]) -> list[Any]:
        fn = self.function
        started = time.perf_counter()
        try:
            if not fn.batch:
                results = [fn.function(row) for row in rows]
            elif fn.arrow:
                results = _to_list(fn.function(_to_table(rows)))
            else:
                results = _to_list(fn.function(rows))
        except Exception as exc:  # the model's own failure: per batch, like an HTTP 500
            self.metrics.record_request(events=len(rows), latency=0.0, ok=False, retries=0)
            raise self._error(rows, f"raised {type(exc).__name__}: {exc}") from exc
        if len(results) != len(rows):
            self.metrics.record_request(events=len(rows), latency=0.0, ok=False, retries=0)
            raise self._error(
                rows, f"returned {len(results)} results for a batch of {len(rows)} events "
                f"(expected {len(rows)})"
            )
        latency = time.perf_counter() - started
        self.metrics.record_request(events=len(rows), latency=latency, ok=True, retries=0)
        return results

    def _error(self, rows: list[Any], message: str) -> EndpointError:
        from asaql.ml.client import describe_event

        first = describe_event(rows[0]) if rows else "-"
        return EndpointError(
            f"Python scoring function '{self.function.name}' {message}; "
            f"batch of {len(rows)} events, first event: {first}"
        )

    def close(self) -> None:
        pass
