"""VS Code Stream Analytics projects: read ``asaproj.json`` and what it points to, as a JobFile.

A project folder as the VS Code extension writes it::

    MyJob/
      asaproj.json               {"name", "startFile", "configurations": [{"filePath", "subType"}]}
      MyJob.asaql                the query (startFile)
      JobConfig.json             event ordering, OutputErrorPolicy, CompatibilityLevel, ...
      Inputs/Local_<alias>.json  local input mock (subType InputMock) + its data file
      Inputs/<alias>.json        live input (subType Input): IoT Hub, Event Hub, Blob, ...
      Outputs/<alias>.json       live output (subType Output); a local run ignores it
      Functions/<name>.json      functions (Azure ML ones are used; JavaScript/C# are not run)
      test/testConfig.json       CI/CD test cases (see asaql.project.testrunner)

Local input mocks come in two real formats; both are read::

    {"InputAlias": "hwsource", "Type": "Data Stream", "Format": "csv",
     "FilePath": "Data_hwsource.csv", "ScriptType": "InputMock"}
    {"Name": "iothubinput", "Type": "Data Stream", "DataSourceType": "Local Input",
     "Serialization": {"Type": "Json", "Encoding": "UTF8"}, "FilePath": "sample.json",
     "ScriptType": "InputMock"}

``FilePath`` is relative to the mock file's folder; ``\\`` separators are accepted. ``Type:
"Reference data"`` makes a reference input. A live input with no local mock cannot be reached:
running the project raises a ConfigError that names it and says what to do.

:func:`load_project` gives an :class:`AsaProject`; :func:`project_job` turns it into the
:class:`~asaql.job.JobFile` that ``asaql run``/``check``/``explain`` use, with every ``INTO`` alias
written as JSON lines to ``LocalRunOutputs/<yyyyMMddHHmmss>/<alias>.json`` (or ``output_dir``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from asaql.errors import AsaqlError, ConfigError
from asaql.job import JOB_CONFIG_FIELDS, InputDecl, JobFile, validate_job_settings

__all__ = [
    "AsaProject",
    "LiveInput",
    "ProjectInput",
    "find_manifest",
    "load_input_mock",
    "load_job_config",
    "load_project",
    "project_job",
    "project_outputs",
]

MANIFEST = "asaproj.json"
LOCAL_RUN_OUTPUTS = "LocalRunOutputs"

_FORMATS = {"json": "json", "csv": "csv", "parquet": "parquet", "avro": "avro"}
_ML_FUNCTION_TYPES = ("mlfunction", "mlservicefunction", "azuremlfunction", "azuremlservicefunction")
_CODE_FUNCTION_TYPES = ("jsfunction", "javascriptfunction", "csharpfunction", "jsaggregate",
                        "javascriptuda", "csharpaggregate")

Reporter = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"asaql: {message}", file=sys.stderr)


@dataclass
class ProjectInput:
    """A local input: an alias, its data file and format, stream or reference."""

    alias: str
    path: str
    format: str | None = None
    kind: str = "stream"  # stream | reference
    config: Path | None = None  # the mock file it came from

    def decl(self) -> InputDecl:
        return InputDecl(name=self.alias, kind=self.kind, path=self.path, format=self.format)


@dataclass
class LiveInput:
    """An input of the deployed job (IoT Hub, Event Hub, Blob, ...): asaql cannot read it."""

    alias: str
    source_type: str
    kind: str
    config: Path


@dataclass
class AsaProject:
    """What a VS Code ASA project holds, with every path resolved."""

    root: Path
    manifest: Path
    name: str
    start_file: Path
    job_config: dict[str, Any] = field(default_factory=dict)
    job_config_path: Path | None = None
    inputs: dict[str, ProjectInput] = field(default_factory=dict)  # by lower-case alias
    live_inputs: dict[str, LiveInput] = field(default_factory=dict)  # by lower-case alias
    outputs: list[str] = field(default_factory=list)  # Outputs/*.json names (not needed locally)
    functions: dict[str, str] = field(default_factory=dict)  # Azure ML function definition files
    warnings: list[str] = field(default_factory=list)

    @property
    def query_text(self) -> str:
        try:
            return self.start_file.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"{self.manifest}: cannot read the start file {self.start_file}: {exc}") from exc

    @property
    def test_config(self) -> Path:
        """The CI/CD tool's default test configuration: ``test/testConfig.json``."""
        return self.root / "test" / "testConfig.json"

    def unreachable(self, provided: Iterable[str] = ()) -> list[LiveInput]:
        """Live inputs with no local mock and no data given on the command line."""
        given = {p.lower() for p in provided}
        return [li for key, li in self.live_inputs.items() if key not in self.inputs and key not in given]


# --------------------------------------------------------------------------- reading files


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc


def _rel(base: Path, raw: str) -> Path:
    """A path from a project file: ``\\`` or ``/`` separators, relative to ``base``."""
    text = raw.strip()
    if "\\" in text:
        win = PureWindowsPath(text)
        if win.drive or win.root:
            return Path(text)  # absolute Windows path: kept (callers fall back to the file name)
        return Path(os.path.normpath(base.joinpath(*win.parts)))
    p = PurePosixPath(text)
    return Path(p) if p.is_absolute() else Path(os.path.normpath(base.joinpath(*p.parts)))


def _locate_data(base: Path, raw: str) -> Path:
    """The data file a mock names; an absolute path from another machine (``C:\\...``) falls back
    to the same file name beside the mock."""
    p = _rel(base, raw)
    if p.exists():
        return p
    name = PureWindowsPath(raw).name if "\\" in raw else PurePosixPath(raw).name
    beside = base / name
    return beside if beside.exists() else p


def _get(obj: dict[str, Any], *names: str) -> Any:
    """A field by any of its names, case-insensitively."""
    lowered = {k.lower(): v for k, v in obj.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _kind(type_: Any) -> str:
    return "reference" if str(type_ or "").replace(" ", "").lower() in ("referencedata", "reference") else "stream"


def _format(raw: Any, where: str) -> str | None:
    if raw is None or raw == "":
        return None
    fmt = _FORMATS.get(str(raw).strip().lower())
    if fmt is None:
        raise ConfigError(f"{where}: unknown data format {raw!r}", help="use Json, Csv or Parquet")
    if fmt == "avro":
        raise ConfigError(f"{where}: Avro local inputs are not supported by asaql yet",
                          help="convert the sample data to JSON (one object per line) or CSV")
    return fmt


def load_input_mock(path: str | Path, obj: dict[str, Any] | None = None, *,
                    base: Path | None = None) -> ProjectInput:
    """A local input mock in either real format (InputAlias/Format or Name/Serialization).

    ``obj`` is the already-parsed content (testConfig.json embeds mocks); ``base`` is the folder
    its FilePath is relative to (default: the mock file's folder).
    """
    path = Path(path)
    if obj is None:
        obj = _read_json(path, "input mock")
    if not isinstance(obj, dict):
        raise ConfigError(f"input mock {path} must be a JSON object")
    alias = _get(obj, "InputAlias", "Name", "Alias")
    if not isinstance(alias, str) or not alias:
        raise ConfigError(f"input mock {path}: missing 'InputAlias' (or 'Name'): the input's name in the query")
    file_path = _get(obj, "FilePath", "LocalFilePath")
    if not isinstance(file_path, str) or not file_path:
        raise ConfigError(f"input mock {path} ({alias}): missing 'FilePath', the sample data file")
    base = path.parent if base is None else base
    data = _locate_data(base, file_path)
    serialization = _get(obj, "Serialization")
    raw_format = _get(obj, "Format")
    if raw_format is None and isinstance(serialization, dict):
        raw_format = _get(serialization, "Type")
    fmt = _format(raw_format, f"input mock {path} ({alias})")  # None: from the file extension
    return ProjectInput(alias=alias, path=str(data), format=fmt, kind=_kind(_get(obj, "Type")), config=path)


def load_job_config(path: str | Path) -> dict[str, Any]:
    """The engine-relevant fields of a JobConfig.json, validated (errors name the field)."""
    path = Path(path)
    raw = _read_json(path, "job config")
    if not isinstance(raw, dict):
        raise ConfigError(f"job config {path} must be a JSON object")
    wanted = {name.lower() for name in JOB_CONFIG_FIELDS}
    settings = {k: v for k, v in raw.items() if k.lower() in wanted and v is not None}
    return validate_job_settings(settings, str(path))


# --------------------------------------------------------------------------- the project


def find_manifest(target: str | Path) -> Path:
    """``asaproj.json`` from itself or its folder; a clear error for anything else."""
    target = Path(target)
    if target.is_dir():
        manifest = target / MANIFEST
        if manifest.exists():
            return manifest
        old = sorted(target.glob("*.asaproj"))
        if old:
            raise ConfigError(
                f"{target} is a Visual Studio (MSBuild .asaproj) project; asaql reads VS Code projects",
                help=f"open it in VS Code to convert it, or run the query with flags: asaql run {target / '<query>.asaql'} --input NAME=FILE")
        raise ConfigError(f"{target} holds no {MANIFEST}: it is not a VS Code Stream Analytics project")
    if not target.exists():
        raise ConfigError(f"project {target} does not exist")
    return target


def load_project(target: str | Path) -> AsaProject:
    """Read a project from its ``asaproj.json`` or folder. Missing optional files are warnings."""
    manifest = find_manifest(target)
    root = manifest.parent
    raw = _read_json(manifest, "project file")
    if not isinstance(raw, dict):
        raise ConfigError(f"project file {manifest} must be a JSON object")
    start = _get(raw, "startFile")
    if not isinstance(start, str) or not start:
        candidates = sorted(root.glob("*.asaql"))
        if len(candidates) != 1:
            raise ConfigError(f"{manifest}: missing 'startFile' (the .asaql query file)")
        start_file = candidates[0]
    else:
        start_file = _rel(root, start)
    if not start_file.exists():
        raise ConfigError(f"{manifest}: the start file {start_file} does not exist")
    project = AsaProject(root=root, manifest=manifest, name=str(_get(raw, "name") or root.name),
                         start_file=start_file)
    configurations = _get(raw, "configurations") or []
    if not isinstance(configurations, list):
        raise ConfigError(f"{manifest}: 'configurations' must be a list")
    for entry in configurations:
        if not isinstance(entry, dict) or not isinstance(_get(entry, "filePath"), str):
            raise ConfigError(f"{manifest}: each configuration needs a 'filePath' and a 'subType'")
        _configuration(project, _rel(root, _get(entry, "filePath")), str(_get(entry, "subType") or ""))
    if project.job_config_path is None and (root / "JobConfig.json").exists():
        _configuration(project, root / "JobConfig.json", "JobConfig")
    return project


def _configuration(project: AsaProject, path: Path, sub_type: str) -> None:
    kind = sub_type.replace(" ", "").lower()
    rel = _display(path, project.root)
    if not path.exists():
        if kind == "inputmock":
            raise ConfigError(f"{project.manifest}: the local input {rel} does not exist",
                              help="remove it from asaproj.json's configurations or create it")
        project.warnings.append(f"{rel} is listed in {MANIFEST} but does not exist; "
                                + ("using the default job settings" if kind == "jobconfig" else "ignored"))
        return
    if kind == "jobconfig":
        project.job_config_path = path
        project.job_config = load_job_config(path)
        return
    if kind in ("inputmock", "localinput"):
        _add_mock(project, load_input_mock(path))
        return
    if kind == "input":
        obj = _read_json(path, "input")
        if not isinstance(obj, dict):
            raise ConfigError(f"input {path} must be a JSON object")
        source = str(_get(obj, "DataSourceType") or "")
        if source.replace(" ", "").lower() == "localinput" or str(_get(obj, "ScriptType") or "").lower() == "inputmock":
            _add_mock(project, load_input_mock(path, obj))
            return
        alias = str(_get(obj, "Name", "InputAlias") or path.stem)
        project.live_inputs[alias.lower()] = LiveInput(alias=alias, source_type=source or "live",
                                                       kind=_kind(_get(obj, "Type")), config=path)
        return
    if kind == "output":
        obj = _read_json(path, "output")
        project.outputs.append(str(_get(obj, "Name") or path.stem) if isinstance(obj, dict) else path.stem)
        return
    if kind in _ML_FUNCTION_TYPES or kind.endswith("function") or kind.endswith("aggregate"):
        _function(project, path, kind)
        return
    project.warnings.append(f"{rel}: configuration type {sub_type!r} is not used by asaql")


def _add_mock(project: AsaProject, mock: ProjectInput) -> None:
    key = mock.alias.lower()
    if key in project.inputs:
        project.warnings.append(f"input '{mock.alias}' has two local mocks; using {mock.config}")
    project.inputs[key] = mock


def _function(project: AsaProject, path: Path, kind: str) -> None:
    name = path.name
    for suffix in (".js.json", ".cs.json", ".json", ".js", ".cs"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    script_type = ""
    if path.suffix.lower() == ".json":
        obj = _read_json(path, "function")
        if isinstance(obj, dict):
            name = str(_get(obj, "Name") or name)
            script_type = str(_get(obj, "ScriptType") or "").lower()
    if kind in _ML_FUNCTION_TYPES or script_type in _ML_FUNCTION_TYPES:
        project.functions[name] = str(path)
        return
    what = "C#" if "csharp" in kind or path.name.lower().endswith(".cs.json") else "JavaScript"
    project.warnings.append(f"function '{name}' ({_display(path, project.root)}) is a {what} function; "
                            "asaql does not run it, so a query calling it fails to bind")


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- as a job


def unreachable_error(live: LiveInput, project: AsaProject, *, case: str | None = None) -> ConfigError:
    """The error for a live input the query reads and no local data is given for."""
    rel = _display(live.config, project.root)
    if case is not None:
        return ConfigError(
            f"test case '{case}': input '{live.alias}' is a live {live.source_type} input ({rel}) "
            "with no local data; asaql runs offline and cannot read Azure services",
            help=(f"add {{\"InputAlias\": \"{live.alias}\", \"Type\": \"Data Stream\", \"Format\": \"Json\", "
                  f"\"FilePath\": ...}} to the case's Inputs, or a local input mock to the project"))
    return ConfigError(
        f"input '{live.alias}' is a live {live.source_type} input ({rel}) and has no local input mock; "
        "asaql runs offline and cannot read Azure services",
        help=(f"add a local input mock for it (an Inputs/Local_{live.alias}.json with \"InputAlias\": "
              f"\"{live.alias}\" and \"FilePath\" naming a JSON or CSV sample, listed in {MANIFEST} "
              f"with subType InputMock; VS Code: 'Add local input'), or give the data on the command "
              f"line: asaql localrun {_display(project.root, Path.cwd())} --input {live.alias}=FILE"),
    )


def project_outputs(project: AsaProject, inputs: Iterable[ProjectInput] | None = None,
                    text: str | None = None) -> list[str]:
    """The query's output aliases (every ``INTO``; ``output`` when it has none), in query order.
    Empty when the query does not compile: running it reports the error."""
    from asaql.session import Session

    session = Session(job_config=dict(project.job_config))
    for inp in (project.inputs.values() if inputs is None else inputs):
        session.add_input(inp.alias, inp.path, format=inp.format, reference=inp.kind == "reference")
    for live in project.live_inputs.values():
        if live.alias.lower() not in project.inputs:
            session.add_input(live.alias, "", reference=live.kind == "reference")
    try:
        return session.compile(project.query_text if text is None else text, open_catalog=True).output_names
    except AsaqlError:
        return []


def local_run_folder(project: AsaProject, now: dt.datetime | None = None) -> Path:
    """``LocalRunOutputs/<yyyyMMddHHmmss>`` in the project folder, as the VS Code local run."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d%H%M%S")
    return project.root / LOCAL_RUN_OUTPUTS / stamp


def project_job(target: str | Path, *, output_dir: str | Path | None = None,
                provided: Iterable[str] = (), report: Reporter | None = _stderr,
                now: dt.datetime | None = None) -> JobFile:
    """The project as a job: its query, local inputs, ML functions, JobConfig settings and one
    JSON lines file per output alias under ``output_dir`` (default ``LocalRunOutputs/<stamp>``).

    ``provided`` names inputs given elsewhere (``--input``): their live definitions are fine.
    Raises ConfigError for a live input the query needs that has no local mock.
    """
    project = load_project(target)
    if report is not None:
        for warning in project.warnings:
            report(f"warning: {warning}")
    missing = project.unreachable(provided)
    if missing:
        used = _used_inputs(project)
        needed = [li for li in missing if used is None or li.alias.lower() in used]
        if needed:
            raise unreachable_error(needed[0], project)
    job = JobFile(path=project.manifest, query_path=str(project.start_file))
    for inp in project.inputs.values():
        job.inputs[inp.alias] = inp.decl()
    for name, path in project.functions.items():
        job.functions[name] = path
    job.job = dict(project.job_config)
    folder = Path(output_dir) if output_dir is not None else local_run_folder(project, now)
    names = project_outputs(project)
    for name in names:
        job.outputs[name] = str(folder / f"{name}.json")
        job.output_formats[name] = "json"
    return job  # the sinks create the folder when the run starts (check/explain leave none)


def _used_inputs(project: AsaProject) -> set[str] | None:
    """Lower-case names of the inputs the query reads (None when it cannot be parsed)."""
    try:
        from asaql.sql.parser import parse

        script = parse(project.query_text)
    except AsaqlError:
        return None
    from asaql.sql import ast

    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, ast.Source) and isinstance(getattr(node, "name", None), str):
            names.add(node.name.lower())
        if isinstance(node, ast.Node):
            for value in vars(node).values():
                walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(script)
    return names
