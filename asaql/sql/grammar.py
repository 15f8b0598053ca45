"""Locate ``asaql.lark`` and build the LALR parser once.

The grammar ships in two places: the wheel carries a copy at ``asaql/_grammar/asaql.lark``
(hatchling ``force-include``); a source checkout or editable install has only the canonical
file ``grammar/asaql.lark`` at the repository root. The packaged copy wins when both exist.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from lark import Lark
from lark.exceptions import LarkError

from asaql.errors import InternalError

__all__ = ["GRAMMAR_FILE", "START_EXPRESSION", "START_SCRIPT", "grammar_text", "lark_parser"]

GRAMMAR_FILE = "asaql.lark"
START_SCRIPT = "script"
START_EXPRESSION = "standalone_expr"

_REPO_GRAMMAR = Path(__file__).resolve().parents[2] / "grammar" / GRAMMAR_FILE


@functools.cache
def grammar_text() -> str:
    """Return the grammar source, from the packaged copy or else the repository file."""
    packaged = importlib.resources.files("asaql").joinpath("_grammar", GRAMMAR_FILE)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    if _REPO_GRAMMAR.is_file():
        return _REPO_GRAMMAR.read_text(encoding="utf-8")
    msg = (
        f"grammar not found: neither the packaged asaql/_grammar/{GRAMMAR_FILE} nor {_REPO_GRAMMAR}"
    )
    raise InternalError(msg)


@functools.cache
def lark_parser() -> Lark:
    """The LALR parser for scripts (start ``script``) and lone expressions (``standalone_expr``).

    Built on first use and kept for the process; Lark's own ``cache`` also stores the parse
    tables in the temp directory, keyed by a hash of the grammar, which cuts a cold start from
    about 0.4 s to 0.03 s. The grammar has exactly one shift/reduce conflict, on ``=`` after a
    lone name at the start of a select item: Lark resolves it as shift, which makes
    ``SELECT total = a + b`` the T-SQL alias form, as in ASA.
    """
    try:
        return Lark(
            grammar_text(),
            parser="lalr",
            lexer="contextual",
            start=[START_SCRIPT, START_EXPRESSION],
            propagate_positions=True,
            maybe_placeholders=True,
            cache=True,
        )
    except LarkError as error:
        msg = f"the SAQL grammar does not build: {error}"
        raise InternalError(msg) from error
