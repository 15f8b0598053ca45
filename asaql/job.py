"""asaql job files (TOML): a query with its inputs, outputs, functions and policies, so that
``asaql run job.toml`` needs no flags::

    query = "query.asaql"              # or: query_text = "SELECT ..."

    [inputs.iot_data]                  # a stream (kind = "stream" is the default)
    path = "iot_data.jsonl"
    [inputs.devices]
    path = "devices.csv"
    kind = "reference"
    [inputs.aml_enrichment]            # an ML endpoint used as a reference input (seed form)
    kind = "ml"
    url = "local:anomaly"              # "local:anomaly" starts the built-in model on loopback
    api_key = "env:AML_KEY"            # env:NAME, file:PATH; never printed
    batch_size = 100

    [outputs.alerts]
    path = "alerts.jsonl"

    [functions.score]                  # udf.score(...): a definition file or inline fields
    file = "score.json"

    [job]                              # ASA JobConfig.json names, plus asaql options
    EventsOutOfOrderMaxDelayInSeconds = 5
    on_data_error = "skip"

Paths are relative to the job file.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asaql.errors import ConfigError

__all__ = ["InputDecl", "JobFile", "load_job_file", "local_model_servers", "validate_job_settings"]

LOCAL_PREFIX = "local:"

#: ASA JobConfig.json settings the engine reads (``[job]`` of a job file, JobConfig.json of a
#: project); others (storage accounts, SKU, identity, tags) are Azure-only and kept as given.
JOB_CONFIG_FIELDS = (
    "DataLocale",
    "OutputErrorPolicy",
    "EventsLateArrivalMaxDelayInSeconds",
    "EventsOutOfOrderMaxDelayInSeconds",
    "EventsOutOfOrderPolicy",
    "CompatibilityLevel",
    "StreamingUnits",
)
_POLICIES = {
    "EventsOutOfOrderPolicy": ("Adjust", "Drop"),
    "OutputErrorPolicy": ("Stop", "Drop", "Retry"),  # "Retry" occurs in real JobConfig.json files
    "on_data_error": ("skip", "stop"),
}
_COMPATIBILITY_LEVELS = ("1.0", "1.1", "1.2")
_MAX_DELAY = 1814399  # seconds (20 days 23:59:59): ASA's bound for both delays


def validate_job_settings(settings: dict[str, Any], where: str) -> dict[str, Any]:
    """Check and normalize the ASA job settings in ``settings`` (names matched
    case-insensitively, written back with ASA's spelling); other keys are kept as they are.
    Errors name ``where`` and the field."""
    out: dict[str, Any] = {}
    canonical = {name.lower(): name for name in (*JOB_CONFIG_FIELDS, "on_data_error")}
    for key, value in settings.items():
        name = canonical.get(key.lower(), key)
        if value is None or name not in canonical.values():
            out[key] = value
            continue
        if name in _POLICIES:
            match = [p for p in _POLICIES[name] if p.lower() == str(value).lower()]
            if not match:
                raise ConfigError(f"{where}: {name} must be one of {', '.join(_POLICIES[name])}, got {value!r}")
            value = match[0]
        elif name in ("EventsLateArrivalMaxDelayInSeconds", "EventsOutOfOrderMaxDelayInSeconds"):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ConfigError(f"{where}: {name} must be a number of seconds, got {value!r}")
            try:
                value = int(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: {name} must be a number of seconds, got {value!r}") from exc
            low = -1 if name.startswith("EventsLate") else 0
            if not low <= value <= _MAX_DELAY:
                raise ConfigError(f"{where}: {name} must be between {low} and {_MAX_DELAY}, got {value}")
        elif name == "CompatibilityLevel":
            value = str(value)
            if value not in _COMPATIBILITY_LEVELS:
                raise ConfigError(f"{where}: CompatibilityLevel must be one of "
                                  f"{', '.join(_COMPATIBILITY_LEVELS)}, got {value!r}")
        out[name] = value
    return out


@dataclass
class InputDecl:
    name: str
    kind: str = "stream"
    path: str | None = None
    format: str | None = None
    endpoint: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobFile:
    path: Path | None
    query_path: str | None = None
    query_text: str | None = None
    inputs: dict[str, InputDecl] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    output_formats: dict[str, str] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)
    job: dict[str, Any] = field(default_factory=dict)


def load_job_file(path: str | Path) -> JobFile:
    """Read and validate a job file; errors name the file and the field."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"job file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"job file {path} is not valid TOML: {exc}") from exc
    base = path.parent
    job = JobFile(path=path)
    if "query" in raw:
        job.query_path = str((base / raw["query"]).resolve()) if not Path(raw["query"]).is_absolute() else raw["query"]
    job.query_text = raw.get("query_text")
    for name, spec in (raw.get("inputs") or {}).items():
        job.inputs[name] = _input(name, spec, base, path)
    for name, spec in (raw.get("outputs") or {}).items():
        target = spec.get("path") if isinstance(spec, dict) else spec
        if not isinstance(target, str):
            raise ConfigError(f"{path}: outputs.{name} needs a 'path'")
        job.outputs[name] = target if target == "-" else str(base / target)
        if isinstance(spec, dict) and spec.get("format"):
            job.output_formats[name] = spec["format"]
    for name, spec in (raw.get("functions") or {}).items():
        job.functions[name] = _function(name, spec, base, path)
    settings = raw.get("job") or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: [job] must be a table of settings")
    job.job = validate_job_settings(dict(settings), f"{path}: [job]")
    return job


def _input(name: str, spec: Any, base: Path, where: Path) -> InputDecl:
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: inputs.{name} must be a table or a path")
    kind = spec.get("kind", "stream")
    if kind not in ("stream", "reference", "ml"):
        raise ConfigError(f"{where}: inputs.{name}.kind must be stream, reference or ml, got {kind!r}")
    decl = InputDecl(name=name, kind=kind, format=spec.get("format"))
    if kind == "ml":  # inline endpoint fields, or a definition file plus overrides
        decl.endpoint = {k: v for k, v in spec.items() if k != "kind"}
        if "file" in decl.endpoint:
            decl.endpoint["file"] = str(base / decl.endpoint["file"])
        return decl
    p = spec.get("path")
    if not isinstance(p, str):
        raise ConfigError(f"{where}: inputs.{name} needs a 'path'")
    decl.path = p if p == "-" else str(base / p)
    return decl


def _function(name: str, spec: Any, base: Path, where: Path) -> Any:
    if isinstance(spec, str):
        return str(base / spec)
    if isinstance(spec, dict) and "file" in spec:  # extra keys (dead_letter, ...) override it
        path = str(base / spec["file"])
        return {**spec, "file": path} if len(spec) > 1 else path
    if isinstance(spec, dict):
        return dict(spec)
    raise ConfigError(f"{where}: functions.{name} must be a file path or a table")


@contextlib.contextmanager
def local_model_servers(endpoint: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Start the built-in model for ``url = "local:<model>"`` and yield the real URL."""
    url = str(endpoint.get("url", ""))
    if not url.startswith(LOCAL_PREFIX):
        yield endpoint
        return
    from asaql.ml.server import serve

    server, real_url = serve(host="127.0.0.1", port=0, model=url[len(LOCAL_PREFIX):] or "anomaly")
    try:
        yield {**endpoint, "url": real_url}
    finally:
        server.shutdown()
