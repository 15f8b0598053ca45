"""Local Python scoring: registered functions, module:function references, Arrow batches,
per-row functions, and failures turned into EndpointErrors."""

from __future__ import annotations

import pyarrow as pa
import pytest

from asaql.errors import ConfigError, EndpointError
from asaql.ml.endpoint import EndpointSpec, load_function_spec
from asaql.ml.python_udf import resolve_function, udf
from asaql.ml.scorer import Scorer


@udf("test_ml_add_one")
def add_one(rows):
    return [r["x"] + 1 for r in rows]


@udf("test_ml_arrow_sum", arrow=True)
def arrow_sum(table: pa.Table):
    import pyarrow.compute as pc

    return pc.add(table["a"], table["b"])


@udf("test_ml_per_row", batch=False)
def per_row(row):
    return {"double": row * 2}


@udf("test_ml_short")
def short(rows):
    return rows[:-1]


@udf("test_ml_boom")
def boom(rows):
    raise ValueError("model file is corrupt")


def spec(ref: str, **kw) -> EndpointSpec:
    return EndpointSpec(name="py", url=f"python:{ref}", **kw)


def test_registered_function():
    with Scorer(spec("test_ml_add_one", batch_size=2)) as scorer:
        out = list(scorer.map([[{"x": 1}, {"x": 2}, {"x": 3}]]))
    assert out[0].values == [2, 3, 4]


def test_arrow_function():
    with Scorer(spec("test_ml_arrow_sum")) as scorer:
        assert scorer.score([{"a": 1, "b": 2}, {"a": 3, "b": 4}]).values == [3, 7]


def test_per_row_function_with_scalar_rows():
    with Scorer(spec("test_ml_per_row")) as scorer:
        assert scorer.score([1, 2]).values == [{"double": 2}, {"double": 4}]


def test_module_function_reference():
    fn = resolve_function("python:json:dumps")
    assert fn.function([1]) == "[1]"
    own = load_function_spec("p", {"protocol": "python", "url": "tests.unit.test_ml_python_udf:add_one"})
    assert own.url == "python:tests.unit.test_ml_python_udf:add_one"


def test_wrong_length_and_exception_are_endpoint_errors():
    with Scorer(spec("test_ml_short")) as scorer:
        with pytest.raises(EndpointError, match="returned 1 results for a batch of 2 events"):
            scorer.score([{"x": 1}, {"x": 2}])
    with Scorer(spec("test_ml_boom"), on_error="null") as scorer:
        out = scorer.score([{"x": 1}])
    assert out.values == [None]
    assert "raised ValueError: model file is corrupt" in str(out.errors[0])


def test_unknown_function_is_config_error():
    with pytest.raises(ConfigError, match="no Python scoring function named 'nope'"):
        Scorer(spec("nope"))
    with pytest.raises(ConfigError, match="cannot import module"):
        Scorer(spec("no_such_module_xyz:f"))
