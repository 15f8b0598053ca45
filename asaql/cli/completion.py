"""Tab completion for the REPL: keywords, functions, input names, field names (nested ones
after a dot) and dot-commands. :func:`candidates` is pure and unit-tested; the prompt_toolkit
:class:`SaqlCompleter` only adapts it.

>>> words = Words(keywords={"SELECT", "FROM"}, functions={"UPPER"}, inputs=["iot"],
...               fields={"iot": [("deviceId",), ("meta",), ("meta", "firmware")]})
>>> candidates("SEL", words), candidates("SELECT dev", words), candidates("SELECT i.meta.f", words)
(['SELECT'], ['deviceId'], ['firmware'])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

__all__ = ["EXTRA_FUNCTIONS", "SaqlCompleter", "Words", "candidates"]

#: SAQL names that are not scalar functions in the registry: aggregates, windows, table
#: functions and system properties.
EXTRA_FUNCTIONS = (
    "AVG", "COUNT", "MAX", "MIN", "SUM", "STDEV", "STDEVP", "VAR", "VARP", "TopOne", "Collect",
    "CollectTop", "Percentile_Cont", "Percentile_Disc", "LAG", "LAST", "ISFIRST",
    "TumblingWindow", "HoppingWindow", "SlidingWindow", "SessionWindow", "SnapshotWindow",
    "GetRecordProperties", "GetArrayElements", "System.Timestamp", "TRY_CAST", "CAST",
    "COALESCE", "AnomalyDetection_SpikeAndDip", "AnomalyDetection_ChangePoint",
)

_WORD = re.compile(r"[A-Za-z_\[\]][A-Za-z0-9_.\[\]]*$")


@dataclass
class Words:
    """What can be completed; ``fields`` maps an input to its field paths (tuples)."""

    keywords: Iterable[str] = ()
    functions: Iterable[str] = ()
    inputs: Iterable[str] = ()
    fields: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    commands: Iterable[str] = ()


def _match(prefix: str, names: Iterable[str]) -> list[str]:
    low = prefix.lower()
    seen: dict[str, None] = {}
    for n in names:
        if n.lower().startswith(low) and n.lower() != low:
            seen.setdefault(n)
    return sorted(seen, key=str.lower)


def _children(words: Words, parent: tuple[str, ...]) -> list[str]:
    want = tuple(p.lower().strip("[]") for p in parent)
    out = []
    for paths in words.fields.values():
        for path in paths:
            if len(path) == len(want) + 1 and tuple(p.lower() for p in path[:-1]) == want:
                out.append(path[-1])
    return out


def candidates(before_cursor: str, words: Words) -> list[str]:
    """Completions for the word that ends at the cursor (replacing its last dotted part)."""
    line = before_cursor.rsplit("\n", 1)[-1]
    if before_cursor.lstrip().startswith("."):
        parts = line.split()
        if len(parts) <= 1 and not line.endswith(" "):
            return _match(line.strip(), words.commands)
        if parts[0] in (".schema", ".sample") and (len(parts) == 1 or len(parts) == 2 and not line.endswith(" ")):
            return _match("" if line.endswith(" ") else parts[-1], words.inputs)
        if parts[0] != ".explain":
            return []
        line = line[len(parts[0]):]
    m = _WORD.search(line)
    word = m.group() if m else ""
    if "." in word:
        *parent, last = word.split(".")
        if [p.lower() for p in parent] == ["system"]:
            return _match(last, ["Timestamp()"])
        found: list[str] = []
        for start in range(len(parent)):  # `e.meta.f`: e may be an alias; try meta, then e.meta
            found = _match(last, _children(words, tuple(parent[start:])))
            if found:
                break
        if not found:  # `e.dev` with e an alias or input: top-level fields
            found = _match(last, _children(words, ()))
        return found
    if not word:
        return []
    funcs = [f for f in words.functions if "." not in f]
    pool = list(words.keywords) + funcs + list(words.inputs) + _children(words, ())
    return _match(word, pool)


class SaqlCompleter(Completer):
    """prompt_toolkit adapter over :func:`candidates`; ``words`` is called on each Tab."""

    def __init__(self, words: Callable[[], Words]) -> None:
        self._words = words

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        try:
            found = candidates(before, self._words())
        except Exception:  # noqa: BLE001 - a completion bug must not end the session
            return
        tail = before.rsplit("\n", 1)[-1]
        m = _WORD.search(tail)
        word = m.group() if m else ""
        if tail.lstrip().startswith(".") and " " not in tail.strip():
            word = tail.strip()
        replace = len(word.rsplit(".", 1)[-1]) if "." in word and not word.startswith(".") else len(word)
        if tail.lstrip().startswith(".") and " " in tail.strip() and not word:
            replace = 0
        for c in found:
            yield Completion(c, start_position=-replace)
