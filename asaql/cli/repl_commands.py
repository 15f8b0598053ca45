"""The REPL's dot-commands: one table, filled by the :func:`command` decorator, that also
generates ``.help`` (after litecli's ``special/main.py`` and DuckDB's shell metadata commands).

A command is ``fn(repl, args, rest)``: ``args`` is the shell-split argument list, ``rest`` the
raw text after the command name (``.explain`` takes a query). A command reports a user mistake
by raising :class:`UsageError` (or any AsaqlError); the REPL prints it and goes on.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asaql.errors import AsaqlError, did_you_mean

if TYPE_CHECKING:
    from asaql.cli.repl import Repl

__all__ = ["COMMANDS", "Command", "UsageError", "command", "command_names", "dispatch", "help_text", "lookup"]

Handler = Callable[["Repl", list[str], str], None]


class UsageError(AsaqlError):
    code = "usage"


@dataclass(frozen=True)
class Command:
    name: str  # with the dot: ".schema"
    usage: str  # arguments, e.g. "NAME"
    summary: str
    handler: Handler
    aliases: tuple[str, ...] = ()

    @property
    def synopsis(self) -> str:
        return f"{self.name} {self.usage}".strip()


COMMANDS: dict[str, Command] = {}
_ALIASES: dict[str, str] = {}


def command(name: str, usage: str = "", summary: str = "", *, aliases: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the dot-command ``name`` (its help is ``usage`` and ``summary``)."""

    def register(fn: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, summary or (fn.__doc__ or "").strip(), fn, aliases)
        for alias in aliases:
            _ALIASES[alias] = name
        return fn

    return register


def lookup(name: str) -> Command | None:
    name = name.lower()
    return COMMANDS.get(_ALIASES.get(name, name))


def help_text() -> str:
    width = max(len(c.synopsis) for c in COMMANDS.values())
    lines = ["Queries end with ';' or a blank line. Tab completes; Ctrl-D quits.", ""]
    for c in COMMANDS.values():
        lines.append(f"  {c.synopsis.ljust(width)}  {c.summary}")
    return "\n".join(lines)


def dispatch(repl: Repl, line: str) -> None:
    """Run one dot-command line."""
    text = line.strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    name, _, rest = text.partition(" ")
    cmd = lookup(name)
    if cmd is None:
        hint = did_you_mean(name, list(COMMANDS) + list(_ALIASES))
        raise UsageError(f"unknown command {name}", help=hint or "type .help for the list")
    try:
        args = shlex.split(rest)
    except ValueError as exc:
        raise UsageError(f"{cmd.name}: {exc}", help=f"usage: {cmd.synopsis}") from exc
    cmd.handler(repl, args, rest.strip())


def _need(args: list[str], n: int, cmd: str) -> None:
    if len(args) < n:
        c = COMMANDS[cmd]
        raise UsageError(f"{cmd} needs {c.usage or 'no arguments'}", help=f"usage: {c.synopsis}")


def _count(text: str, cmd: str) -> int:
    """A row count argument: a whole number of at least 1."""
    try:
        n = int(text)
    except ValueError as exc:
        raise UsageError(f"{cmd}: N must be a number, got {text!r}", help=f"usage: {COMMANDS[cmd].synopsis}") from exc
    if n < 1:
        raise UsageError(f"{cmd}: N must be at least 1, got {n}", help=f"usage: {COMMANDS[cmd].synopsis}")
    return n


# --------------------------------------------------------------------------- the commands


@command(".help", "", "show this help", aliases=(".h", ".?"))
def _help(repl: Repl, args: list[str], rest: str) -> None:
    repl.say(help_text())


@command(".inputs", "", "list the inputs: name, kind, path, format")
def _inputs(repl: Repl, args: list[str], rest: str) -> None:
    repl.show_inputs()


@command(".input", "NAME PATH [--ref] [--format F]", "add (or replace) an input; --ref for reference data",
         aliases=(".load",))
def _input(repl: Repl, args: list[str], rest: str) -> None:
    ref = "--ref" in args
    fmt = None
    plain: list[str] = []
    it = iter(args)
    for a in it:
        if a == "--ref":
            continue
        if a == "--format":
            fmt = next(it, None)
            if fmt is None:
                raise UsageError(".input: --format needs a value", help="json, csv or parquet")
            continue
        if a.startswith("--format="):
            fmt = a.split("=", 1)[1]
            continue
        plain.append(a)
    if len(plain) == 1 and "=" in plain[0]:
        plain = plain[0].split("=", 1)
    if len(plain) != 2:
        raise UsageError(".input needs NAME and PATH", help=f"usage: {COMMANDS['.input'].synopsis}")
    repl.add_input(plain[0], plain[1], reference=ref, format=fmt)


@command(".function", "NAME FILE", "declare udf.NAME: an ML function definition (ARM/REST or asaql JSON)")
def _function(repl: Repl, args: list[str], rest: str) -> None:
    _need(args, 2, ".function")
    repl.add_endpoint(args[0], args[1], kind="function")


@command(".ml", "NAME FILE", "an ML endpoint used as a reference input (JOIN NAME INTO (...))")
def _ml(repl: Repl, args: list[str], rest: str) -> None:
    _need(args, 2, ".ml")
    repl.add_endpoint(args[0], args[1], kind="ml")


@command(".schema", "NAME", "fields and ASA types inferred from an input's first events")
def _schema(repl: Repl, args: list[str], rest: str) -> None:
    _need(args, 1, ".schema")
    repl.show_schema(args[0])


@command(".sample", "NAME [N]", "show the first N events of an input (default 10)")
def _sample(repl: Repl, args: list[str], rest: str) -> None:
    _need(args, 1, ".sample")
    n = _count(args[1], ".sample") if len(args) > 1 else 10
    repl.show_sample(args[0], n)


@command(".explain", "QUERY", "show the logical, optimized and physical plans of a query")
def _explain(repl: Repl, args: list[str], rest: str) -> None:
    query = rest or repl.last_query
    if not query:
        raise UsageError(".explain needs a query", help="usage: .explain SELECT ... (or run one first)")
    repl.explain(query)


@command(".output", "[table|json|csv]", "how results are shown (no argument: the current one)")
def _output(repl: Repl, args: list[str], rest: str) -> None:
    if not args:
        repl.note(f"output format: {repl.output_format}")
        return
    fmt = args[0].lower()
    if fmt not in ("table", "json", "csv"):
        raise UsageError(f"unknown output format {args[0]!r}", help="use table, json or csv")
    repl.output_format = fmt
    repl.note(f"output format: {fmt}")


@command(".maxrows", "[N]", "rows shown in a table before truncating (no argument: the current one)")
def _maxrows(repl: Repl, args: list[str], rest: str) -> None:
    if args:
        repl.max_rows = _count(args[0], ".maxrows")
    repl.note(f"max rows: {repl.max_rows}")


@command(".save", "FILE", "save the last query and the inputs as an asaql job (run it with asaql run FILE)")
def _save(repl: Repl, args: list[str], rest: str) -> None:
    _need(args, 1, ".save")
    path = Path(args[0]).expanduser()
    if path.suffix.lower() != ".toml":
        raise UsageError(f".save: {args[0]} should end in .toml", help="asaql run tells job files by their .toml suffix")
    repl.save(path)


@command(".quit", "", "leave the REPL (also .exit or Ctrl-D)", aliases=(".exit", ".q"))
def _quit(repl: Repl, args: list[str], rest: str) -> None:
    repl.done = True


def command_names() -> list[str]:
    return list(COMMANDS) + list(_ALIASES)
