"""The ``asaql`` command line.

    asaql run QUERY [--input NAME=PATH]... [--ref NAME=PATH]... [--output NAME=PATH]...
    asaql check QUERY [--strict]
    asaql explain QUERY
    asaql serve-model [--port N] [--api-key-env VAR]
    asaql [repl]                      interactive session

Exit codes: 0 ok, 1 query/data/runtime error (rendered, never a traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asaql.errors import AsaqlError, QueryError

__all__ = ["main", "name_value"]


def name_value(text: str) -> tuple[str, str]:
    """argparse type for NAME=VALUE options (--input, --output, ...)."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def positive_int(text: str) -> int:
    """argparse type for counts that must be at least 1 (--batch-size)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="a .asaql file, an asaql job (.toml) or an ASA project")
    p.add_argument("--input", "-i", action="append", type=name_value, default=[], metavar="NAME=PATH",
                   help="a stream input (repeatable; '-' reads stdin)")
    p.add_argument("--ref", "-r", action="append", type=name_value, default=[], metavar="NAME=PATH",
                   help="a reference-data input (repeatable)")
    p.add_argument("--output", "-o", action="append", type=name_value, default=[], metavar="NAME=PATH",
                   help="where an INTO output goes (repeatable; '-' is stdout)")
    p.add_argument("--function", "-f", action="append", type=name_value, default=[], metavar="NAME=FILE",
                   help="an ML function for udf.NAME(...) (ARM/REST or asaql JSON)")
    p.add_argument("--ml", action="append", type=name_value, default=[], metavar="NAME=FILE",
                   help="an ML endpoint used as a reference input (JOIN NAME INTO (...))")
    p.add_argument("--format", action="append", type=name_value, default=[], metavar="NAME=FORMAT",
                   help="input/output format when the extension does not tell (json, csv, parquet)")
    p.add_argument("--job-config", metavar="FILE", help="ASA JobConfig.json (event ordering, policies)")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="N", help="rows per batch (default 65536)")
    p.add_argument("--no-optimize", action="store_true", help="run the plan as bound")
    p.add_argument("--on-data-error", choices=["skip", "stop"], default=None,
                   help="malformed events: skip (report and drop; default) or stop the job")
    p.add_argument("--strict", action="store_true", help="reject asaql extensions")
    p.add_argument("--follow", action="store_true", help="keep reading inputs as they grow")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or summary")
    p.add_argument("--verbose", "-v", action="store_true", help="more detail in the summary")
    p.add_argument("--metrics-json", metavar="FILE", help="write the run summary as JSON")
    p.add_argument("--output-dir", "--outputPath", dest="output_dir", metavar="DIR",
                   help="for an ASA project: where the per-output JSON files go "
                        "(default LocalRunOutputs/<timestamp>)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asaql", description="Azure Stream Analytics queries, locally.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a query over inputs and write its outputs")
    _add_run_options(run)
    check = sub.add_parser("check", help="parse and bind without running; print diagnostics")
    _add_run_options(check)
    explain = sub.add_parser("explain", help="print the logical and physical plans")
    _add_run_options(explain)
    serve = sub.add_parser("serve-model", help="serve the built-in anomaly model over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--api-key-env", help="require this environment variable's value as key")
    serve.add_argument("--latency-ms", type=float, default=0.0)
    repl = sub.add_parser("repl", help="interactive session")
    repl.add_argument("--input", "-i", action="append", type=name_value, default=[], metavar="NAME=PATH")
    repl.add_argument("--ref", "-r", action="append", type=name_value, default=[], metavar="NAME=PATH")
    from asaql.cli import extra_commands

    extra_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        argv = ["repl"]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    handler = _COMMANDS.get(args.command)
    if handler is None:
        from asaql.cli import extra_commands

        handler = extra_commands.handler(args.command)
    if handler is None:
        parser.print_help()
        return 2
    from asaql.cli.jobspec import UsageError

    try:
        return handler(args)
    except UsageError as exc:
        print(f"asaql {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except Exception as exc:  # a bug: say so without a traceback unless asked
        import os

        if os.environ.get("ASAQL_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (this is a bug in asaql; "
              "set ASAQL_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _cmd_run(args: argparse.Namespace) -> int:
    from asaql.cli.jobspec import load_job
    from asaql.cli.progress import Watch
    from asaql.io.sink import interrupts_deferred

    job = None
    watch = None
    if args.metrics_json and Path(args.metrics_json).is_dir():  # fail before the run, not after
        print(f"error: --metrics-json {args.metrics_json} is a folder; give a file name", file=sys.stderr)
        return 1
    try:
        job = load_job(args)
        if args.quiet:
            job.session.report = lambda message: None
        with job.started():
            compiled = job.session.compile(job.query_text, filename=job.query_path)
            _print_diagnostics(compiled.diagnostics, job, quiet=args.quiet)
            job.check_names(compiled)
            # a live progress line on a terminal only (never when stderr is piped, nor --quiet)
            watch = Watch(compiled, show=not args.quiet and sys.stderr.isatty())
            with watch, interrupts_deferred():
                result = job.execute(watch.job)
    except AsaqlError as exc:
        _print_error(exc, job)
        if watch is not None:
            _summary(watch.metrics, args, watch=watch, error=exc)
        elif args.metrics_json:
            _write_metrics(args.metrics_json, _failed_before_run(exc))
        return 1
    except KeyboardInterrupt:
        # Ctrl-C: the sinks were closed at a batch boundary (whole rows, files complete)
        if watch is not None:
            _summary(watch.metrics, args, watch=watch, error=KeyboardInterrupt("interrupted"))
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()  # `asaql run ... | head`: the reader has all it wanted
        return 0
    _summary(result.metrics, args, watch=watch)
    return 0


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the interpreter's final flush
    does not print "Exception ignored ... BrokenPipeError"."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _failed_before_run(exc: AsaqlError) -> dict[str, Any]:
    from asaql.cli.progress import summary
    from asaql.exec.operator import Metrics

    return summary(Metrics(), error=exc)


def _write_metrics(path: str, data: dict[str, Any]) -> bool:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=2, default=str) + "\n")
    except OSError as exc:
        print(f"error: cannot write --metrics-json {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def _cmd_check(args: argparse.Namespace) -> int:
    from asaql.cli.jobspec import load_job

    job = None
    try:
        job = load_job(args, for_check=True)
        diagnostics = job.session.check(job.query_text)
    except AsaqlError as exc:
        _print_error(exc, job)
        return 1
    shown = [d for d in diagnostics if args.strict or d.severity != "note"]
    for d in shown:
        print(d.render(job.query_text, job.query_path), file=sys.stdout)
    errors = [d for d in diagnostics if d.severity == "error"]
    extensions = [d for d in diagnostics if d.code == "extension"]
    if args.strict and extensions:
        print(f"{len(extensions)} asaql extension(s) used: this query will not run in Azure as written")
        return 1
    if errors:
        return 1
    print(f"ok: {job.query_path} parses and binds" + (f" ({len(shown)} diagnostic(s))" if shown else ""))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from asaql.cli.jobspec import load_job

    job = None
    try:
        job = load_job(args, for_check=True)
        compiled = job.session.compile(job.query_text, filename=job.query_path, open_catalog=True)
        print(compiled.explain())
    except AsaqlError as exc:
        _print_error(exc, job)
        return 1
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import os
    import time

    from asaql.ml.server import serve

    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not key:
        print(f"error: environment variable {args.api_key_env} is not set", file=sys.stderr)
        return 2
    server, url = serve(host=args.host, port=args.port, model="anomaly", latency_ms=args.latency_ms,
                        api_key=key)
    print(f"serving the anomaly model at {url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.shutdown()


def _cmd_repl(args: argparse.Namespace) -> int:
    from asaql.cli import repl

    return repl.main(args)


_COMMANDS = {"run": _cmd_run, "check": _cmd_check, "explain": _cmd_explain,
             "serve-model": _cmd_serve, "repl": _cmd_repl}


def _print_error(exc: AsaqlError, job: Any) -> None:
    source = job.query_text if job is not None and isinstance(exc, QueryError) else None
    if source is None and job is not None and exc.span.is_known:
        source = job.query_text
    filename = job.query_path if job is not None else "query"
    print(exc.render(source, filename), file=sys.stderr)


def _print_diagnostics(diagnostics: list[Any], job: Any, *, quiet: bool) -> None:
    if quiet:
        return
    for d in diagnostics:
        if d.severity == "warning":
            print(d.render(job.query_text, job.query_path), file=sys.stderr)


def _summary(metrics: Any, args: argparse.Namespace, *, watch: Any = None,
             error: BaseException | None = None) -> None:
    """The end-of-run summary on stderr (not with --quiet; more with --verbose) and, with
    --metrics-json, the same as JSON (shape: asaql/cli/progress.py, docs/cli.md)."""
    from asaql.cli.progress import summary, summary_lines

    data = summary(metrics, elapsed=watch.elapsed if watch is not None else None, error=error,
                   ctx=watch.ctx if watch is not None else None)
    if args.metrics_json:
        _write_metrics(args.metrics_json, data)
    interrupted = isinstance(error, KeyboardInterrupt)
    if args.quiet or (error is not None and not interrupted and not args.verbose):
        return
    for line in summary_lines(data, verbose=args.verbose):
        print(line, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
