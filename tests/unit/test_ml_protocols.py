"""Codecs: the exact request body of every protocol and parsing of every response shape.

These pin the wire formats of research/model-server-protocols.md; a codec that drifts from
them would talk to no real server.
"""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pytest

from asaql.errors import ConfigError
from asaql.ml.endpoint import EndpointSpec
from asaql.ml.protocols import ResponseShapeError, dumps, error_message, make_codec, python_rows
from asaql.types import to_python

ROWS = [
    {"deviceId": "d1", "temperature": 21.5, "humidity": 40.0},
    {"deviceId": "d2", "temperature": 30.2, "humidity": 77.5},
]


def codec(protocol: str, url: str = "http://h/score", **kw):
    return make_codec(EndpointSpec(name="t", url=url, protocol=protocol, **kw))


# -- Azure ML -------------------------------------------------------------------------------


def test_azureml_default_data_body():
    assert codec("azureml").encode(ROWS) == {"data": ROWS}


def test_azureml_array_rows():
    assert codec("azureml").encode([[1, "Mon"], [2, "Wed"]]) == {"data": [[1, "Mon"], [2, "Wed"]]}


def test_azureml_designer_wrapper():
    c = codec("azureml", input_request_name="Inputs", input_names=("WebServiceInput0",))
    assert c.encode(ROWS) == {"Inputs": {"WebServiceInput0": ROWS}}


def test_azureml_several_inputs_map_to_arguments():
    c = codec("azureml", input_names=("a", "b"), input_map=(1, 0))
    assert c.encode([["x", 1], ["y", 2]]) == {"a": [1, 2], "b": ["x", "y"]}


def test_azureml_input_data_split():
    body = codec("azureml", request_format="input_data").encode(ROWS)
    assert body == {
        "input_data": {
            "columns": ["deviceId", "temperature", "humidity"],
            "index": [0, 1],
            "data": [["d1", 21.5, 40.0], ["d2", 30.2, 77.5]],
        }
    }


def test_azureml_input_data_fixed_columns_and_missing_field():
    c = codec("azureml", request_format="input_data", input_columns=("humidity", "x"))
    assert c.encode(ROWS)["input_data"]["data"] == [[40.0, None], [77.5, None]]


@pytest.mark.parametrize(
    "payload",
    [
        [0.1, 0.9],
        {"predictions": [0.1, 0.9]},
        {"Results": {"WebServiceOutput0": [0.1, 0.9]}},
        {"output": [0.1, 0.9]},
    ],
)
def test_azureml_response_shapes(payload):
    assert codec("azureml").decode(payload, 2) == [0.1, 0.9]


def test_azureml_output_response_name():
    c = codec("azureml", output_response_name="Answer")
    assert c.decode({"Answer": {"out1": [{"s": 1}, {"s": 2}]}}, 2) == [{"s": 1}, {"s": 2}]


def test_positional_rows_become_records_with_output_names():
    c = codec("azureml", output_names=("label", "score"))
    assert c.decode([[1, 0.9], [0, 0.2]], 2) == [
        {"label": 1, "score": 0.9},
        {"label": 0, "score": 0.2},
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2, 3], "expected 2 results (one per event of the batch) in the response array, got 3"),
        ({"predictions": [1]}, "expected 2 results"),
        ({"foo": 1}, "expected a result array"),
        ("hello", "expected a JSON array or object"),
    ],
)
def test_azureml_length_and_shape_mismatch(payload, message):
    with pytest.raises(ResponseShapeError, match=re.escape(message)):
        codec("azureml").decode(payload, 2)


# -- MLflow -----------------------------------------------------------------------------------


def test_mlflow_dataframe_split():
    assert codec("mlflow").encode(ROWS) == {
        "dataframe_split": {
            "columns": ["deviceId", "temperature", "humidity"],
            "data": [["d1", 21.5, 40.0], ["d2", 30.2, 77.5]],
        }
    }


@pytest.mark.parametrize("fmt", ["dataframe_records", "instances"])
def test_mlflow_row_formats(fmt):
    assert codec("mlflow", request_format=fmt).encode(ROWS) == {fmt: ROWS}


def test_mlflow_inputs_columnar():
    assert codec("mlflow", request_format="inputs").encode(ROWS) == {
        "inputs": {"deviceId": ["d1", "d2"], "temperature": [21.5, 30.2], "humidity": [40.0, 77.5]}
    }


def test_mlflow_inputs_tensor_rows():
    body = codec("mlflow", request_format="inputs").encode([[1.0, 2.0], [3.0, 4.0]])
    assert body == {"inputs": [[1.0, 2.0], [3.0, 4.0]]}


def test_mlflow_predictions_scalar_and_dataframe_columns():
    c = codec("mlflow")
    assert c.decode({"predictions": [0, 1]}, 2) == [0, 1]
    assert c.decode({"predictions": [{"a": 1}, {"a": 2}]}, 2) == [{"a": 1}, {"a": 2}]
    assert c.decode({"predictions": {"a": [1, 2], "b": [3, 4]}}, 2) == [
        {"a": 1, "b": 3},
        {"a": 2, "b": 4},
    ]


def test_unknown_request_format_is_config_error():
    with pytest.raises(ConfigError, match="no request format 'columns'"):
        codec("mlflow", request_format="columns")


# -- V2 ---------------------------------------------------------------------------------------

V2_URL = "http://h/v2/models/iot/infer"


def test_v2_columns_one_tensor_per_field():
    body = codec("v2", V2_URL).encode(ROWS)
    assert body == {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "deviceId", "shape": [2], "datatype": "BYTES", "data": ["d1", "d2"]},
            {"name": "temperature", "shape": [2], "datatype": "FP64", "data": [21.5, 30.2]},
            {"name": "humidity", "shape": [2], "datatype": "FP64", "data": [40.0, 77.5]},
        ],
    }


def test_v2_tensor_format_and_requested_outputs():
    c = codec(
        "v2",
        V2_URL,
        request_format="tensor",
        input_columns=("temperature", "humidity"),
        output_names=("predict",),
    )
    assert c.encode(ROWS) == {
        "inputs": [
            {"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [21.5, 40.0, 30.2, 77.5]}
        ],
        "outputs": [{"name": "predict"}],
    }


def test_v2_int_and_bool_datatypes():
    body = codec("v2", V2_URL).encode([{"a": 1, "b": True}, {"a": 2, "b": False}])
    assert [i["datatype"] for i in body["inputs"]] == ["INT64", "BOOL"]


def test_v2_null_is_rejected_before_sending():
    with pytest.raises(ValueError, match="cannot hold NULL"):
        codec("v2", V2_URL).encode([{"a": None}])


def test_v2_decode_shapes():
    c = codec("v2", V2_URL)
    one = {"outputs": [{"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [0, 1]}]}
    assert c.decode(one, 2) == [0, 1]
    nested = {"outputs": [{"name": "p", "shape": [2, 2], "datatype": "FP64", "data": [[0.1, 0.9], [0.8, 0.2]]}]}
    assert c.decode(nested, 2) == [[0.1, 0.9], [0.8, 0.2]]
    flat = {"outputs": [{"name": "p", "shape": [2, 2], "datatype": "FP64", "data": [0.1, 0.9, 0.8, 0.2]}]}
    assert c.decode(flat, 2) == [[0.1, 0.9], [0.8, 0.2]]
    two = {
        "outputs": [
            {"name": "label", "shape": [2], "datatype": "INT64", "data": [0, 1]},
            {"name": "score", "shape": [2], "datatype": "FP64", "data": [0.1, 0.9]},
        ]
    }
    assert c.decode(two, 2) == [{"label": 0, "score": 0.1}, {"label": 1, "score": 0.9}]


def test_v2_decode_mismatch_and_missing_output():
    c = codec("v2", V2_URL, output_names=("proba",))
    with pytest.raises(ResponseShapeError, match="missing"):
        c.decode({"outputs": [{"name": "predict", "shape": [2], "data": [0, 1]}]}, 2)
    with pytest.raises(ResponseShapeError, match="batch dimension 3, got shape"):
        codec("v2", V2_URL).decode({"outputs": [{"name": "p", "shape": [2], "data": [0, 1]}]}, 3)


# -- TF Serving -------------------------------------------------------------------------------

TF_URL = "http://h/v1/models/iot:predict"


def test_tfserving_instances_and_inputs():
    assert codec("tfserving", TF_URL).encode(ROWS) == {"instances": ROWS}
    body = codec("tfserving", TF_URL, request_format="inputs").encode(ROWS)
    assert body["inputs"]["temperature"] == [21.5, 30.2]


def test_tfserving_decode():
    c = codec("tfserving", TF_URL)
    assert c.decode({"predictions": [[0.1], [0.2]]}, 2) == [[0.1], [0.2]]
    assert c.decode({"outputs": {"a": [1, 2], "b": [3, 4]}}, 2) == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]


# -- OpenAI embeddings ------------------------------------------------------------------------


def test_openai_embeddings():
    c = codec("openai-embeddings", "http://h/v1/embeddings", model="m")
    assert c.encode(["a", "b"]) == {"input": ["a", "b"], "encoding_format": "float", "model": "m"}
    payload = {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]}
    assert c.decode(payload, 2) == [[1.0], [2.0]]
    with pytest.raises(ResponseShapeError):
        c.decode({"data": [{"index": 0, "embedding": [1.0]}]}, 2)


def test_openai_batch_cap_is_config_error():
    with pytest.raises(ConfigError, match="at most 2048"):
        EndpointSpec(name="e", url="http://h/v1/embeddings", batch_size=5000)


# -- error bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"status_code": 400, "message": "bad row 3"}', "bad row 3"),
        (b'{"error": "Model x not found"}', "Model x not found"),
        (b'{"error": {"message": "quota", "type": "rate"}}', "quota"),
        (b'{"error_code": "BAD_REQUEST", "message": "The input must be"}', "The input must be"),
        (b"Internal Server Error", "Internal Server Error"),
    ],
)
def test_error_message(body, message):
    assert error_message(body) == message


def test_error_message_is_trimmed():
    assert len(error_message(b"x" * 5000)) == 300


# -- Arrow rows: the same body built from columns -------------------------------------------


FORMATS = [
    ("azureml", None, {}),
    ("azureml", "input_data", {}),
    ("azureml", None, {"input_request_name": "Inputs", "input_names": ("WebServiceInput0",)}),
    ("mlflow", "dataframe_split", {}),
    ("mlflow", "dataframe_records", {}),
    ("mlflow", "instances", {}),
    ("mlflow", "inputs", {}),
    ("mlflow", "dataframe_split", {"input_columns": ("humidity", "temperature")}),
    ("mlflow", "inputs", {"input_columns": ("temperature",)}),
    ("v2", "columns", {}),
    ("v2", "columns", {"input_columns": ("humidity", "ok"), "output_names": ("predict",)}),
    ("v2", "tensor", {"input_columns": ("temperature", "humidity")}),
    ("tfserving", "instances", {}),
    ("tfserving", "inputs", {}),
]

ARROW_ROWS = pa.array(
    [{"deviceId": f"d{i}", "temperature": 20.0 + i / 4, "humidity": 40 + i, "ok": i % 3 == 0}
     for i in range(10)]
)


@pytest.mark.parametrize(("protocol", "fmt", "extra"), FORMATS)
@pytest.mark.parametrize("rows", [ARROW_ROWS, ARROW_ROWS.slice(3, 5)], ids=["whole", "slice"])
def test_arrow_rows_give_the_same_body_as_python_rows(protocol, fmt, extra, rows):
    c = codec(protocol, request_format=fmt, **extra)
    assert dumps(c.encode_rows(rows)) == dumps(c.encode(to_python(rows)))


@pytest.mark.parametrize(
    "rows",
    [
        pa.array([{"a": 1, "b": 2.5}, None]),  # a NULL record
        pa.array([{"a": 1, "t": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}]),  # not a plain field
        pa.array([{"a": 1, "inner": {"x": 1}}]),  # nested record
        pa.array([1.5, 2.5]),  # scalar rows
        pa.array([[1, 2], [3, 4]]),  # array rows
    ],
    ids=["null-record", "timestamp", "nested", "scalars", "arrays"],
)
@pytest.mark.parametrize("protocol", ["mlflow", "tfserving"])
def test_arrow_rows_that_need_python_values_fall_back(rows, protocol):
    fmt = "inputs" if protocol == "mlflow" else "instances"
    c = codec(protocol, request_format=fmt)
    assert dumps(c.encode_rows(rows)) == dumps(c.encode(to_python(rows)))
    assert python_rows(rows) == to_python(rows)


def test_arrow_missing_input_column_falls_back():
    c = codec("mlflow", input_columns=("temperature", "pressure"))
    rows = pa.array([{"temperature": 1.0}])
    assert c.encode_rows(rows) == {
        "dataframe_split": {"columns": ["temperature", "pressure"], "data": [[1.0, None]]}
    }


def test_arrow_v2_types_and_nulls():
    c = codec("v2")
    body = c.encode_rows(pa.array([{"i": 1, "f": 0.5, "b": True, "s": "x"}]))
    assert [(t["name"], t["datatype"]) for t in body["inputs"]] == [
        ("i", "INT64"), ("f", "FP64"), ("b", "BOOL"), ("s", "BYTES")
    ]
    with pytest.raises(ValueError, match="cannot hold NULL"):  # the same error as for rows
        c.encode_rows(pa.array([{"i": 1}, {"i": None}]))
