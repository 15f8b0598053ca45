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

``FilePath`` is relative to the mock file's folder, then to the project folder; ``\\`` separators,
another case than the disk's, and absolute paths from another machine are accepted (see
:mod:`asaql.project.files`). ``Type: "Reference data"`` makes a reference input. A live input with
no local mock cannot be reached: running the project raises a ConfigError that names it and says
what to do. Unlisted ``Inputs/Local_*.json`` mocks are used with a warning; a ``startFile`` that
is not there falls back to the folder's only ``.asaql`` file.

:func:`load_project` gives an :class:`AsaProject`; :func:`project_job` turns it into the
:class:`~asaql.job.JobFile` that ``asaql run``/``check``/``explain`` use, with every ``INTO`` alias
written as JSON lines to ``LocalRunOutputs/<yyyyMMddHHmmss>/<alias>.json`` (or ``output_dir``).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asaql.errors import AsaqlError, ConfigError
from asaql.job import JOB_CONFIG_FIELDS, InputDecl, JobFile, validate_job_settings
from asaql.project.files import locate, read_json, resolve

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
    "used_functions",
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
    code_functions: dict[str, tuple[str, str]] = field(default_factory=dict)  # JS/C#: lower name -> (name, what)
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
        return resolve(self.root, "test/testConfig.json")  # any case: Test/TestConfig.json

    def unreachable(self, provided: Iterable[str] = ()) -> list[LiveInput]:
        """Live inputs with no local mock and no data given on the command line."""
        given = {p.lower() for p in provided}
        return [li for key, li in self.live_inputs.items() if key not in self.inputs and key not in given]


# --------------------------------------------------------------------------- reading files


def _get(obj: dict[str, Any], *names: str) -> Any:
    """A field by any of its names, case-insensitively."""
    lowered = {k.lower(): v for k, v in obj.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _kind(type_: Any) -> str:
    return "reference" if str(type_ or "").replace(" ", "").lower() in ("referencedata", "reference") else "stream"


#: field delimiters the CSV reader recognises (it detects them from the header row)
_CSV_DELIMITERS = {",": ",", ";": ";", "\t": "\t", "|": "|", "comma": ",", "semicolon": ";", "tab": "\t",
                   "\\t": "\t", "verticalbar": "|", "pipe": "|"}


def _format(raw: Any, where: str) -> str | None:
    if raw is None or raw == "":
        return None
    key = str(raw).strip().lower()
    fmt = _FORMATS.get(key)
    if fmt == "avro":
        raise ConfigError(f"{where}: Avro local inputs are not supported by asaql yet",
                          help="convert the sample data to JSON (one object per line) or CSV")
    if key in ("customclr", "custom"):
        raise ConfigError(f"{where}: a custom (CustomClr) deserializer is .NET code, which asaql does not run",
                          help="give the input a JSON or CSV sample instead: \"Format\": \"Json\" and a "
                               "FilePath to the events as the deserializer would produce them")
    if fmt is None:
        raise ConfigError(f"{where}: unknown data format {raw!r}", help="use Json, Csv or Parquet")
    return fmt


def _serialization(obj: dict[str, Any], where: str) -> str | None:
    """The data format of a mock (``Format``, or ``Serialization.Type``), with its CSV delimiter
    and encoding checked against what the readers support."""
    serialization = _get(obj, "Serialization")
    serialization = serialization if isinstance(serialization, dict) else {}
    raw_format = _get(obj, "Format")
    if raw_format is None:
        raw_format = _get(serialization, "Type")
    fmt = _format(raw_format, where)
    encoding = _get(obj, "Encoding") or _get(serialization, "Encoding")
    if encoding and str(encoding).replace("-", "").lower() not in ("utf8", "utf8bom"):
        raise ConfigError(f"{where}: encoding {encoding!r} is not supported; ASA reads UTF-8 only",
                          help="save the sample data as UTF-8 and set \"Encoding\": \"UTF8\"")
    delimiter = _get(obj, "FieldDelimiter", "Delimiter") or _get(serialization, "FieldDelimiter", "Delimiter")
    if fmt == "csv" and delimiter and str(delimiter).replace(" ", "").lower() not in _CSV_DELIMITERS \
            and str(delimiter) not in _CSV_DELIMITERS:
        raise ConfigError(f"{where}: CSV field delimiter {delimiter!r} is not supported by asaql",
                          help="use a comma, semicolon, tab or vertical bar (detected from the header row)")
    return fmt


def load_input_mock(path: str | Path, obj: dict[str, Any] | None = None, *,
                    base: Path | None = None, also: Iterable[Path] = ()) -> ProjectInput:
    """A local input mock in either real format (InputAlias/Format or Name/Serialization).

    ``obj`` is the already-parsed content (testConfig.json embeds mocks); ``base`` is the folder
    its FilePath is relative to (default: the mock file's folder); ``also`` are folders tried
    next (the project folder), for a FilePath written relative to them.
    """
    path = Path(path)
    if obj is None:
        obj = read_json(path, "input mock")
    if not isinstance(obj, dict):
        raise ConfigError(f"input mock {path} must be a JSON object")
    alias = _get(obj, "InputAlias", "Name", "Alias")
    if not isinstance(alias, str) or not alias:
        raise ConfigError(f"input mock {path}: missing 'InputAlias' (or 'Name'): the input's name in the query")
    file_path = _get(obj, "FilePath", "LocalFilePath")
    if not isinstance(file_path, str) or not file_path:
        raise ConfigError(f"input mock {path} ({alias}): missing 'FilePath', the sample data file")
    base = path.parent if base is None else base
    data = locate(file_path, [base, *also])
    fmt = _serialization(obj, f"input mock {path} ({alias})")  # None: from the file extension
    return ProjectInput(alias=alias, path=str(data), format=fmt, kind=_kind(_get(obj, "Type")), config=path)


def load_job_config(path: str | Path) -> dict[str, Any]:
    """The engine-relevant fields of a JobConfig.json, validated (errors name the field)."""
    path = Path(path)
    raw = read_json(path, "job config")
    if not isinstance(raw, dict):
        raise ConfigError(f"job config {path} must be a JSON object")
    wanted = {name.lower() for name in JOB_CONFIG_FIELDS}
    settings = {k: v for k, v in raw.items() if k.lower() in wanted and v is not None}
    return validate_job_settings(settings, str(path))


# --------------------------------------------------------------------------- the project


def find_manifest(target: str | Path) -> Path:
    """``asaproj.json`` from itself or its folder (any case: ``AsaProj.json``); a clear error for
    anything else."""
    target = Path(target)
    if target.is_dir():
        manifests = [p for p in sorted(target.iterdir()) if p.name.lower() == MANIFEST and p.is_file()]
        if manifests:
            return manifests[0]
        old = sorted(target.glob("*.asaproj"))
        if old:
            raise ConfigError(
                f"{target} is a Visual Studio (MSBuild .asaproj) project; asaql reads VS Code projects",
                help=f"open it in VS Code to convert it, or run the query with flags: asaql run {target / '<query>.asaql'} --input NAME=FILE")
        raise ConfigError(f"{target} holds no {MANIFEST}: it is not a VS Code Stream Analytics project")
    if not target.exists():
        raise ConfigError(f"project {target} does not exist")
    return target


def _start_file(manifest: Path, raw: dict[str, Any], warnings: list[str]) -> Path:
    """The query: ``startFile``, or the one ``.asaql`` file of the folder when ``startFile`` is
    missing or names a file that is not there (a renamed query)."""
    root = manifest.parent
    start = _get(raw, "startFile")
    named = resolve(root, start) if isinstance(start, str) and start.strip() else None
    if named is not None and named.is_file():
        return named
    candidates = sorted(p for p in root.iterdir() if p.suffix.lower() == ".asaql" and p.is_file())
    if len(candidates) == 1:
        if named is not None:
            warnings.append(f"the start file {_display(named, root)} named in {manifest.name} does not exist; "
                            f"using {candidates[0].name}, the project's only .asaql file")
        return candidates[0]
    found = ", ".join(p.name for p in candidates) or "none"
    what = f"the start file {named} does not exist" if named is not None else "missing 'startFile' (the .asaql query file)"
    raise ConfigError(f"{manifest}: {what}; .asaql files in {root}: {found}",
                      help=f"set \"startFile\" in {manifest.name} to the query file")


def load_project(target: str | Path) -> AsaProject:
    """Read a project from its ``asaproj.json`` or folder. Missing optional files are warnings."""
    manifest = find_manifest(target)
    root = manifest.parent
    raw = read_json(manifest, "project file")
    if not isinstance(raw, dict):
        raise ConfigError(f"project file {manifest} must be a JSON object")
    warnings: list[str] = []
    start_file = _start_file(manifest, raw, warnings)
    project = AsaProject(root=root, manifest=manifest, name=str(_get(raw, "name") or root.name),
                         start_file=start_file, warnings=warnings)
    configurations = _get(raw, "configurations") or []
    if not isinstance(configurations, list):
        raise ConfigError(f"{manifest}: 'configurations' must be a list")
    for entry in configurations:
        if not isinstance(entry, dict) or not isinstance(_get(entry, "filePath"), str):
            raise ConfigError(f"{manifest}: each configuration needs a 'filePath' and a 'subType'")
        _configuration(project, resolve(root, _get(entry, "filePath")), str(_get(entry, "subType") or ""))
    if project.job_config_path is None and (root / "JobConfig.json").exists():
        _configuration(project, root / "JobConfig.json", "JobConfig")
    _unlisted_mocks(project)
    return project


def _unlisted_mocks(project: AsaProject) -> None:
    """``Inputs/Local_*.json`` mocks that asaproj.json does not list (a hand-copied project) are
    used for inputs that have no mock, with a warning."""
    folder = resolve(project.root, "Inputs")
    if not folder.is_dir():
        return
    listed = {Path(m.config).resolve() for m in project.inputs.values() if m.config is not None}
    for path in sorted(folder.iterdir()):
        name = path.name.lower()
        if not (name.startswith("local_") and name.endswith(".json")) or path.resolve() in listed:
            continue
        try:
            obj = read_json(path, "input mock")
        except ConfigError:
            continue
        if not isinstance(obj, dict) or str(_get(obj, "ScriptType") or "").lower() != "inputmock":
            continue
        mock = load_input_mock(path, obj, also=[project.root])
        if mock.alias.lower() in project.inputs:
            continue
        project.inputs[mock.alias.lower()] = mock
        project.warnings.append(f"{_display(path, project.root)} is not listed in {MANIFEST}; "
                                f"using it as the local input '{mock.alias}'")


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
        _add_mock(project, load_input_mock(path, also=[project.root]))
        return
    if kind == "input":
        obj = read_json(path, "input")
        if not isinstance(obj, dict):
            raise ConfigError(f"input {path} must be a JSON object")
        source = str(_get(obj, "DataSourceType") or "")
        if source.replace(" ", "").lower() == "localinput" or str(_get(obj, "ScriptType") or "").lower() == "inputmock":
            _add_mock(project, load_input_mock(path, obj, also=[project.root]))
            return
        alias = str(_get(obj, "Name", "InputAlias") or path.stem)
        project.live_inputs[alias.lower()] = LiveInput(alias=alias, source_type=source or "live",
                                                       kind=_kind(_get(obj, "Type")), config=path)
        return
    if kind == "output":
        obj = read_json(path, "output")
        project.outputs.append(str(_get(obj, "Name") or path.stem) if isinstance(obj, dict) else path.stem)
        return
    if kind in _ML_FUNCTION_TYPES or kind.endswith(("function", "aggregate")):
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
        obj = read_json(path, "function")
        if isinstance(obj, dict):
            name = str(_get(obj, "Name") or name)
            script_type = str(_get(obj, "ScriptType") or "").lower()
    if kind in _ML_FUNCTION_TYPES or script_type in _ML_FUNCTION_TYPES:
        project.functions[name] = str(path)
        return
    what = "C#" if "csharp" in kind or path.name.lower().endswith(".cs.json") else "JavaScript"
    project.code_functions[name.lower()] = (name, f"{what} function ({_display(path, project.root)})")
    project.warnings.append(f"function '{name}' ({_display(path, project.root)}) is a {what} function; "
                            "asaql does not run it, so a query calling it cannot run")


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- as a job


def unreachable_error(live: LiveInput, project: AsaProject, *, case: str | None = None,
                      others: Iterable[LiveInput] = ()) -> ConfigError:
    """The error for a live input the query reads and no local data is given for; ``others`` are
    the further live inputs in the same state, named at the end of the message."""
    rel = _display(live.config, project.root)
    type_ = "Reference data" if live.kind == "reference" else "Data Stream"
    rest = [o.alias for o in others if o.alias != live.alias]
    also = f" (the same goes for {', '.join(repr(a) for a in rest)})" if rest else ""
    if case is not None:
        return ConfigError(
            f"test case '{case}': input '{live.alias}' is a live {live.source_type} input ({rel}) "
            f"with no local data{also}; asaql runs offline and cannot read Azure services",
            help=(f"add {{\"InputAlias\": \"{live.alias}\", \"Type\": \"{type_}\", \"Format\": \"Json\", "
                  f"\"FilePath\": ...}} to the case's Inputs, or a local input mock to the project"))
    flag = "--ref" if live.kind == "reference" else "--input"
    return ConfigError(
        f"input '{live.alias}' is a live {live.source_type} input ({rel}) and has no local input mock{also}; "
        "asaql runs offline and cannot read Azure services",
        help=(f"add a local input mock for it (an Inputs/Local_{live.alias}.json with \"InputAlias\": "
              f"\"{live.alias}\" and \"FilePath\" naming a JSON or CSV sample, listed in {MANIFEST} "
              f"with subType InputMock; VS Code: 'Add local input'), or give the data on the command "
              f"line: asaql localrun {_display(project.root, Path.cwd())} {flag} {live.alias}=FILE"),
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
        for name, path in project.functions.items():
            session.add_function(name, path)
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
    used = _used_inputs(project)
    needed = [li for li in project.unreachable(provided) if used is None or li.alias.lower() in used]
    if needed:
        raise unreachable_error(needed[0], project, others=needed[1:])
    given = {name.lower() for name in provided}
    for key, inp in project.inputs.items():
        if (used is None or key in used) and key not in given and not Path(inp.path).exists():
            mock = _display(inp.config, project.root) if inp.config is not None else "its local input mock"
            raise ConfigError(f"input '{inp.alias}': the sample data file {inp.path} named by {mock} does not exist",
                              help="fix the mock's \"FilePath\" (relative to the mock's folder), or give the "
                                   f"data on the command line: --input {inp.alias}=FILE")
    job = JobFile(path=project.manifest, query_path=str(project.start_file))
    for inp in project.inputs.values():
        job.inputs[inp.alias] = inp.decl()
    for name, path in used_functions(project).items():
        job.functions[name] = path
    job.job = dict(project.job_config)
    folder = Path(output_dir) if output_dir is not None else local_run_folder(project, now)
    names = project_outputs(project)
    for name in names:
        job.outputs[name] = str(folder / f"{name}.json")
        job.output_formats[name] = "json"
    return job  # the sinks create the folder when the run starts (check/explain leave none)


def _used_names(project: AsaProject) -> tuple[set[str], set[str]] | None:
    """Lower-case names of the inputs the query reads and of the ``udf.``/``uda.`` functions it
    calls (None when it cannot be parsed)."""
    try:
        from asaql.sql.parser import parse

        script = parse(project.query_text)
    except AsaqlError:
        return None
    from asaql.sql import ast

    inputs: set[str] = set()
    functions: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, ast.Source) and isinstance(getattr(node, "name", None), str):
            inputs.add(node.name.lower())
        if isinstance(node, ast.FunctionCall) and str(node.namespace or "").lower() in ("udf", "uda"):
            functions.add(node.name.lower())
        if isinstance(node, ast.Node):
            for value in vars(node).values():
                walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(script)
    return inputs, functions


def _used_inputs(project: AsaProject) -> set[str] | None:
    """Lower-case names of the inputs the query reads (None when it cannot be parsed)."""
    used = _used_names(project)
    return None if used is None else used[0]


def used_functions(project: AsaProject) -> dict[str, str]:
    """The project's Azure ML functions the query calls (all of them when it does not parse), by
    name: definition file. Functions it does not call are left out, so a stub definition does not
    stop the run. Raises ConfigError when the query calls a JavaScript or C# function."""
    used = _used_names(project)
    called = None if used is None else used[1]
    for key, (name, what) in project.code_functions.items():
        if called is not None and key in called:
            raise ConfigError(
                f"the query calls udf.{name}, a {what}; asaql does not run JavaScript or C# code",
                help="compute it in SAQL (CASE, string and math functions), or serve it as an Azure ML "
                     "function (see docs/ml-scoring.md)")
    return {name: path for name, path in project.functions.items()
            if called is None or name.lower() in called}
