"""Every code block in docs/ and README.md runs.

* ```python blocks are executed in order within one page (a page shares one namespace), from
  the repository root; they check their own results with ``assert``.
* ```sh blocks: each line starting with ``asaql`` (or ``$ asaql``) is run and must exit 0,
  unless the block is preceded by ``<!-- expect-exit: N -->``. ``pip install`` lines are skipped
  (the test environment is already installed).
* ```saql blocks must parse and bind (inputs unknown to the page are treated as streams;
  ``<!-- reference: name, ... -->`` above a block declares reference inputs).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import asaql

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"((?:<!-- [\w-]+: [^>]* -->\s*\n)*)```(\w+)\n(.*?)```", re.S)
DIRECTIVE = re.compile(r"<!-- ([\w-]+): ([^>]*) -->")


def _blocks(page: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(language, code, directives) for each fenced block; directives are HTML comments
    right above it: ``<!-- expect-exit: 1 -->``, ``<!-- reference: devices, rooms -->``."""
    return [
        (m.group(2), m.group(3), dict(DIRECTIVE.findall(m.group(1))))
        for m in BLOCK.finditer(page.read_text())
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_blocks(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for lang, code, directives in _blocks(page):
        expect_exit = int(directives.get("expect-exit", 0))
        if lang == "python":
            exec(compile(code, f"{page.name}", "exec"), namespace)  # noqa: S102 - the docs are ours
        elif lang == "sh":
            _run_shell(code, expect_exit, page)
        elif lang == "saql":
            session = asaql.Session()
            for name in filter(None, (n.strip() for n in directives.get("reference", "").split(","))):
                session.add_reference(name, [])
            diagnostics = session.check(code)
            errors = [d for d in diagnostics if d.severity == "error"]
            assert not errors, f"{page.name}: " + "\n".join(d.render(code) for d in errors)


def _run_shell(code: str, expect_exit: int, page: Path) -> None:
    for raw in code.splitlines():
        line = raw.strip().removeprefix("$ ").strip()
        if not line or line.startswith("#") or line.startswith("pip ") or "&&" in line and line.startswith("pip"):
            continue
        if " && " in line:
            line = line.split(" && ")[-1]
        if not line.startswith(("asaql", "python")):
            continue
        argv = shlex.split(line)
        if argv[0] == "asaql":
            argv = [sys.executable, "-m", "asaql", *argv[1:]]
        elif argv[0] == "python":
            argv[0] = sys.executable
        if argv[3:4] in (["serve-model"], ["repl"]) or argv[1:] == ["-m", "asaql"]:
            continue  # long-running / interactive; tested in test_cli.py / test_repl.py
        res = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(os.environ))
        assert res.returncode == expect_exit, f"{page.name}: `{line}` exited {res.returncode}\n{res.stderr}"


def test_site_builds(tmp_path: Path) -> None:
    """`mkdocs build --strict` succeeds: every page in the nav exists, every link resolves."""
    pytest.importorskip("mkdocs")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
