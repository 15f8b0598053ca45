"""Data-driven end-to-end cases: tests/cases/**, the shared conformance cases and examples/.

Each case runs three ways, which must agree: default options, batch size 1 (catches
batch-boundary bugs) and optimizer off (the rewrites must not change results).
Cases the engine cannot run yet are listed in tests/conformance_status.toml with the issue
that will make them pass; they are strict xfails, so a case that starts passing must be
taken off the list.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import asaql
from casefolder import Case, compare, run_case, write_expected

ROOT = Path(__file__).resolve().parent.parent
SHARED_CASES = ROOT.parent / "shared" / "conformance" / "cases"
STATUS = tomllib.loads((Path(__file__).parent / "conformance_status.toml").read_text())

VARIANTS = {
    "default": {},
    "batch1": {"batch_size": 1},
    "noopt": {"optimize": False},
}


def _case_dirs() -> list[Path]:
    own = sorted(p.parent for p in (ROOT / "tests" / "cases").rglob("query.asaql"))
    shared = sorted(p for p in SHARED_CASES.iterdir() if p.is_dir()) if SHARED_CASES.exists() else []
    return own + shared


def _params() -> list[object]:
    params = []
    for path in _case_dirs():
        reason = STATUS.get("xfail", {}).get(path.name)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        for variant in VARIANTS:
            params.append(pytest.param(path, variant, marks=marks, id=f"{path.name}-{variant}"))
    return params


@pytest.mark.parametrize(("path", "variant"), _params())
def test_case(path: Path, variant: str, request: pytest.FixtureRequest) -> None:
    case = Case.load(path)
    expected_error = case.expected_error()
    if expected_error is not None:
        _check_error(case, expected_error, VARIANTS[variant])
        return
    actual = run_case(case, **VARIANTS[variant])
    if request.config.getoption("--update-expected") and variant == "default" and "shared" not in path.parts:
        write_expected(case, actual)
        return
    problems = compare(case, actual)
    assert not problems, "\n\n".join(problems)


def _check_error(case: Case, expected: dict[str, str], options: dict[str, object]) -> None:
    session = case.session(**options)
    if expected["phase"] == "compile":
        with pytest.raises(asaql.QueryError) as info:
            session.compile(case.query())
        assert info.value.span.is_known, "a compile error must name a position"
    else:
        job = session.compile(case.query())
        with pytest.raises(asaql.ExecutionError) as info:
            job.run()
    assert info.value.code == expected["kind"], info.value.render(case.query())
    hint = expected.get("hint")
    if hint:
        rendered = info.value.render(case.query())
        assert hint.lower() in rendered.lower(), rendered
