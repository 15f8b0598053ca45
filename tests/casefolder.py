"""Case folders: a query, its inputs and the expected output, run through the real engine.

Format (the same as ../shared/conformance, see its README):

    query.asaql              the script
    <alias>.jsonl|.csv       one file per input (line order = arrival order)
    expected.jsonl           rows of the only output, or expected.<output>.jsonl per output
    expected_error.json      {"phase": "compile"|"runtime", "kind": code, "hint": text}
    config.json              JobConfig.json settings (optional)
    case.json                inputs, reference_inputs, outputs, ordered, float_tolerance,
                             unordered_arrays, mode ("strict-asa"), expects_error
    functions/<name>.json    ML functions (udf.<name>), optional
    ml/<name>.json           ML endpoints used as reference inputs (seed form), optional
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asaql
from asaql.io.sink import open_sink


@dataclass
class Case:
    path: Path
    meta: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @staticmethod
    def load(path: Path) -> Case:
        meta = json.loads((path / "case.json").read_text()) if (path / "case.json").exists() else {}
        config = json.loads((path / "config.json").read_text()) if (path / "config.json").exists() else {}
        return Case(path, meta, config)

    def session(self, **options: Any) -> asaql.Session:
        strict = self.meta.get("mode") == "strict-asa"
        session = asaql.Session(asaql.Options(job_config=self.config, strict=strict, **options))
        refs = {r.lower() for r in self.meta.get("reference_inputs", [])}
        for data in sorted(self.path.iterdir()):
            if data.suffix in (".jsonl", ".csv", ".json") and not data.name.startswith(("expected", "case", "config")):
                session.add_input(data.stem, str(data), reference=data.stem.lower() in refs)
        for kind, add in (("functions", session.add_function), ("ml", session.add_ml_input)):
            folder = self.path / kind
            if folder.is_dir():
                for spec in sorted(folder.glob("*.json")):
                    add(spec.stem, str(spec))
        return session

    def expected_outputs(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for f in sorted(self.path.glob("expected*.jsonl")):
            parts = f.name.split(".")
            name = parts[1] if len(parts) == 3 else "output"
            out[name] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        return out

    def expected_error(self) -> dict[str, Any] | None:
        f = self.path / "expected_error.json"
        return json.loads(f.read_text()) if f.exists() else None

    def query(self) -> str:
        return (self.path / "query.asaql").read_text()


def run_case(case: Case, **options: Any) -> dict[str, list[dict[str, Any]]]:
    """Run the case and return each output's rows as ASA writes them (JSON lines)."""
    job = case.session(**options).compile(case.query())
    with tempfile.TemporaryDirectory() as tmp:
        sinks = {name: Path(tmp) / f"{name}.jsonl" for name in job.output_names}
        job.run({name: str(p) for name, p in sinks.items()})
        return {
            name: [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
            if p.exists() else []
            for name, p in sinks.items()
        }


def compare(case: Case, actual: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Differences between actual and expected rows (empty when they match)."""
    problems: list[str] = []
    tol = float(case.meta.get("float_tolerance", 1e-9))
    unordered = set(case.meta.get("unordered_arrays", []))
    for name, expected in case.expected_outputs().items():
        rows = actual.get(name, [])
        if case.meta.get("ordered", False):
            pairs_ok = len(rows) == len(expected) and all(
                _row_equal(a, e, tol, unordered) for a, e in zip(rows, expected, strict=False))
        else:
            pairs_ok = _multiset_equal(rows, expected, tol, unordered)
        if not pairs_ok:
            problems.append(_diff(name, rows, expected))
    return problems


def _multiset_equal(rows: list[dict[str, Any]], expected: list[dict[str, Any]], tol: float, unordered: set[str]) -> bool:
    if len(rows) != len(expected):
        return False
    remaining = list(expected)
    for row in rows:
        for i, e in enumerate(remaining):
            if _row_equal(row, e, tol, unordered):
                del remaining[i]
                break
        else:
            return False
    return True


def _row_equal(a: dict[str, Any], e: dict[str, Any], tol: float, unordered: set[str]) -> bool:
    for key in set(a) | set(e):
        if not _value_equal(a.get(key), e.get(key), tol, key in unordered):
            return False
    return True


def _value_equal(a: Any, e: Any, tol: float, unordered: bool = False) -> bool:
    if isinstance(a, bool) or isinstance(e, bool):
        return a == e
    if isinstance(a, int | float) and isinstance(e, int | float):
        return math.isclose(a, e, rel_tol=tol, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(e, dict):
        return _row_equal(a, e, tol, set())
    if isinstance(a, list) and isinstance(e, list):
        if len(a) != len(e):
            return False
        if unordered:
            left = list(e)
            for x in a:
                idx = next((i for i, y in enumerate(left) if _value_equal(x, y, tol)), None)
                if idx is None:
                    return False
                del left[idx]
            return True
        return all(_value_equal(x, y, tol) for x, y in zip(a, e, strict=True))
    return a == e


def _diff(name: str, rows: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    lines = [f"output '{name}': {len(rows)} row(s), expected {len(expected)}"]
    lines += ["  expected: " + json.dumps(r, sort_keys=True) for r in expected]
    lines += ["  actual:   " + json.dumps(r, sort_keys=True, default=str) for r in rows]
    return "\n".join(lines)


def write_expected(case: Case, actual: dict[str, list[dict[str, Any]]]) -> None:
    """--update-expected: rewrite the expected files from the actual output."""
    single = len(actual) == 1
    for name, rows in actual.items():
        target = case.path / ("expected.jsonl" if single else f"expected.{name}.jsonl")
        target.write_text("".join(json.dumps(r) + "\n" for r in rows))


__all__ = ["Case", "compare", "open_sink", "run_case", "write_expected"]
