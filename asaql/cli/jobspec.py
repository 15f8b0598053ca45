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
from asaql.errors import ConfigError, did_you_mean
from asaql.io.formats import COMPRESSED, detect_format
from asaql.job import JobFile, load_job_file, local_model_servers, validate_job_settings
from asaql.session import Job, RunResult, Session

__all__ = ["CliJob", "UsageError", "load_job"]


class UsageError(Exception):
    """The command line itself is wrong (exit code 2), found after argparse: a ``--format``
    for a name no flag gives, a format name asaql does not know."""


@dataclass
class CliJob:
    session: Session
    query_text: str
    query_path: str
    outputs: dict[str, str] = field(default_factory=dict)
    output_formats: dict[str, str] = field(default_factory=dict)
    ml_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: names given by --input/--ref/--function/--output flags: checked against the query
    flag_inputs: list[str] = field(default_factory=list)
    flag_functions: list[str] = field(default_factory=list)
    flag_outputs: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def started(self) -> Iterator[None]:
        """Start local model servers named by ``url = "local:..."`` for the run."""
        with contextlib.ExitStack() as stack:
            for name, endpoint in self.ml_inputs.items():
                real = stack.enter_context(local_model_servers(endpoint))
                self.session.add_ml_input(name, {"name": name, **real})
            yield

    def check_names(self, compiled: Job) -> None:
        """Flags that name nothing in the query: an ``--output`` is an error (its rows would
        silently go to stdout instead), an unused ``--input``/``--ref``/``--function`` a
        warning."""
        outputs = {n.lower(): n for n in compiled.output_names}
        for name in self.flag_outputs:
            if name.lower() not in outputs:
                hint = did_you_mean(name, outputs.values())
                known = ", ".join(outputs.values()) or "none"
                raise ConfigError(f"--output {name}: the query has no output named '{name}' "
                                  f"(its outputs: {known})", help=hint)
        used = {n.lower() for n in compiled.input_names}
        for name in self.flag_inputs:
            if name.lower() not in used:
                self.session.report(f"warning: input '{name}' is not used by the query")
        called = {n.lower() for n in compiled.function_names}
        for name in self.flag_functions:
            if name.lower() not in called:
                self.session.report(f"warning: function '{name}' is not called by the query")

    def target(self, name: str) -> tuple[str, str | None]:
        """Where output ``name`` goes and in which format (names match case-insensitively)."""
        by_lower = {k.lower(): k for k in self.outputs}
        key = by_lower.get(name.lower())
        if key is None:
            return "-", self.output_formats.get(name)
        return self.outputs[key], self.output_formats.get(key, self.output_formats.get(name))

    def execute(self, compiled: Job) -> RunResult:
        from asaql.io.sink import open_sink

        sinks: dict[str, Any] = {}
        names = compiled.output_names
        to_stdout = [n for n in names if self.target(n)[0] == "-"]
        try:
            for name in names:
                target, fmt = self.target(name)
                if target == "-":
                    sinks[name] = _stdout_sink(name, fmt, len(to_stdout) > 1)
                else:
                    sinks[name] = open_sink(name, target, format=fmt)
        except BaseException:
            for sink in sinks.values():
                sink.close()
            raise
        return compiled.run(sinks)


def _stdout_sink(name: str, fmt: str | None, tagged: bool) -> Any:
    from asaql.io.sink import open_sink

    if sys.stdout.isatty() and fmt is None:
        from asaql.io.sink import TableSink

        return TableSink(name)
    sink = open_sink(name, "-", format=fmt)
    return _TaggedSink(sink, name) if tagged else sink


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
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"query file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a folder; give a .asaql file, a job .toml or an asaproj.json") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read query file {path}: {exc.strerror or exc}") from exc
    text = _utf8(data, f"query file {path}")
    if not text.strip():
        raise ConfigError(f"query file {path} is empty", help="write a SELECT ... FROM ... statement in it")
    return text


def _utf8(data: bytes, what: str) -> str:
    """``data`` as text; an error names the line and column of the first byte that is not UTF-8.

    >>> _utf8(b"SELECT 1\\nFROM \\xe9t\\xe9", "query file q.asaql")
    Traceback (most recent call last):
    ...
    asaql.errors.ConfigError: query file q.asaql is not UTF-8 text: byte 0xe9 at line 2, column 6
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        before = data[:offset]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(f"{what} is not UTF-8 text: byte 0x{data[offset]:02x} at line {line}, "
                          f"column {column}", help="save the file as UTF-8") from exc


def _load_job_file(path: Path) -> JobFile:
    """:func:`load_job_file`, with unreadable files reported as configuration errors."""
    try:
        return load_job_file(path)
    except IsADirectoryError as exc:
        raise ConfigError(f"job file {path} is a folder, not a file") from exc
    except UnicodeDecodeError as exc:
        _utf8(path.read_bytes(), f"job file {path}")
        raise ConfigError(f"job file {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read job file {path}: {exc.strerror or exc}") from exc


def _job_file_for(target: Path, args: argparse.Namespace) -> JobFile | None:
    """A .toml argument is a job file; an ``asaproj.json`` (or its folder) an ASA project; a
    .asaql with ``asaql.toml`` beside it uses that job."""
    if target.suffix.lower() == ".toml":
        return _load_job_file(target)
    if target.name.lower() == "asaproj.json" or target.is_dir():
        from asaql.project.loader import project_job  # ASA project support

        given = [name for name, _ in (getattr(args, "input", []) or []) + (getattr(args, "ref", []) or [])]
        return project_job(target, output_dir=getattr(args, "output_dir", None), provided=given)
    sibling = target.parent / "asaql.toml"
    if target.suffix.lower() == ".asaql" and sibling.is_file():
        return _load_job_file(sibling)
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
        settings.update(_read_job_config(Path(args.job_config)))
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


def _read_job_config(path: Path) -> dict[str, Any]:
    """An ASA ``JobConfig.json``, checked like a job file's ``[job]`` table."""
    try:
        data = path.read_bytes()
    except IsADirectoryError as exc:
        raise ConfigError(f"job config {path} is a folder, not a file") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read job config {path}: {exc.strerror or exc}") from exc
    try:
        settings = json.loads(_utf8(data, f"job config {path}"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"job config {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno}") from exc
    if not isinstance(settings, dict):
        raise ConfigError(f"job config {path} must hold a JSON object of settings, "
                          f"not {type(settings).__name__}")
    return validate_job_settings(settings, f"job config {path}")


def _formats(args: argparse.Namespace) -> dict[str, str]:
    """``--format NAME=FORMAT`` flags, each naming an --input, --ref or --output flag and a
    format asaql knows (else a usage error)."""
    flagged = {name.lower() for option in ("input", "ref", "output")
               for name, _ in getattr(args, option, []) or []}
    formats: dict[str, str] = {}
    for name, fmt in getattr(args, "format", []) or []:
        if name.lower() not in flagged:
            raise UsageError(f"--format {name}={fmt}: no --input, --ref or --output is named '{name}'")
        try:
            detect_format("-", fmt)
        except ConfigError as exc:
            raise UsageError(f"--format {name}={fmt}: unknown format '{fmt}' (use json, csv or parquet)") from exc
        formats[name.lower()] = fmt
    return formats


_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


def _warn_unknown_extension(cli: CliJob, name: str, path: str, fmt: str | None) -> None:
    """A data file whose extension asaql does not know is read as JSON lines: say so."""
    if fmt is not None or path == "-" or path.startswith("/dev/") or detect_format(path) != "json":
        return
    lower = path.lower()
    for suffix in COMPRESSED:
        lower = lower.removesuffix(suffix)
    if lower.endswith(_JSON_SUFFIXES):
        return
    suffix = Path(lower).suffix or "(none)"
    cli.session.report(f"warning: input '{name}': extension {suffix} of {path} does not say the format; "
                       f"reading it as JSON lines (give --format {name}=csv|json|parquet)")


def _apply_flags(cli: CliJob, args: argparse.Namespace, for_check: bool) -> None:
    formats = _formats(args)
    follow = bool(getattr(args, "follow", False))
    for option, reference in (("input", False), ("ref", True)):
        for name, path in getattr(args, option, []) or []:
            fmt = formats.get(name.lower())
            _warn_unknown_extension(cli, name, path, fmt)
            cli.session.add_input(name, path, format=fmt, reference=reference,
                                  follow=follow and not reference)
            cli.flag_inputs.append(name)
    for name, path in getattr(args, "function", []) or []:
        cli.session.add_function(name, path)
        cli.flag_functions.append(name)
    for name, path in getattr(args, "ml", []) or []:
        cli.session.add_ml_input(name, path)
        cli.flag_inputs.append(name)
    for name, path in getattr(args, "output", []) or []:
        for key in [k for k in cli.outputs if k.lower() == name.lower()]:
            del cli.outputs[key]  # a flag replaces the job's entry of the same name
        cli.outputs[name] = path
        cli.flag_outputs.append(name)
        if name.lower() in formats:
            cli.output_formats[name] = formats[name.lower()]
