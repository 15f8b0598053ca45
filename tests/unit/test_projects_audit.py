"""VS Code ASA projects as users have them, checked field by field against the real formats.

The fixture projects reproduce layouts seen in real repositories (see
shared/research/asa-ml-integration.md section 4):

* reference_join      modeled on AndreasHassing/ASAVsCodeReferenceDataIssueRepro: InputAlias/Format
                      mocks with ``../SampleData`` paths, a reference input whose columns differ in
                      case from the query, JobConfig.json listed but absent; two outputs and a
                      testConfig.json with two cases (no Inputs / overriding Inputs, ``Required:
                      false`` without FilePath, IgnoreFields, expected rows as JSON lines and as a
                      JSON array, floats printed with different rounding)
* windows_made        made on Windows: BOM in asaproj.json, ``\\`` paths whose case differs from the
                      disk, startFile in another case, JobConfig.json with comments and a trailing
                      comma, a Name/Serialization CSV mock with ``FieldDelimiter ";"`` and CRLF lines
                      and an absolute ``D:/`` FilePath, an unlisted ``Local_devices.json`` with a
                      ``C:\\`` path, live IoT Hub and Blob definitions, a JS function, and the
                      test config at ``Test/TestConfig.json``
* live_eventhub_blob  only live inputs (Event Hub stream, Blob reference), as exported from the
                      portal: running it must say which inputs need data and how to give it

Each test names the real-world shape it pins; they fail if that shape stops being read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asaql.errors import ConfigError
from asaql.project.files import locate, read_json, resolve
from asaql.project.loader import (
    find_manifest,
    load_input_mock,
    load_project,
    project_job,
    used_functions,
)
from asaql.project.testrunner import load_test_config, run_tests

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = ROOT / "tests" / "projects"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asaql", *args], capture_output=True, text=True, check=False,
                          timeout=120, cwd=ROOT, env=dict(os.environ))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def copy_project(tmp_path: Path):
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(PROJECTS / name, target, ignore=shutil.ignore_patterns("LocalRunOutputs", "testResults"))
        return target

    return copy


# --------------------------------------------------------------------------- reading files


def test_json_with_bom_comments_and_trailing_commas(tmp_path: Path) -> None:
    path = tmp_path / "JobConfig.json"
    path.write_bytes(b'\xef\xbb\xbf{\n  // note\n  "a": "x//y /* z */",\n  /* block */ "b": [1, 2,],\n}\n')
    assert read_json(path, "job config") == {"a": "x//y /* z */", "b": [1, 2]}
    path.write_text('{"a": 1\n "b": 2}')
    with pytest.raises(ConfigError, match=r"not valid JSON: .*line 2"):
        read_json(path, "job config")


def test_paths_windows_separators_case_and_foreign_absolute(tmp_path: Path) -> None:
    (tmp_path / "Inputs").mkdir()
    (tmp_path / "Inputs" / "Local_Input.json").write_text("{}")
    (tmp_path / "SampleData").mkdir()
    (tmp_path / "SampleData" / "data.json").write_text("[]")
    assert resolve(tmp_path, "inputs\\local_input.json") == tmp_path / "Inputs" / "Local_Input.json"
    assert resolve(tmp_path, "Inputs/../SampleData/DATA.json") == tmp_path / "SampleData" / "data.json"
    inputs = tmp_path / "Inputs"
    # relative to the mock's folder, then to the project folder, then the bare file name
    assert locate("..\\SampleData\\data.json", [inputs, tmp_path]) == tmp_path / "SampleData" / "data.json"
    assert locate("SampleData/data.json", [inputs, tmp_path]) == tmp_path / "SampleData" / "data.json"
    assert locate("D:/CODE/job/SampleData/data.json", [tmp_path / "SampleData"]) == tmp_path / "SampleData" / "data.json"
    assert locate("C:\\Users\\me\\data.json", [tmp_path / "SampleData"]) == tmp_path / "SampleData" / "data.json"


def test_manifest_found_in_any_case(tmp_path: Path) -> None:
    (tmp_path / "AsaProj.json").write_text('{"name": "x", "startFile": "q.asaql", "configurations": []}')
    (tmp_path / "q.asaql").write_text("SELECT * INTO o FROM i")
    assert find_manifest(tmp_path) == tmp_path / "AsaProj.json"
    assert load_project(tmp_path).start_file == tmp_path / "q.asaql"


def test_start_file_renamed_or_missing(tmp_path: Path) -> None:
    (tmp_path / "asaproj.json").write_text('{"name": "x", "startFile": "Transformation.asaql", "configurations": []}')
    (tmp_path / "query.asaql").write_text("SELECT * INTO o FROM i")
    project = load_project(tmp_path)
    assert project.start_file == tmp_path / "query.asaql"
    assert any("Transformation.asaql" in w and "query.asaql" in w for w in project.warnings)
    (tmp_path / "other.asaql").write_text("SELECT * INTO o FROM i")
    with pytest.raises(ConfigError, match=r"Transformation\.asaql does not exist; .*other\.asaql, query\.asaql"):
        load_project(tmp_path)


# --------------------------------------------------------------------------- input mocks


def test_mock_serialization_settings(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a;b\n1;2\n")
    mock = tmp_path / "Local_x.json"
    csv = {"Name": "x", "Type": "Data Stream", "DataSourceType": "Local Input", "FilePath": "data.csv",
           "Serialization": {"Type": "Csv", "FieldDelimiter": ";", "Encoding": "UTF8"}}
    assert load_input_mock(mock, csv).format == "csv"
    for delimiter in ("\t", "tab", "|", ","):
        load_input_mock(mock, {**csv, "Serialization": {"Type": "Csv", "FieldDelimiter": delimiter}})
    with pytest.raises(ConfigError, match="delimiter ' ' is not supported"):
        load_input_mock(mock, {**csv, "Serialization": {"Type": "Csv", "FieldDelimiter": " "}})
    with pytest.raises(ConfigError, match="encoding 'UTF16' is not supported"):
        load_input_mock(mock, {**csv, "Serialization": {"Type": "Csv", "Encoding": "UTF16"}})
    with pytest.raises(ConfigError, match="CustomClr") as caught:
        load_input_mock(mock, {"InputAlias": "x", "Format": "CustomClr", "FilePath": "data.csv",
                               "SerializationClassName": "My.Deserializer", "ScriptType": "InputMock"})
    assert caught.value.help and "JSON or CSV sample" in caught.value.help
    with pytest.raises(ConfigError, match="Avro"):
        load_input_mock(mock, {**csv, "Serialization": {"Type": "Avro"}})


def test_missing_sample_file_names_the_mock(copy_project) -> None:
    root = copy_project("reference_join")
    (root / "SampleData" / "input.json").unlink()
    with pytest.raises(ConfigError, match=r"input 'Input': the sample data file .*input\.json named by "
                                          r"Inputs/Local_Input\.json does not exist"):
        project_job(root, report=None)


# --------------------------------------------------------------------------- windows_made


def test_windows_made_project_is_read() -> None:
    root = PROJECTS / "windows_made"
    project = load_project(root)
    assert project.start_file == root / "WinJob.asaql"  # startFile "winjob.asaql"
    assert project.job_config["OutputErrorPolicy"] == "Retry" and project.job_config["StreamingUnits"] == 3
    telemetry, devices = project.inputs["telemetry"], project.inputs["devices"]
    assert (Path(telemetry.path), telemetry.format, telemetry.kind) == (root / "Inputs" / "telemetry.csv", "csv", "stream")
    assert (Path(devices.path), devices.format, devices.kind) == (root / "Inputs" / "devices.csv", "csv", "reference")
    assert project.unreachable() == []  # both live inputs have a local mock
    assert any("Local_devices.json is not listed" in w for w in project.warnings)
    assert project.test_config == root / "Test" / "TestConfig.json"


def test_windows_made_project_runs(tmp_path: Path) -> None:
    res = _cli("run", str(PROJECTS / "windows_made"), "--output-dir", str(tmp_path), "--quiet")
    assert res.returncode == 0, res.stderr
    assert _rows(tmp_path / "alerts.json") == [
        {"deviceId": "d2", "site": "Bergen", "temp": 31.5, "eventTime": "2024-05-14T12:00:05.0000000Z"},
        {"deviceId": "d1", "site": "Oslo", "temp": 35.0, "eventTime": "2024-05-14T12:00:10.0000000Z"},
    ]


def test_windows_made_project_tests(tmp_path: Path) -> None:
    res = _cli("test", str(PROJECTS / "windows_made" / "asaproj.json"), "--outputPath", str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads((tmp_path / "testResultSummary.json").read_text())["Passed"] == 1


def test_calling_a_javascript_function_is_a_clear_error(copy_project) -> None:
    root = copy_project("windows_made")
    (root / "WinJob.asaql").write_text("SELECT udf.toUpper(deviceId) AS d INTO alerts FROM telemetry")
    with pytest.raises(ConfigError, match=r"calls udf\.toUpper, a JavaScript function \(Functions/toUpper\.js\.json\)"):
        project_job(root, report=None)


def test_ml_function_stub_not_called_does_not_stop_the_run(copy_project, tmp_path: Path) -> None:
    root = copy_project("windows_made")
    (root / "Functions" / "MLFunction1.json").write_text('{"ScriptType": "MLFunction"}')
    manifest = json.loads((root / "asaproj.json").read_text(encoding="utf-8-sig"))
    manifest["configurations"].append({"filePath": "Functions\\MLFunction1.json", "subType": "MLFunction"})
    (root / "asaproj.json").write_text(json.dumps(manifest))
    project = load_project(root)
    assert "MLFunction1" in project.functions and used_functions(project) == {}
    res = _cli("run", str(root), "--output-dir", str(tmp_path / "out"), "--quiet")
    assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------- live inputs


def test_live_inputs_without_mocks_say_what_to_do() -> None:
    res = _cli("run", str(PROJECTS / "live_eventhub_blob"))
    assert res.returncode == 1
    assert "input 'ClickstreamInput' is a live Event Hub input (Inputs/ClickstreamInput.json)" in res.stderr
    assert "'CustomerRefInput'" in res.stderr and "--input ClickstreamInput=FILE" in res.stderr
    assert "Traceback" not in res.stderr


def test_live_reference_input_is_given_with_ref(tmp_path: Path) -> None:
    root = PROJECTS / "live_eventhub_blob"
    res = _cli("localrun", "-project", str(root / "asaproj.json"),
               "--input", f"ClickstreamInput={root / 'SampleData' / 'clicks.json'}",
               "--ref", f"CustomerRefInput={root / 'SampleData' / 'customers.json'}",
               "-outputPath", str(tmp_path), "--quiet")
    assert res.returncode == 0, res.stderr
    assert _rows(tmp_path / "SQLOutput.json") == [{"customerId": 1, "tier": "gold", "page": "/home"},
                                                   {"customerId": 2, "tier": "silver", "page": "/cart"}]
    with pytest.raises(ConfigError, match="live Blob Storage input") as caught:
        project_job(root, report=None, provided=["ClickstreamInput"])
    assert caught.value.help and "--ref CustomerRefInput=FILE" in caught.value.help


def test_live_reference_input_missing_in_a_test_case(copy_project, tmp_path: Path) -> None:
    root = copy_project("live_eventhub_blob")
    (root / "test").mkdir()
    (root / "test" / "testConfig.json").write_text(json.dumps({"Script": "", "TestCases": [{
        "Name": "Case 1",
        "Inputs": [{"InputAlias": "ClickstreamInput", "Type": "Data Stream", "Format": "JSON",
                    "FilePath": "../SampleData/clicks.json", "ScriptType": "InputMock"}],
        "ExpectedOutputs": [{"OutputAlias": "SQLOutput", "FilePath": "x.json", "Required": True}]}]}))
    project = load_project(root)
    summary = run_tests(project, load_test_config(project.test_config, project_root=root), tmp_path)
    error = summary.as_json()["Results"][0]["Error"]
    assert "input 'CustomerRefInput' is a live Blob Storage input" in error
    assert summary.failed == 1


# --------------------------------------------------------------------------- test cases


def test_reference_join_cases_pass_with_cicd_flags(tmp_path: Path) -> None:
    res = _cli("test", "-project", str(PROJECTS / "reference_join" / "asaproj.json"),
               "-testConfigPath", str(PROJECTS / "reference_join" / "test" / "testConfig.json"),
               "-outputPath", str(tmp_path), "-customCodeZipFilePath", "UserCustomCode.zip")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "--customCodeZipFilePath UserCustomCode.zip ignored" in res.stderr


def test_summary_has_the_cicd_shape(tmp_path: Path) -> None:
    project = load_project(PROJECTS / "reference_join")
    summary = run_tests(project, load_test_config(project.test_config), tmp_path)
    data = json.loads((tmp_path / "testResultSummary.json").read_text())
    assert list(data) == ["Total", "Passed", "Failed", "Script", "Results", "Time"]
    assert (data["Total"], data["Passed"], data["Failed"]) == (2, 2, 0) == (2, summary.passed, summary.failed)
    assert Path(data["Script"]).is_absolute() and Path(data["Script"]).name == "ASATest.asaql"
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{7}", data["Time"])
    first = data["Results"][0]
    assert list(first) == ["Name", "Status", "Time", "OutputMatched", "OutputNotEqual", "OutputMissing",
                           "OutputUnexpected", "OutputUnrequired"]
    assert first["Status"] == 0 and first["Name"] == "Case 1"
    matched = first["OutputMatched"][0]
    assert matched["OutputAlias"] == "Output"
    assert Path(matched["ExpectedOutput"]).is_absolute() and Path(matched["Output"]).is_file()
    # Required: false with no FilePath: listed, not compared, no expected path
    unrequired = first["OutputUnrequired"][0]
    assert (unrequired["OutputAlias"], unrequired["ExpectedOutput"]) == ("Counts", "")
    assert Path(unrequired["Output"]).is_file()


def test_float_tolerance_and_datetime_format_decide(copy_project, tmp_path: Path) -> None:
    root = copy_project("reference_join")
    expected = root / "test" / "case2" / "Output.json"
    rows = json.loads(expected.read_text())
    rows[1]["fahrenheit"] = 54.05000001  # within 1e-6 relative
    expected.write_text(json.dumps(rows))
    counts = root / "test" / "case2" / "Counts.json"
    project = load_project(root)
    assert run_tests(project, load_test_config(project.test_config), tmp_path / "a").failed == 0
    rows[1]["fahrenheit"] = 54.1
    expected.write_text(json.dumps(rows))
    counts.write_text(counts.read_text().replace("21:01:00.0000000Z", "21:01:00Z"))
    summary = run_tests(project, load_test_config(project.test_config), tmp_path / "b")
    case2 = summary.as_json()["Results"][1]
    assert case2["Status"] == 1
    assert sorted(e["OutputAlias"] for e in case2["OutputNotEqual"]) == ["Counts", "output"]


def test_test_config_hand_edits(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text("[]")
    config = tmp_path / "testConfig.json"
    case = {"Name": "c", "Inputs": [{"InputAlias": "i", "FilePath": "in.json"}],
            "ExpectedOutputs": [{"OutputAlias": "o", "FilePath": "Required", "Required": "false"},
                                {"OutputAlias": "p", "FilePath": "in.json", "IgnoreFields": "ts"}]}
    config.write_text(json.dumps({"TestCases": [case]}))
    loaded = load_test_config(config).cases[0].expected
    assert (loaded[0].required, loaded[1].ignore_fields) == (False, ("ts",))
    case["ExpectedOutputs"][0]["Required"] = True
    config.write_text(json.dumps({"TestCases": [case]}))
    with pytest.raises(ConfigError, match="still the placeholder 'Required'"):
        load_test_config(config)


def test_run_takes_a_manifest_in_any_case_and_the_local_run_output_flag(tmp_path: Path) -> None:
    # `asaql run path/AsaProj.json --outputPath DIR`, as the VS Code local run spells them
    import shutil

    from asaql.cli.main import main

    project = tmp_path / "proj"
    shutil.copytree(Path(__file__).resolve().parents[1] / "projects" / "hello_world", project)
    manifest = next(p for p in project.iterdir() if p.name.lower() == "asaproj.json")
    renamed = manifest.with_name("AsaProj.json")
    manifest.rename(renamed)
    out = tmp_path / "out"
    assert main(["run", str(renamed), "--outputPath", str(out), "--quiet"]) == 0
    assert any(out.rglob("*.json"))
