"""Syntax highlighting for the REPL's line editor: :mod:`asaql.cli.lexer` tokens to
prompt_toolkit style classes."""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.document import Document
from prompt_toolkit.lexers import Lexer
from prompt_toolkit.styles import Style

from asaql.cli.lexer import tokenize

__all__ = ["STYLE", "SaqlLexer", "style_class"]

STYLE = Style.from_dict({
    "saql.keyword": "bold ansiblue",
    "saql.string": "ansigreen",
    "saql.number": "ansicyan",
    "saql.comment": "italic ansibrightblack",
    "saql.qname": "ansiyellow",
    "saql.function": "ansimagenta",
    "saql.error": "ansired",
    "saql.dotcommand": "bold ansimagenta",
})

_CLASS = {
    "keyword": "class:saql.keyword",
    "string": "class:saql.string",
    "open_string": "class:saql.error",
    "number": "class:saql.number",
    "comment": "class:saql.comment",
    "open_comment": "class:saql.comment",
    "qname": "class:saql.qname",
    "open_qname": "class:saql.error",
}


def style_class(kind: str) -> str:
    return _CLASS.get(kind, "")


class SaqlLexer(Lexer):
    """Highlights keywords, strings, numbers, comments, [names] and known function names."""

    def __init__(self, functions: Callable[[], set[str]] | None = None) -> None:
        self._functions = functions or (lambda: set())

    def lex_document(self, document: Document) -> Callable[[int], list[tuple[str, str]]]:
        text = document.text
        if text.lstrip().startswith("."):
            head, _, rest = text.partition(" ")
            fragments = [("class:saql.dotcommand", head)] + ([("", " " + rest)] if _ else [])
        else:
            functions = {f.lower() for f in self._functions()}
            tokens = tokenize(text)
            fragments = []
            for i, tok in enumerate(tokens):
                cls = style_class(tok.kind)
                if tok.kind == "name" and tok.text.lower() in functions:
                    nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
                    if nxt == "(":
                        cls = "class:saql.function"
                fragments.append((cls, tok.text))
        lines: list[list[tuple[str, str]]] = [[]]
        for cls, chunk in fragments:
            parts = chunk.split("\n")
            for j, part in enumerate(parts):
                if j:
                    lines.append([])
                if part:
                    lines[-1].append((cls, part))

        def get_line(lineno: int) -> list[tuple[str, str]]:
            return lines[lineno] if lineno < len(lines) else []

        return get_line
