"""The CI/CD tool's test cases (``test/testConfig.json``), run locally.

``testConfig.json`` as ``azure-streamanalytics-cicd addtestcase`` writes it::

    {"Script": "...MyJob.asaql",
     "TestCases": [
       {"Name": "Case 1",
        "Inputs": [{"InputAlias": "iothubinput", "Type": "Data Stream", "Format": "JSON",
                    "FilePath": "inputs/case1.json", "ScriptType": "InputMock"}],
        "ExpectedOutputs": [{"OutputAlias": "alerts", "FilePath": "expected/case1_alerts.json",
                             "IgnoreFields": ["EventProcessedUtcTime"], "Required": true}]}]}

Paths are relative to the folder of testConfig.json (then to the project folder). A case's inputs replace the project's local
mocks of the same alias; inputs a case does not name keep the project's mock. Each case runs the
project's query on a fresh session; every output is written as JSON lines to
``<outputPath>/<case>/<alias>.json`` and compared with the expected file (a JSON array, JSON lines
or concatenated objects):

* rows are compared as multisets (order ignored) unless the expected output says
  ``"Ordered": true`` (an asaql extension);
* ``IgnoreFields`` (top-level field names, case-insensitive) are removed from both sides;
* numbers compare with a tolerance (``math.isclose``, ``rel_tol=1e-6``, ``abs_tol=1e-9``; an
  integer equals the same float), strings (datetimes included) exactly, records and arrays
  recursively, field names exactly;
* ``Required: false`` outputs are not compared (listed as ``OutputUnrequired``).

A case passes when every required output matches. Per output the summary says: OutputMatched
(equal), OutputNotEqual (rows differ), OutputMissing (a required output the query does not write),
OutputUnexpected (written by the query, not listed in the case; informational), OutputUnrequired
(listed with ``Required: false``). ``testResultSummary.json`` keeps the CI/CD tool's shape::

    {"Total": 3, "Passed": 2, "Failed": 1, "Script": "/abs/HelloWorld/HelloWorld.asaql",
     "Results": [{"Name": "Case 1", "Status": 0, "Time": "00:00:00.0412345",
                  "OutputMatched": [{"OutputAlias": "outputall", "ExpectedOutput": "/abs/...",
                                     "Output": "/abs/..."}],
                  "OutputNotEqual": [], "OutputMissing": [], "OutputUnexpected": [],
                  "OutputUnrequired": []}],
     "Time": "00:00:00.1234567"}

Keys are in the CI/CD tool's order and paths are absolute (``""`` where there is none: no
expected file for an unexpected output or a ``Required: false`` one without FilePath). Status is
0 for a pass and 1 for a failure; Time is a .NET TimeSpan string. A case whose run raises (bad
input file, runtime error) fails with an extra ``Error`` field holding the message.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asaql.errors import AsaqlError, ConfigError
from asaql.project.files import locate, read_json
from asaql.project.loader import (
    AsaProject,
    ProjectInput,
    _used_inputs,
    load_input_mock,
    unreachable_error,
    used_functions,
)

__all__ = [
    "ExpectedOutput",
    "OutputComparison",
    "TestCase",
    "TestConfig",
    "TestResult",
    "TestSummary",
    "compare_rows",
    "load_test_config",
    "read_rows",
    "run_tests",
    "values_equal",
]

SUMMARY_FILE = "testResultSummary.json"
REL_TOL = 1e-6
ABS_TOL = 1e-9

Reporter = Callable[[str], None]


# --------------------------------------------------------------------------- configuration


@dataclass
class ExpectedOutput:
    alias: str
    path: Path | None  # None: no FilePath (allowed with Required: false)
    ignore_fields: tuple[str, ...] = ()
    required: bool = True
    ordered: bool = False


@dataclass
class TestCase:
    name: str
    inputs: list[ProjectInput] = field(default_factory=list)
    expected: list[ExpectedOutput] = field(default_factory=list)


@dataclass
class TestConfig:
    path: Path
    script: str | None
    cases: list[TestCase]


def _get(obj: dict[str, Any], name: str, default: Any = None) -> Any:
    for key, value in obj.items():
        if key.lower() == name.lower():
            return value
    return default


def _flag(value: Any) -> bool:
    """``Required``: JSON true/false, or the strings "true"/"false" of a hand-edited file."""
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "")
    return bool(value)


def load_test_config(path: str | Path, *, project_root: Path | None = None) -> TestConfig:
    """Read a testConfig.json; errors name the file, the case and the field.

    Paths are relative to the file's folder; one that is not found there is looked up relative to
    ``project_root`` too.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"test configuration {path} does not exist",
                          help="create it with test cases (see docs/projects.md) or pass --testConfigPath")
    raw = read_json(path, "test configuration")
    if not isinstance(raw, dict) or not isinstance(_get(raw, "TestCases"), list):
        raise ConfigError(f"test configuration {path} needs a 'TestCases' list")
    base = path.parent
    also = [project_root] if project_root is not None else []
    cases: list[TestCase] = []
    for i, entry in enumerate(_get(raw, "TestCases")):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: TestCases[{i}] must be an object")
        name = str(_get(entry, "Name") or f"Case {i + 1}")
        where = f"{path}: test case '{name}'"
        case = TestCase(name=name)
        for spec in _get(entry, "Inputs") or []:
            if not isinstance(spec, dict):
                raise ConfigError(f"{where}: each input must be an object")
            try:
                case.inputs.append(load_input_mock(path, spec, base=base, also=also))
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc.message}", help=exc.help) from exc
        for spec in _get(entry, "ExpectedOutputs") or []:
            if not isinstance(spec, dict) or not isinstance(_get(spec, "OutputAlias"), str):
                raise ConfigError(f"{where}: each expected output needs an 'OutputAlias'")
            alias = _get(spec, "OutputAlias")
            file_path = _get(spec, "FilePath")
            required = _flag(_get(spec, "Required", True))
            if not isinstance(file_path, str) or not file_path:
                if required:
                    raise ConfigError(f"{where}: expected output '{alias}' needs a 'FilePath'")
                file_path = ""
            if required and file_path.strip().lower() in ("required", "[required]"):
                raise ConfigError(f"{where}: expected output '{alias}': 'FilePath' is still the placeholder "
                                  f"{file_path!r} that addtestcase writes",
                                  help="set it to the file of expected rows (JSON lines or a JSON array)")
            ignore = _get(spec, "IgnoreFields") or []
            if isinstance(ignore, str):
                ignore = [ignore]
            if not isinstance(ignore, list) or not all(isinstance(f, str) for f in ignore):
                raise ConfigError(f"{where}: expected output '{alias}': IgnoreFields must be a list of field names")
            case.expected.append(ExpectedOutput(
                alias=alias, path=locate(file_path, [base, *also]) if file_path else None,
                ignore_fields=tuple(ignore), required=required,
                ordered=_flag(_get(spec, "Ordered", False))))
        cases.append(case)
    script = _get(raw, "Script")
    return TestConfig(path=path, script=script if isinstance(script, str) else None, cases=cases)


# --------------------------------------------------------------------------- rows


def read_rows(path: str | Path) -> list[Any]:
    """Rows of an output file: a JSON array, JSON lines or concatenated JSON objects."""
    text = Path(path).read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    rows: list[Any] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n:
            return rows
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            line = text.count("\n", 0, exc.pos) + 1
            raise ConfigError(f"{path}: not valid JSON at line {line}: {exc.msg}") from exc
        if isinstance(value, list):
            rows.extend(value)
        else:
            rows.append(value)


def values_equal(a: Any, b: Any, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """JSON values equal, numbers within a tolerance."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k], rel_tol, abs_tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y, rel_tol, abs_tol) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _strip(row: Any, ignore: set[str]) -> Any:
    if not ignore or not isinstance(row, dict):
        return row
    return {k: v for k, v in row.items() if k.lower() not in ignore}


@dataclass
class OutputComparison:
    """Rows of one output: which expected rows matched, which are missing or unexpected."""

    alias: str
    matched: int = 0
    missing: list[Any] = field(default_factory=list)  # expected, not produced
    unexpected: list[Any] = field(default_factory=list)  # produced, not expected
    ordered: bool = False
    expected_count: int = 0
    actual_count: int = 0

    @property
    def equal(self) -> bool:
        return not self.missing and not self.unexpected

    def describe(self) -> list[str]:
        """A readable diff: changed rows field by field, then missing and unexpected rows."""
        head = (f"{self.alias}: {self.expected_count} expected row(s), {self.actual_count} produced, "
                f"{self.matched} matched" + (" (in order)" if self.ordered else ""))
        lines = [head]
        missing, unexpected = list(self.missing), list(self.unexpected)
        for exp, act in _pairs(missing, unexpected):
            lines.append(f"  ~ expected {_show(exp)}")
            lines.append(f"         got {_show(act)}")
            for text in _field_diffs(exp, act):
                lines.append(f"           {text}")
        lines += [f"  - missing    {_show(r)}" for r in missing]
        lines += [f"  + unexpected {_show(r)}" for r in unexpected]
        return lines


def compare_rows(alias: str, expected: list[Any], actual: list[Any], *,
                 ignore_fields: Iterable[str] = (), ordered: bool = False,
                 rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> OutputComparison:
    """Compare rows as multisets (or position by position with ``ordered``)."""
    ignore = {f.lower() for f in ignore_fields}
    exp = [_strip(r, ignore) for r in expected]
    act = [_strip(r, ignore) for r in actual]
    result = OutputComparison(alias, ordered=ordered, expected_count=len(exp), actual_count=len(act))
    if ordered:
        for i in range(max(len(exp), len(act))):
            if i < len(exp) and i < len(act) and values_equal(exp[i], act[i], rel_tol, abs_tol):
                result.matched += 1
                continue
            if i < len(exp):
                result.missing.append(exp[i])
            if i < len(act):
                result.unexpected.append(act[i])
        return result
    remaining = list(act)
    for row in exp:
        for j, candidate in enumerate(remaining):
            if values_equal(row, candidate, rel_tol, abs_tol):
                del remaining[j]
                result.matched += 1
                break
        else:
            result.missing.append(row)
    result.unexpected = remaining
    return result


def _show(row: Any) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def _pairs(missing: list[Any], unexpected: list[Any]) -> list[tuple[Any, Any]]:
    """Pair each missing row with the most similar unexpected row (same keys, most equal fields);
    paired rows are removed from both lists."""
    pairs = []
    for exp in list(missing):
        if not isinstance(exp, dict):
            continue
        best, best_score = None, 0
        for k, act in enumerate(unexpected):
            if not isinstance(act, dict):
                continue
            score = sum(1 for key, value in exp.items() if key in act and values_equal(value, act[key]))
            if score > best_score:
                best, best_score = k, score
        if best is not None and best_score * 2 >= max(len(exp), 1):
            pairs.append((exp, unexpected.pop(best)))
            missing.remove(exp)
    return pairs


def _field_diffs(exp: dict[str, Any], act: dict[str, Any]) -> list[str]:
    out = []
    for key, value in exp.items():
        if key not in act:
            out.append(f"{key}: expected {_show(value)}, field absent")
        elif not values_equal(value, act[key]):
            out.append(f"{key}: expected {_show(value)}, got {_show(act[key])}")
    out += [f"{key}: not expected, got {_show(act[key])}" for key in act if key not in exp]
    return out


# --------------------------------------------------------------------------- running


@dataclass
class TestResult:
    name: str
    passed: bool
    seconds: float
    entries: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    comparisons: list[OutputComparison] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"Name": self.name, "Status": 0 if self.passed else 1,
                                "Time": timespan(self.seconds)}
        for key in _ENTRY_KINDS:
            data[key] = self.entries.get(key, [])
        if self.error:
            data["Error"] = self.error
        return data


_ENTRY_KINDS = ("OutputMatched", "OutputNotEqual", "OutputMissing", "OutputUnexpected", "OutputUnrequired")


@dataclass
class TestSummary:
    script: str
    results: list[TestResult]
    seconds: float
    path: Path | None = None  # where testResultSummary.json was written

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    def as_json(self) -> dict[str, Any]:
        return {"Total": len(self.results), "Passed": self.passed, "Failed": self.failed,
                "Script": self.script, "Results": [r.as_json() for r in self.results],
                "Time": timespan(self.seconds)}


def timespan(seconds: float) -> str:
    """A .NET TimeSpan string: ``hh:mm:ss.fffffff``."""
    ticks = round(seconds * 10_000_000)
    whole, frac = divmod(ticks, 10_000_000)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{frac:07d}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "case"


def run_tests(project: AsaProject, config: TestConfig, output_dir: str | Path, *,
              report: Reporter | None = None, rel_tol: float = REL_TOL,
              abs_tol: float = ABS_TOL, options: Any = None) -> TestSummary:
    """Run every case, write each case's outputs and ``testResultSummary.json`` under
    ``output_dir``, and return the summary. ``report`` receives readable lines (PASS/FAIL and
    row diffs)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    say = report or (lambda line: None)
    text = project.query_text
    started = time.perf_counter()
    results = []
    used: set[str] = set()
    for case in config.cases:
        slug = _slug(case.name)
        while slug.lower() in used:
            slug += "_"
        used.add(slug.lower())
        result = _run_case(project, text, case, output_dir / slug, rel_tol, abs_tol, options)
        results.append(result)
        say(f"{'PASS' if result.passed else 'FAIL'}  {case.name} ({result.seconds:.2f}s)")
        if result.error:
            for line in result.error.splitlines():
                say(f"      {line}")
        for key in ("OutputMissing",):
            for entry in result.entries.get(key, []):
                say(f"      {entry['OutputAlias']}: the query writes no such output "
                    f"(expected {entry['ExpectedOutput']})")
        for comparison in result.comparisons:
            if not comparison.equal:
                for line in comparison.describe():
                    say(f"      {line}")
    summary = TestSummary(script=str(project.start_file.resolve()), results=results,
                          seconds=time.perf_counter() - started)
    summary.path = output_dir / SUMMARY_FILE
    summary.path.write_text(json.dumps(summary.as_json(), indent=2) + "\n", encoding="utf-8")
    return summary


def _run_case(project: AsaProject, text: str, case: TestCase, folder: Path, rel_tol: float,
              abs_tol: float, options: Any) -> TestResult:
    from asaql.config import Options
    from asaql.session import Session

    started = time.perf_counter()
    result = TestResult(name=case.name, passed=False, seconds=0.0,
                        entries={key: [] for key in _ENTRY_KINDS})
    try:
        opts = (options or Options()).with_(job_config=dict(project.job_config))
        session = Session(opts)
        inputs = {k: v for k, v in project.inputs.items()}
        for inp in case.inputs:
            inputs[inp.alias.lower()] = inp
        used = _used_inputs(project)
        needed = [live for live in project.live_inputs.values()
                  if live.alias.lower() not in inputs and (used is None or live.alias.lower() in used)]
        if needed:
            raise unreachable_error(needed[0], project, case=case.name, others=needed[1:])
        for inp in inputs.values():
            session.add_input(inp.alias, inp.path, format=inp.format, reference=inp.kind == "reference")
        for name, path in used_functions(project).items():
            session.add_function(name, path)
        job = session.compile(text, filename=str(project.start_file))
        folder.mkdir(parents=True, exist_ok=True)
        outcome = job.run()
        written = _write_outputs(outcome.outputs, job.output_names, folder)
    except AsaqlError as exc:
        result.error = exc.render(text if exc.span.is_known else None, str(project.start_file))
        result.seconds = time.perf_counter() - started
        return result
    except Exception as exc:  # noqa: BLE001 - one broken case must not hide the others' results
        result.error = f"internal error: {type(exc).__name__}: {exc} (this is a bug in asaql)"
        result.seconds = time.perf_counter() - started
        return result
    produced = {name.lower(): name for name in written}
    listed = set()
    ok = True
    for exp in case.expected:
        listed.add(exp.alias.lower())
        actual_name = produced.get(exp.alias.lower())
        entry = {"OutputAlias": exp.alias, "ExpectedOutput": str(exp.path.resolve()) if exp.path else "",
                 "Output": str(written[actual_name].resolve()) if actual_name else ""}
        if not exp.required or exp.path is None:
            result.entries["OutputUnrequired"].append(entry)
            continue
        if actual_name is None:
            result.entries["OutputMissing"].append(entry)
            ok = False
            continue
        try:
            expected_rows = read_rows(exp.path)
        except (OSError, ConfigError) as exc:
            message = exc.message if isinstance(exc, ConfigError) else f"cannot read {exp.path}: {exc.strerror}"
            result.error = ((result.error + "\n") if result.error else "") + f"expected output '{exp.alias}': {message}"
            result.entries["OutputNotEqual"].append(entry)
            ok = False
            continue
        comparison = compare_rows(exp.alias, expected_rows, read_rows(written[actual_name]),
                                  ignore_fields=exp.ignore_fields, ordered=exp.ordered,
                                  rel_tol=rel_tol, abs_tol=abs_tol)
        result.comparisons.append(comparison)
        if comparison.equal:
            result.entries["OutputMatched"].append(entry)
        else:
            result.entries["OutputNotEqual"].append(entry)
            ok = False
    for key, name in produced.items():
        if key not in listed:
            result.entries["OutputUnexpected"].append(
                {"OutputAlias": name, "ExpectedOutput": "", "Output": str(written[name].resolve())})
    result.passed = ok
    result.seconds = time.perf_counter() - started
    return result


def _write_outputs(tables: dict[str, Any], names: list[str], folder: Path) -> dict[str, Path]:
    """Each output as JSON lines (ASA's local-run format); empty outputs give empty files."""
    from asaql.io.jsonl_sink import encode_lines

    written: dict[str, Path] = {}
    for name in dict.fromkeys([*names, *tables]):
        path = folder / f"{name}.json"
        table = tables.get(name)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            if table is not None and table.num_rows:
                f.writelines("".join(encode_lines(chunk).to_pylist()) for chunk in table.to_batches())
        written[name] = path
    return written
