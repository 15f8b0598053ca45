"""The interactive session: ``asaql`` (no arguments) or ``asaql repl --input NAME=PATH ...``.

A thin prompt_toolkit layer over :class:`~asaql.session.Session`:

* :class:`Repl` holds the state (inputs, last query, output format) and does the work: run a
  query and show its outputs, show a schema or a sample, save a job. It prints through
  ``rich`` and never lets a traceback out.
* :func:`interactive` is the line editor (multi-line input, history, highlighting, completion);
  :func:`piped` reads statements from a non-terminal stdin, so the REPL is scriptable::

      printf 'SELECT deviceId FROM events WHERE temperature > 40;\\n' | asaql repl -i events=events.jsonl

* when Enter runs the text is :func:`asaql.cli.lexer.is_complete` (pure); the dot-commands
  live in :mod:`asaql.cli.repl_commands`.

History goes to ``~/.asaql_history`` (``ASAQL_HISTORY`` overrides; empty disables it);
``ASAQL_MAX_ROWS`` sets how many rows a table shows (default 100; ``.maxrows`` changes it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from asaql.cli.lexer import is_complete
from asaql.errors import AsaqlError, ConfigError, QueryError
from asaql.session import Session

__all__ = ["Repl", "history_path", "interactive", "main", "piped"]

PROMPT = "asaql> "
CONTINUATION = "  ...> "
DEFAULT_MAX_ROWS = 100
SCHEMA_ROWS = 200  # events read to infer an input's schema


@dataclass
class InputRef:
    name: str
    path: str  # as given; resolved against the working directory when saved
    kind: str  # stream | reference
    format: str | None = None


def history_path() -> Path | None:
    value = os.environ.get("ASAQL_HISTORY")
    if value is None:
        return Path.home() / ".asaql_history"
    return Path(value).expanduser() if value.strip() else None


class Repl:
    """The REPL's state and actions, independent of how lines are read."""

    def __init__(self, *, out: IO[str] | None = None, err: IO[str] | None = None,
                 color: bool | None = None, output_format: str = "table") -> None:
        from rich.console import Console

        out, err = out or sys.stdout, err or sys.stderr
        no_color = None if color is None else not color
        self.out = Console(file=out, no_color=no_color, highlight=False, soft_wrap=False)
        self.err = Console(file=err, no_color=no_color, highlight=False, soft_wrap=True)
        self.session = Session()
        self.session.report = lambda message: self.err.print(message, markup=False)
        self.inputs: dict[str, InputRef] = {}
        self.endpoints: dict[str, tuple[str, str]] = {}  # name -> (kind, definition file)
        self.output_format = output_format
        self.max_rows = _env_int("ASAQL_MAX_ROWS", DEFAULT_MAX_ROWS)
        self.last_query: str | None = None
        self.done = False
        self.failures = 0
        self._schemas: dict[str, pa.Schema | None] = {}
        self._skipped = 0  # malformed events in the last read_first

    # ------------------------------------------------------------------ output helpers

    def say(self, text: str) -> None:
        self.out.print(text, markup=False, highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        self.err.print(text, style="dim", markup=False, highlight=False)

    def error(self, exc: BaseException, source: str | None = None) -> None:
        self.failures += 1
        if isinstance(exc, AsaqlError):
            exc.help = _repl_hint(exc.help)
            use = source if (isinstance(exc, QueryError) or exc.span.is_known) else None
            text = exc.render(use, "query")
        else:  # never a traceback: name the bug instead
            text = f"error[internal_error]: {type(exc).__name__}: {exc} (this is a bug in asaql)"
        self.err.print(text, style="red", markup=False, highlight=False)

    # ------------------------------------------------------------------ entry point for one unit

    def handle(self, text: str) -> None:
        """Run one statement or dot-command; report any error and stay alive."""
        from asaql.cli.repl_commands import dispatch

        if not text.strip():
            return
        try:
            if text.lstrip().startswith("."):
                dispatch(self, text)
            else:
                self.run_query(text)
        except KeyboardInterrupt:
            self.note("interrupted")
        except Exception as exc:  # noqa: BLE001 - the REPL stays alive
            self.error(exc, None if text.lstrip().startswith(".") else _query_text(text))

    # ------------------------------------------------------------------ inputs

    def add_endpoint(self, name: str, path: str, *, kind: str) -> None:
        """``.function`` (udf.NAME) or ``.ml`` (the seed JOIN form): a definition file."""
        if kind == "function":
            self.session.add_function(name, path)
        else:
            self.session.add_ml_input(name, {"file": path})
        self.endpoints[name] = (kind, str(Path(path).resolve()))
        self.note(f"{'udf.' + name if kind == 'function' else name}: endpoint from {path}")

    def add_input(self, name: str, path: str, *, reference: bool = False, format: str | None = None,
                  quiet: bool = False) -> None:
        if path != "-" and not Path(path).expanduser().exists():
            raise ConfigError(f"input '{name}': file not found: {path}")
        if path != "-" and Path(path).expanduser().is_dir():
            raise ConfigError(f"input '{name}': {path} is a folder, not a file",
                              help="give one data file (.jsonl, .json, .csv or .parquet)")
        path = str(Path(path).expanduser()) if path != "-" else path
        if format:
            from asaql.io.formats import detect_format

            format = detect_format(path, format)
        ref = InputRef(name, path, "reference" if reference else "stream", format)
        self.inputs[name.lower()] = ref
        self._schemas.pop(name.lower(), None)
        self.session.add_input(name, path, format=format, reference=reference)
        if not quiet:
            self.note(f"{ref.kind} input {name} = {path}{self._peek(name)}")

    def _peek(self, name: str) -> str:
        """A first look at a new input, for its note: how many fields, or why it cannot be read."""
        if self.inputs[name.lower()].path == "-":
            return ""
        try:
            table = self.read_first(name, SCHEMA_ROWS)
        except (AsaqlError, OSError, pa.ArrowException) as exc:
            self._schemas[name.lower()] = None
            return f" (cannot read it yet: {getattr(exc, 'message', exc)})"
        self._schemas[name.lower()] = table.schema
        if not table.num_rows and self._skipped:
            from asaql.io.formats import detect_format

            ref = self.inputs[name.lower()]
            return (f" (no event could be read as {ref.format or detect_format(ref.path)}:"
                    f" .input {name} PATH --format csv|json|parquet reads it another way)")
        if not table.num_rows:
            return " (no events in it)"
        return f" ({len(table.schema)} field(s): .schema {name} shows them)"

    def _input(self, name: str) -> InputRef:
        ref = self.inputs.get(name.lower())
        if ref is None:
            from asaql.cli.repl_commands import UsageError
            from asaql.errors import did_you_mean

            known = ", ".join(r.name for r in self.inputs.values()) or "none yet"
            hint = did_you_mean(name, [r.name for r in self.inputs.values()])
            raise UsageError(f"unknown input '{name}'", help=hint or f"known inputs: {known}; add one with .input NAME PATH")
        return ref

    def read_first(self, name: str, n: int) -> pa.Table:
        """The first ``n`` events of an input, read directly from its file."""
        from asaql.io.source import open_source
        from asaql.session import _to_table

        ref = self._input(name)
        if ref.path == "-":
            raise ConfigError(f"input '{ref.name}' reads stdin, which the REPL cannot peek at")
        skipped: list[AsaqlError] = []
        source = open_source(ref.name, ref.path, format=ref.format, on_error=skipped.append,
                             batch_rows=max(1, min(n, 4096)), reference=ref.kind == "reference")
        batches: list[pa.RecordBatch] = []
        count = 0
        try:
            for batch in source.batches(None):
                if count >= n:
                    break
                batches.append(batch.slice(0, n - count))
                count += batches[-1].num_rows
        finally:
            source.close()
        self._skipped = len(skipped)
        if skipped:
            self.note(f"{len(skipped)} malformed event(s) skipped in {ref.name}: {skipped[0].message}")
        return _to_table(batches) if batches else pa.table({})

    def schema(self, name: str) -> pa.Schema | None:
        """The inferred schema of an input (cached; None if it cannot be read)."""
        key = name.lower()
        if key not in self._schemas:
            try:
                self._schemas[key] = self.read_first(name, SCHEMA_ROWS).schema
            except (AsaqlError, OSError, pa.ArrowException):
                self._schemas[key] = None
        return self._schemas[key]

    def show_inputs(self) -> None:
        if not self.inputs:
            self.say("no inputs yet: add one with .input NAME PATH (or asaql repl --input NAME=PATH)")
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("name", "kind", "format", "path"):
            table.add_column(col)
        from asaql.io.formats import detect_format

        for ref in self.inputs.values():
            fmt = ref.format or detect_format(ref.path)
            table.add_row(Text(ref.name), Text(ref.kind), Text(fmt), Text(ref.path))
        self.out.print(table)

    def show_schema(self, name: str) -> None:
        from rich.tree import Tree

        ref = self._input(name)
        table = self.read_first(name, SCHEMA_ROWS)
        self._schemas[name.lower()] = table.schema
        tree = Tree(f"{ref.name} ({ref.kind}, {table.num_rows} event(s) read)", highlight=False)
        for fld in table.schema:
            _schema_node(tree, fld.name, fld.type)
        self.out.print(tree)

    def show_sample(self, name: str, n: int) -> None:
        start = time.perf_counter()
        table = self.read_first(name, n)
        self._show({self._input(name).name: ([b for b in table.to_batches()], table.num_rows)},
                   time.perf_counter() - start, limit=n)

    # ------------------------------------------------------------------ queries

    def explain(self, query: str) -> None:
        query = _query_text(query)
        try:
            job = self.session.compile(query, open_catalog=not self.inputs)
        except AsaqlError as exc:  # carets under the query, as when it runs
            self.error(exc, query)
            return
        self.say(job.explain())

    def run_query(self, text: str) -> None:
        query = _query_text(text)
        start = time.perf_counter()
        try:
            job = self.session.compile(query)
        except AsaqlError as exc:
            self.error(exc, query)
            return
        for d in job.diagnostics:
            if d.severity == "warning":
                self.err.print(d.render(query, "query"), style="yellow", markup=False, highlight=False)
        names = job.output_names
        streaming = self.output_format != "table"
        sinks = {n: self._stream_sink(n, len(names) > 1) for n in names} if streaming else {}
        kept: dict[str, tuple[list[pa.RecordBatch], int]] = {n: ([], 0) for n in names}
        try:
            for name, batch in job.stream():
                batches, total = kept.setdefault(name, ([], 0))
                if streaming:
                    sinks[name].write(batch)
                elif total < self.max_rows:
                    batches.append(batch.slice(0, self.max_rows - total))
                kept[name] = (batches, total + batch.num_rows)
        finally:
            for sink in sinks.values():
                sink.close()
        self.last_query = query
        elapsed = time.perf_counter() - start
        if streaming:
            for name, (_, total) in kept.items():
                self.note(_count_note(name if len(kept) > 1 else None, total, elapsed))
            return
        self._show(kept, elapsed, limit=self.max_rows, titled=len(kept) > 1 or names != ["output"])

    def _stream_sink(self, name: str, tagged: bool) -> Any:
        from asaql.io.sink import open_sink

        sys.stdout.flush()
        sink = open_sink(name, "-", format=self.output_format)
        return _Tagged(sink, name) if tagged else sink

    def _show(self, results: dict[str, tuple[list[pa.RecordBatch], int]], elapsed: float, *,
              limit: int, titled: bool = True) -> None:
        if self.output_format != "table":
            for name, (batches, _) in results.items():
                sink = self._stream_sink(name, len(results) > 1)
                for b in batches:
                    sink.write(b)
                sink.close()
        for name, (batches, total) in results.items():
            hidden = ""
            if self.output_format == "table":
                table, shown_cols, all_cols = result_table(name if titled else "", batches, limit, self.out.width)
                if table is not None:
                    self.out.print(table)
                if shown_cols < all_cols:
                    hidden = (f"; {shown_cols} of {all_cols} columns fit the terminal"
                              " (.output json shows them all)")
            shown = min(total, limit)
            note = _count_note(name if titled and len(results) > 1 else None, total, elapsed)
            if self.output_format == "table" and total > shown:
                note += f"; showing the first {shown} (.maxrows N to change)"
            self.note(note + hidden)

    # ------------------------------------------------------------------ save

    def save(self, path: Path) -> None:
        if not self.last_query:
            from asaql.cli.repl_commands import UsageError

            raise UsageError("nothing to save yet: run a query first")
        path.parent.mkdir(parents=True, exist_ok=True)
        text = job_toml(self.last_query, list(self.inputs.values()), path.parent, self.endpoints)
        path.write_text(text, encoding="utf-8")
        self.note(f"saved {path}: run it with  asaql run {path}")


class _Tagged:
    """Several outputs on one stdout: each row gets an ``__output`` field (as ``asaql run``)."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name = inner, name

    def write(self, batch: pa.RecordBatch) -> None:
        self.inner.write(batch.append_column("__output", pa.array([self.name] * batch.num_rows, pa.string())))

    def close(self) -> None:
        self.inner.close()


_MAX_FIT_WIDTH = 40  # a wider column still counts as this wide when choosing what fits


def result_table(title: str, batches: list[pa.RecordBatch], limit: int, width: int) -> tuple[Any, int, int]:
    """The first ``limit`` rows as a rich table, and how many of the columns it shows.

    Cells are plain text (a value like ``[red]`` is shown as typed, never read as markup),
    NULL is dimmed, records and arrays show as JSON. When the columns cannot all fit in
    ``width`` the leading ones that do are kept and a last ``…`` column stands for the rest.
    Returns ``(None, 0, 0)`` when there is no column to draw.
    """
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    from asaql.io.sink import cell_text  # the same cell text as asaql run's table

    columns: dict[str, list[Text | None]] = {}
    count = 0
    for batch in batches:
        batch = batch.slice(0, max(0, limit - count))
        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            texts = cell_text(array)
            nulls = array.is_null().to_pylist() if array.null_count else [False] * len(array)
            cells = columns.setdefault(name, [None] * count)
            cells += [Text("NULL", style="dim italic") if null else Text(t) for t, null in zip(texts, nulls, strict=True)]
        count += batch.num_rows
        for cells in columns.values():
            cells += [None] * (count - len(cells))
    if not columns:
        return None, 0, 0
    names = list(columns)
    widths = [min(max([cell_len(n)] + [c.cell_len for c in columns[n] if c is not None]), _MAX_FIT_WIDTH) + 3
              for n in names]  # + padding and a border
    keep = len(names)
    if 1 + sum(widths) > width:
        budget, used, keep = width - 1 - 4, 0, 0  # 4: the "…" column
        for w in widths:
            if used + w > budget:
                break
            used, keep = used + w, keep + 1
        keep = max(1, keep)
    table = Table(title=Text(title) if title else None, show_lines=False)
    for name in names[:keep]:
        table.add_column(Text(name), overflow="fold")
    if keep < len(names):
        table.add_column("…", no_wrap=True)
    for row in range(count):
        cells = [columns[name][row] or Text("") for name in names[:keep]]
        table.add_row(*cells, *([Text("…", style="dim")] if keep < len(names) else []))
    return table, keep, len(names)


def _count_note(name: str | None, total: int, elapsed: float) -> str:
    rows = f"{total:,} row{'s' if total != 1 else ''}"
    return f"{name + ': ' if name else ''}{rows} in {elapsed:.3f} s"


def _schema_node(parent: Any, name: str, t: pa.DataType) -> None:
    from rich.text import Text

    label = Text(name, style="bold")
    label.append(f"  {_type_label(t)}", style="cyan")
    node = parent.add(label)
    if pa.types.is_struct(t):
        for child in t:
            _schema_node(node, child.name, child.type)
    elif (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_struct(t.value_type):
        for child in t.value_type:
            _schema_node(node, f"[].{child.name}", child.type)


def _type_label(t: pa.DataType) -> str:
    from asaql.types import asa_type_name

    name = asa_type_name(t)
    if name == "array" and hasattr(t, "value_type"):
        return f"array of {_type_label(t.value_type)}"
    if name == "null":
        return "any (only NULLs seen)"
    if name == "any":
        return "any (mixed types)"
    return name


#: the library's hints name command-line options; in the REPL the dot-commands do the same
_REPL_HINTS = (
    ("declare it as an input (asaql run: --input", "add it with .input NAME PATH (--ref for reference data)"),
    ("declare it with --function NAME=FILE", "declare it with .function NAME FILE"),
    ("declare it with --ml NAME=", "declare it with .ml NAME FILE"),
)


def _repl_hint(hint: str | None) -> str | None:
    for prefix, replacement in _REPL_HINTS:
        if hint and hint.startswith(prefix):
            return replacement
    return hint


def _query_text(text: str) -> str:
    return text.rstrip()


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def job_toml(query: str, inputs: list[InputRef], base: Path,
             endpoints: dict[str, tuple[str, str]] | None = None) -> str:
    """An asaql job file (TOML) with ``query`` inline and the inputs' paths relative to ``base``;
    ``endpoints`` (name -> (kind, definition file)) become ``[functions.*]`` or ML inputs.

    >>> print(job_toml("SELECT a FROM t", [InputRef("t", "/d/t.jsonl", "stream")], Path("/d")))
    # An asaql job written by the REPL's .save; run it with: asaql run <this file>
    query_text = '''
    SELECT a FROM t
    '''
    <BLANKLINE>
    [inputs.t]
    path = "t.jsonl"
    <BLANKLINE>
    """
    lines = ["# An asaql job written by the REPL's .save; run it with: asaql run <this file>"]
    q = query.strip()
    if "'''" in q or q.endswith("'"):
        lines.append(f"query_text = {_toml_str(q)}")
    else:
        lines += ["query_text = '''", q, "'''"]
    for ref in inputs:
        lines += ["", f"[inputs.{_toml_key(ref.name)}]", f"path = {_toml_str(_rel(ref.path, base))}"]
        if ref.kind != "stream":
            lines.append(f'kind = "{ref.kind}"')
        if ref.format:
            lines.append(f"format = {_toml_str(ref.format)}")
    for name, (kind, file) in (endpoints or {}).items():
        table = f"functions.{_toml_key(name)}" if kind == "function" else f"inputs.{_toml_key(name)}"
        lines += ["", f"[{table}]"] + (['kind = "ml"'] if kind == "ml" else [])
        lines.append(f"file = {_toml_str(_rel(file, base))}")
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # what we write must read back
    return text


def _rel(path: str, base: Path) -> str:
    if path == "-":
        return path
    absolute = Path(path).resolve()
    try:  # relative when the input lies under the job's folder, else absolute
        return absolute.relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def _toml_str(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _toml_key(name: str) -> str:
    import re

    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_str(name)


# ---------------------------------------------------------------------- the two readers


def piped(repl: Repl, stream: IO[str]) -> int:
    """Read statements from a non-terminal: run each when it is complete (``;`` or a blank line
    after it), a dot-command line at once, and what is left at the end."""
    buffer = ""
    for line in stream:
        if not buffer.strip() and line.lstrip().startswith("."):
            repl.handle(line)
        elif not buffer.strip() and line.lstrip().startswith("--") and not line.strip().endswith(";"):
            buffer = ""  # a comment line between statements
        else:
            buffer += line
            if is_complete(buffer[:-1] if buffer.endswith("\n") else buffer):
                repl.handle(buffer)
                buffer = ""
        if repl.done:
            return 1 if repl.failures else 0
    if buffer.strip():
        repl.handle(buffer)
    return 1 if repl.failures else 0


def interactive(repl: Repl) -> int:
    """The prompt_toolkit line editor over ``repl``."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, History, InMemoryHistory
    from prompt_toolkit.key_binding import KeyBindings

    from asaql.cli.highlight import STYLE, SaqlLexer

    keys = KeyBindings()

    @keys.add("enter")
    def _enter(event: Any) -> None:
        buf = event.current_buffer
        text = buf.document.text
        if not text.strip() or (buf.document.is_cursor_at_the_end and is_complete(text)):
            buf.validate_and_handle()
        else:
            buf.insert_text("\n")

    history: History = InMemoryHistory()
    path = history_path()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
            history = FileHistory(str(path))
        except OSError as exc:
            repl.note(f"history not saved ({path}: {exc.strerror})")
    from asaql.cli.completion import SaqlCompleter

    prompt: PromptSession[str] = PromptSession(
        PROMPT, multiline=True, key_bindings=keys, history=history, style=STYLE,
        lexer=SaqlLexer(_function_names), completer=SaqlCompleter(lambda: words(repl)),
        complete_while_typing=False, prompt_continuation=CONTINUATION, enable_history_search=False,
    )
    repl.say("asaql REPL: end a query with ';' or a blank line; .help for commands, Ctrl-D to quit")
    while not repl.done:
        try:
            text = prompt.prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        repl.handle(text)
    return 0


def _function_names() -> set[str]:
    from asaql.cli.completion import EXTRA_FUNCTIONS
    from asaql.functions.registry import REGISTRY

    return set(REGISTRY.names()) | set(EXTRA_FUNCTIONS)


def words(repl: Repl) -> Any:
    """What Tab can complete now: keywords, functions, inputs and their fields, commands."""
    from asaql.cli.completion import Words
    from asaql.cli.lexer import keywords
    from asaql.cli.repl_commands import command_names

    fields: dict[str, list[tuple[str, ...]]] = {}
    for ref in repl.inputs.values():
        schema = repl.schema(ref.name)
        if schema is not None:
            fields[ref.name] = [p for f in schema for p in _paths((f.name,), f.type)]
    return Words(keywords=keywords(), functions=_function_names(), inputs=[r.name for r in repl.inputs.values()],
                 fields=fields, commands=command_names())


def _paths(prefix: tuple[str, ...], t: pa.DataType) -> list[tuple[str, ...]]:
    """Every field path under ``prefix``; the records in an array go under ``ARRAY_ITEM``."""
    from asaql.cli.completion import ARRAY_ITEM

    out = [prefix]
    if pa.types.is_struct(t):
        for child in t:
            out += _paths(prefix + (child.name,), child.type)
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        out += _paths(prefix + (ARRAY_ITEM,), t.value_type)
    return out


def main(args: argparse.Namespace | None = None) -> int:
    """``asaql repl``: a terminal gets the line editor; anything else is read as a script."""
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    repl = Repl(output_format="table" if sys.stdout.isatty() else "json")
    for name, path in getattr(args, "input", None) or []:
        _startup_input(repl, name, path, reference=False)
    for name, path in getattr(args, "ref", None) or []:
        _startup_input(repl, name, path, reference=True)
    try:
        return interactive(repl) if tty else piped(repl, sys.stdin)
    except KeyboardInterrupt:
        return 130


def _startup_input(repl: Repl, name: str, path: str, *, reference: bool) -> None:
    try:
        repl.add_input(name, path, reference=reference, quiet=True)
    except AsaqlError as exc:
        repl.error(exc)
