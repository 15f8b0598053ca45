"""Tab completion for the REPL: keywords, functions, input names, field names (nested ones
after a dot, through aliases and ``CROSS APPLY`` outputs) and dot-commands with their
arguments. :func:`candidates` is pure and unit-tested; the prompt_toolkit
:class:`SaqlCompleter` only adapts it (and completes file paths for ``.input`` and ``.save``).

What is offered depends on the token before the word:

* after ``FROM`` / ``JOIN``: inputs and ``WITH`` steps;
* after ``CROSS APPLY``: ``GetArrayElements`` and ``GetRecordProperties``;
* after ``alias.``: the fields of the input the alias names (``e.meta.`` its record's fields;
  a ``GetArrayElements`` alias gives ``ArrayIndex`` / ``ArrayValue``);
* elsewhere: keywords, functions, inputs and fields matching the word typed so far, or, with
  nothing typed yet after ``SELECT``, ``WHERE``, a comma, an operator..., the fields.

Names that are not plain identifiers (or are keywords) are offered in brackets: ``[d x]``.

>>> words = Words(keywords={"SELECT", "FROM"}, functions={"UPPER"}, inputs=["iot"],
...               fields={"iot": [("deviceId",), ("meta",), ("meta", "firmware")]})
>>> candidates("SEL", words), candidates("SELECT dev", words), candidates("SELECT i.meta.f", words)
(['SELECT'], ['deviceId'], ['firmware'])
>>> candidates("SELECT x.meta.f", words, " FROM iot x"), candidates("SELECT * FROM ", words)
(['firmware'], ['iot'])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from asaql.cli.lexer import Token, tokenize

__all__ = ["ARRAY_ITEM", "EXTRA_FUNCTIONS", "SaqlCompleter", "Words", "candidates"]

#: SAQL names that are not scalar functions in the registry: aggregates, windows, table
#: functions and system properties.
EXTRA_FUNCTIONS = (
    "AVG", "COUNT", "MAX", "MIN", "SUM", "STDEV", "STDEVP", "VAR", "VARP", "TopOne", "Collect",
    "CollectTop", "Percentile_Cont", "Percentile_Disc", "LAG", "LAST", "ISFIRST",
    "TumblingWindow", "HoppingWindow", "SlidingWindow", "SessionWindow", "SnapshotWindow",
    "GetRecordProperties", "GetArrayElements", "System.Timestamp", "TRY_CAST", "CAST",
    "COALESCE", "AnomalyDetection_SpikeAndDip", "AnomalyDetection_ChangePoint",
)

#: in a field path, the element of an array: ``("tags", ARRAY_ITEM, "p")`` is ``p`` in the
#: records of the array ``tags`` (what ``GetArrayElements(e.tags)`` gives as ``ArrayValue``)
ARRAY_ITEM = "[]"

#: what each CROSS APPLY table function gives its alias
_APPLY_FIELDS = {
    "getarrayelements": ["ArrayIndex", "ArrayValue"],
    "getrecordproperties": ["PropertyName", "PropertyValue"],
}

#: after these (or an operator, a comma or an open parenthesis) an expression starts, so Tab
#: with nothing typed offers the fields
_EXPRESSION_START = frozenset(
    "SELECT WHERE ON AND OR NOT BY HAVING WHEN THEN ELSE CASE BETWEEN IN IS DISTINCT".split()
)
_PATH_COMMANDS = {".input": 1, ".load": 1, ".function": 1, ".ml": 1, ".save": 0}  # -> index of PATH
_OUTPUT_FORMATS = ("table", "json", "csv")
_WORD = re.compile(r"[A-Za-z_\[\]][A-Za-z0-9_.\[\]]*$")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Words:
    """What can be completed; ``fields`` maps an input to its field paths (tuples)."""

    keywords: Iterable[str] = ()
    functions: Iterable[str] = ()
    inputs: Iterable[str] = ()
    fields: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    commands: Iterable[str] = ()


@dataclass
class _Scope:
    """The names one statement declares: aliases (-> input, step or apply function) and steps."""

    aliases: dict[str, str] = field(default_factory=dict)
    applies: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # alias -> (fn, arg path)
    steps: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # inputs and steps named after FROM / JOIN


def _match(prefix: str, names: Iterable[str]) -> list[str]:
    low = prefix.lower().lstrip("[")
    seen: dict[str, None] = {}
    for n in names:
        bare = n.lower().strip("[]")
        if bare.startswith(low) and bare != low:
            seen.setdefault(n)
    return sorted(seen, key=lambda n: n.lower().strip("[]"))


def _quote(name: str, keywords: frozenset[str]) -> str:
    if _IDENT.fullmatch(name) and name.upper() not in keywords:
        return name
    return "[" + name.replace("]", "]]") + "]"


def _bare(part: str) -> str:
    if part == ARRAY_ITEM or not (part.startswith("[") and part.endswith("]")):
        return part
    return part[1:-1].replace("]]", "]")


def _children(words: Words, parent: tuple[str, ...], inputs: Iterable[str] | None = None) -> list[str]:
    """Field names one level under ``parent``, in ``inputs`` (all inputs when None)."""
    want = tuple(_bare(p).lower() for p in parent)
    wanted_inputs = None if inputs is None else {i.lower() for i in inputs}
    out = []
    for name, paths in words.fields.items():
        if wanted_inputs is not None and name.lower() not in wanted_inputs:
            continue
        for path in paths:
            if (len(path) == len(want) + 1 and path[-1] != ARRAY_ITEM
                    and tuple(p.lower() for p in path[:-1]) == want):
                out.append(path[-1])
    return out


def _significant(text: str) -> list[Token]:
    return [t for t in tokenize(text) if t.kind not in ("ws", "comment")]


def _scope(tokens: list[Token]) -> _Scope:
    """Aliases, CROSS APPLY outputs and WITH steps declared in one statement's tokens."""
    scope = _Scope()

    def name_at(i: int) -> str | None:
        if i < len(tokens) and tokens[i].kind in ("name", "qname"):
            return _bare(tokens[i].text)
        return None

    def alias_after(i: int) -> str | None:
        if i < len(tokens) and tokens[i].text.upper() == "AS":
            i += 1
        return name_at(i)

    for i, tok in enumerate(tokens):
        word = tok.text.upper() if tok.kind == "keyword" else ""
        if word in ("FROM", "JOIN") and (source := name_at(i + 1)):
            scope.sources.append(source)
            scope.aliases[source.lower()] = source
            if alias := alias_after(i + 2):
                scope.aliases[alias.lower()] = source
        elif word == "APPLY" and (fn := name_at(i + 1)) and fn.lower() in _APPLY_FIELDS:
            depth, j, arg = 0, i + 2, []
            while j < len(tokens):
                depth += tokens[j].text == "("
                depth -= tokens[j].text == ")"
                if depth == 0:
                    break
                if tokens[j].kind in ("name", "qname"):
                    arg.append(_bare(tokens[j].text))
                j += 1
            if alias := alias_after(j + 1):
                scope.applies[alias.lower()] = (fn.lower(), tuple(arg))
        elif word == "AS" and i and (step := name_at(i - 1)) and i + 1 < len(tokens) and tokens[i + 1].text == "(":
            scope.steps.append(step)
    return scope


def _statement(before: str, after: str) -> tuple[str, str]:
    """The parts of the statement around the cursor (between the ``;`` before and after it)."""
    cut = max((t.start + 1 for t in tokenize(before) if t.text == ";"), default=0)
    end = next((t.start for t in tokenize(after) if t.text == ";"), len(after))
    return before[cut:], after[:end]


def candidates(before_cursor: str, words: Words, after_cursor: str = "") -> list[str]:
    """Completions for the word that ends at the cursor (replacing its last dotted part);
    ``after_cursor`` is the rest of the text (aliases may be declared there)."""
    line = before_cursor.rsplit("\n", 1)[-1]
    if before_cursor.lstrip().startswith("."):
        found = _command_candidates(line, words)
        if found is not None:
            return found
        line = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
        before_cursor, after_cursor = line, ""
    before, after = _statement(before_cursor, after_cursor)
    m = _WORD.search(before)
    word = m.group() if m else ""
    tokens = _significant(before[: len(before) - len(word)])
    scope = _scope(tokens + _significant(word + after))
    keywords = frozenset(k.upper() for k in words.keywords)
    if "." in word:
        *parent, last = word.split(".")
        return _dotted(parent, last, words, scope, keywords)
    prev = tokens[-1] if tokens else None
    prev_word = prev.text.upper() if prev is not None and prev.kind == "keyword" else ""
    if prev_word in ("FROM", "JOIN"):
        return _match(word, [_quote(n, keywords) for n in list(words.inputs) + scope.steps])
    if prev_word == "APPLY":
        return _match(word, ["GetArrayElements", "GetRecordProperties"])
    fields = _children(words, (), _known_inputs(scope, words) or None)
    if not word:
        starts = prev is not None and (prev_word in _EXPRESSION_START or prev.kind == "op" or prev.text in ",(")
        return sorted({_quote(f, keywords) for f in fields}, key=str.lower) if starts else []
    funcs = [f for f in words.functions if "." not in f]
    pool = (list(words.keywords) + funcs + list(words.inputs) + scope.steps
            + [_quote(f, keywords) for f in fields])
    return _match(word, pool)


def _known_inputs(scope: _Scope, words: Words) -> list[str]:
    known = {i.lower(): i for i in words.inputs}
    return [known[s.lower()] for s in scope.sources if s.lower() in known]


def _dotted(parent: list[str], last: str, words: Words, scope: _Scope, keywords: frozenset[str]) -> list[str]:
    """Completions of ``a.b.<last>``: through an alias, an input, an apply output or a record."""

    def fields(path: tuple[str, ...], inputs: list[str] | None = None) -> list[str]:
        return _match(last, [_quote(n, keywords) for n in _children(words, path, inputs)])

    if [p.lower() for p in parent] == ["system"]:
        return _match(last, ["Timestamp()"])
    head, rest = _bare(parent[0]).lower(), tuple(parent[1:])
    apply = scope.applies.get(head)
    if apply is not None:
        fn, arg = apply
        if not rest:
            return _match(last, _APPLY_FIELDS[fn])
        if fn == "getarrayelements" and rest[0].lower() == "arrayvalue" and arg:
            return _dotted([*arg, ARRAY_ITEM, *rest[1:]], last, words, scope, keywords)
        return []
    source = scope.aliases.get(head)
    inputs = {i.lower(): i for i in words.inputs}
    if source is None and head in inputs:
        source = inputs[head]
    if source is not None and source.lower() in inputs and (found := fields(rest, [source])):
        return found
    found = []
    for start in range(len(parent)):  # `meta.f`, or `e.meta.f` with e unknown: try meta, then e.meta
        found = fields(tuple(parent[start:]))
        if found:
            break
    if not found and source is None:  # `e.dev` with e a step: top-level fields
        found = fields(())
    return found


def _command_candidates(line: str, words: Words) -> list[str] | None:
    """Completions in a dot-command line; None when its argument is a query (``.explain``)."""
    parts = line.split()
    if len(parts) <= 1 and not line.endswith(" "):
        return _match(line.strip(), words.commands)
    typing_first = len(parts) == 1 or (len(parts) == 2 and not line.endswith(" "))
    current = "" if line.endswith(" ") else parts[-1]
    command = parts[0].lower()
    if command in (".schema", ".sample") and typing_first:
        return _match(current, words.inputs)
    if command == ".output" and typing_first:
        return _match(current, _OUTPUT_FORMATS)
    if command == ".explain":
        return None
    return []


def path_argument(line: str) -> str | None:
    """The path being typed when ``line`` is at a dot-command's PATH argument, else None.

    >>> path_argument(".input iot data/io"), path_argument(".save "), path_argument(".input iot")
    ('data/io', '', None)
    """
    parts = line.lstrip().split(" ")
    index = _PATH_COMMANDS.get(parts[0].lower())
    if index is None:
        return None
    args = [p for p in parts[1:] if p]
    if line.endswith(" "):
        args.append("")
    return args[index] if len(args) == index + 1 else None


class SaqlCompleter(Completer):
    """prompt_toolkit adapter over :func:`candidates`; ``words`` is called on each Tab."""

    def __init__(self, words: Callable[[], Words]) -> None:
        self._words = words
        self._paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        tail = before.rsplit("\n", 1)[-1]
        if before.lstrip().startswith("."):
            path = path_argument(tail)
            if path is not None:
                yield from self._paths.get_completions(Document(path), complete_event)
                return
        try:
            found = candidates(before, self._words(), document.text_after_cursor)
        except Exception:  # noqa: BLE001 - a completion bug must not end the session
            return
        m = _WORD.search(tail)
        word = m.group() if m else ""
        if tail.lstrip().startswith(".") and " " not in tail.strip():
            word = tail.strip()
        elif tail.lstrip().startswith(".") and " " in tail.strip() and not word:
            word = "" if tail.endswith(" ") else tail.split()[-1]
        replace = len(word.rsplit(".", 1)[-1]) if "." in word and not word.startswith(".") else len(word)
        for c in found:
            yield Completion(c, start_position=-replace)
