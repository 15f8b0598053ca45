"""The REPL used the way a person explores a data file, each test pinning something that was
broken or confusing: a ``;`` inside a string or a comment, Ctrl-C at the prompt and during a
long query, Ctrl-D, ``.input`` of a missing file or a folder, ``.schema`` of a CSV reference
input, ``.sample`` larger than the file, ``.save`` of a windowed join then ``asaql run``,
completion (after ``FROM``, ``alias.``, ``CROSS APPLY``, nested records), the three output
formats, several INTO outputs, an ML function, wide results, NULLs, nested records, unicode and
values that look like rich markup (they used to crash the table). Driven in a pseudo-terminal
with pexpect as in tests/test_repl.py; the pure parts (completion, is_complete, the table
layout) get unit tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from replterm import PROMPT_END, PROMPT_START, plain, run, spawn

from asaql.cli.completion import ARRAY_ITEM, Words, candidates, path_argument
from asaql.cli.lexer import is_complete
from asaql.cli.repl import result_table

ROOT = Path(__file__).resolve().parent.parent
QS = ROOT / "examples" / "quickstart"
SEED = ROOT / "examples" / "seed"

pexpect = pytest.importorskip("pexpect")



@pytest.fixture
def repl(tmp_path: Path) -> Iterator[object]:
    child = spawn(pexpect, tmp_path, tmp_path / "history", 120)
    yield child
    if child.isalive():
        child.terminate(force=True)


def rows_of(seen: str) -> list[list[str]]:
    """The body rows of a rich table, cell texts stripped."""
    return [[c.strip() for c in line.strip("│").split("│")] for line in seen.splitlines()
            if line.startswith("│")]


# --------------------------------------------------------------------------- typing queries


def test_semicolon_in_a_string_or_a_comment_does_not_end_the_query(repl: object) -> None:
    repl.send("SELECT 'a;b' AS s, deviceId\r")  # type: ignore[attr-defined]
    repl.send("FROM events -- not yet; really\r")  # type: ignore[attr-defined]
    seen = run(repl, "WHERE temperature > 43;")
    assert rows_of(seen) == [["a;b", "dev-5"]]
    assert re.search(r"\b1 row in", seen)


def test_two_blank_lines_run_an_unfinished_statement_and_show_its_error(repl: object) -> None:
    repl.send("SELECT deviceId,\r")  # type: ignore[attr-defined]
    repl.send("\r")  # type: ignore[attr-defined]  # one blank line: still waiting for more
    seen = run(repl, "")
    assert "error[syntax_error]" in seen and "^" in seen
    assert "dev-5" in run(repl, "SELECT deviceId FROM events WHERE temperature > 43;")


def test_ctrl_c_at_the_prompt_abandons_the_input(repl: object) -> None:
    repl.send("SELECT nonsense FROM")  # type: ignore[attr-defined]
    repl.sendcontrol("c")  # type: ignore[attr-defined]
    repl.expect_exact(PROMPT_START)  # type: ignore[attr-defined]
    seen = run(repl, "SELECT deviceId FROM events WHERE temperature > 43;")
    assert "error" not in seen and rows_of(seen) == [["dev-5"]]


def test_ctrl_c_stops_a_long_query_and_the_session_goes_on(repl: object, tmp_path: Path) -> None:
    data = tmp_path / "many.jsonl"
    data.write_text("".join(f'{{"k": {i % 7}, "ts": "2024-05-14T12:{i // 60 % 60:02d}:{i % 60:02d}Z"}}\n'
                            for i in range(20000)))
    run(repl, f".input many {data}")
    # a self-join of every event with every other within an hour: tens of seconds of work
    repl.send("SELECT COUNT(*) AS n FROM many a TIMESTAMP BY ts JOIN many b TIMESTAMP BY ts "  # type: ignore[attr-defined]
              "ON a.k = b.k AND DATEDIFF(minute, a, b) BETWEEN 0 AND 60 GROUP BY TumblingWindow(day, 1);\r")
    repl.expect_exact(PROMPT_END)  # type: ignore[attr-defined]
    time.sleep(1.0)
    repl.sendcontrol("c")  # type: ignore[attr-defined]
    repl.expect_exact(PROMPT_START, timeout=15)  # type: ignore[attr-defined]
    assert "interrupted" in plain(repl.before)  # type: ignore[attr-defined]
    assert "Traceback" not in plain(repl.before)  # type: ignore[attr-defined]
    seen = run(repl, "SELECT COUNT(*) AS n FROM many GROUP BY TumblingWindow(day, 1);")
    assert rows_of(seen) == [["20000"]]


def test_ctrl_d_with_text_keeps_the_session_and_on_an_empty_prompt_leaves(repl: object) -> None:
    repl.send("SELECT")  # type: ignore[attr-defined]
    repl.sendcontrol("d")  # type: ignore[attr-defined]
    repl.sendcontrol("c")  # type: ignore[attr-defined]
    repl.expect_exact(PROMPT_START)  # type: ignore[attr-defined]
    assert repl.isalive()  # type: ignore[attr-defined]
    repl.sendcontrol("d")  # type: ignore[attr-defined]
    repl.expect(pexpect.EOF)  # type: ignore[attr-defined]
    repl.wait()  # type: ignore[attr-defined]
    assert repl.exitstatus == 0  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- inputs


def test_input_of_a_missing_file_or_a_folder_is_refused(repl: object, tmp_path: Path) -> None:
    seen = run(repl, f".input gone {tmp_path / 'nope.jsonl'}")
    assert "file not found" in seen
    seen = run(repl, f".input dir {tmp_path}")
    assert "is a folder, not a file" in seen and "Traceback" not in seen
    listed = run(repl, ".inputs")
    assert "gone" not in listed and "dir" not in listed and "events" in listed


def test_input_of_a_file_in_the_wrong_format_says_so(repl: object, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("a,b\n1,x\n")
    seen = run(repl, ".input t data.txt")
    assert "no event could be read as json" in seen and "--format" in seen
    seen = run(repl, ".input t data.txt --format csv")
    assert "2 field(s)" in seen
    assert rows_of(run(repl, "SELECT a, b FROM t;")) == [["1", "x"]]


def test_schema_of_a_csv_reference_input(repl: object) -> None:
    seen = run(repl, ".schema devices")
    assert "devices (reference, 4 event(s) read)" in seen
    assert re.search(r"room\s+nvarchar\(max\)", seen) and re.search(r"maxTemp\s+nvarchar\(max\)", seen)


def test_sample_larger_than_the_file_shows_every_event(repl: object) -> None:
    seen = run(repl, ".sample devices 1000")
    assert len(rows_of(seen)) == 4 and re.search(r"\b4 rows in", seen)
    seen = run(repl, ".sample devices 0")
    assert "N must be at least 1" in seen


# --------------------------------------------------------------------------- results


def test_nulls_nested_records_unicode_and_markup_like_values(repl: object) -> None:
    seen = run(repl, "SELECT deviceId, meta, NULL AS n, 'héllo ✓ 日本' AS u, '[/]' AS m, '[bold]x' AS b "
                     "FROM events WHERE temperature > 43;")
    assert rows_of(seen) == [["dev-5", '{"firmware":"1.1","battery":0.66}', "NULL", "héllo ✓ 日本", "[/]", "[bold]x"]]
    assert "error" not in seen


def test_a_wide_result_keeps_the_columns_that_fit_and_says_so(repl: object) -> None:
    cols = ", ".join(f"temperature * {i} AS column_number_{i}" for i in range(20))
    seen = run(repl, f"SELECT deviceId, {cols} FROM events WHERE temperature > 43;")
    assert "deviceId" in seen and "column_number_0" in seen and "column_number_19" not in seen
    assert re.search(r"1 row in [\d.]+ s; \d+ of 21 columns fit the terminal \(\.output json", seen)
    assert all(len(line) <= 120 for line in seen.splitlines())


def test_several_outputs_are_labelled_in_each_format(repl: object) -> None:
    query = ("SELECT deviceId INTO hot FROM events WHERE temperature > 43; "
             "SELECT deviceId INTO warm FROM events WHERE temperature > 41;")
    seen = run(repl, query)
    assert re.search(r"^\s+hot\s*\n.*\n.*deviceId.*\n.*\n.*dev-5.*\n.*\nhot: 1 row in", seen, re.MULTILINE)
    assert re.search(r"^\s+warm\s*\n.*\n.*deviceId.*\n.*\n.*dev-3.*\n.*dev-5.*\n.*\nwarm: 2 rows in", seen, re.MULTILINE)
    assert "hot: 1 row in" in seen and "warm: 2 rows in" in seen
    run(repl, ".output json")
    seen = run(repl, query)
    assert '{"deviceId":"dev-5","__output":"hot"}' in seen and '{"deviceId":"dev-3","__output":"warm"}' in seen
    run(repl, ".output csv")
    seen = run(repl, "SELECT deviceId, temperature FROM events WHERE temperature > 43;")
    assert "deviceId,temperature\ndev-5,44.0" in seen
    run(repl, ".output table")
    assert rows_of(run(repl, "SELECT deviceId FROM events WHERE temperature > 43;")) == [["dev-5"]]


def test_save_of_a_windowed_join_then_asaql_run_gives_the_same_rows(repl: object, tmp_path: Path) -> None:
    run(repl, ".output json")
    seen = run(repl, "SELECT d.room, COUNT(*) AS n, MAX(e.temperature) AS hottest\n"
                     "FROM events e TIMESTAMP BY ts JOIN devices d ON e.deviceId = d.deviceId\n"
                     "GROUP BY d.room, TumblingWindow(minute, 2);")
    shown = [json.loads(line) for line in seen.splitlines() if line.startswith("{")]
    assert shown and {"room", "n", "hottest"} <= set(shown[0])
    run(repl, ".save rooms.toml")
    res = subprocess.run([sys.executable, "-m", "asaql", "run", "rooms.toml", "--quiet"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert [json.loads(line) for line in res.stdout.splitlines()] == shown


def test_ml_function_in_the_repl_and_repl_hints(repl: object) -> None:
    seen = run(repl, "SELECT udf.score(e) FROM events e;")
    assert "help: declare it with .function NAME FILE" in seen
    seen = run(repl, "SELECT x FROM nowhere;")
    assert ".input NAME PATH" in seen or "known inputs" in seen
    run(repl, f".input iot {SEED / 'iot_data.jsonl'}")
    run(repl, f".function score {SEED / 'anomaly-model.json'}")
    seen = run(repl, "WITH m AS (SELECT deviceId, temperature, humidity FROM iot WHERE temperature IS NOT NULL)\n"
                     "SELECT deviceId, udf.score(m).prediction AS p FROM m WHERE udf.score(m).prediction > 0.5;")
    assert [r[0] for r in rows_of(seen)] == ["sensor-03", "sensor-02", "sensor-05"]


def test_explain_of_a_misspelt_input_points_at_it(repl: object) -> None:
    seen = run(repl, ".explain SELECT deviceId FROM evnts")
    assert "did you mean 'events'" in seen
    assert re.search(r"1 \| SELECT deviceId FROM evnts\n\s+\|\s+\^{5}", seen)


# --------------------------------------------------------------------------- completion


@pytest.mark.parametrize(("typed", "inserted"), [
    ("SELECT * FROM ev", "ents"),
    ("SELECT e.meta.fi", "rmware"),
    ("SELECT * FROM events e CROSS APPLY GetArr", "ayElements"),
    (".output cs", "v"),
    (".schema dev", "ices"),
])
def test_tab_completes_in_the_terminal(repl: object, typed: str, inserted: str) -> None:
    repl.send(typed + "\t")  # type: ignore[attr-defined]
    repl.expect_exact(inserted)  # type: ignore[attr-defined]


WORDS = Words(
    keywords={"SELECT", "FROM", "WHERE", "AS", "CROSS", "APPLY", "JOIN", "ON", "WITH", "TIMESTAMP", "BY"},
    functions={"UPPER", "GetArrayElements"}, inputs=["events", "devices"],
    fields={"events": [("deviceId",), ("meta",), ("meta", "firmware"), ("items",), ("items", ARRAY_ITEM),
                       ("items", ARRAY_ITEM, "sku"), ("odd name",), ("select",)],
            "devices": [("deviceId",), ("room",)]},
)


@pytest.mark.parametrize(("before", "after", "expected"), [
    ("SELECT * FROM ", "", ["devices", "events"]),  # after FROM: inputs only
    ("SELECT * FROM events JOIN d", "", ["devices"]),
    ("WITH hot AS (SELECT * FROM events) SELECT * FROM h", "", ["hot"]),  # WITH steps too
    ("SELECT d.", " FROM events e JOIN devices d ON e.deviceId = d.deviceId", ["deviceId", "room"]),
    ("SELECT e.", " FROM events e", ["deviceId", "items", "meta", "[odd name]", "[select]"]),
    ("SELECT e.meta.", " FROM events AS e", ["firmware"]),
    ("SELECT * FROM events e CROSS APPLY ", "", ["GetArrayElements", "GetRecordProperties"]),
    ("SELECT t.", " FROM events e CROSS APPLY GetArrayElements(e.items) AS t", ["ArrayIndex", "ArrayValue"]),
    ("SELECT t.ArrayValue.", " FROM events e CROSS APPLY GetArrayElements(e.items) AS t", ["sku"]),
    ("SELECT p.", " FROM events e CROSS APPLY GetRecordProperties(e.meta) AS p", ["PropertyName", "PropertyValue"]),
    ("SELECT ", " FROM devices", ["deviceId", "room"]),  # nothing typed after SELECT: the fields
    ("SELECT r", " FROM devices; SELECT x FROM events", ["room"]),
    ("SELECT * FROM devices; SELECT r", "", ["room"]),
    ("SELECT e.[od", " FROM events e", ["[odd name]"]),
    (".output ", "", ["csv", "json", "table"]),
    (".output j", "", ["json"]),
])
def test_completion_in_context(before: str, after: str, expected: list[str]) -> None:
    assert candidates(before, WORDS, after) == expected


@pytest.mark.parametrize(("line", "path"), [
    (".input iot data/io", "data/io"), (".input iot ", ""), (".input iot", None), (".save ", ""),
    (".function f ~/m", "~/m"), (".schema ", None), (".input iot a.jsonl --ref", None),
])
def test_path_argument(line: str, path: str | None) -> None:
    assert path_argument(line) == path


@pytest.mark.parametrize(("text", "complete"), [
    ("SELECT a,\n\n", True),  # two blank lines: run it (the error shows)
    ("SELECT a FROM t WHERE\n  \n", True),
    ("SELECT 'open,\n\n", False),  # but never inside a string
    ("SELECT a /* open\n\n", False),
    ("-- only a comment\n\n", False),
])
def test_is_complete_two_blank_lines(text: str, complete: bool) -> None:
    assert is_complete(text) is complete


def test_result_table_fits_the_width_and_keeps_markup_as_text() -> None:
    from rich.console import Console

    batch = pa.record_batch({f"c{i}": pa.array(["[/]", None]) for i in range(30)})
    table, shown, total = result_table("", [batch], 100, 60)
    assert total == 30 and 1 <= shown < 30
    console = Console(width=60, record=True, file=open(os.devnull, "w"), no_color=True)  # noqa: SIM115
    console.print(table)
    text = console.export_text()
    assert "[/]" in text and "NULL" in text and "…" in text
    assert all(len(line) <= 60 for line in text.splitlines())
    assert result_table("", [], 100, 60) == (None, 0, 0)
