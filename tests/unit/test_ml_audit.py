"""The ML integration checked against the research notes (asa-ml-integration.md,
model-server-protocols.md): each test pins a gap found in an audit, where the engine did
something else than a user coming from Azure or a real model server expects.

The endpoint is an ``httpx.MockTransport`` handler; sleeps and clocks are injected.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pyarrow as pa
import pytest

import asaql
from asaql.errors import ConfigError, EndpointError
from asaql.ml.endpoint import EndpointSpec, load_function_spec
from asaql.ml.protocols import dumps, make_codec
from asaql.ml.scorer import Scorer
from asaql.ml.secrets import SecretRef

KEY = "aud1t-SECRET-key-42"
URL = "https://ep.example/score"
ROWS = [{"x": 1}, {"x": 2}, {"x": 3}]


def scorer(handler, **spec_kw) -> Scorer:
    spec_kw.setdefault("url", URL)
    spec = EndpointSpec(name="score", **spec_kw)
    return Scorer(spec, transport=httpx.MockTransport(handler), sleep=lambda s: None)


def arm(**binding) -> dict:
    props = {
        "endpoint": URL,
        "apiKey": KEY,
        "inputs": [{"name": "data", "dataType": "object", "mapTo": 0}],
    }
    props.update(binding)
    return {
        "name": "score",
        "type": "Microsoft.StreamAnalytics/streamingjobs/functions",
        "properties": {
            "type": "Scalar",
            "properties": {
                "inputs": [{"dataType": "record"}],
                "output": {"dataType": "record"},
                "binding": {"type": "Microsoft.MachineLearningServices", "properties": props},
            },
        },
    }


# -- responses ---------------------------------------------------------------------------------


def test_score_py_returning_json_dumps_is_decoded():
    # model-server-protocols §1: run()'s return value is JSON-encoded by the inference server,
    # so `return json.dumps(preds)` arrives as a JSON string holding the array
    def handler(request):
        rows = json.loads(request.content)["data"]
        return httpx.Response(200, json=json.dumps([r["x"] * 10 for r in rows]))

    with scorer(handler) as s:
        assert s.score(ROWS).values == [10, 20, 30]


def test_error_object_answered_with_200_is_quoted():
    with (
        scorer(lambda r: httpx.Response(200, json={"error": "model not loaded"})) as s,
        pytest.raises(EndpointError, match="model not loaded"),
    ):
        s.score(ROWS)


def test_openai_embedding_indexes_must_cover_the_batch():
    body = {"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}
    with (
        scorer(lambda r: httpx.Response(200, json=body), url="http://h/v1/embeddings") as s,
        pytest.raises(EndpointError, match="one item for each index 0-1"),
    ):
        s.score(["a", "b"])


# -- requests ----------------------------------------------------------------------------------


def test_openai_null_text_is_not_sent_as_the_word_null():
    calls = []

    def handler(request):
        calls.append(json.loads(request.content))
        return httpx.Response(200, json={"data": []})

    with (
        scorer(handler, url="http://h/v1/embeddings") as s,
        pytest.raises(EndpointError, match="NULL text"),
    ):
        s.score(["pump 7", None])
    assert calls == []


def test_v2_fp64_tensor_sends_floats_only():
    spec = EndpointSpec(name="m", url="http://h/v2/models/m/infer")
    body = make_codec(spec).encode([{"t": 1.5, "h": 2}, {"t": 3, "h": 4}])
    assert body["inputs"][0] == {"name": "t", "shape": [2], "datatype": "FP64", "data": [1.5, 3.0]}
    assert body["inputs"][1]["datatype"] == "INT64" and body["inputs"][1]["data"] == [2, 4]
    tensor = make_codec(spec.with_options(request_format="tensor")).encode([[1.5, 2], [3, 4]])
    assert tensor["inputs"][0]["data"] == [1.5, 2.0, 3.0, 4.0]
    assert all(type(v) is float for v in tensor["inputs"][0]["data"])


def test_datetimes_are_sent_as_asa_writes_them():
    # the body must not depend on whether orjson is installed (it wrote '+00:00')
    when = dt.datetime(2024, 5, 14, 12, 0, 10, 250000, tzinfo=dt.UTC)
    assert json.loads(dumps({"ts": when})) == {"ts": "2024-05-14T12:00:10.2500000Z"}


# -- binding inputs and mapTo ------------------------------------------------------------------


def test_several_binding_inputs_fed_from_the_one_argument():
    # two binding inputs, both mapTo 0: each receives the event's (record) argument
    spec = load_function_spec(
        "score",
        arm(
            inputs=[
                {"name": "data", "dataType": "object", "mapTo": 0},
                {"name": "meta", "dataType": "object", "mapTo": 0},
            ]
        ),
    )
    assert spec.argument_count == 1
    assert make_codec(spec).encode(ROWS) == {"data": ROWS, "meta": ROWS}


def test_binding_inputs_fed_from_several_arguments():
    spec = load_function_spec(
        "score",
        arm(
            inputs=[
                {"name": "temperature", "dataType": "double", "mapTo": 0},
                {"name": "humidity", "dataType": "double", "mapTo": 1},
            ],
            inputRequestName="Inputs",
        ),
    )
    assert spec.argument_count == 2
    codec = make_codec(spec)
    assert codec.encode([[20.5, 40.0], [30.0, 77.5]]) == {
        "Inputs": {"temperature": [20.5, 30.0], "humidity": [40.0, 77.5]}
    }
    with pytest.raises(ValueError, match="2 UDF arguments"):
        codec.encode([[20.5]])


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([{"name": "a", "mapTo": -1}], "zero-based argument index"),
        ([{"name": "a", "mapTo": "first"}], "zero-based argument index"),
        ([{"name": "a", "mapTo": 1}], "argument 0 would never be sent"),
    ],
)
def test_map_to_is_validated(inputs, message):
    with pytest.raises(ConfigError, match=message):
        load_function_spec("score", arm(inputs=inputs))


# -- status handling ---------------------------------------------------------------------------


def test_413_splits_the_batch_and_keeps_the_order():
    sizes = []

    def handler(request):
        rows = json.loads(request.content)["data"]
        sizes.append(len(rows))
        if len(rows) > 2:
            return httpx.Response(413, json={"message": "payload too large"})
        return httpx.Response(200, json=[r["x"] for r in rows])

    rows = [{"x": i} for i in range(7)]
    with scorer(handler) as s:
        assert s.score(rows).values == list(range(7))
    assert sizes == [7, 3, 1, 2, 4, 2, 2]


def test_413_for_one_event_is_an_error():
    with (
        scorer(lambda r: httpx.Response(413, json={"message": "too large"})) as s,
        pytest.raises(EndpointError, match="413"),
    ):
        s.score([{"x": 1}])


def test_424_shows_the_model_containers_own_status():
    headers = {
        "ms-azureml-model-error-statuscode": "500",
        "ms-azureml-model-error-reason": "model_error",
    }
    with (
        scorer(lambda r: httpx.Response(424, headers=headers, text="")) as s,
        pytest.raises(EndpointError) as info,
    ):
        s.score(ROWS)
    assert "answered 424" in str(info.value)
    assert "model container answered 500 model_error" in str(info.value)
    assert info.value.status == 424


# -- secrets and auth --------------------------------------------------------------------------


def test_extra_header_values_are_masked_in_errors():
    def handler(request):
        return httpx.Response(
            400,
            json={"message": f"bad subscription {request.headers['ocp-apim-subscription-key']}"},
        )

    with (
        scorer(handler, headers=(("Ocp-Apim-Subscription-Key", KEY),)) as s,
        pytest.raises(EndpointError) as info,
    ):
        s.score(ROWS)
    assert KEY not in str(info.value)
    assert "bad subscription ***" in str(info.value)


def test_non_secret_extra_header_values_stay_readable():
    # a deployment name is routing, not a credential: errors keep showing it
    def handler(request):
        return httpx.Response(404, json={"message": "deployment blue-v2 not found"})

    with (
        scorer(handler, headers=(("azureml-model-deployment", "blue-v2"),)) as s,
        pytest.raises(EndpointError) as info,
    ):
        s.score(ROWS)
    assert "deployment blue-v2 not found" in str(info.value)


def test_azure_openai_url_sends_the_key_as_api_key():
    seen = []

    def handler(request):
        seen.append(request.headers)
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [0.5]}]})

    url = "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-02-01"
    spec = load_function_spec("emb", {"url": url, "api_key": f"literal:{KEY}"})
    assert spec.auth_header == "api-key" and spec.resolved_protocol == "openai-embeddings"
    with Scorer(spec, transport=httpx.MockTransport(handler)) as s:
        assert s.score(["pump 7"]).values == [[0.5]]
    assert seen[0]["api-key"] == KEY and "authorization" not in seen[0]
    explicit = load_function_spec("emb", {"url": url, "auth": {"key": "env:T", "header": "bearer"}})
    assert explicit.auth_header == "bearer"


def test_literal_arm_key_never_reaches_plan_error_or_metrics():
    def handler(request):
        assert request.headers["authorization"] == f"Bearer {KEY}"
        return httpx.Response(401, json={"status_code": 401, "message": f"key {KEY} is wrong"})

    session = asaql.Session(asaql.Options(ml_transport=httpx.MockTransport(handler)))
    session.add_input("iot", [{"deviceId": "a", "t": 1.0}])
    session.add_function("score", arm())
    job = session.compile("WITH m AS (SELECT deviceId, t FROM iot) SELECT udf.score(m) AS r FROM m")
    assert KEY not in job.explain()
    with pytest.raises(EndpointError) as info:
        job.run()
    message = str(info.value)
    assert "answered 401" in message and "not retried" in message and "key *** is wrong" in message
    assert KEY not in message and KEY not in repr(info.value)


def test_arrow_rows_with_several_inputs_give_the_python_body():
    spec = load_function_spec(
        "score",
        arm(
            inputs=[
                {"name": "data", "mapTo": 0},
                {"name": "again", "mapTo": 0},
            ]
        ),
    )
    codec = make_codec(spec)
    rows = [{"t": 1.0}, {"t": 2.0}]
    assert codec.encode_rows(pa.array(rows)) == codec.encode(rows)


def test_secret_ref_is_what_the_spec_holds():
    spec = load_function_spec("score", arm())
    assert spec.api_key == SecretRef("literal", KEY)
    assert KEY not in repr(spec)


def test_v2_datetime_column_is_a_bytes_tensor():
    when = dt.datetime(2024, 5, 14, 12, 0, 10, tzinfo=dt.UTC)
    spec = EndpointSpec(name="m", url="http://h/v2/models/m/infer")
    body = make_codec(spec).encode([{"ts": when}])
    assert body["inputs"][0] == {
        "name": "ts",
        "shape": [1],
        "datatype": "BYTES",
        "data": ["2024-05-14T12:00:10.0000000Z"],
    }
