"""VS Code ASA projects (asaproj.json) and their CI/CD test cases, through the library and the CLI.

Fixture projects in tests/projects/:

* hello_world   CSV local inputs in both mock formats, `\\` separators, a JobConfig.json, three
                outputs, three test cases of which "Case 3 null value" fails on purpose (modeled
                on Fleid/asa.unittest's ASAHelloWorld)
* sensor_alerts JSON-array stream + NDJSON reference input, a live IoT Hub input with a local
                mock, a JobConfig with policies, test cases with float tolerance and IgnoreFields
* live_iothub   a live IoT Hub input without a mock (and a JobConfig.json listed but absent,
                as in sandervandevelde/ASA-Inactive-Devices-Notifications)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asaql.errors import ConfigError
from asaql.project.loader import (
    find_manifest,
    load_input_mock,
    load_job_config,
    load_project,
    project_job,
    project_outputs,
)
from asaql.project.testrunner import (
    compare_rows,
    load_test_config,
    read_rows,
    run_tests,
    timespan,
    values_equal,
)

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = ROOT / "tests" / "projects"


@pytest.fixture
def project_copy(tmp_path: Path):
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(PROJECTS / name, target, ignore=shutil.ignore_patterns("LocalRunOutputs", "testResults"))
        return target

    return copy


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asaql", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=dict(os.environ))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- loading


def test_hello_world_project_reads_both_mock_formats_and_windows_paths() -> None:
    project = load_project(PROJECTS / "hello_world" / "asaproj.json")
    assert project.name == "HelloWorld"
    assert project.start_file == PROJECTS / "hello_world" / "HelloWorld.asaql"
    # Local_hwsource.json: InputAlias/Format, listed with a `\\` path
    first = project.inputs["hwsource"]
    assert (first.alias, first.format, first.kind) == ("hwsource", "csv", "stream")
    assert Path(first.path) == PROJECTS / "hello_world" / "Inputs" / "Data_hwsource.csv"
    # Local_hwsource2.json: Name/DataSourceType "Local Input"/Serialization
    second = project.inputs["hwsource2"]
    assert (second.alias, second.format, second.kind) == ("hwsource2", "csv", "stream")
    assert project.outputs == ["outputall"]
    assert project.job_config == {
        "DataLocale": "en-US", "OutputErrorPolicy": "Retry", "EventsLateArrivalMaxDelayInSeconds": 5,
        "EventsOutOfOrderMaxDelayInSeconds": 0, "EventsOutOfOrderPolicy": "Adjust",
        "CompatibilityLevel": "1.2", "StreamingUnits": 3,
    }
    assert project.warnings == []
    assert load_project(PROJECTS / "hello_world").manifest == project.manifest  # the folder works too


def test_sensor_project_reference_input_relative_paths_and_mocked_live_input() -> None:
    project = load_project(PROJECTS / "sensor_alerts")
    sensors = project.inputs["sensors"]
    assert sensors.kind == "reference" and sensors.format == "json"
    telemetry = project.inputs["telemetry"]
    # "..\\SampleData\\telemetry.json" relative to Inputs/, normalized
    assert Path(telemetry.path) == PROJECTS / "sensor_alerts" / "SampleData" / "telemetry.json"
    assert project.live_inputs["telemetry"].source_type == "IoT Hub"
    assert project.unreachable() == []  # the live input has a local mock
    # Azure-only settings (Sku, GlobalStorage, ...) are not passed to the engine
    assert "Sku" not in project.job_config and project.job_config["EventsOutOfOrderPolicy"] == "Drop"
    assert project_outputs(project) == ["alerts", "heartbeat"]


def test_input_mock_formats_from_dicts(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text("[]")
    a = load_input_mock(tmp_path / "m.json", {"InputAlias": "a", "Type": "Data Stream", "Format": "Json",
                                               "FilePath": "data.json", "ScriptType": "InputMock"})
    b = load_input_mock(tmp_path / "m.json", {"Name": "b", "Type": "Reference data",
                                               "DataSourceType": "Local Input",
                                               "Serialization": {"Type": "Json", "Encoding": "UTF8"},
                                               "FilePath": "data.json"})
    assert (a.alias, a.kind, a.format) == ("a", "stream", "json")
    assert (b.alias, b.kind, b.format) == ("b", "reference", "json")
    # an absolute path from another machine falls back to the file name beside the mock
    c = load_input_mock(tmp_path / "m.json", {"InputAlias": "c", "FilePath": "C:\\Users\\me\\proj\\data.json"})
    assert Path(c.path) == tmp_path / "data.json" and c.format is None  # format from the extension
    with pytest.raises(ConfigError, match="Avro"):
        load_input_mock(tmp_path / "m.json", {"InputAlias": "d", "Format": "Avro", "FilePath": "x.avro"})
    with pytest.raises(ConfigError, match="FilePath"):
        load_input_mock(tmp_path / "m.json", {"InputAlias": "e", "Format": "Json"})
    with pytest.raises(ConfigError, match="InputAlias"):
        load_input_mock(tmp_path / "m.json", {"FilePath": "data.json"})


@pytest.mark.parametrize(("field", "value", "message"), [
    ("EventsOutOfOrderPolicy", "Reorder", "Adjust, Drop"),
    ("EventsLateArrivalMaxDelayInSeconds", 1814400, "between -1 and 1814399"),
    ("EventsOutOfOrderMaxDelayInSeconds", "soon", "number of seconds"),
    ("CompatibilityLevel", "2.0", "1.0, 1.1, 1.2"),
    ("OutputErrorPolicy", "Ignore", "Stop, Drop, Retry"),
])
def test_job_config_is_validated(tmp_path: Path, field: str, value: object, message: str) -> None:
    path = tmp_path / "JobConfig.json"
    path.write_text(json.dumps({"ScriptType": "JobConfig", field: value}))
    with pytest.raises(ConfigError, match=message) as info:
        load_job_config(path)
    assert field in info.value.message and str(path) in info.value.message


def test_job_config_policies_are_case_insensitive_and_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "JobConfig.json"
    path.write_text("\ufeff" + json.dumps({"EventsOutOfOrderPolicy": "drop", "OutputErrorPolicy": "stop"}),
                    encoding="utf-8")
    assert load_job_config(path) == {"EventsOutOfOrderPolicy": "Drop", "OutputErrorPolicy": "Stop"}


def test_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no asaproj.json"):
        find_manifest(tmp_path)
    (tmp_path / "Old.asaproj").write_text("<Project/>")
    with pytest.raises(ConfigError, match="Visual Studio"):
        find_manifest(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        find_manifest(tmp_path / "nope" / "asaproj.json")


def test_project_job_maps_every_into_alias_to_a_json_lines_file(tmp_path: Path) -> None:
    job = project_job(PROJECTS / "hello_world", output_dir=tmp_path / "out", report=None)
    assert job.query_path == str(PROJECTS / "hello_world" / "HelloWorld.asaql")
    assert set(job.inputs) == {"hwsource", "hwsource2"}
    assert job.outputs == {name: str(tmp_path / "out" / f"{name}.json")
                           for name in ("outputall", "outputhello", "outputother")}
    assert set(job.output_formats.values()) == {"json"}
    assert job.job["CompatibilityLevel"] == "1.2"


def test_project_job_default_folder_is_local_run_outputs_with_a_timestamp(project_copy) -> None:
    root = project_copy("sensor_alerts")
    job = project_job(root, report=None, now=dt.datetime(2025, 1, 22, 15, 7, 8))
    folder = root / "LocalRunOutputs" / "20250122150708"
    assert job.outputs == {"alerts": str(folder / "alerts.json"), "heartbeat": str(folder / "heartbeat.json")}
    assert not folder.exists(), "loading a project (check, explain) must not create output folders"


def test_live_input_without_mock_is_a_clear_error(tmp_path: Path) -> None:
    messages: list[str] = []
    with pytest.raises(ConfigError) as info:
        project_job(PROJECTS / "live_iothub", report=messages.append)
    err = info.value
    assert "'iothubinput'" in err.message and "IoT Hub" in err.message
    assert "Inputs/iothubinput.json" in err.message
    assert "local input mock" in err.help and "--input iothubinput=FILE" in err.help
    # JobConfig.json is listed but absent: a warning, not an error
    assert messages == ["warning: JobConfig.json is listed in asaproj.json but does not exist; "
                        "using the default job settings"]
    job = project_job(PROJECTS / "live_iothub", provided=["IotHubInput"], report=None, output_dir=tmp_path)
    assert "iothubinput" not in job.inputs and list(job.outputs) == ["output"]
    from asaql.io.sink import open_sink

    with pytest.raises(ConfigError, match="cannot create the folder"):
        open_sink("output", "/dev/null/x/output.json")


def test_live_input_the_query_does_not_read_is_fine(project_copy) -> None:
    root = project_copy("live_iothub")
    (root / "LiveIotHub.asaql").write_text("SELECT * INTO output FROM other")
    (root / "Inputs" / "Local_other.json").write_text(json.dumps(
        {"InputAlias": "other", "Type": "Data Stream", "Format": "Json", "FilePath": "../sample.jsonl"}))
    manifest = json.loads((root / "asaproj.json").read_text())
    manifest["configurations"].append({"filePath": "Inputs\\Local_other.json", "subType": "InputMock"})
    (root / "asaproj.json").write_text(json.dumps(manifest))
    job = project_job(root, report=None, output_dir=root / "out")
    assert list(job.inputs) == ["other"] and list(job.outputs) == ["output"]


def test_code_functions_are_warned_about(project_copy) -> None:
    root = project_copy("hello_world")
    (root / "Functions").mkdir()
    (root / "Functions" / "toUpper.js").write_text("function main(s) { return s.toUpperCase(); }")
    (root / "Functions" / "toUpper.js.json").write_text(json.dumps(
        {"Script": "./toUpper.js", "FunctionType": "JavaScriptUDF", "ScriptType": "JSFunction"}))
    manifest = json.loads((root / "asaproj.json").read_text())
    manifest["configurations"].append({"filePath": "Functions/toUpper.js.json", "subType": "JSFunction"})
    (root / "asaproj.json").write_text(json.dumps(manifest))
    project = load_project(root)
    assert project.functions == {}
    assert any("toUpper" in w and "JavaScript" in w for w in project.warnings)


# --------------------------------------------------------------------------- comparing rows


def test_values_equal_rules() -> None:
    assert values_equal(72.14, 72.14000000000001)
    assert values_equal(7, 7.0) and not values_equal(7, 7.5)
    assert not values_equal("1", 1)  # CSV values are strings
    assert not values_equal(True, 1) and values_equal(False, False)
    assert not values_equal("2024-05-14T12:00:00Z", "2024-05-14T12:00:00.0000000Z")  # exact text
    assert values_equal({"a": [1.0, {"b": 0.1 + 0.2}]}, {"a": [1, {"b": 0.3}]})
    assert not values_equal({"a": 1}, {"a": 1, "b": None})
    assert values_equal(None, None) and not values_equal(None, 0)
    assert values_equal(1e-12, 0.0)  # absolute tolerance near zero


def test_compare_rows_as_multisets_with_ignored_fields() -> None:
    expected = [{"id": 1, "v": 0.3, "t": "x"}, {"id": 2, "v": 1.0, "t": "y"}, {"id": 2, "v": 1.0, "t": "z"}]
    actual = [{"id": 2, "v": 1.0, "t": "q"}, {"id": 1, "v": 0.1 + 0.2, "t": "w"}, {"id": 2, "v": 1, "t": "r"}]
    assert not compare_rows("o", expected, actual).equal
    result = compare_rows("o", expected, actual, ignore_fields=["T"])
    assert result.equal and result.matched == 3
    duplicates = compare_rows("o", [{"a": 1}, {"a": 1}], [{"a": 1}])
    assert duplicates.missing == [{"a": 1}] and duplicates.unexpected == []


def test_compare_rows_ordered() -> None:
    rows = [{"a": 1}, {"a": 2}]
    assert compare_rows("o", rows, list(reversed(rows))).equal
    ordered = compare_rows("o", rows, list(reversed(rows)), ordered=True)
    assert not ordered.equal and ordered.missing == rows


def test_diff_pairs_similar_rows_and_names_fields() -> None:
    result = compare_rows("alerts", [{"id": "2", "msg": "World", "n": 1}, {"id": "9", "msg": "gone", "n": 5}],
                          [{"id": "2", "msg": None, "n": 1}, {"x": 1}])
    text = "\n".join(result.describe())
    assert "alerts: 2 expected row(s), 2 produced, 0 matched" in text
    assert '~ expected {"id":"2","msg":"World","n":1}' in text
    assert 'got {"id":"2","msg":null,"n":1}' in text
    assert 'msg: expected "World", got null' in text
    assert '- missing    {"id":"9","msg":"gone","n":5}' in text
    assert '+ unexpected {"x":1}' in text


def test_read_rows_accepts_arrays_lines_and_concatenated_objects(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    for text in ('[{"a":1},\n{"a":2}]', '{"a":1}\n{"a":2}\n', '{"a":1}{"a":2}', '\ufeff[{"a":1}]\n{"a":2}'):
        path.write_text(text, encoding="utf-8")
        assert read_rows(path) == [{"a": 1}, {"a": 2}]
    path.write_text("")
    assert read_rows(path) == []
    path.write_text('{"a":1}\n{"a":')
    with pytest.raises(ConfigError, match="line 2"):
        read_rows(path)


def test_timespan() -> None:
    assert timespan(0) == "00:00:00.0000000"
    assert timespan(3723.5) == "01:02:03.5000000"


# --------------------------------------------------------------------------- test cases


def test_load_test_config_resolves_paths_beside_it() -> None:
    config = load_test_config(PROJECTS / "hello_world" / "test" / "testConfig.json")
    assert [c.name for c in config.cases] == ["Case 1 nominal", "Case 2 ignored fields", "Case 3 null value"]
    case1 = config.cases[0]
    assert Path(case1.inputs[1].path) == PROJECTS / "hello_world" / "test" / "case1" / "hwsource2.csv"
    assert case1.inputs[1].format == "csv"
    case2 = config.cases[1]
    assert case2.expected[0].ignore_fields == ("EventId",)
    assert [e.required for e in case2.expected] == [True, True, False]


def test_load_test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_test_config(tmp_path / "testConfig.json")
    (tmp_path / "testConfig.json").write_text('{"TestCases": [{"Name": "x", "ExpectedOutputs": [{"FilePath": "a"}]}]}')
    with pytest.raises(ConfigError, match="OutputAlias"):
        load_test_config(tmp_path / "testConfig.json")


def test_run_tests_hello_world_summary(tmp_path: Path) -> None:
    project = load_project(PROJECTS / "hello_world")
    config = load_test_config(project.test_config)
    lines: list[str] = []
    summary = run_tests(project, config, tmp_path, report=lines.append)
    assert (summary.passed, summary.failed) == (2, 1)
    data = json.loads((tmp_path / "testResultSummary.json").read_text())
    assert set(data) == {"Total", "Passed", "Failed", "Script", "Time", "Results"}
    assert (data["Total"], data["Passed"], data["Failed"]) == (3, 2, 1)
    assert data["Script"].endswith("HelloWorld.asaql")
    first, second, third = data["Results"]
    assert set(first) == {"Name", "Status", "Time", "OutputMatched", "OutputNotEqual", "OutputMissing",
                          "OutputUnexpected", "OutputUnrequired"}
    assert first["Status"] == 0 and [e["OutputAlias"] for e in first["OutputMatched"]] == [
        "outputall", "outputhello", "outputother"]
    entry = first["OutputMatched"][0]
    assert set(entry) == {"OutputAlias", "ExpectedOutput", "Output"}
    assert _lines(Path(entry["Output"])) == [{"EventId": "1", "EventMessage": "Hello"},
                                             {"EventId": "2", "EventMessage": "World"},
                                             {"EventId": "3", "EventMessage": "Hello"},
                                             {"EventId": "4", "EventMessage": "Friends"}]
    assert second["Status"] == 0 and [e["OutputAlias"] for e in second["OutputUnrequired"]] == ["outputother"]
    assert third["Status"] == 1
    assert [e["OutputAlias"] for e in third["OutputNotEqual"]] == ["outputall"]
    assert [e["OutputAlias"] for e in third["OutputMatched"]] == ["outputhello"]
    assert [e["OutputAlias"] for e in third["OutputUnexpected"]] == ["outputother"]
    assert lines[0].startswith("PASS  Case 1 nominal") and any(line.startswith("FAIL  Case 3") for line in lines)
    assert any('EventMessage: expected "World", got' in line for line in lines)


def test_run_tests_float_tolerance_reference_data_and_empty_outputs(tmp_path: Path) -> None:
    project = load_project(PROJECTS / "sensor_alerts")
    summary = run_tests(project, load_test_config(project.test_config), tmp_path)
    assert (summary.passed, summary.failed) == (2, 0), summary.as_json()
    strict = run_tests(project, load_test_config(project.test_config), tmp_path / "strict", rel_tol=0, abs_tol=0)
    assert strict.failed == 1  # 72.14 vs 72.14000000000001 only equal with a tolerance


def test_missing_output_and_case_errors(project_copy, tmp_path: Path) -> None:
    root = project_copy("hello_world")
    config_path = root / "test" / "testConfig.json"
    config = json.loads(config_path.read_text())
    case = config["TestCases"][0]
    case["ExpectedOutputs"].append({"OutputAlias": "nosuchoutput", "FilePath": "case1/outputall.json", "Required": True})
    broken = json.loads(json.dumps(config["TestCases"][1]))
    broken["Name"] = "broken input"
    broken["Inputs"][0]["FilePath"] = "case2/missing.csv"
    config["TestCases"] = [case, broken]
    config_path.write_text(json.dumps(config))
    summary = run_tests(load_project(root), load_test_config(config_path), tmp_path)
    first, second = summary.as_json()["Results"]
    assert first["Status"] == 1 and [e["OutputAlias"] for e in first["OutputMissing"]] == ["nosuchoutput"]
    assert second["Status"] == 1 and "missing.csv" in second["Error"]


def test_case_without_data_for_a_live_input_fails_with_the_reason(project_copy, tmp_path: Path) -> None:
    root = project_copy("live_iothub")
    (root / "test").mkdir()
    (root / "test" / "testConfig.json").write_text(json.dumps({"TestCases": [
        {"Name": "with data", "Inputs": [{"InputAlias": "iothubinput", "Format": "Json", "FilePath": "../sample.jsonl"}],
         "ExpectedOutputs": [{"OutputAlias": "output", "FilePath": "expected.json", "Required": True}]},
        {"Name": "without data", "Inputs": [], "ExpectedOutputs": []}]}))
    (root / "test" / "expected.json").write_text('[{"deviceId":"d1","temperature":35.2}]')
    summary = run_tests(load_project(root), load_test_config(root / "test" / "testConfig.json"), tmp_path)
    ok, failed = summary.results
    assert ok.passed and not failed.passed
    assert "live IoT Hub input" in (failed.error or "") and "Inputs" in (failed.error or "")


# --------------------------------------------------------------------------- command line


def test_cli_run_project_writes_local_run_outputs(project_copy) -> None:
    root = project_copy("hello_world")
    res = _cli("run", str(root / "asaproj.json"))
    assert res.returncode == 0, res.stderr
    (folder,) = (root / "LocalRunOutputs").iterdir()
    assert len(folder.name) == 14 and folder.name.isdigit()  # yyyyMMddHHmmss
    assert sorted(p.name for p in folder.iterdir()) == ["outputall.json", "outputhello.json", "outputother.json"]
    assert _lines(folder / "outputhello.json") == [{"EventId": "1", "EventMessage": "Hello"},
                                                   {"EventId": "3", "EventMessage": "Hello"}]
    assert sorted(r["EventId"] for r in _lines(folder / "outputall.json")) == ["1", "2", "3", "4"]


def test_cli_run_project_folder_with_reference_data_and_output_override(project_copy, tmp_path: Path) -> None:
    root = project_copy("sensor_alerts")
    res = _cli("run", str(root), "--output", f"alerts={tmp_path / 'alerts.jsonl'}", "--quiet")
    assert res.returncode == 0, res.stderr
    alerts = _lines(tmp_path / "alerts.jsonl")
    assert [(a["deviceId"], a["location"], a["temperature"]) for a in alerts] == [
        ("dev-1", "hall", 22.3), ("dev-1", "hall", 25.1), ("dev-2", "lab", 31.7)]
    assert alerts[0]["windowTime"] == "2024-05-14T12:00:00.0000000Z"
    (folder,) = (root / "LocalRunOutputs").iterdir()
    assert len(_lines(folder / "heartbeat.json")) == 5


def test_cli_run_live_input_without_mock_exits_1_with_the_reason() -> None:
    res = _cli("run", str(PROJECTS / "live_iothub"))
    assert res.returncode == 1
    assert "input 'iothubinput' is a live IoT Hub input" in res.stderr
    assert "--input iothubinput=FILE" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_localrun_with_output_path_and_input_override(tmp_path: Path) -> None:
    res = _cli("localrun", str(PROJECTS / "live_iothub" / "asaproj.json"), "--outputPath", str(tmp_path),
               "--input", f"iothubinput={PROJECTS / 'live_iothub' / 'sample.jsonl'}")
    assert res.returncode == 0, res.stderr
    assert _lines(tmp_path / "output.json") == [{"deviceId": "d1", "temperature": 35.2}]
    assert "output: 1 event(s)" in res.stderr


def test_cli_test_reports_failures_and_writes_the_summary(tmp_path: Path) -> None:
    res = _cli("test", str(PROJECTS / "hello_world" / "asaproj.json"), "--outputPath", str(tmp_path))
    assert res.returncode == 1, res.stderr
    assert "PASS  Case 1 nominal" in res.stdout and "FAIL  Case 3 null value" in res.stdout
    assert 'EventMessage: expected "World", got' in res.stdout
    assert "2 passed, 1 failed of 3 test case(s)" in res.stdout
    data = json.loads((tmp_path / "testResultSummary.json").read_text())
    assert [r["Status"] for r in data["Results"]] == [0, 0, 1]


def test_cli_test_all_pass_exits_0(tmp_path: Path) -> None:
    res = _cli("test", "--project", str(PROJECTS / "sensor_alerts"), "--outputPath", str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads((tmp_path / "testResultSummary.json").read_text())["Failed"] == 0


def test_cli_test_default_output_path_and_test_config_path(project_copy) -> None:
    root = project_copy("sensor_alerts")
    moved = root / "ci" / "cases.json"
    moved.parent.mkdir()
    config = json.loads((root / "test" / "testConfig.json").read_text())
    for case in config["TestCases"]:
        for item in case["Inputs"] + case["ExpectedOutputs"]:
            item["FilePath"] = "../test/" + item["FilePath"]
    moved.write_text(json.dumps(config))
    res = _cli("test", str(root), "--testConfigPath", str(moved))
    assert res.returncode == 0, res.stdout + res.stderr
    assert (root / "ci" / "testResults" / "testResultSummary.json").exists()


def test_cli_test_cannot_run_exits_2(project_copy, tmp_path: Path) -> None:
    res = _cli("test", str(PROJECTS / "live_iothub"), "--outputPath", str(tmp_path))
    assert res.returncode == 2 and "testConfig.json" in res.stderr and "does not exist" in res.stderr
    root = project_copy("hello_world")
    (root / "HelloWorld.asaql").write_text("SELEC * FROM hwsource")
    res = _cli("test", str(root), "--outputPath", str(tmp_path))
    assert res.returncode == 2 and "error" in res.stderr
    res = _cli("test", str(tmp_path / "nowhere"))
    assert res.returncode == 2 and "does not exist" in res.stderr


# --------------------------------------------------------------------------- job files ([job])


def test_job_file_job_table_uses_the_same_validation(tmp_path: Path) -> None:
    from asaql.job import load_job_file

    path = tmp_path / "job.toml"
    path.write_text('query_text = "SELECT * FROM a"\n[job]\neventsoutoforderpolicy = "drop"\n'
                    'EventsOutOfOrderMaxDelayInSeconds = 5\non_data_error = "Stop"\nmy_note = "kept"\n')
    assert load_job_file(path).job == {"EventsOutOfOrderPolicy": "Drop", "EventsOutOfOrderMaxDelayInSeconds": 5,
                                       "on_data_error": "stop", "my_note": "kept"}
    path.write_text('query_text = "SELECT * FROM a"\n[job]\nEventsLateArrivalMaxDelayInSeconds = -2\n')
    with pytest.raises(ConfigError, match=r"\[job\]: EventsLateArrivalMaxDelayInSeconds must be between -1"):
        load_job_file(path)
    path.write_text('query_text = "SELECT * FROM a"\n[job]\non_data_error = "ignore"\n')
    with pytest.raises(ConfigError, match="on_data_error must be one of skip, stop"):
        load_job_file(path)


def test_run_project_with_output_dir_and_input_for_a_live_input(tmp_path: Path) -> None:
    """`asaql run PROJECT --output-dir DIR --input NAME=FILE` feeds a live input that has no mock."""
    import subprocess
    import sys

    project = Path(__file__).parent / "projects" / "live_iothub"
    res = subprocess.run(
        [sys.executable, "-m", "asaql", "run", str(project), "--output-dir", str(tmp_path / "out"),
         "--input", f"iothubinput={project / 'sample.jsonl'}", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    outputs = list((tmp_path / "out").glob("*.json"))
    assert outputs and all(p.read_text().strip() for p in outputs)
