"""The REPL as a person sees it: ``python -m asaql repl`` driven in a pseudo-terminal with
pexpect (prompt, tables, row counts, caret errors, dot-commands, .save then ``asaql run``),
the piped (scripted) mode, and unit tests of the pure parts: is_complete, the command table,
completion candidates and the saved job text."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from replterm import run, spawn

from asaql.cli import repl_commands
from asaql.cli.completion import Words, candidates
from asaql.cli.lexer import is_complete, tokenize
from asaql.cli.repl import InputRef, job_toml

ROOT = Path(__file__).resolve().parent.parent
QS = ROOT / "examples" / "quickstart"
PROMPT = r"asaql>"
HOT = "SELECT deviceId, temperature FROM events WHERE temperature > 40"



# --------------------------------------------------------------------------- pseudo-terminal

pexpect = pytest.importorskip("pexpect")


@pytest.fixture
def history(tmp_path: Path) -> Path:
    return tmp_path / "history"


@pytest.fixture
def repl(tmp_path: Path, history: Path) -> Iterator[object]:
    child = spawn(pexpect, tmp_path, history, 160)
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_query_shows_a_table_with_row_count(repl: object) -> None:
    seen = run(repl, HOT + ";")
    assert "deviceId" in seen and "temperature" in seen
    assert "dev-3" in seen and "41.3" in seen and "dev-5" in seen and "44.0" in seen
    assert re.search(r"\b2 rows in [\d.]+ s", seen)


def test_multi_line_query_runs_after_a_blank_line(repl: object) -> None:
    repl.send("SELECT e.deviceId, d.room\r")  # type: ignore[attr-defined]
    repl.send("FROM events e JOIN devices d ON e.deviceId = d.deviceId\r")  # type: ignore[attr-defined]
    repl.send("WHERE e.temperature > 40\r")  # type: ignore[attr-defined]
    seen = run(repl, "")
    assert "room" in seen and "dev-3" in seen and "lab" in seen
    assert re.search(r"\b1 row in", seen)


def test_error_with_caret_then_the_next_query_works(repl: object) -> None:
    seen = run(repl, "SELECT deviceId FROM evnts;")
    assert "error[" in seen and "evnts" in seen
    assert re.search(r"1 \| SELECT deviceId FROM evnts;\n\s+\|\s+\^{5}", seen), seen
    assert "Traceback" not in seen
    seen = run(repl, "SELECT deviceId FROM events WHERE temperature > 43;")
    assert "dev-5" in seen and re.search(r"\b1 row in", seen)


def test_syntax_error_keeps_the_session_alive(repl: object) -> None:
    seen = run(repl, "SELECT deviceId FROM events WHERE ;")
    assert "error[syntax_error]" in seen and "^" in seen
    assert "dev-3" in run(repl, HOT + ";")


def test_schema_shows_nested_fields_and_asa_types(repl: object) -> None:
    seen = run(repl, ".schema events")
    assert re.search(r"deviceId\s+nvarchar\(max\)", seen)
    assert re.search(r"temperature\s+float", seen)
    assert re.search(r"tags\s+array of nvarchar\(max\)", seen)
    assert re.search(r"meta\s+record", seen) and "firmware" in seen


def test_inputs_lists_names_kinds_and_paths(repl: object) -> None:
    seen = run(repl, ".inputs")
    assert re.search(r"events\s+stream\s+json\s+\S*events\.jsonl", seen)


def test_sample_and_input_commands(repl: object, tmp_path: Path) -> None:
    data = tmp_path / "more.jsonl"
    data.write_text('{"k": 1}\n{"k": 2}\n{"k": 3}\n')
    run(repl, f".input more {data}")
    seen = run(repl, ".sample more 2")
    assert re.search(r"\b2 rows in", seen)
    seen = run(repl, "SELECT k * 10 AS big FROM more WHERE k > 1;")
    assert re.search(r"\b20\b", seen) and re.search(r"\b30\b", seen) and re.search(r"\b2 rows in", seen)


def test_tab_completes_field_names_from_the_inferred_schema(repl: object) -> None:
    repl.send("SELECT tempera\t")  # type: ignore[attr-defined]
    repl.expect("ture")  # type: ignore[attr-defined]  # the rest of the word is inserted
    seen = run(repl, " FROM events WHERE deviceId = 'dev-5' AND temperature > 43;")
    assert "temperature" in seen and "44.0" in seen


def test_save_then_asaql_run_gives_the_same_rows(repl: object, tmp_path: Path) -> None:
    run(repl, ".output json")
    seen = run(repl, HOT + ";")
    shown = [json.loads(line) for line in seen.splitlines() if line.startswith("{")]
    assert len(shown) == 2
    job = tmp_path / "jobs" / "hot.toml"
    run(repl, f".save {job}")
    res = subprocess.run([sys.executable, "-m", "asaql", "run", str(job), "--quiet"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert [json.loads(line) for line in res.stdout.splitlines()] == shown


def test_quit_ends_the_session_and_keeps_history(repl: object, history: Path) -> None:
    run(repl, HOT + ";")
    repl.send(".quit\r")  # type: ignore[attr-defined]
    repl.expect(pexpect.EOF)  # type: ignore[attr-defined]
    repl.wait()  # type: ignore[attr-defined]
    assert repl.exitstatus == 0  # type: ignore[attr-defined]
    assert HOT in history.read_text()


def test_ctrl_d_quits(repl: object) -> None:
    repl.sendcontrol("d")  # type: ignore[attr-defined]
    repl.expect(pexpect.EOF)  # type: ignore[attr-defined]


def test_long_results_are_truncated_with_a_note(repl: object) -> None:
    run(repl, ".maxrows 5")
    seen = run(repl, "SELECT deviceId FROM events;")
    assert re.search(r"\b40 rows in [\d.]+ s; showing the first 5", seen)


def test_help_lists_every_command(repl: object) -> None:
    seen = run(repl, ".help")
    for name in (".help", ".inputs", ".input", ".schema", ".explain", ".output", ".sample", ".save", ".quit"):
        assert name in seen


# --------------------------------------------------------------------------- piped stdin


def piped(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asaql", "repl", "-i", f"events={QS / 'events.jsonl'}",
         "--ref", f"devices={QS / 'devices.csv'}", *args],
        input=script, capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "ASAQL_HISTORY": ""},
    )


def test_piped_statements_print_json_lines() -> None:
    res = piped(HOT + ";\n-- a comment\nSELECT UPPER(deviceId) AS d\nFROM events WHERE temperature > 43\n\n"
                ".output csv\nSELECT deviceId FROM events WHERE temperature > 43\n")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert [json.loads(x) for x in lines[:3]] == [
        {"deviceId": "dev-3", "temperature": 41.3}, {"deviceId": "dev-5", "temperature": 44.0}, {"d": "DEV-5"}]
    assert lines[3:] == ["deviceId", "dev-5"]
    assert "Traceback" not in res.stderr


def test_piped_error_is_rendered_and_exit_code_is_1() -> None:
    res = piped("SELECT x FROM nowhere;\n" + HOT + ";\n")
    assert res.returncode == 1
    assert "error[unknown_input]" in res.stderr and "^^^^^^^" in res.stderr
    assert len(res.stdout.splitlines()) == 2  # the next statement still ran
    assert "Traceback" not in res.stderr


def test_missing_input_file_is_reported_not_raised(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "asaql", "repl", "-i", f"x={tmp_path / 'nope.jsonl'}"],
                         input=".inputs\n", capture_output=True, text=True, timeout=60,
                         env={**os.environ, "ASAQL_HISTORY": ""})
    assert "file not found" in res.stderr and "Traceback" not in res.stderr


# --------------------------------------------------------------------------- is_complete


@pytest.mark.parametrize(("text", "complete"), [
    ("", False),
    ("   \n", False),
    ("SELECT a FROM t;", True),
    ("SELECT a FROM t ;  ", True),
    ("SELECT a FROM t", False),  # Enter on the first line adds a line
    ("SELECT a\nFROM t", False),
    ("SELECT a\nFROM t\n", True),  # a blank line after a complete statement runs it
    ("SELECT a\nFROM t\n   ", True),
    ("SELECT a,\n", False),  # ends with a comma
    ("SELECT a FROM t WHERE\n", False),  # ends with a keyword that needs more
    ("SELECT a FROM t WHERE x >\n", False),  # ends with an operator
    ("SELECT a FROM t WHERE x AND\n", False),
    ("SELECT f(a\n", False),  # open parenthesis
    ("SELECT 'a;b' FROM t", False),  # ; inside a string
    ("SELECT 'it''s;' FROM t;", True),
    ("SELECT 'open\n", False),
    ("SELECT [odd;name\n", False),
    ("SELECT a FROM t /* c;\n", False),  # open block comment
    ("SELECT a FROM t -- c;\n", True),  # the ; is in a line comment; the blank line runs it
    ("SELECT a FROM t -- c;", False),
    ("SELECT f(a;", True),  # ; always runs (the error shows then)
    (".schema iot", True),
    ("  .quit", True),
    ("-- just a comment\n", False),
    ("SELECT CASE WHEN a THEN 1 ELSE 2 END\nFROM t\n", True),
])
def test_is_complete(text: str, complete: bool) -> None:
    assert is_complete(text) is complete


def test_tokenize_covers_every_character() -> None:
    text = "SELECT [a b], 'x''y', 1.5e3 -- c\nFROM t /* k */ WHERE a<>b;"
    tokens = tokenize(text)
    assert "".join(t.text for t in tokens) == text
    kinds = {t.text: t.kind for t in tokens}
    assert kinds["SELECT"] == "keyword" and kinds["[a b]"] == "qname" and kinds["'x''y'"] == "string"
    assert kinds["1.5e3"] == "number" and kinds["<>"] == "op" and kinds["/* k */"] == "comment"


# --------------------------------------------------------------------------- the command table


def test_command_table_generates_help() -> None:
    text = repl_commands.help_text()
    for name in (".help", ".inputs", ".input", ".schema", ".explain", ".output", ".sample", ".save", ".quit"):
        assert name in repl_commands.COMMANDS
        assert repl_commands.COMMANDS[name].summary
        assert repl_commands.COMMANDS[name].synopsis in text


def test_command_decorator_registers_and_aliases() -> None:
    calls: list[tuple[list[str], str]] = []

    @repl_commands.command(".zz_test", "A B", "a test command", aliases=(".zz",))
    def _zz(repl: object, args: list[str], rest: str) -> None:
        calls.append((args, rest))

    try:
        repl_commands.dispatch(None, ".zz 'one two' three;")  # type: ignore[arg-type]
        assert calls == [(["one two", "three"], "'one two' three")]
        assert ".zz_test A B" in repl_commands.help_text()
    finally:
        del repl_commands.COMMANDS[".zz_test"]
        del repl_commands._ALIASES[".zz"]  # noqa: SLF001


def test_unknown_command_suggests_the_closest() -> None:
    with pytest.raises(repl_commands.UsageError) as info:
        repl_commands.dispatch(None, ".shema iot")  # type: ignore[arg-type]
    assert "did you mean '.schema'" in (info.value.help or "")


# --------------------------------------------------------------------------- completion, .save text


WORDS = Words(keywords={"SELECT", "FROM", "WHERE"}, functions={"UPPER", "System.Timestamp"},
              inputs=["events", "devices"],
              fields={"events": [("deviceId",), ("meta",), ("meta", "firmware"), ("meta", "battery")]},
              commands=[".schema", ".sample", ".save", ".quit"])


@pytest.mark.parametrize(("before", "expected"), [
    ("sel", ["SELECT"]),
    ("SELECT up", ["UPPER"]),
    ("SELECT dev", ["deviceId", "devices"]),
    ("SELECT e.dev", ["deviceId"]),
    ("SELECT e.meta.b", ["battery"]),
    ("SELECT meta.", ["battery", "firmware"]),
    ("SELECT System.Ti", ["Timestamp()"]),
    (".s", [".sample", ".save", ".schema"]),
    (".schema ev", ["events"]),
    (".schema ", ["devices", "events"]),
    (".quit ", []),
    ("", []),
])
def test_completion_candidates(before: str, expected: list[str]) -> None:
    assert candidates(before, WORDS) == expected


def test_saved_job_reads_back(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    refs = [InputRef("events", str(tmp_path / "data" / "e.jsonl"), "stream"),
            InputRef("my devices", "/elsewhere/d.csv", "reference", "csv")]
    query = "SELECT 'a''''' AS q FROM events"
    text = job_toml(query, refs, tmp_path)
    raw = tomllib.loads(text)
    assert raw["query_text"].strip() == query
    assert raw["inputs"]["events"] == {"path": "data/e.jsonl"}
    assert raw["inputs"]["my devices"] == {"path": "/elsewhere/d.csv", "kind": "reference", "format": "csv"}


@pytest.mark.parametrize("form", ["function", "ml"])
def test_ml_endpoint_in_the_repl_is_saved_into_the_job(tmp_path: Path, form: str) -> None:
    """Explore, add an ML endpoint (.function for udf.NAME, .ml for the seed JOIN form), run a
    query with it, .save it as a job, and `asaql run` the job: the same rows come out."""
    events = Path(__file__).resolve().parent.parent / "examples" / "seed" / "iot_data.jsonl"
    (tmp_path / "model.json").write_text('{"url": "python:asaql.ml.server:anomaly_model", "protocol": "python"}')
    if form == "function":
        declare = ".function score model.json"
        query = ("WITH m AS (SELECT deviceId, temperature, humidity FROM iot WHERE temperature IS NOT NULL) "
                 "SELECT deviceId, udf.score(m).prediction AS p FROM m;")
    else:
        declare = ".ml score model.json"
        query = ("SELECT iot.deviceId, r.prediction AS p FROM iot "
                 "JOIN score INTO (deviceId nvarchar(max), temperature float, humidity float) AS x "
                 "ON iot.deviceId = x.deviceId AND iot.temperature = x.temperature AND iot.humidity = x.humidity "
                 "CROSS APPLY GetRecordProperties(score) AS r WHERE iot.temperature IS NOT NULL;")
    script = "\n".join([f".input iot {events}", declare, query, ".save job.toml"]) + "\n"
    env = {**os.environ, "ASAQL_HISTORY": ""}
    repl = subprocess.run([sys.executable, "-m", "asaql", "repl"], input=script, capture_output=True,
                          text=True, cwd=tmp_path, timeout=120, env=env)
    assert repl.returncode == 0, repl.stderr
    rows = [json.loads(line) for line in repl.stdout.splitlines()]
    assert len(rows) == 8 and all(0 <= r["p"] <= 1 for r in rows)
    job = tomllib.loads((tmp_path / "job.toml").read_text())
    assert (job["functions"]["score"] if form == "function" else job["inputs"]["score"])["file"] == "model.json"
    again = subprocess.run([sys.executable, "-m", "asaql", "run", "job.toml", "--quiet"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr
    assert [json.loads(line) for line in again.stdout.splitlines()] == rows


def _transcripts() -> list[str]:
    text = (ROOT / "docs" / "repl.md").read_text()
    return re.findall(r"<!-- repl-transcript -->\s*```text\n(.*?)```", text, re.S)


@pytest.mark.parametrize("transcript", _transcripts())
def test_docs_repl_transcript(transcript: str, tmp_path: Path) -> None:
    """A transcript in docs/repl.md marked ``repl-transcript`` is replayed through the piped REPL:
    the lines after the prompts are typed, the other lines are what must come out; a saved job
    then runs to the same rows."""
    lines = transcript.splitlines()
    assert lines[0].startswith("$ asaql repl")
    typed, expected, saved = [], [], None
    for line in lines[1:]:
        if line.startswith(("asaql> ", "  ...> ")):
            command = line[7:]
            if command.startswith(".save "):
                saved = tmp_path / command.split()[1]
                command = f".save {saved}"
            typed.append(command)
        else:
            expected.append(line)
    argv = [sys.executable, "-m", "asaql", *shlex.split(lines[0])[2:]]
    env = {**os.environ, "ASAQL_HISTORY": ""}
    res = subprocess.run(argv, input="\n".join(typed) + "\n", capture_output=True, text=True, cwd=ROOT,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == expected
    if saved is not None:
        again = subprocess.run([sys.executable, "-m", "asaql", "run", str(saved), "--quiet"], capture_output=True,
                               text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == expected
