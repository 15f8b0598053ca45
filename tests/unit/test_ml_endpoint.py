"""Function definitions (ARM, VS-Code-style, asaql's own), validation, and secret handling.

The ARM shape is what Azure users already have; validation errors must name the file and
the field, and no representation of a spec may show its key.
"""

from __future__ import annotations

import json

import pytest

from asaql.errors import ConfigError
from asaql.ml.endpoint import EndpointSpec, detect_protocol, load_function_spec, mask_url
from asaql.ml.secrets import SecretRef, redact

KEY = "arm-literal-key-987654"

ARM = {
    "properties": {
        "type": "Scalar",
        "properties": {
            "inputs": [{"dataType": "record"}],
            "output": {"dataType": "record"},
            "binding": {
                "type": "Microsoft.MachineLearningServices",
                "properties": {
                    "endpoint": "https://my-ep.westeurope.inference.ml.azure.com/score",
                    "apiKey": KEY,
                    "inputs": [{"name": "WebServiceInput0", "dataType": "object", "mapTo": 0}],
                    "outputs": [{"name": "prediction", "dataType": "double"}],
                    "batchSize": 500,
                    "numberOfParallelRequests": 3,
                    "inputRequestName": "Inputs",
                    "outputResponseName": "Results",
                },
            },
        },
    }
}


def test_arm_shape():
    spec = load_function_spec("score", ARM)
    assert spec.url.endswith("/score") and spec.resolved_protocol == "azureml"
    assert spec.batch_size == 500 and spec.max_in_flight == 3
    assert spec.input_request_name == "Inputs" and spec.output_response_name == "Results"
    assert spec.input_names == ("WebServiceInput0",) and spec.input_map == (0,)
    assert spec.output_names == ("prediction",)
    assert spec.api_key.resolve() == KEY
    assert KEY not in repr(spec) and KEY not in str(spec)


def test_arm_binding_alone_and_defaults():
    binding = {"type": "Microsoft.MachineLearningServices", "properties": {"endpoint": "http://h/score"}}
    spec = load_function_spec("s", binding)
    assert spec.batch_size == 1000 and spec.max_in_flight == 1 and spec.api_key is None


def test_vscode_shape(tmp_path):
    path = tmp_path / "score.json"
    path.write_text(
        json.dumps(
            {
                "Name": "score",
                "ScriptType": "MLServiceFunction",
                "Endpoint": "http://127.0.0.1:5001/score",
                "ApiKey": None,
                "Inputs": [{"Name": "data", "DataType": "object", "MapTo": 0}],
                "Outputs": [{"Name": "prediction", "DataType": "double"}],
                "BatchSize": 100,
                "NumberOfParallelRequests": 2,
                "InputRequestName": "",
                "OutputResponseName": "",
            }
        )
    )
    spec = load_function_spec("score", path)
    assert (spec.batch_size, spec.max_in_flight, spec.input_request_name) == (100, 2, None)
    assert spec.source == str(path)


def test_own_shape_toml_with_auth_file(tmp_path):
    (tmp_path / "key.txt").write_text("file-key-123456\n")
    path = tmp_path / "score.toml"
    path.write_text(
        'url = "http://127.0.0.1:8080/v2/models/iot/infer"\n'
        "batch_size = 200\nmax_in_flight = 8\ntimeout = 5\nlinger = 0.01\n"
        'output_names = ["predict"]\n'
        '[auth]\nkey = "file:key.txt"\nheader = "api-key"\ndeployment = "blue"\n'
    )
    spec = load_function_spec("score", path)
    assert spec.resolved_protocol == "v2"
    assert spec.api_key.resolve() == "file-key-123456"
    assert (spec.auth_header, spec.deployment, spec.output_names) == ("api-key", "blue", ("predict",))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"url": "http://h/s", "batch_size": 0}, "field 'batch_size' must be an integer 1-10000, got 0"),
        ({"url": "http://h/s", "batch_size": 10001}, "got 10001"),
        ({"url": "ftp://h/s"}, "field 'url' must be an http:// or https:// URL"),
        ({"url": "http://h/s", "protocl": "v2"}, "unknown field 'protocl'"),
        ({"url": "http://h/s", "protocol": "grpc"}, "field 'protocol' must be one of"),
        ({"batch_size": 10}, "missing field 'url'"),
        ({"url": "http://h/s", "auth": {"kee": "x"}}, "unknown field 'auth.kee'"),
    ],
)
def test_own_shape_validation(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_function_spec("score", raw)


def test_arm_validation_names_the_file_and_field(tmp_path):
    bad = json.loads(json.dumps(ARM))
    bad["properties"]["properties"]["binding"]["properties"]["batchSize"] = 20000
    path = tmp_path / "fn.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError) as info:
        load_function_spec("score", path)
    assert str(path) in str(info.value) and "'batchSize'" in str(info.value)
    assert KEY not in str(info.value)


def test_classic_binding_is_rejected():
    binding = {"type": "Microsoft.MachineLearning/WebService", "properties": {"endpoint": "http://h"}}
    with pytest.raises(ConfigError, match="retired"):
        load_function_spec("s", binding)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_function_spec("s", tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ConfigError, match="not valid"):
        load_function_spec("s", tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("http://h/score", "azureml"),
        ("http://h:5001/invocations", "mlflow"),
        ("http://h/v2/models/m/versions/1/infer", "v2"),
        ("http://h/v1/models/m:predict", "tfserving"),
        ("http://h/v1/embeddings", "openai-embeddings"),
        ("python:mod:fn", "python"),
    ],
)
def test_detect_protocol(url, protocol):
    assert detect_protocol(url) == protocol


def test_secret_refs(monkeypatch, tmp_path):
    monkeypatch.setenv("ASAQL_K", "env-value-1234")
    env = SecretRef.parse("env:ASAQL_K")
    assert env.resolve() == "env-value-1234"
    assert repr(env) == "SecretRef('env:ASAQL_K')" and "env-value" not in str(env)
    literal = SecretRef.parse("plain-literal-secret")
    assert "plain-literal-secret" not in repr(literal) + str(literal) + f"{literal}"
    (tmp_path / "k").write_text(" file-secret \n")
    assert SecretRef.parse("file:k", base_dir=tmp_path).resolve() == "file-secret"
    with pytest.raises(ConfigError, match="cannot read API key file"):
        SecretRef.parse("file:/nonexistent/key").resolve()


def test_spec_repr_masks_everything_secret():
    spec = EndpointSpec(
        name="s",
        url="https://user:pw-secret@h/score?code=q-secret",
        api_key=SecretRef.parse("literal:k-secret"),
        headers=(("x-functions-key", "h-secret"),),
    )
    text = repr(spec)
    for secret in ("pw-secret", "q-secret", "k-secret", "h-secret"):
        assert secret not in text
    assert mask_url(spec.url) == "https://***@h/score?code=***"


def test_redact():
    assert redact("a abcd b", ["abcd", None, ""]) == "a *** b"
