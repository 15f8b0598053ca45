"""Secrets audit: an API key never shows anywhere asaql writes or raises.

One distinctive key is configured every way a user can give one (an environment variable, a
file, inline in asaql's function JSON, an ARM ``apiKey``, a VS Code ``Functions/*.json``, a job
file, ``--function NAME=FILE``, the REPL's ``.function``, ``Session.add_function``, an extra
credential header, a URL's query string or user info), against a real HTTP server on
127.0.0.1 that echoes the request back in its failures (a 401 listing the request headers, a
500 quoting the key, a 424 whose model-error header quotes it, a long message that truncation
would cut mid-key, a 200 of the wrong shape), plus a refused connection, a timeout and an
invalid URL. Every surface a person or a program can read is then searched for the key and its
encoded forms: exception ``str``/``repr``/render/traceback, reprs of specs, sessions, jobs and
streams, plans, diagnostics, dead-letter rows, metrics, the CLI's stdout/stderr and the files
it writes (``--metrics-json``, outputs, ``asaql test``'s summary), the REPL's output and the
job ``.save`` writes, and ``logging`` records (httpx logs every request's URL at INFO).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import pytest

import asaql
from asaql.errors import AsaqlError, ConfigError
from asaql.ml.endpoint import EndpointSpec, load_function_spec
from asaql.ml.secrets import SecretRef, redact

HEX = secrets.token_hex(8)
# '+', '/' and '=' make the URL-encoded and base64 forms differ from the key itself
SECRET = f"SeCrEt-{HEX}+/="
ENV = "ASAQL_AUDIT_KEY"
QUERY = (
    "WITH m AS (SELECT deviceId, temperature FROM iot) "
    "SELECT deviceId, udf.score(m).p AS p INTO scored FROM m"
)
QUERY_TRY = (
    "WITH m AS (SELECT deviceId, temperature FROM iot) "
    "SELECT deviceId, TryEvaluate(udf.score(m).p) AS p INTO scored FROM m"
)
ROWS = [{"deviceId": "d1", "temperature": 21.0}, {"deviceId": "d2", "temperature": 40.0}]


def leaked_forms(secret: str = SECRET) -> list[str]:
    """What would betray the key: itself, its stripped, encoded and partial forms."""
    raw = secret.encode()
    return [
        secret,
        secret.strip(),
        "SeCrEt",  # a prefix left by truncation
        HEX[:8],
        HEX[8:],
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
    ]


def assert_clean(text: str, where: str) -> None:
    for form in leaked_forms():
        assert form not in text, f"the key leaks in {where} as {form!r}:\n{text}"


# ---------------------------------------------------------------------------------------------
# the endpoint: fails by echoing what it was sent


def _token(headers: dict[str, str]) -> str:
    for name in ("Authorization", "api-key", "Ocp-Apim-Subscription-Key"):
        value = headers.get(name)
        if value:
            return value.split(" ", 1)[-1]
    return "none"


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = dict(self.headers.items())
        token = _token(headers)
        route = urlsplit(self.path).path.rstrip("/").rsplit("/", 1)[-1]
        extra: dict[str, str] = {}
        if route == "score":
            rows = json.loads(body)["data"]
            return self._send(200, [{"p": 0.5} for _ in rows])
        if route == "e401":
            message = f"unauthorized: headers={json.dumps(headers)} path={self.path}"
            return self._send(401, {"message": message})
        if route == "e500":
            b64 = base64.b64encode(token.encode()).decode()
            message = f"key {token} is expired (as base64 {b64}, in a URL {quote(token, safe='')})"
            return self._send(500, {"message": message})
        if route == "long":  # the key straddles the 300 characters an error message keeps
            return self._send(400, {"message": "x" * 285 + f" key={token}"})
        if route == "shape":  # a 200 that does not hold one result per event
            return self._send(200, {value: 1 for value in headers.values()})
        if route == "e424":
            extra = {
                "ms-azureml-model-error-statuscode": "403",
                "ms-azureml-model-error-reason": f"key {token} refused",
            }
            return self._send(424, {"message": "model failed"}, extra)
        if route == "slow":
            time.sleep(1.5)
            return self._send(200, [])
        return self._send(404, {"message": f"no route {self.path}"})

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)


# ---------------------------------------------------------------------------------------------
# every way of giving the key: (url, folder) -> what add_function / --function takes

FAST = {"retries": 0, "timeout": 0.5}


def _write(folder: Path, name: str, payload: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def _arm(url: str, key: str) -> dict[str, Any]:
    return {
        "name": "score",
        "properties": {
            "type": "Scalar",
            "properties": {
                "binding": {
                    "type": "Microsoft.MachineLearningServices",
                    "properties": {
                        "endpoint": url,
                        "apiKey": key,
                        "batchSize": 10,
                        "inputs": [{"name": "data", "dataType": "object", "mapTo": 0}],
                    },
                }
            },
        },
    }


def _vscode(url: str, key: str) -> dict[str, Any]:
    return {
        "Name": "score",
        "ScriptType": "MLFunction",
        "Endpoint": url,
        "ApiKey": key,
        "BatchSize": 10,
        "Inputs": [{"Name": "data", "DataType": "object", "MapTo": 0}],
    }


def _userinfo(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(parts.netloc, f"user:{quote(SECRET, safe='')}@{parts.netloc}", 1)


WAYS: dict[str, Callable[[str, Path], Any]] = {
    "env": lambda url, d: _write(d, "env.json", {"url": url, "api_key": f"env:{ENV}", **FAST}),
    "file": lambda url, d: (
        (d / "key.txt").write_text(SECRET + "\n"),
        _write(d, "file.json", {"url": url, "api_key": "file:key.txt", **FAST}),
    )[1],
    "literal": lambda url, d: _write(
        d, "lit.json", {"url": url, "api_key": f"literal:{SECRET}", **FAST}
    ),
    "bare": lambda url, d: _write(d, "bare.json", {"url": url, "key": SECRET, **FAST}),
    "auth_table": lambda url, d: _write(
        d, "auth.json", {"url": url, "auth": {"key": SECRET, "header": "api-key"}, **FAST}
    ),
    "arm": lambda url, d: {"file": str(_write(d, "arm.json", _arm(url, SECRET))), **FAST},
    "arm_env": lambda url, d: {
        "file": str(_write(d, "arm_env.json", _arm(url, f"env:{ENV}"))),
        **FAST,
    },
    "vscode": lambda url, d: {"file": str(_write(d, "vs.json", _vscode(url, SECRET))), **FAST},
    "header": lambda url, d: _write(
        d, "hdr.json", {"url": url, "headers": {"Ocp-Apim-Subscription-Key": SECRET}, **FAST}
    ),
    "query": lambda url, d: _write(
        d, "q.json", {"url": f"{url}?code={quote(SECRET, safe='')}", **FAST}
    ),
    "userinfo": lambda url, d: _write(d, "ui.json", {"url": _userinfo(url), **FAST}),
    "dict": lambda url, d: {"url": url, "api_key": SECRET, **FAST},
    "spec": lambda url, d: EndpointSpec(
        name="score", url=url, api_key=SecretRef("literal", SECRET), retries=0, timeout=0.5
    ),
}

FAILURES = ["e401", "e500", "long", "shape", "e424", "slow", "refused"]


def _url(server: str, failure: str) -> str:
    if failure == "refused":
        return f"http://127.0.0.1:{closed_port()}/score"
    return f"{server}/{failure}"


def _with(definition: Any, **changes: Any) -> Any:
    if isinstance(definition, EndpointSpec):
        return definition.with_options(**changes)
    if isinstance(definition, Path):
        return {"file": str(definition), **changes}
    return {**definition, **changes}


# ---------------------------------------------------------------------------------------------
# the library


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def _error_texts(exc: BaseException, source: str) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(vars(exc))]
    if isinstance(exc, AsaqlError):
        texts.append(exc.render(source))
    return texts


def _session(definition: Any) -> asaql.Session:
    session = asaql.Session()
    session.add_input("iot", ROWS)
    session.add_function("score", definition)
    return session


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("way", list(WAYS))
def test_library_failure(way: str, failure: str, server: str, tmp_path: Path, logs) -> None:
    definition = WAYS[way](_url(server, failure), tmp_path)
    session = _session(definition)
    job = session.compile(QUERY)
    texts = [repr(session), repr(job), job.explain(), repr(session.check(QUERY))]
    with pytest.raises(AsaqlError) as raised:
        job.run()
    texts += _error_texts(raised.value, QUERY)
    stream = session.compile(QUERY).stream()
    texts.append(repr(stream))
    with pytest.raises(AsaqlError) as streamed:
        list(stream)
    texts += _error_texts(streamed.value, QUERY)
    texts.append(repr(stream))
    for number, text in enumerate(texts):
        assert_clean(text, f"library surface {number}")
    assert_clean(_log_text(logs), "logging records")


@pytest.mark.parametrize("failure", ["e401", "e500", "refused", "shape"])
@pytest.mark.parametrize("way", list(WAYS))
def test_dead_letter_and_try_evaluate(
    way: str, failure: str, server: str, tmp_path: Path, logs
) -> None:
    definition = WAYS[way](_url(server, failure), tmp_path)
    session = _session(_with(definition, dead_letter="failed"))
    result = session.compile(QUERY).run()
    failed = result["failed"].to_pylist()
    assert failed and all(row["error"] for row in failed)
    texts = [
        json.dumps(failed),
        repr(result),
        repr(result.metrics),
        json.dumps(result.metrics.as_dict(), default=str),
    ]
    tried = _session(definition).run(QUERY_TRY)
    assert tried["scored"].column("p").null_count == len(ROWS)
    texts += [repr(tried), repr(tried.errors)]
    for number, text in enumerate(texts):
        assert_clean(text, f"dead-letter/TryEvaluate surface {number}")
    assert_clean(_log_text(logs), "logging records")


@pytest.mark.parametrize("way", list(WAYS))
def test_success_is_silent(way: str, server: str, tmp_path: Path, logs) -> None:
    """A run that works leaves no trace of the key either (httpx logs every request)."""
    definition = WAYS[way](f"{server}/score", tmp_path)
    session = _session(definition)
    job = session.compile(QUERY)
    result = job.run()
    assert result["scored"].column("p").to_pylist() == [0.5, 0.5]
    for text in (
        repr(result),
        repr(result.metrics),
        json.dumps(result.metrics.as_dict(), default=str),
    ):
        assert_clean(text, "a successful run")
    assert_clean(_log_text(logs), "logging records")


@pytest.mark.parametrize("way", [w for w in WAYS if w != "spec"])
def test_spec_reprs(way: str, server: str, tmp_path: Path) -> None:
    definition = WAYS[way](f"{server}/score", tmp_path)
    spec = load_function_spec("score", definition)
    assert_clean(repr(spec), "EndpointSpec repr")
    assert_clean(str(spec), "EndpointSpec str")
    assert_clean(repr(spec.api_key), "SecretRef repr")
    assert_clean(spec.display_url, "display_url")


@pytest.mark.parametrize(
    "url",
    [
        "htp://127.0.0.1/score?code={q}",
        "http://127.0.0.1:99999/score?code={q}",
        "http://[::1/score?code={q}",
        "http://user:{q}@127.0.0.1:99999/score",
        "http://127.0.0.1:notaport/score?{q}",
        "http://127.0.0.1/sc ore?code={q}",
    ],
)
def test_bad_url(url: str, logs) -> None:
    """An invalid URL is refused (at load or when called) without showing its query or user info."""
    url = url.format(q=quote(SECRET, safe=""))
    try:
        session = _session({"url": url, "api_key": SECRET, **FAST})
        session.run(QUERY)
    except Exception as exc:  # noqa: BLE001 - any failure must be clean, and an asaql one
        for text in _error_texts(exc, QUERY):
            assert_clean(text, "bad URL error")
        assert isinstance(exc, AsaqlError), f"{type(exc).__name__} escaped: {exc}"
    else:
        pytest.fail(f"{url} was accepted")
    assert_clean(_log_text(logs), "logging records")


@pytest.mark.parametrize("suffix", ["\n", "\r\nX-Injected: 1", "\u2019"])
def test_key_that_cannot_be_a_header(
    suffix: str, server: str, monkeypatch: pytest.MonkeyPatch, logs
) -> None:
    """A key copied with a line end (or a character HTTP headers cannot hold): whether the
    request goes or fails, no error quotes the key (h11's own message would)."""
    monkeypatch.setenv(ENV, SECRET + suffix)
    for url in (f"{server}/e401", _userinfo(f"{server}/e401")):
        session = _session({"url": url, "api_key": f"env:{ENV}", **FAST})
        with pytest.raises(AsaqlError) as raised:
            session.run(QUERY)
        for text in _error_texts(raised.value, QUERY):
            assert_clean(text, "invalid header error")
    assert_clean(_log_text(logs), "logging records")


def test_config_errors_do_not_quote_the_key(tmp_path: Path) -> None:
    cases = [
        {"url": "http://h/score", "api_key": SECRET, "batch_size": 0},
        {"url": "http://h/score", "auth": {"key": SECRET, "header": "basic"}},
        {"url": "http://h/score", "auth": {"key": SECRET, "token": SECRET}},
        {"url": "http://h/score", "api_key": SECRET, "protocol": "azure"},
        {"api_key": SECRET},
        {"url": "http://h/score", "apikey": {"value": SECRET}},
        _arm("", SECRET),
        _vscode("http://h/score", SECRET) | {"BatchSize": 0},
    ]
    for number, raw in enumerate(cases):
        with pytest.raises(ConfigError) as raised:
            load_function_spec("score", raw)
        for text in _error_texts(raised.value, ""):
            assert_clean(text, f"config error {number}")
    broken = tmp_path / "broken.json"
    broken.write_text('{"url": "http://h/score", "api_key": "' + SECRET + '" "batch_size": 1}')
    with pytest.raises(ConfigError) as raised:
        load_function_spec("score", broken)
    assert_clean(str(raised.value), "invalid JSON error")


def test_spec_built_from_plain_values() -> None:
    """``EndpointSpec(api_key="...")`` from Python: the plain string is wrapped, not shown."""
    spec = EndpointSpec(
        name="score",
        url="http://h/score",
        api_key=SECRET,
        headers={"Ocp-Apim-Subscription-Key": SECRET},
    )  # type: ignore[arg-type]
    assert isinstance(spec.api_key, SecretRef) and spec.api_key.resolve() == SECRET
    assert_clean(repr(spec), "EndpointSpec repr")
    assert_clean(repr(spec.with_options(batch_size=2)), "EndpointSpec.with_options repr")
    session = asaql.Session()
    session.add_function("score", spec)
    assert_clean(repr(session), "Session repr")


def test_redact_covers_encoded_forms() -> None:
    text = " ".join(leaked_forms()[5:] + [SECRET, SECRET.strip()])
    assert_clean(redact(text, [SECRET]), "redact()")


# ---------------------------------------------------------------------------------------------
# the command line, the job file, the VS Code project, the REPL


def _asaql(*args: str, cwd: Path, stdin: str | None = None) -> tuple[int, str]:
    env = {**os.environ, ENV: SECRET, "NO_COLOR": "1", "ASAQL_HISTORY": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "asaql", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout + "\n" + proc.stderr


def _files_text(folder: Path, skip: set[Path]) -> str:
    return "\n".join(
        f"== {path}\n{path.read_text(errors='replace')}"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path not in skip
    )


@pytest.fixture
def cli_folder(tmp_path: Path) -> Path:
    (tmp_path / "iot.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "query.asaql").write_text(QUERY)
    return tmp_path


@pytest.mark.parametrize("failure", ["e401", "e500", "refused"])
@pytest.mark.parametrize(
    "way", ["env", "file", "literal", "arm", "vscode", "header", "query", "userinfo"]
)
def test_cli_function_flag(way: str, failure: str, server: str, cli_folder: Path) -> None:
    definition = WAYS[way](_url(server, failure), cli_folder)
    if isinstance(definition, dict):  # ARM / VS Code: the file itself, as the user has it
        definition = Path(definition["file"])
    configured = {p for p in cli_folder.rglob("*") if p.is_file()}
    common = ["--input", "iot=iot.jsonl", "--function", f"score={definition}"]
    texts = []
    code, out = _asaql(
        "run",
        "query.asaql",
        *common,
        "--output",
        "scored=out.jsonl",
        "--metrics-json",
        "metrics.json",
        "--verbose",
        cwd=cli_folder,
    )
    assert code == 1 and "error[endpoint_error]" in out, out
    texts.append(out)
    if failure == "e401":  # the plan and the diagnostics do not depend on the answer
        for command in (["explain"], ["check"], ["check", "--strict"]):
            texts.append(_asaql(*command, "query.asaql", *common, cwd=cli_folder)[1])
    dead = {"file": str(definition), "dead_letter": "failed", **FAST}
    _write(cli_folder, "dead.json", dead)
    code, out = _asaql(
        "run",
        "query.asaql",
        "--input",
        "iot=iot.jsonl",
        "--function",
        "score=dead.json",
        "--output",
        "failed=failed.jsonl",
        "--output",
        "scored=-",
        "--metrics-json",
        "m2.json",
        cwd=cli_folder,
    )
    assert code == 0, out
    texts.append(out)
    assert (cli_folder / "failed.jsonl").read_text().strip()
    texts.append(_files_text(cli_folder, configured | {cli_folder / "dead.json"}))
    for number, text in enumerate(texts):
        assert_clean(text, f"CLI surface {number}")


def test_job_file(server: str, cli_folder: Path) -> None:
    """A job file that names the key inline (against the advice), by env and by file."""
    (cli_folder / "key.txt").write_text(SECRET)
    job = f"""
query_text = "{QUERY} ; SELECT a.deviceId, r.p INTO enriched FROM iot a JOIN aml INTO (temperature FLOAT) AS i ON a.temperature = i.temperature CROSS APPLY GetRecordProperties(aml) AS r"
[inputs.iot]
path = "iot.jsonl"
[inputs.aml]
kind = "ml"
url = "{server}/e401"
api_key = "file:key.txt"
retries = 0
[functions.score]
url = "{server}/e401?code={quote(SECRET, safe="")}"
api_key = "literal:{SECRET}"
retries = 0
[functions.other]
url = "{server}/e500"
api_key = "env:{ENV}"
retries = 0
[outputs]
scored = "out/scored.jsonl"
enriched = "out/enriched.jsonl"
"""
    (cli_folder / "job.toml").write_text(job)
    texts = []
    for command in (
        ["run", "--verbose", "--metrics-json", "out/m.json"],
        ["explain"],
        ["check"],
        ["check", "--strict"],
    ):
        code, out = _asaql(*command, "job.toml", cwd=cli_folder)
        texts.append(out)
    assert code in (0, 1)
    (cli_folder / "out").mkdir(exist_ok=True)
    texts.append(_files_text(cli_folder / "out", set()))
    for number, text in enumerate(texts):
        assert_clean(text, f"job file surface {number}")


def _project(folder: Path, url: str, key: str) -> Path:
    root = folder / "proj"
    (root / "Inputs").mkdir(parents=True)
    (root / "Functions").mkdir()
    (root / "test" / "case1").mkdir(parents=True)
    (root / "Proj.asaql").write_text(QUERY.replace("INTO scored", "INTO scored"))
    (root / "Inputs" / "data.json").write_text(json.dumps(ROWS))
    _write(
        root / "Inputs",
        "Local_iot.json",
        {
            "InputAlias": "iot",
            "Type": "Data Stream",
            "Format": "Json",
            "FilePath": "data.json",
            "ScriptType": "InputMock",
        },
    )
    _write(root / "Functions", "score.json", _vscode(url, key))
    _write(
        root,
        "asaproj.json",
        {
            "name": "Proj",
            "startFile": "Proj.asaql",
            "configurations": [
                {"filePath": "Inputs/Local_iot.json", "subType": "InputMock"},
                {"filePath": "Functions/score.json", "subType": "MLFunction"},
            ],
        },
    )
    (root / "test" / "case1" / "scored.json").write_text("")
    _write(
        root / "test",
        "testConfig.json",
        {
            "Script": "Proj.asaql",
            "TestCases": [
                {
                    "Name": "case 1",
                    "Inputs": [],
                    "ExpectedOutputs": [
                        {"OutputAlias": "scored", "FilePath": "case1/scored.json", "Required": True}
                    ],
                }
            ],
        },
    )
    return root


@pytest.mark.parametrize("failure", ["e401", "e500", "refused"])
@pytest.mark.parametrize("key", ["literal", "env"])
def test_vscode_project(key: str, failure: str, server: str, tmp_path: Path) -> None:
    root = _project(tmp_path, _url(server, failure), SECRET if key == "literal" else f"env:{ENV}")
    configured = {p for p in root.rglob("*") if p.is_file()}
    texts = []
    for command in (
        [
            "run",
            str(root),
            "--outputPath",
            str(tmp_path / "run"),
            "--metrics-json",
            str(tmp_path / "m.json"),
        ],
        ["test", str(root), "--outputPath", str(tmp_path / "results")],
        ["explain", str(root)],
        ["check", str(root)],
    ):
        texts.append(_asaql(*command, cwd=tmp_path)[1])
    assert (tmp_path / "results" / "testResultSummary.json").exists(), texts[1]
    texts.append(_files_text(tmp_path, configured))
    for number, text in enumerate(texts):
        assert_clean(text, f"project surface {number}")


def _definition_file(way: str, url: str, folder: Path) -> Path:
    """The definition as a user keeps it in a file (the ARM / VS Code file itself)."""
    folder.mkdir(exist_ok=True)
    definition = WAYS[way](url, folder)
    return Path(definition["file"]) if isinstance(definition, dict) else definition


@pytest.mark.parametrize("way", ["env", "file", "literal", "arm", "vscode", "header", "query"])
def test_repl(way: str, server: str, cli_folder: Path) -> None:
    good = _definition_file(way, f"{server}/score", cli_folder / "good")
    bad = _definition_file(way, f"{server}/e401", cli_folder / "bad")
    configured = {p for p in cli_folder.rglob("*") if p.is_file()}
    script = (
        "\n".join(
            [
                f".function score {good}",
                f".function bad {bad}",
                f".ml aml {bad}",
                ".inputs",
                QUERY + ";",
                f".explain {QUERY}",
                ".save saved.toml",
                QUERY.replace("udf.score", "udf.bad") + ";",
                ".function broken nothere.json",
                ".quit",
            ]
        )
        + "\n"
    )
    code, out = _asaql("repl", "--input", "iot=iot.jsonl", cwd=cli_folder, stdin=script)
    assert code == 1, out  # the second query fails (401)
    assert "401" in out and "saved" in out, out
    assert_clean(out, "REPL output")
    saved = (cli_folder / "saved.toml").read_text()
    assert_clean(saved, "the job .save wrote")
    assert_clean(_files_text(cli_folder, configured), "files the REPL wrote")
    code, out = _asaql("run", "saved.toml", "--output", "scored=-", cwd=cli_folder)
    assert code == 0 and '"p":0.5' in out, out  # the saved job still finds the key
    assert_clean(out, "running the saved job")
