"""Typed run options (configuration only; the runtime state is built from it).

>>> Options(batch_size=100, job_config={"eventsoutoforderpolicy": "drop"})
Options(batch_size=100, job_config={'EventsOutOfOrderPolicy': 'Drop'})
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from asaql.errors import ConfigError, did_you_mean

__all__ = ["Options"]

_ON_DATA_ERROR = ("skip", "stop")


@dataclass(frozen=True, kw_only=True)
class Options:
    """How a query runs. Invalid values raise :class:`~asaql.errors.ConfigError` here, not
    when the job runs.

    Attributes:
        batch_size: rows per record batch read from an input (at least 1).
        optimize: apply the plan rewrites (filter and projection pushdown).
        on_data_error: 'skip' (report, count and drop a malformed event; ASA's behaviour) or
            'stop' (fail the job at the first malformed event).
        strict: reject asaql extensions (TryEvaluate, GETUTCDATE, JOIN ... INTO, STRING).
        clock: the wall clock (GETUTCDATE, EventProcessedUtcTime); injectable for tests.
            It must return tz-aware datetimes.
        job_config: ASA JobConfig.json settings (event ordering policies, ...): names are
            matched case-insensitively and written back with ASA's spelling; values are
            checked. Other keys (storage accounts, SKU, ...) are kept as given, unless they
            look like a misspelt setting.
        ml_transport: an httpx transport for every ML endpoint (tests use MockTransport).
    """

    batch_size: int = 65536
    optimize: bool = True
    on_data_error: str = "skip"
    strict: bool = False
    clock: Callable[[], dt.datetime] | None = None
    job_config: dict[str, Any] = field(default_factory=dict)
    ml_transport: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"option batch_size must be a whole number of rows >= 1, got {self.batch_size!r}")
        policy = str(self.on_data_error).lower()
        if policy not in _ON_DATA_ERROR:
            raise ConfigError(f"option on_data_error must be 'skip' or 'stop', got {self.on_data_error!r}")
        if self.clock is not None and not callable(self.clock):
            raise ConfigError(f"option clock must be a function returning a datetime, got {self.clock!r}")
        object.__setattr__(self, "on_data_error", policy)
        object.__setattr__(self, "job_config", _job_config(self.job_config))

    def with_(self, **changes: Any) -> Options:
        """A copy with ``changes`` (field names as keyword arguments)."""
        known = [f.name for f in fields(self)]
        for name in changes:
            if name not in known:
                hint = did_you_mean(name, known)
                raise TypeError(f"Options has no field {name!r}" + (f"; {hint}" if hint else
                                f" (fields: {', '.join(known)})"))
        return replace(self, **changes)

    def __repr__(self) -> str:
        """Only the fields that differ from the defaults."""
        shown = []
        for spec in fields(self):
            value = getattr(self, spec.name)
            default = spec.default_factory() if callable(spec.default_factory) else spec.default
            if value == default:
                continue
            if spec.name == "clock":
                value = _Name(getattr(value, "__qualname__", type(value).__name__))
            elif spec.name == "ml_transport":
                value = _Name(type(value).__name__)
            shown.append(f"{spec.name}={value!r}")
        return f"Options({', '.join(shown)})"


class _Name(str):
    def __repr__(self) -> str:
        return f"<{self}>"


def _job_config(settings: Any) -> dict[str, Any]:
    """JobConfig.json settings checked and spelt as ASA does; a key close to a setting's name
    (``EventsOutOfOrderMaxDelayInSecond``) is an error rather than silently unused."""
    from asaql.job import JOB_CONFIG_FIELDS, validate_job_settings

    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ConfigError(f"option job_config must be a dict of JobConfig.json settings, got {settings!r}")
    names = {name.lower() for name in (*JOB_CONFIG_FIELDS, "on_data_error")}
    for key in settings:
        if not isinstance(key, str):
            raise ConfigError(f"option job_config: setting names are strings, got {key!r}")
        if key.lower() not in names and difflib.get_close_matches(key.lower(), names, n=1, cutoff=0.85):
            raise ConfigError(f"option job_config: unknown setting {key!r}",
                              help=did_you_mean(key, (*JOB_CONFIG_FIELDS, "on_data_error")))
    return validate_job_settings(dict(settings), "option job_config")
