"""ML functions called with several arguments: ``udf.score(e.temperature, e.humidity)``.

An Azure ML function's binding inputs each name the zero-based UDF argument that feeds them
(``mapTo``, asa-ml-integration.md §1.1). Until the binder accepted more than one argument, a
binding with inputs mapped to 0 and 1 could be loaded but never called. These tests pin the
request body such a call sends, the argument order, the de-duplication of identical calls and
the error for a wrong argument count. The endpoint is an ``httpx.MockTransport`` handler.
"""

from __future__ import annotations

import json

import httpx
import pyarrow as pa
import pytest

import asaql
from asaql.errors import BindError
from asaql.ml.endpoint import EndpointSpec, load_function_spec
from asaql.ml.protocols import make_codec, python_rows
from asaql.ml.python_udf import udf
from asaql.types import variant_array

URL = "https://ep.example/score"
EVENTS = [
    {"deviceId": "a", "temperature": 20.5, "humidity": 40.0},
    {"deviceId": "b", "temperature": 30.0, "humidity": 77.5},
    {"deviceId": "c", "temperature": 25.0, "humidity": None},
]


def arm(inputs: list[dict], **binding: object) -> dict:
    """An ARM function resource whose binding has ``inputs`` (with their mapTo)."""
    props = {"endpoint": URL, "apiKey": "literal:k3y", "inputs": inputs, **binding}
    return {
        "properties": {
            "type": "Scalar",
            "properties": {
                "binding": {"type": "Microsoft.MachineLearningServices", "properties": props},
            },
        }
    }


TWO_INPUTS = [
    {"name": "temperature", "dataType": "double", "mapTo": 0},
    {"name": "humidity", "dataType": "double", "mapTo": 1},
]


class Endpoint:
    """Records each body; answers every event with ``temperature + humidity`` (NULL as 0)."""

    def __init__(self, wrapper: str | None = "Inputs") -> None:
        self.bodies: list[dict] = []
        self.wrapper = wrapper

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        inputs = body[self.wrapper] if self.wrapper else body
        sums = [
            (t or 0) + (h or 0)
            for t, h in zip(inputs["temperature"], inputs["humidity"], strict=True)
        ]
        return httpx.Response(200, json={"Results": {"sum": sums}})


def session(endpoint: Endpoint, spec: object, events: list[dict] = EVENTS) -> asaql.Session:
    s = asaql.Session(asaql.Options(ml_transport=httpx.MockTransport(endpoint)))
    s.add_input("iot", events)
    s.add_function("score", spec)
    return s


# -- the request body ---------------------------------------------------------------------------


def test_two_argument_call_sends_each_argument_to_its_binding_input():
    endpoint = Endpoint()
    s = session(endpoint, arm(TWO_INPUTS, inputRequestName="Inputs", outputResponseName="Results"))
    rows = s.run("SELECT e.deviceId, udf.score(e.temperature, e.humidity) AS total FROM iot e")
    assert endpoint.bodies == [
        {"Inputs": {"temperature": [20.5, 30.0, 25.0], "humidity": [40.0, 77.5, None]}}
    ]
    assert rows["output"].to_pylist() == [
        {"deviceId": "a", "total": 60.5},
        {"deviceId": "b", "total": 107.5},
        {"deviceId": "c", "total": 25.0},
    ]


def test_arguments_go_by_position_not_by_name():
    # mapTo 0 is the first argument whatever it is called: here the humidity column
    endpoint = Endpoint(wrapper=None)
    s = session(endpoint, arm(TWO_INPUTS))
    s.run("SELECT udf.score(humidity, temperature) AS total FROM iot")
    assert endpoint.bodies == [{"temperature": [40.0, 77.5, None], "humidity": [20.5, 30.0, 25.0]}]


def test_expressions_and_constants_are_arguments_too():
    endpoint = Endpoint(wrapper=None)
    s = session(endpoint, arm(TWO_INPUTS))
    s.run("SELECT udf.score(temperature * 2, 50.0) AS total FROM iot")
    assert endpoint.bodies == [{"temperature": [41.0, 60.0, 50.0], "humidity": [50.0, 50.0, 50.0]}]


def test_two_inputs_fed_from_the_same_argument_both_get_it():
    inputs = [*TWO_INPUTS, {"name": "reading", "dataType": "double", "mapTo": 0}]
    endpoint = Endpoint(wrapper=None)
    s = session(endpoint, arm(inputs))
    s.run("SELECT udf.score(temperature, humidity) AS total FROM iot")
    (body,) = endpoint.bodies
    assert body["reading"] == body["temperature"] == [20.5, 30.0, 25.0]


def test_a_mixed_type_argument_is_sent_as_its_values():
    # a field that is a number in one event and text in another is a Variant column; each
    # value goes as itself (as it would passed alone), not as its JSON text
    events = [{"t": 20.5, "h": 40}, {"t": "n/a", "h": 41}]
    answers = []

    def handler(request: httpx.Request) -> httpx.Response:
        answers.append(json.loads(request.content))
        return httpx.Response(200, json=[0, 0])

    s = asaql.Session(asaql.Options(ml_transport=httpx.MockTransport(handler)))
    s.add_input("iot", events)
    s.add_function("score", arm(TWO_INPUTS))
    s.run("SELECT udf.score(t, h) AS r FROM iot")
    assert answers == [{"temperature": [20.5, "n/a"], "humidity": [40, 41]}]


def test_the_arrow_body_equals_the_python_one():
    # the operator hands the codec a struct column; for plain types the body is built from
    # its child columns, otherwise from Python rows: both ways give the same body
    spec = load_function_spec("score", arm(TWO_INPUTS, inputRequestName="Inputs"))
    codec = make_codec(spec)
    plain = pa.StructArray.from_arrays(
        [pa.array([20.5, None]), pa.array([40, 41])], names=list(spec.argument_names)
    )
    mixed = pa.StructArray.from_arrays(
        [variant_array([20.5, "n/a"]), pa.array([40, 41])], names=list(spec.argument_names)
    )
    for column in (plain, mixed):
        assert codec.encode_rows(column) == codec.encode(python_rows(column))
    assert codec.encode_columns(2, list(spec.argument_names), plain.flatten()) == {
        "Inputs": {"temperature": [20.5, None], "humidity": [40, 41]}
    }


# -- planning -----------------------------------------------------------------------------------


def test_identical_calls_are_scored_once_and_different_ones_apart():
    endpoint = Endpoint(wrapper=None)
    s = session(endpoint, arm(TWO_INPUTS))
    job = s.compile(
        "SELECT udf.score(temperature, humidity) AS a, udf.score(temperature, humidity) AS b, "
        "udf.score(humidity, temperature) AS c FROM iot"
    )
    explained = job.explain()
    assert "score({temperature: temperature, humidity: humidity})" in explained
    assert "score({temperature: humidity, humidity: temperature})" in explained
    job.run()
    assert len(endpoint.bodies) == 2


def test_a_python_model_receives_one_record_per_event():
    seen: list[object] = []

    def model(rows: list[dict]) -> list[float]:
        seen.extend(rows)
        return [r["temperature"] - r["humidity"] for r in rows]

    udf("several_args_model")(model)
    spec = {
        "url": "python:several_args_model",
        "protocol": "python",
        "input_names": ["temperature", "humidity"],
        "input_map": [0, 1],
    }
    s = asaql.Session()
    s.add_input("iot", EVENTS[:2])
    s.add_function("score", spec)
    rows = s.run("SELECT udf.score(temperature, humidity) AS d FROM iot")["output"].to_pylist()
    assert seen == [
        {"temperature": 20.5, "humidity": 40.0},
        {"temperature": 30.0, "humidity": 77.5},
    ]
    assert rows == [{"d": -19.5}, {"d": -47.5}]


def test_argument_names_are_the_binding_input_names():
    spec = EndpointSpec(name="s", url=URL, input_names=("x", "x"), input_map=(0, 1))
    assert spec.argument_names == ("x", "arg1")


# -- the argument count -------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["udf.score(temperature)", "udf.score(temperature, humidity, 1)"])
def test_a_wrong_argument_count_is_a_bind_error(call: str):
    s = session(Endpoint(), arm(TWO_INPUTS))
    text = f"SELECT {call} AS r FROM iot"
    with pytest.raises(BindError) as caught:
        s.compile(text)
    error = caught.value
    got = call.count(",") + 1
    assert error.code == "wrong_arity"
    assert error.message == (
        f"udf.score takes 2 arguments (its binding inputs map to arguments 0-1), got {got}"
    )
    assert text[error.span.start : error.span.end] == call
    assert error.help == "call it as udf.score(temperature, humidity), one argument per mapTo"


def test_a_one_argument_function_still_takes_exactly_one():
    s = session(Endpoint(), {"url": URL})
    text = "SELECT udf.score(temperature, humidity) AS r FROM iot"
    with pytest.raises(
        BindError, match=r"takes exactly one argument \(a record or an array\), got 2"
    ) as caught:
        s.compile(text)
    assert caught.value.code == "wrong_arity"
    assert (
        text[caught.value.span.start : caught.value.span.end] == "udf.score(temperature, humidity)"
    )
