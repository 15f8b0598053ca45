"""The REPL in a pseudo-terminal, shared by tests/test_repl.py and tests/test_repl_audit.py:
start ``python -m asaql repl`` over the quickstart data with pexpect, type a line and read what
the REPL printed before its next prompt."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QS = ROOT / "examples" / "quickstart"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\r")
PROMPT_END, PROMPT_START = "\x1b[?2004l", "\x1b[?2004h"


def plain(text: str) -> str:
    return ANSI.sub("", text)


def spawn(pexpect: Any, cwd: Path, history: Path, columns: int) -> Any:
    """The REPL over the quickstart events (stream) and devices (reference), at its first
    prompt, ``columns`` wide."""
    env = {**os.environ, "ASAQL_HISTORY": str(history), "PROMPT_TOOLKIT_NO_CPR": "1",
           "TERM": "xterm", "COLUMNS": str(columns), "LINES": "50"}
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "asaql", "repl", "--input", f"events={QS / 'events.jsonl'}", "--ref", f"devices={QS / 'devices.csv'}"],
        env=env, cwd=str(cwd), encoding="utf-8", dimensions=(50, columns), timeout=20,
    )
    child.expect_exact(PROMPT_START)
    return child


def run(child: Any, line: str) -> str:
    """Type ``line`` and Enter; return what the REPL printed before its next prompt (ANSI
    codes removed). prompt_toolkit turns bracketed paste off when a prompt ends and on when
    the next one starts, which frames the output exactly."""
    child.send(line + "\r")
    child.expect_exact(PROMPT_END)
    child.expect_exact(PROMPT_START)
    return plain(child.before)
