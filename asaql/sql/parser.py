"""SAQL text -> AST: :func:`parse` for scripts, :func:`parse_expression` for one expression.

Every failure is an :class:`~asaql.errors.AsaqlSyntaxError` whose span covers the offending
token and whose message says, in words, what was expected there ("unexpected name 'b',
expected ')' or ','"). A few frequent mistakes are recognised by the parser state they leave
the LALR automaton in (Lark's ``match_examples`` idea, matched on state and token type only, so
that the nesting depth does not matter) and get a friendlier message; the generic text then
becomes the ``help`` line. No Lark exception escapes this module.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from lark import Token, Tree
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from asaql.errors import AsaqlError, AsaqlSyntaxError, InternalError, Span
from asaql.sql import ast
from asaql.sql.grammar import START_EXPRESSION, START_SCRIPT, lark_parser
from asaql.sql.transformer import AstBuilder, span_of

__all__ = ["parse", "parse_expression"]


def parse(text: str) -> ast.Script:
    """Parse a whole SAQL script (CREATE TABLE, WITH, SELECT ... statements).

    Args:
        text: the query text.

    Returns:
        The script's AST.

    Raises:
        AsaqlSyntaxError: the text is not valid SAQL.

    >>> parse("SELECT a FROM t; SELECT b FROM u").statements[1].items[0].expr.parts
    ('b',)
    """
    script = _build(_parse_tree(text, START_SCRIPT))
    assert isinstance(script, ast.Script)
    return script


def parse_expression(text: str) -> ast.Expr:
    """Parse one expression, such as a WHERE condition.

    >>> parse_expression("a + b * 2").right
    Binary(op='*', left=ColumnRef(parts=('b',)), right=Literal(value=2, kind='integer'))
    """
    expr = _build(_parse_tree(text, START_EXPRESSION))
    assert not isinstance(expr, ast.Script)
    return expr


def _parse_tree(text: str, start: str) -> Tree[Token]:
    try:
        return lark_parser().parse(text, start=start)
    except UnexpectedInput as error:
        raise _syntax_error(error, text, start) from None
    except LarkError as error:
        raise AsaqlSyntaxError(f"invalid query: {error}", span=_start_of(text)) from None


def _build(tree: Tree[Token]) -> ast.Script | ast.Expr:
    try:
        result: ast.Script | ast.Expr = AstBuilder().transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, AsaqlError):
            raise error.orig_exc from None
        msg = f"building the AST failed at rule {error.rule!r}: {error.orig_exc}"
        raise InternalError(msg) from error.orig_exc
    return result


def _start_of(text: str) -> Span:
    return Span(0, min(1, len(text)), 1, 1, 1, 2)


# ---------------------------------------------------------------- error messages

_TIMESTAMP_BY_PLACE = (
    "TIMESTAMP BY must directly follow the input name in FROM or JOIN (before ON, WHERE, GROUP BY)"
)
# Known mistakes: label -> example texts that fail in the same parser state, on the same token
# type, as the mistake does.
_KNOWN_MISTAKES: dict[str, tuple[str, ...]] = {
    "missing ',' between select items": (
        "SELECT a b c FROM t",
        "SELECT a AS b c FROM t",
        "SELECT f(x) y g(z) FROM t",
    ),
    "trailing ',' before FROM": ("SELECT a, FROM t", "SELECT a, b, FROM t"),
    "trailing ',' before INTO": ("SELECT a, INTO o FROM t", "SELECT a, b, INTO o FROM t"),
    "trailing ',' in an argument list": ("SELECT f(a,) FROM t", "SELECT f(a, b,) FROM t"),
    "trailing ',' in GROUP BY": (
        "SELECT a FROM t GROUP BY a, HAVING a > 1",
        "SELECT a FROM t GROUP BY a, b, HAVING a > 1",
        "SELECT a FROM t GROUP BY a,",
        "SELECT a FROM t GROUP BY a, b,",
    ),
    _TIMESTAMP_BY_PLACE: (
        "SELECT a FROM t WHERE x = 1 TIMESTAMP BY ts",
        "SELECT a FROM t WHERE x TIMESTAMP BY ts",
        "SELECT a FROM t GROUP BY x TIMESTAMP BY ts",
        "SELECT a FROM t JOIN u ON x = y TIMESTAMP BY ts",
        "SELECT a FROM t JOIN u ON x TIMESTAMP BY ts",
    ),
    "a JOIN needs an ON condition": (
        "SELECT a FROM t JOIN u WHERE x = 1",
        "SELECT a FROM t JOIN u",
    ),
}

_UNTERMINATED = {
    "'": "unterminated string: missing closing '",
    '"': 'unterminated double-quoted string: missing closing "',
    "[": "unterminated bracketed name: missing closing ]",
    "/*": "unterminated comment: missing closing */",
}

_WORDS = {
    "$END": "end of query",
    "NAME": "a name",
    "QUOTED_NAME": "a name",
    "MEMBER_KEYWORD": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "DQSTRING": "a string",
    "QUANTIFIER": "a quantifier",
    "COMP_OP": "a comparison operator",
    "_OVER_CALL": "OVER",
    "_SEMI": "';'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "DOT": "'.'",
    "EQUAL": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "PERCENT": "'%'",
    "AMP": "'&'",
    "PIPE": "'|'",
    "CARET": "'^'",
    "TILDE": "'~'",
}

# Terminals that can start an expression: when most of them are expected, say "an expression".
_EXPRESSION_START = frozenset(
    "INT FLOAT STRING DQSTRING NULL NAME QUOTED_NAME LPAR MINUS PLUS TILDE NOT CASE CAST TRY_CAST"
    " LEFT".split()
)
# Terminals that continue an expression already written; listed only when nothing else fits.
_CONTINUATIONS = frozenset(
    "PLUS MINUS STAR SLASH PERCENT AMP PIPE CARET EQUAL COMP_OP AND OR NOT LIKE BETWEEN IN IS DOT"
    " _OVER_CALL".split()
)
_MAX_LISTED = 6
# How many expression-starting terminals must be expected before we say "an expression".
_EXPRESSION_EVIDENCE = 4


def _syntax_error(error: UnexpectedInput, text: str, start: str) -> AsaqlSyntaxError:
    unterminated = _unterminated(text, error)
    if unterminated is not None:
        return unterminated
    if isinstance(error, UnexpectedToken):
        return _unexpected_token(error, start)
    if isinstance(error, UnexpectedCharacters):
        return _unexpected_character(error, text)
    return AsaqlSyntaxError(f"invalid query: {error}", span=_start_of(text))


def _unterminated(text: str, error: UnexpectedInput) -> AsaqlSyntaxError | None:
    """A string, bracketed name or comment opened at the error position and never closed.

    The span runs from the opening character to the end of its line.
    """
    if isinstance(error, UnexpectedToken):
        token = error.token
        if token.type in ("$END", "STRING", "DQSTRING", "QUOTED_NAME"):
            return None
        position, line, column = token.start_pos or 0, token.line or 1, token.column or 1
    else:
        position, line, column = _character_position(error)
    opener = "/*" if text.startswith("/*", position) else text[position : position + 1]
    message = _UNTERMINATED.get(opener)
    if message is None:
        return None
    line_end = text.find("\n", position)
    end = len(text) if line_end < 0 else line_end
    span = Span(position, end, line, column, line, column + end - position)
    return AsaqlSyntaxError(message, span=span)


def _unexpected_token(error: UnexpectedToken, start: str) -> AsaqlSyntaxError:
    token = error.token
    expected = _expected_words(error.accepts or error.expected)
    generic = f"{_describe(token)}, expected {expected}" if expected else _describe(token)
    label = _known_mistake(error, start)
    if label is None:
        return AsaqlSyntaxError(generic, span=_token_span(token))
    return AsaqlSyntaxError(label, span=_token_span(token), help=generic)


def _unexpected_character(error: UnexpectedCharacters, text: str) -> AsaqlSyntaxError:
    position, line, column = _character_position(error)
    span = Span(position, position + 1, line, column, line, column + 1)
    return AsaqlSyntaxError(f"unexpected character {text[position]!r}", span=span)


def _character_position(error: UnexpectedInput) -> tuple[int, int, int]:
    """Offset, line and column of a lexer error (Lark types them as optional)."""
    return error.pos_in_stream or 0, error.line or 1, error.column or 1


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "unexpected end of query"
    if token.type in ("NAME", "QUOTED_NAME", "MEMBER_KEYWORD"):
        return f"unexpected name '{token}'"
    if token.type in ("STRING", "DQSTRING"):
        return f"unexpected string {token}"
    if token.type in ("INT", "FLOAT"):
        return f"unexpected number {token}"
    if str(token).isidentifier():
        return f"unexpected keyword {str(token).upper()}"
    return f"unexpected '{token}'"


def _expected_words(terminals: Iterable[str]) -> str:
    names = set(terminals)
    words: list[str] = []
    if len(names & _EXPRESSION_START) >= _EXPRESSION_EVIDENCE:
        words.append("an expression")
        names -= _EXPRESSION_START
    if names - _CONTINUATIONS:
        names -= _CONTINUATIONS
    words.extend(sorted({_WORDS.get(name, name) for name in names}, key=_word_order))
    words = list(dict.fromkeys(words))
    if len(words) > _MAX_LISTED:
        words = [*words[: _MAX_LISTED - 1], "..."]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


_STATEMENT_STARTS = frozenset({"';'", "CREATE", "SELECT", "WITH", "end of query"})


def _word_order(word: str) -> tuple[int, str]:
    """Punctuation, then names and expressions, then keywords, then what starts a statement."""
    if word in _STATEMENT_STARTS:
        return 3, word
    if word.startswith("'"):
        return 0, word
    if word.startswith(("a ", "an ")):
        return 1, word
    return 2, word


def _token_span(token: Token) -> Span:
    if token.type != "$END":
        return span_of(token)
    if token.end_pos is None or token.end_line is None or token.end_column is None:
        return Span(0, 0, 1, 1, 1, 1)
    end, line, column = token.end_pos, token.end_line, token.end_column
    return Span(end, end, line, column, line, column)


def _known_mistake(error: UnexpectedToken, start: str) -> str | None:
    position = getattr(error.state, "position", None)
    return _mistake_signatures(start).get((position, error.token.type))


@functools.cache
def _mistake_signatures(start: str) -> dict[tuple[object, str], str]:
    """(parser state, token type) at which each known-mistake example fails -> its label."""
    signatures: dict[tuple[object, str], str] = {}
    if start != START_SCRIPT:
        return signatures
    for label, examples in _KNOWN_MISTAKES.items():
        for example in examples:
            try:
                lark_parser().parse(example, start=start)
            except UnexpectedToken as error:
                key = (getattr(error.state, "position", None), error.token.type)
                signatures.setdefault(key, label)
    return signatures
