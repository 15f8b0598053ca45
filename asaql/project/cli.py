"""``asaql test`` and ``asaql localrun``: the CI/CD tool's commands for a VS Code ASA project.

    asaql test PROJECT [--testConfigPath FILE] [--outputPath DIR] [--tolerance REL]
    asaql localrun PROJECT [--outputPath DIR] [--input NAME=PATH]... [--output NAME=PATH]...

(``asaql run PROJECT`` runs a project too, writing to ``LocalRunOutputs/<yyyyMMddHHmmss>/``.)

Exit codes of ``asaql test``: 0 every case passed; 1 at least one case failed (the CI/CD tool's
-2); 2 the tests could not run: no project, no or invalid testConfig.json, a query that does not
parse (the CI/CD tool's -1). ``localrun`` follows ``asaql run``: 0 ok, 1 error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from asaql.cli.main import name_value
from asaql.errors import AsaqlError

__all__ = ["COMMANDS"]

EXIT_PASSED = 0
EXIT_FAILED = 1  # the CI/CD tool exits -2
EXIT_ERROR = 2  # the CI/CD tool exits -1


def _project_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="asaproj.json or the project folder")
    parser.add_argument("--project", "-project", dest="project_flag", metavar="PATH",
                        help="the same, as the CI/CD tool spells it")
    parser.add_argument("--customCodeZipFilePath", "-customCodeZipFilePath", dest="custom_code", metavar="ZIP",
                        help="accepted for the CI/CD tool's command line; C# custom code is not run")


def _warn_custom_code(args: argparse.Namespace) -> None:
    if getattr(args, "custom_code", None):
        print(f"asaql: warning: --customCodeZipFilePath {args.custom_code} ignored: asaql does not run "
              "C# custom code", file=sys.stderr)


def _project_path(args: argparse.Namespace) -> str:
    return args.project_flag or args.project or "."


# --------------------------------------------------------------------------- asaql test


def configure_test(parser: argparse.ArgumentParser) -> None:
    _project_arg(parser)
    parser.add_argument("--testConfigPath", "-testConfigPath", "--test-config", dest="test_config", metavar="FILE",
                        help="the test cases (default: test/testConfig.json in the project)")
    parser.add_argument("--outputPath", "-outputPath", "--output-path", dest="output_path", metavar="DIR",
                        help="where outputs and testResultSummary.json go "
                             "(default: testResults/ beside testConfig.json)")
    parser.add_argument("--tolerance", type=float, default=None, metavar="REL",
                        help="relative tolerance for numbers (default 1e-6)")
    parser.add_argument("--quiet", "-q", action="store_true", help="only the final line")


def run_test(args: argparse.Namespace) -> int:
    """run the project's test cases (test/testConfig.json) and write testResultSummary.json"""
    from asaql.project.loader import load_project
    from asaql.project.testrunner import REL_TOL, load_test_config, run_tests
    from asaql.sql.parser import parse

    _warn_custom_code(args)
    try:
        project = load_project(_project_path(args))
        for warning in project.warnings:
            print(f"asaql: warning: {warning}", file=sys.stderr)
        config_path = Path(args.test_config) if args.test_config else project.test_config
        config = load_test_config(config_path, project_root=project.root)
        text = project.query_text
        try:
            parse(text)
        except AsaqlError as exc:
            print(exc.render(text, str(project.start_file)), file=sys.stderr)
            return EXIT_ERROR
        output = Path(args.output_path) if args.output_path else config.path.parent / "testResults"
        out = (lambda line: None) if args.quiet else print
        out(f"asaql test: {len(config.cases)} test case(s) from {config.path}")
        summary = run_tests(project, config, output, report=lambda line: out(f"  {line}"),
                            rel_tol=args.tolerance if args.tolerance is not None else REL_TOL)
    except AsaqlError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{summary.passed} passed, {summary.failed} failed of {len(summary.results)} test case(s); "
          f"summary: {summary.path}")
    return EXIT_PASSED if summary.failed == 0 else EXIT_FAILED


# --------------------------------------------------------------------------- asaql localrun


def configure_localrun(parser: argparse.ArgumentParser) -> None:
    _project_arg(parser)
    parser.add_argument("--outputPath", "-outputPath", "--output-dir", dest="output_path", metavar="DIR",
                        help="folder for one <alias>.json per output "
                             "(default: LocalRunOutputs/<yyyyMMddHHmmss>/ in the project)")
    parser.add_argument("--input", "-i", action="append", type=name_value, default=[], metavar="NAME=PATH",
                        help="data for an input, replacing its local mock (repeatable)")
    parser.add_argument("--ref", "-r", action="append", type=name_value, default=[], metavar="NAME=PATH",
                        help="reference data for an input (repeatable)")
    parser.add_argument("--output", "-o", action="append", type=name_value, default=[], metavar="NAME=PATH",
                        help="where one output goes instead ('-' is stdout)")
    parser.add_argument("--format", action="append", type=name_value, default=[], metavar="NAME=FORMAT",
                        help="format of an --input/--output when the extension does not tell")
    parser.add_argument("--quiet", "-q", action="store_true", help="no summary")


def run_localrun(args: argparse.Namespace) -> int:
    """run a VS Code ASA project on its local inputs, one JSON lines file per output"""
    from asaql.cli.jobspec import CliJob, _apply_flags, _apply_job_file, _options
    from asaql.project.loader import project_job
    from asaql.session import Session

    _warn_custom_code(args)
    cli: Any = None
    try:
        given = [name for name, _ in [*args.input, *args.ref]]
        job = project_job(_project_path(args), output_dir=args.output_path, provided=given)
        session = Session(_options(args, job))
        session.report = lambda message: print(message, file=sys.stderr)
        cli = CliJob(session=session, query_text="", query_path=job.query_path or "")
        _apply_job_file(cli, job, False)
        _apply_flags(cli, args, False)
        compiled = session.compile(cli.query_text, filename=cli.query_path)
        with cli.started():
            result = cli.execute(compiled)
    except AsaqlError as exc:
        source = cli.query_text if cli is not None and exc.span.is_known else None
        print(exc.render(source, cli.query_path if cli is not None else "query"), file=sys.stderr)
        return 1
    if not args.quiet:
        counts = result.metrics.as_dict().get("events_out", {})
        for name in compiled.output_names:
            target = cli.outputs.get(name, "-")
            print(f"{name}: {counts.get(name, 0)} event(s) -> {target}", file=sys.stderr)
    return 0


COMMANDS = {
    "test": (configure_test, run_test),
    "localrun": (configure_localrun, run_localrun),
}
