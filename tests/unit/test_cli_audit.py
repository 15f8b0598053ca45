"""`asaql run` / `check` as a new user meets them, with bad input of every kind.

Each test pins one failure found in an audit of the command line: a traceback or an
"internal error" where the user gave a wrong file, a flag silently ignored, a good event lost,
output cut mid-row by Ctrl-C. The contract (docs/cli.md): a short message on stderr that names
the place (file, line, column, field), exit code 0 / 1 (query, data, configuration) / 2 (command
line) / 130 (Ctrl-C), never a Python traceback, and every good event written.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asaql.cli.main import main

QUERY = "SELECT deviceId, temperature INTO out FROM iot WHERE temperature > 30\n"
EVENTS = [{"deviceId": "a", "temperature": 31}, {"deviceId": "b", "temperature": 20},
          {"deviceId": "c", "temperature": 40}]
HOT = [{"deviceId": "a", "temperature": 31}, {"deviceId": "c", "temperature": 40}]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "q.asaql").write_text(QUERY)
    (tmp_path / "ev.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out, err


def rows(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def cli(*argv: str, cwd: Path, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "asaql", *argv], cwd=cwd,  # type: ignore[call-overload]
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


# ----------------------------------------------------------------------------- the query file


def test_missing_query_file(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, _, err = run(capsys, "run", str(folder / "nope.asaql"), "-i", f"iot={folder / 'ev.jsonl'}")
    assert code == 1 and "nope.asaql does not exist" in err


def test_query_file_not_utf8_names_line_and_column(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    q = folder / "latin.asaql"
    q.write_bytes(b"SELECT deviceId\nFROM iot WHERE deviceId = '\xe9t\xe9'\n")
    code, _, err = run(capsys, "run", str(q), "-i", f"iot={folder / 'ev.jsonl'}")
    assert code == 1
    assert "latin.asaql is not UTF-8 text: byte 0xe9 at line 2, column 28" in err


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_empty_query_file(capsys: pytest.CaptureFixture[str], folder: Path, text: str) -> None:
    q = folder / "empty.asaql"
    q.write_text(text)
    code, _, err = run(capsys, "run", str(q), "-i", f"iot={folder / 'ev.jsonl'}")
    assert code == 1 and "empty.asaql is empty" in err


def test_query_of_comments_only(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    q = folder / "comments.asaql"
    q.write_text("-- nothing yet\n/* still nothing */\n")
    code, out, _ = run(capsys, "check", str(q))
    assert code == 1 and "no SELECT" in out


def test_query_input_without_data(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, _, err = run(capsys, "run", str(folder / "q.asaql"))
    assert code == 1 and "unknown input or step 'iot'" in err and "q.asaql:1:44" in err


# ----------------------------------------------------------------------------- flags


def test_output_name_the_query_does_not_have(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    """A typo in --output used to send the rows to stdout and exit 0."""
    target = folder / "alerts.jsonl"
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                         "-o", f"uot={target}")
    assert code == 1 and out == "" and not target.exists()
    assert "no output named 'uot' (its outputs: out)" in err and "did you mean 'out'?" in err


def test_output_name_matches_case_insensitively(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    target = folder / "o.jsonl"
    code, out, _ = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                       "-o", f"OUT={target}")
    assert code == 0 and out == "" and rows(target.read_text()) == HOT


def test_unused_input_is_a_warning(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    ev = folder / "ev.jsonl"
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={ev}", "-i", f"other={ev}")
    assert code == 0 and rows(out) == HOT
    assert "warning: input 'other' is not used by the query" in err
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={ev}", "-i", f"other={ev}", "-q")
    assert code == 0 and err == ""


def test_format_for_a_name_no_flag_gives(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                         "--format", "iott=csv")
    assert code == 2 and out == "" and "--format iott=csv: no --input, --ref or --output is named 'iott'" in err


def test_unknown_format_name(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                       "--format", "iot=xml")
    assert code == 2 and "unknown format 'xml'" in err


def test_stdout_output_takes_its_format(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, _ = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                       "-o", "out=-", "--format", "out=csv", "-q")
    assert code == 0 and out == "deviceId,temperature\na,31\nc,40\n"
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                         "-o", "out=-", "--format", "out=parquet")
    assert code == 1 and out == "" and "Parquet cannot be written to stdout" in err


@pytest.mark.parametrize("size", ["0", "-5", "many"])
def test_batch_size_must_be_positive(capsys: pytest.CaptureFixture[str], folder: Path, size: str) -> None:
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                       "--batch-size", size)
    assert code == 2 and "--batch-size" in err


def test_stdin_input(folder: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "asaql", "run", "q.asaql", "-i", "iot=-", "-o", "out=-", "-q"],
                         cwd=folder, input=(folder / "ev.jsonl").read_bytes(), capture_output=True, timeout=60)
    assert res.returncode == 0 and rows(res.stdout.decode()) == HOT and res.stderr == b""


# ----------------------------------------------------------------------------- --job-config


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read job config"),
    ("{bad", "is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2"),
    ("[1, 2]", "must hold a JSON object of settings, not list"),
    ('{"EventsOutOfOrderPolicy": "Reorder"}', "EventsOutOfOrderPolicy must be one of Adjust, Drop"),
])
def test_bad_job_config(capsys: pytest.CaptureFixture[str], folder: Path, content: str | None,
                        message: str) -> None:
    config = folder / "JobConfig.json"
    if content is not None:
        config.write_text(content)
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                         "--job-config", str(config))
    assert code == 1 and out == "" and message in err and "JobConfig.json" in err


def test_job_config_that_is_a_folder(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                       "--job-config", str(folder))
    assert code == 1 and "is a folder" in err


def test_job_file_not_utf8(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    job = folder / "job.toml"
    job.write_bytes(b'query = "q.asaql"\n# caf\xe9\n')
    code, _, err = run(capsys, "run", str(job))
    assert code == 1 and "job.toml is not UTF-8 text: byte 0xe9 at line 2, column 6" in err


# ----------------------------------------------------------------------------- --metrics-json


def test_metrics_json_in_a_new_folder(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    target = folder / "metrics" / "run.json"
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}", "-q",
                       "--metrics-json", str(target))
    assert code == 0 and err == ""
    assert json.loads(target.read_text())["events_out"] == {"out": 2}


def test_metrics_json_is_a_folder_fails_before_the_run(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                         "--metrics-json", str(folder))
    assert code == 1 and out == "" and "is a folder" in err and err.count("error") == 1


def test_metrics_json_written_when_the_job_cannot_start(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    target = folder / "m.json"
    code, _, _ = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'nope.jsonl'}",
                     "--metrics-json", str(target))
    data = json.loads(target.read_text())
    assert code == 1 and data["status"] == "failed" and "file not found" in data["error"]


# ----------------------------------------------------------------------------- input files


def test_missing_input_file(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'nope.jsonl'}")
    assert code == 1 and "input 'iot': file not found" in err


def test_input_is_a_folder(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder}")
    assert code == 1 and "is a directory, not a file" in err


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_input_that_is_not_a_file(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = folder / "s.jsonl"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(path))
        code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    finally:
        sock.close()
    assert code == 1 and "input 'iot':" in err and "is not a file" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_input(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = folder / "ev.jsonl"
    path.chmod(0)
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    assert code == 1 and "input 'iot': cannot read" in err and "Permission denied" in err


def test_unknown_extension_is_read_as_json_lines_with_a_warning(capsys: pytest.CaptureFixture[str],
                                                                folder: Path) -> None:
    path = folder / "ev.txt"
    path.write_text((folder / "ev.jsonl").read_text())
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    assert code == 0 and rows(out) == HOT
    assert "extension .txt" in err and "--format iot=" in err
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}", "--format", "iot=json")
    assert code == 0 and "extension" not in err


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\r\n"])
def test_empty_or_blank_input(capsys: pytest.CaptureFixture[str], folder: Path, content: bytes) -> None:
    path = folder / "blank.jsonl"
    path.write_bytes(content)
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    assert code == 0 and out == "" and "events in: none" in err


def test_jsonl_bom_crlf_and_no_final_newline(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = folder / "win.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(json.dumps(e).encode() for e in EVENTS))
    code, out, _ = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    assert code == 0 and rows(out) == HOT


def test_jsonl_huge_line_between_good_ones(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = folder / "huge.jsonl"
    big = {"deviceId": "h" * (20 << 20), "temperature": 33}
    path.write_text("\n".join(json.dumps(e) for e in [EVENTS[0], big, EVENTS[2]]) + "\n")
    code, out, _ = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    assert code == 0 and [r["temperature"] for r in rows(out)] == [31, 33, 40]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity",
                                     "99999999999999999999"])
def test_jsonl_values_asa_cannot_hold_are_reported_with_their_line(
        capsys: pytest.CaptureFixture[str], folder: Path, literal: str) -> None:
    path = folder / "odd.jsonl"
    path.write_text(f'{json.dumps(EVENTS[0])}\n{{"deviceId": "x", "temperature": {literal}}}\n'
                    f'{json.dumps(EVENTS[2])}\n')
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    assert code == 0 and rows(out) == HOT
    assert "odd.jsonl, line 2)" in err and "malformed events skipped: 1" in err


def test_jsonl_broken_line_is_skipped_and_named(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = folder / "broken.jsonl"
    path.write_text(f'{json.dumps(EVENTS[0])}\n{{"deviceId": "b", "temperature":\n{json.dumps(EVENTS[2])}\n')
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    assert code == 0 and rows(out) == HOT and "line 2" in err
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}", "--on-data-error", "stop")
    assert code == 1 and "line 2" in err


def test_jsonl_duplicate_keys_keep_the_last(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = folder / "dup.jsonl"
    path.write_text('{"deviceId": "a", "temperature": 10, "temperature": 35}\n')
    code, out, _ = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    assert code == 0 and rows(out) == [{"deviceId": "a", "temperature": 35}]


def test_events_without_the_fields_the_query_reads_are_not_lost(capsys: pytest.CaptureFixture[str],
                                                                folder: Path) -> None:
    (folder / "d.asaql").write_text("SELECT deviceId INTO out FROM iot\n")
    path = folder / "other.jsonl"
    path.write_text('{"x": 1}\n{"x": 2}\n')
    code, out, _ = run(capsys, "run", str(folder / "d.asaql"), "-i", f"iot={path}")
    assert code == 0 and rows(out) == [{"deviceId": None}, {"deviceId": None}]


def test_jsonl_invalid_utf8_is_reported(folder: Path) -> None:
    path = folder / "bad.jsonl"
    path.write_bytes(b'{"deviceId": "a", "temperature": 31}\n{"deviceId": "\xff\xfe", "temperature": 32}\n'
                     b'{"deviceId": "c", "temperature": 40}\n')
    proc = cli("run", "q.asaql", "-i", "iot=bad.jsonl", cwd=folder)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"bad.jsonl, line 2" in err
    assert rows(out.decode("utf-8")) == HOT


CSV_QUERY = "SELECT deviceId, CAST(temperature AS bigint) AS t INTO out FROM iot\n"


def _csv_run(capsys: pytest.CaptureFixture[str], folder: Path, content: bytes) -> tuple[int, str, str]:
    (folder / "c.asaql").write_text(CSV_QUERY)
    path = folder / "in.csv"
    path.write_bytes(content)
    return run(capsys, "run", str(folder / "c.asaql"), "-i", f"iot={path}")


def test_csv_ragged_row_is_skipped_and_named(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, err = _csv_run(capsys, folder, b"deviceId,temperature\na,31\nb,20,9\nc,40\n")
    assert code == 0 and rows(out) == [{"deviceId": "a", "t": 31}, {"deviceId": "c", "t": 40}]
    assert "CSV row has 3 fields, the header has 2" in err and "line 3" in err


def test_csv_blank_lines_before_the_header(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    """The file used to read as empty: the first line was taken as the header."""
    code, out, err = _csv_run(capsys, folder, b"\n\ndeviceId,temperature\na,31\nb,1,2\n")
    assert code == 0 and rows(out) == [{"deviceId": "a", "t": 31}]
    assert "line 5" in err


def test_csv_value_not_utf8_skips_only_its_row(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    """Used to be an internal error (pyarrow's UTF-8 check) that lost the whole file."""
    code, out, err = _csv_run(capsys, folder, b"deviceId,temperature\na,31\n\xff\xfe,32\nc,40\n")
    assert code == 0 and rows(out) == [{"deviceId": "a", "t": 31}, {"deviceId": "c", "t": 40}]
    assert "not UTF-8" in err and "event 2" in err and "field 'deviceId'" in err


def test_csv_empty_file(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, err = _csv_run(capsys, folder, b"")
    assert code == 0 and out == "" and "events in: none" in err


def test_file_that_is_not_parquet(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    """Used to be counted as one "malformed event skipped", exit 0, no output."""
    path = folder / "fake.parquet"
    path.write_text((folder / "ev.jsonl").read_text())
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={path}")
    assert code == 1 and "not a readable Parquet file" in err and "file " in err and "fake.parquet" in err


# ----------------------------------------------------------------------------- outputs


def test_output_in_a_folder_that_does_not_exist(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    target = folder / "a" / "b" / "out.csv"
    code, _, _ = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                     "-o", f"out={target}")
    assert code == 0 and target.read_text() == "deviceId,temperature\na,31\nc,40\n"


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_output_where_nothing_can_be_written(capsys: pytest.CaptureFixture[str], folder: Path,
                                             suffix: str) -> None:
    """Was "internal error: FileNotFoundError"; a file where a folder should be."""
    blocker = folder / "file"
    blocker.write_text("")
    code, out, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                         "-o", f"out={blocker / f'out.{suffix}'}")
    assert code == 1 and out == "" and "output 'out':" in err


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_output_in_a_read_only_place(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                       "-o", "out=/proc/asaql-out.jsonl")
    assert code == 1 and "output 'out': cannot write /proc/asaql-out.jsonl" in err


def test_output_path_that_is_a_folder(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, _, err = run(capsys, "run", str(folder / "q.asaql"), "-i", f"iot={folder / 'ev.jsonl'}",
                       "-o", f"out={folder}")
    assert code == 1 and "is a folder" in err


# ----------------------------------------------------------------------------- secrets


def test_api_key_never_printed(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    (folder / "f.asaql").write_text("SELECT deviceId, udf.score(temperature) AS s INTO out FROM iot\n")
    (folder / "score.json").write_text(json.dumps(
        {"url": "http://user:sekrit-pw@127.0.0.1:1/score?code=sekrit-code", "api_key": "sekrit-KEY-123", "retries": 0}))
    metrics = folder / "m.json"
    base = [str(folder / "f.asaql"), "-i", f"iot={folder / 'ev.jsonl'}", "-f", f"score={folder / 'score.json'}"]
    for argv in (["run", *base, "-v", "--metrics-json", str(metrics)], ["explain", *base], ["check", *base]):
        code, out, err = run(capsys, *argv)
        assert "sekrit" not in out + err, argv
        assert "unknown field" not in err
    assert "sekrit" not in metrics.read_text()


# ----------------------------------------------------------------------------- signals and pipes


def _many(folder: Path, n: int = 400_000) -> Path:
    path = folder / "many.jsonl"
    path.write_text("".join(f'{{"deviceId":"d{i}","temperature":{31 + i % 5}}}\n' for i in range(n)))
    return path


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_ends_on_a_whole_row_with_summary_and_metrics(folder: Path) -> None:
    """stdout is a pipe nobody reads until after the Ctrl-C: the write in progress blocks, the
    signal interrupts it. Output used to stop mid-row (Python's partial write), with no
    summary and no --metrics-json."""
    _many(folder)
    proc = cli("run", "q.asaql", "-i", "iot=many.jsonl", "--metrics-json", "m.json", cwd=folder)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    text = err.decode()
    if proc.returncode == 0:
        pytest.skip("the run ended before the signal")
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "interrupted" in text and "asaql: events in:" in text
    assert out.endswith(b"\n")
    written = rows(out.decode())
    assert written == [{"deviceId": f"d{i}", "temperature": 31 + i % 5} for i in range(len(written))]
    data = json.loads((folder / "m.json").read_text())
    assert data["status"] == "interrupted" and data["events_out"]["out"] >= len(written)


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_ends_a_follow_run_with_its_file_complete(folder: Path) -> None:
    proc = cli("run", "q.asaql", "-i", "iot=ev.jsonl", "--follow", "-o", "out=o.jsonl", cwd=folder)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (folder / "o.jsonl").exists():
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err.decode()
    assert rows((folder / "o.jsonl").read_text()) == HOT


@pytest.mark.skipif(os.name != "posix", reason="POSIX pipes")
def test_broken_pipe_is_quiet(folder: Path) -> None:
    _many(folder, 200_000)
    res = subprocess.run(f"{sys.executable} -m asaql run q.asaql -i iot=many.jsonl | head -1",
                         shell=True, cwd=folder, capture_output=True, timeout=120)
    assert res.stdout.decode().splitlines() == ['{"deviceId":"d0","temperature":31}']
    assert b"Traceback" not in res.stderr and b"BrokenPipe" not in res.stderr and b"Exception" not in res.stderr


def test_table_output_shows_markup_like_values_as_text() -> None:
    # values that look like rich markup are data: shown as written, never a crash
    import io

    import pyarrow as pa
    from rich.console import Console

    from asaql.io.sink import TableSink

    sink = TableSink("out")
    sink.write(pa.record_batch({"u": ["[/]", "[bold]x", "plain"]}))
    console = Console(file=io.StringIO(), width=60, color_system=None)
    console.print(sink.render())
    shown = console.file.getvalue()
    assert "[/]" in shown and "[bold]x" in shown and "plain" in shown
