"""Reading the files of a VS Code ASA project as they are found in the wild.

Projects are made on Windows and checked out on Linux CI machines, edited by hand, and copied
between machines, so what a project file says is read leniently:

* JSON may start with a byte-order mark and may hold ``//`` and ``/* */`` comments and trailing
  commas (VS Code edits ``.json`` files as JSON with comments);
* paths use ``\\`` or ``/``; a path written with another case than the file on disk
  (``inputs\\local_input.json`` for ``Inputs/Local_Input.json``) is found on a case-sensitive
  file system too;
* an absolute path from another machine (``C:\\Users\\me\\job\\data.json``,
  ``D:/CODE/job/Inputs/data``) falls back to the same file name in the folders it could mean.

>>> strip_jsonc('{"a": 1, // note\\n "b": "x//y",}')
'{"a": 1, \\n "b": "x//y"}'
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from asaql.errors import ConfigError

__all__ = ["locate", "read_json", "resolve", "strip_jsonc"]

_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_JSONC_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?\*/|,(?=\s*[}\]])', re.DOTALL)


def strip_jsonc(text: str) -> str:
    """``text`` without comments and trailing commas; strings are left as they are."""

    def keep_strings(match: re.Match[str]) -> str:
        token = match.group(0)
        return token if token.startswith('"') else ""

    return _JSONC_TOKEN.sub(keep_strings, text)


def read_json(path: Path, what: str) -> Any:
    """A project JSON file (BOM, comments and trailing commas allowed); errors name the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text: {exc.reason}",
                          help="save it as UTF-8 (with or without a byte-order mark)") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        first = exc
    try:
        return json.loads(strip_jsonc(text))
    except json.JSONDecodeError:
        raise ConfigError(f"{what} {path} is not valid JSON: {first.msg} "
                          f"(line {first.lineno}, column {first.colno})") from first


def _parts(raw: str) -> tuple[bool, tuple[str, ...]]:
    """(absolute, parts) of a path written with ``\\`` or ``/`` separators."""
    text = raw.strip()
    if "\\" in text or _DRIVE.match(text):
        win = PureWindowsPath(text)
        return bool(win.drive or win.root), win.parts
    posix = PurePosixPath(text)
    return posix.is_absolute(), posix.parts


def _case_insensitive(path: Path) -> Path:
    """``path`` with each missing component replaced by the one entry of its folder that has the
    same name up to case; ``path`` itself when it exists or nothing matches."""
    if path.exists():
        return path
    anchor = Path(path.anchor) if path.is_absolute() else Path()
    current = anchor
    for part in path.parts[len(anchor.parts):]:
        candidate = current / part
        if not candidate.exists() and part not in ("..", "."):
            try:
                matches = [entry for entry in os.listdir(current) if entry.lower() == part.lower()]
            except OSError:
                return path
            if len(matches) != 1:
                return path
            candidate = current / matches[0]
        current = candidate
    return current


def resolve(base: Path, raw: str) -> Path:
    """A path from a project file, relative to ``base`` unless absolute; ``\\`` separators and a
    case that differs from the disk are accepted. An absolute Windows path is kept as it is."""
    absolute, parts = _parts(raw)
    if absolute:
        return Path(raw.strip())
    return _case_insensitive(Path(os.path.normpath(base.joinpath(*parts))))


def locate(raw: str, bases: Iterable[Path]) -> Path:
    """The file ``raw`` names: relative to the first base where it exists; then, for a path that
    exists nowhere (an absolute path from another machine), the same file name in a base; else
    ``raw`` resolved against the first base, for the error message."""
    bases = list(bases)
    for base in bases:
        found = resolve(base, raw)
        if found.exists():
            return found
    name = _parts(raw)[1][-1] if _parts(raw)[1] else raw
    for base in bases:
        beside = _case_insensitive(base / name)
        if beside.exists():
            return beside
    return resolve(bases[0], raw)
