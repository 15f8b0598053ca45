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

__all__ = ["InputDecl", "JobFile", "load_job_file", "local_model_servers"]

LOCAL_PREFIX = "local:"


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
    job.job = dict(raw.get("job") or {})
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
    if kind == "ml":
        decl.endpoint = {k: v for k, v in spec.items() if k != "kind"}
        return decl
    p = spec.get("path")
    if not isinstance(p, str):
        raise ConfigError(f"{where}: inputs.{name} needs a 'path'")
    decl.path = p if p == "-" else str(base / p)
    return decl


def _function(name: str, spec: Any, base: Path, where: Path) -> Any:
    if isinstance(spec, str):
        return str(base / spec)
    if isinstance(spec, dict) and "file" in spec:
        return str(base / spec["file"])
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
