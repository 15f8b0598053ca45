"""The function registry: every built-in and user scalar function, by case-insensitive name.

A kernel takes Arrow values and returns an Arrow array of the batch length::

    def kernel(args: list[pa.Array | pa.Scalar], ctx: KernelContext) -> pa.Array

* Each argument is a ``pa.Array`` of the batch length, or a ``pa.Scalar`` when the argument
  is constant (a literal). Use :func:`asaql.functions.args.as_array` to broadcast.
* Arguments at ``datepart_args`` positions are the bare datepart word written in the query
  (``DATEDIFF(minute, a, b)``), passed as a ``pa.scalar(str)`` already lower-cased.
* Types are dynamic: a kernel dispatches on ``arg.type`` (see :mod:`asaql.types`), including
  :class:`~asaql.types.VariantType` columns whose values have mixed types.
* A value that makes the function fail (ASA stops the job) raises
  :class:`~asaql.errors.ExecutionError`; the evaluator adds the query position.

Register with the decorator::

    @scalar("UPPER", args=(1, 1), returns="nvarchar(max)")
    def upper(args, ctx): ...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

__all__ = [
    "REGISTRY",
    "FunctionRegistry",
    "KernelContext",
    "ScalarFunction",
    "scalar",
]


class Clock(Protocol):
    def __call__(self) -> dt.datetime: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class KernelContext:
    """What a kernel may need besides its arguments."""

    length: int
    clock: Clock = _utcnow
    extra: dict[str, Any] = field(default_factory=dict)


Kernel = Callable[[list[Any], KernelContext], pa.Array]


@dataclass(frozen=True)
class ScalarFunction:
    """A scalar function: name, arity, kernel and what the binder needs to know."""

    name: str
    kernel: Kernel
    min_args: int
    max_args: int | None
    returns: str | None = None
    aliases: tuple[str, ...] = ()
    datepart_args: tuple[int, ...] = ()
    deterministic: bool = True
    extension: bool = False
    doc: str = ""

    def arity_text(self) -> str:
        if self.max_args == self.min_args:
            return f"{self.min_args}"
        if self.max_args is None:
            return f"at least {self.min_args}"
        return f"{self.min_args} to {self.max_args}"


class FunctionRegistry:
    """Case-insensitive name -> ScalarFunction."""

    def __init__(self) -> None:
        self._by_name: dict[str, ScalarFunction] = {}

    def register(self, fn: ScalarFunction) -> ScalarFunction:
        for name in (fn.name, *fn.aliases):
            self._by_name[name.lower()] = fn
        return fn

    def get(self, name: str) -> ScalarFunction | None:
        _load_builtins()
        return self._by_name.get(name.lower())

    def names(self) -> list[str]:
        _load_builtins()
        return sorted({fn.name for fn in self._by_name.values()})

    def __iter__(self) -> Iterator[ScalarFunction]:
        _load_builtins()
        seen: set[str] = set()
        for fn in self._by_name.values():
            if fn.name not in seen:
                seen.add(fn.name)
                yield fn


REGISTRY = FunctionRegistry()


def scalar(
    name: str,
    *,
    args: tuple[int, int | None],
    returns: str | None = None,
    aliases: tuple[str, ...] = (),
    datepart_args: tuple[int, ...] = (),
    deterministic: bool = True,
    extension: bool = False,
    registry: FunctionRegistry | None = None,
) -> Callable[[Kernel], Kernel]:
    """Decorator: register ``kernel`` as the scalar function ``name``."""

    def wrap(kernel: Kernel) -> Kernel:
        (registry or REGISTRY).register(
            ScalarFunction(
                name=name,
                kernel=kernel,
                min_args=args[0],
                max_args=args[1],
                returns=returns,
                aliases=aliases,
                datepart_args=datepart_args,
                deterministic=deterministic,
                extension=extension,
                doc=(kernel.__doc__ or "").strip(),
            )
        )
        return kernel

    return wrap


_LOADED = False


def _load_builtins() -> None:
    """Import the library modules once; each registers its functions on import."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib

    for module in ("string", "math", "datetime", "conversion", "record", "array", "geo"):
        try:
            importlib.import_module(f"asaql.functions.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"asaql.functions.{module}":
                raise
