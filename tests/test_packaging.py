"""The wheel ships the grammar inside the package, byte-identical to grammar/asaql.lark, and
the parser loads it from there (a non-editable install has no repository beside it)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_the_grammar(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    if res.returncode != 0 and "No matching distribution" in res.stderr:
        pytest.skip("no package index to fetch the build backend")
    assert res.returncode == 0, res.stderr
    wheel = next(tmp_path.glob("asaql-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        packaged = zf.read("asaql/_grammar/asaql.lark")
        names = zf.namelist()
    assert packaged == (ROOT / "grammar" / "asaql.lark").read_bytes()
    assert "asaql/cli/main.py" in names
    assert "asaql/py.typed" in names  # the public API's type hints reach users' type checkers
