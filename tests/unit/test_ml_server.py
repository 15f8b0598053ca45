"""The stdlib model server's anomaly model: deterministic, bounded, sensible; and its CLI."""

from __future__ import annotations

import pytest

from asaql.ml.server import BadRequest, _rows, anomaly_model, main


def test_anomaly_scores_are_deterministic_and_bounded():
    rows = [{"temperature": t, "humidity": h} for t in (-40, 0, 20, 25, 35, 80) for h in (0, 45, 100)]
    first, again = anomaly_model(rows), anomaly_model(rows)
    assert first == again
    assert all(0.0 <= r["prediction"] <= 1.0 for r in first)
    assert all(r["is_anomaly"] == (r["prediction"] >= 0.5) for r in first)


def test_normal_reading_is_not_anomalous_and_extremes_are():
    normal, hot, humid = anomaly_model(
        [{"temperature": 21, "humidity": 47}, {"temperature": 40, "humidity": 45}, {"temperature": 20, "humidity": 99}]
    )
    assert normal["prediction"] < 0.01 and not normal["is_anomaly"]
    assert hot["is_anomaly"] and humid["is_anomaly"]


def test_bad_rows_and_bodies():
    with pytest.raises(BadRequest, match="row 1: 'humidity' must be a number, got null"):
        anomaly_model([{"temperature": 1, "humidity": 2}, {"temperature": 1, "humidity": None}])
    with pytest.raises(BadRequest, match="expected"):
        _rows({"rows": []})
    assert _rows({"Inputs": {"WebServiceInput0": [1]}}) == [1]


def test_main_rejects_unknown_model(capsys):
    with pytest.raises(SystemExit):
        main(["--model", "nope"])
    assert "invalid choice" in capsys.readouterr().err
