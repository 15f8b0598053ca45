"""From command-line arguments (and an optional job file or ASA project) to a ready Session."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asaql.config import Options
from asaql.errors import ConfigError
from asaql.job import JobFile, load_job_file, local_model_servers
from asaql.session import Job, RunResult, Session

__all__ = ["CliJob", "load_job"]


@dataclass
class CliJob:
    session: Session
    query_text: str
    query_path: str
    outputs: dict[str, str] = field(default_factory=dict)
    output_formats: dict[str, str] = field(default_factory=dict)
    ml_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @contextlib.contextmanager
    def started(self) -> Iterator[None]:
        """Start local model servers named by ``url = "local:..."`` for the run."""
        with contextlib.ExitStack() as stack:
            for name, endpoint in self.ml_inputs.items():
                real = stack.enter_context(local_model_servers(endpoint))
                self.session.add_ml_input(name, {"name": name, **real})
            yield

    def execute(self, compiled: Job) -> RunResult:
        from asaql.io.sink import open_sink

        sinks: dict[str, Any] = {}
        names = compiled.output_names
        to_stdout = [n for n in names if self.outputs.get(n, "-") == "-"]
        for name in names:
            target = self.outputs.get(name, "-")
            if target == "-":
                sinks[name] = _stdout_sink(name, len(to_stdout) > 1)
            else:
                sinks[name] = open_sink(name, target, format=self.output_formats.get(name))
        return compiled.run(sinks)


def _stdout_sink(name: str, tagged: bool) -> Any:
    from asaql.io.sink import open_sink

    if sys.stdout.isatty():
        from asaql.io.sink import TableSink

        return TableSink(name)
    return _TaggedSink(open_sink(name, "-"), name) if tagged else open_sink(name, "-")


class _TaggedSink:
    """Several outputs on one stdout: each row gets an ``__output`` field naming its output."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name = inner, name

    def write(self, batch: Any) -> None:
        import pyarrow as pa

        tag = pa.array([self.name] * batch.num_rows, pa.string())
        self.inner.write(batch.append_column("__output", tag))

    def close(self) -> None:
        self.inner.close()


def load_job(args: argparse.Namespace, *, for_check: bool = False) -> CliJob:
    target = Path(args.query)
    job_file = _job_file_for(target, args)
    options = _options(args, job_file, for_check)
    session = Session(options)
    session.report = lambda message: print(message, file=sys.stderr)
    cli = CliJob(session=session, query_text="", query_path=str(target))
    if job_file is not None:
        _apply_job_file(cli, job_file, for_check)
    if target.suffix.lower() == ".asaql" or not job_file:
        if target.suffix.lower() != ".toml":
            cli.query_path = str(target)
            cli.query_text = _read_query(target)
    _apply_flags(cli, args, for_check)
    return cli


def _read_query(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"query file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a folder; give a .asaql file, a job .toml or an asaproj.json") from exc


def _job_file_for(target: Path, args: argparse.Namespace) -> JobFile | None:
    """A .toml argument is a job file; an ``asaproj.json`` (or its folder) an ASA project; a
    .asaql with ``asaql.toml`` beside it uses that job."""
    if target.suffix.lower() == ".toml":
        return load_job_file(target)
    if target.name == "asaproj.json" or target.is_dir():
        from asaql.project.loader import project_job  # ASA project support

        given = [name for name, _ in (getattr(args, "input", []) or []) + (getattr(args, "ref", []) or [])]
        return project_job(target, output_dir=getattr(args, "output_dir", None), provided=given)
    sibling = target.parent / "asaql.toml"
    if target.suffix.lower() == ".asaql" and sibling.exists():
        return load_job_file(sibling)
    return None


def _apply_job_file(cli: CliJob, job: JobFile, for_check: bool) -> None:
    if job.query_path:
        cli.query_path = job.query_path
        cli.query_text = _read_query(Path(job.query_path))
    elif job.query_text:
        cli.query_text = job.query_text
    for decl in job.inputs.values():
        if decl.kind == "ml":
            cli.ml_inputs[decl.name] = decl.endpoint
            if for_check or not str(decl.endpoint.get("url", "")).startswith("local:"):
                cli.session.add_ml_input(decl.name, {"name": decl.name, **_placeholder(decl.endpoint)})
        else:
            cli.session.add_input(decl.name, decl.path or "-", format=decl.format,
                                  reference=decl.kind == "reference")
    for name, spec in job.functions.items():
        cli.session.add_function(name, spec)
    cli.outputs.update(job.outputs)
    cli.output_formats.update(job.output_formats)


def _placeholder(endpoint: dict[str, Any]) -> dict[str, Any]:
    url = str(endpoint.get("url", ""))
    return {**endpoint, "url": "http://127.0.0.1:1/score"} if url.startswith("local:") else endpoint


def _options(args: argparse.Namespace, job: JobFile | None, for_check: bool = False) -> Options:
    """Run options; `check --strict` binds leniently so that it can list every extension."""
    settings: dict[str, Any] = dict(job.job) if job else {}
    if getattr(args, "job_config", None):
        try:
            settings.update(json.loads(Path(args.job_config).read_text(encoding="utf-8-sig")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read job config {args.job_config}: {exc}") from exc
    opts = Options(job_config=settings)
    changes: dict[str, Any] = {}
    if settings.get("on_data_error"):
        changes["on_data_error"] = settings["on_data_error"]
    if getattr(args, "batch_size", None):
        changes["batch_size"] = args.batch_size
    if getattr(args, "no_optimize", False):
        changes["optimize"] = False
    if getattr(args, "on_data_error", None):
        changes["on_data_error"] = args.on_data_error
    if getattr(args, "strict", False) and not for_check:
        changes["strict"] = True
    return opts.with_(**changes) if changes else opts


def _apply_flags(cli: CliJob, args: argparse.Namespace, for_check: bool) -> None:
    formats = dict(getattr(args, "format", []) or [])
    follow = bool(getattr(args, "follow", False))
    for name, path in getattr(args, "input", []) or []:
        cli.session.add_input(name, path, format=formats.get(name), follow=follow)
    for name, path in getattr(args, "ref", []) or []:
        cli.session.add_input(name, path, format=formats.get(name), reference=True)
    for name, path in getattr(args, "function", []) or []:
        cli.session.add_function(name, path)
    for name, path in getattr(args, "ml", []) or []:
        cli.session.add_ml_input(name, path)
    for name, path in getattr(args, "output", []) or []:
        cli.outputs[name] = path
        if name in formats:
            cli.output_formats[name] = formats[name]
