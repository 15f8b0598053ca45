"""A small SAQL tokenizer for the REPL: highlighting, completion and "is this statement
complete?". It never fails: text the parser would reject still tokenizes, and an unterminated
string, bracketed name or block comment becomes an ``open_*`` token.

>>> [t.kind for t in tokenize("SELECT a -- hi\\n") if t.kind != "ws"]
['keyword', 'name', 'comment']
>>> is_complete("SELECT a FROM iot;"), is_complete("SELECT a FROM iot"), is_complete("SELECT a FROM iot\\n")
(True, False, True)
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

__all__ = ["KEYWORDS", "Token", "is_complete", "keywords", "tokenize"]


class Token(NamedTuple):
    kind: str  # ws comment string qname number keyword name op punct other open_*
    text: str
    start: int


_TOKEN = re.compile(
    r"""
     (?P<ws>\s+)
    |(?P<comment>--[^\n]*|/\*.*?\*/)
    |(?P<open_comment>/\*.*)
    |(?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    |(?P<open_string>'(?:[^']|'')*|"(?:[^"]|"")*)
    |(?P<qname>\[(?:[^\]]|\]\])*\])
    |(?P<open_qname>\[(?:[^\]]|\]\])*)
    |(?P<number>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op><>|!=|<=|>=|!<|!>|[-+*/%&|^~=<>])
    |(?P<punct>[(),.;])
    |(?P<other>.)
    """,
    re.X | re.S,
)

#: used when the grammar file cannot be read (never expected; keeps the REPL alive)
_FALLBACK_KEYWORDS = frozenset(
    "ALL AND APPLY AS ASC BETWEEN BY CASE CAST CREATE CROSS DESC DISTINCT ELSE END FROM GROUP "
    "HAVING IN INNER INTO IS JOIN LEFT LIKE LIMIT NOT NULL ON OR ORDER OUTER OVER PARTITION "
    "SELECT TABLE THEN TIMESTAMP TRY_CAST UNION WHEN WHERE WITH".split()
)


@functools.cache
def keywords() -> frozenset[str]:
    """The grammar's keywords (upper case), read from ``asaql.lark`` (the single source)."""
    try:
        from asaql.sql.grammar import grammar_text

        found = {m.upper() for m in re.findall(r'"([A-Za-z_]+)"i', grammar_text())}
    except Exception:  # noqa: BLE001 - highlighting must never take the REPL down
        return _FALLBACK_KEYWORDS
    return frozenset(found) or _FALLBACK_KEYWORDS


KEYWORDS = _FALLBACK_KEYWORDS  # a stable subset for importers; keywords() is the full set


def tokenize(text: str) -> list[Token]:
    """Every character of ``text`` in exactly one token, in order."""
    kw = keywords()
    out: list[Token] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        value = m.group()
        if kind == "word":
            kind = "keyword" if value.upper() in kw else "name"
        out.append(Token(kind, value, m.start()))
    return out


# A statement ending with one of these words (or an operator, a comma or a dot) needs more text,
# so a blank line after it does not run it (a ';' always does).
_CONTINUES = frozenset(
    "SELECT FROM WHERE AND OR NOT BY JOIN ON AS INTO WITH HAVING CASE WHEN THEN ELSE BETWEEN "
    "LIKE IN IS UNION ALL APPLY CROSS OUTER INNER LEFT TIMESTAMP GROUP PARTITION OVER ORDER "
    "DISTINCT LIMIT".split()
)


def is_complete(text: str) -> bool:
    """Whether pressing Enter at the end of ``text`` should run it.

    * a dot-command (``.schema iot``) is one line: always complete;
    * a statement ending with ``;`` (outside strings and comments) is complete;
    * a blank last line completes a statement that is closed: no open string, bracketed name,
      comment or parenthesis, and it does not end with a comma, an operator or a keyword
      that needs more (``WHERE``, ``AND``, ``FROM`` ...);
    * two blank lines in a row complete anything outside a string, bracketed name or block
      comment, so a statement that is still missing something shows its error instead of
      waiting for more lines.

    Pure: no I/O, no parser; the REPL and the piped reader both call it.

    >>> is_complete(".inputs"), is_complete("SELECT a\\nFROM t\\n"), is_complete("SELECT a,\\n")
    (True, True, False)
    >>> is_complete("SELECT 'a;b' FROM t"), is_complete("SELECT 'a\\n"), is_complete("")
    (False, False, False)
    >>> is_complete("SELECT a,\\n\\n"), is_complete("SELECT 'a,\\n\\n")
    (True, False)
    """
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.startswith("."):
        return True
    tokens = [t for t in tokenize(text) if t.kind not in ("ws", "comment")]
    if not tokens:
        return False
    last = tokens[-1]
    if last.kind.startswith("open_"):
        return False
    if last.text == ";":
        return True
    lines = text.split("\n")
    if len(lines) < 2 or lines[-1].strip():
        return False
    if len(lines) > 2 and not lines[-2].strip():
        return True  # two blank lines: run it, whatever it lacks
    depth = sum(1 if t.text == "(" else -1 if t.text == ")" else 0 for t in tokens)
    if depth > 0:
        return False
    if last.kind == "op" or last.text in (",", "."):
        return False
    return not (last.kind == "keyword" and last.text.upper() in _CONTINUES)
