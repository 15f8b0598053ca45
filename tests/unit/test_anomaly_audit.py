"""Audit of the anomaly detectors against what ASA documents.

Pins: compile-time argument checks with positions (confidence 1..100 inclusive, historySize,
mode, OVER with LIMIT DURATION); the result record {IsAnomaly: bigint 0/1, Score: float} read
by ``.field`` and GetRecordPropertyValue; no alarm before the history holds historySize values;
NULL values and events failing WHEN give NULL and stay out of the model; partitions are
independent; planted spikes/dips are found only in the mode that asks for them, level shifts by
ChangePoint, nothing on quiet bounded noise at the documented confidence levels; the same
results one event at a time, in one vectorized block, and at any batch size.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

import asaql
from asaql.functions.anomaly import ChangePointDetector, SpikeAndDipDetector

T0 = dt.datetime(2024, 5, 14, 10, 0, tzinfo=dt.UTC)
SD = "AnomalyDetection_SpikeAndDip"
CP = "AnomalyDetection_ChangePoint"


def _rows(values: list[float | None], key: str = "a", step_s: int = 1) -> list[dict[str, Any]]:
    return [{"k": key, "v": v, "ts": (T0 + dt.timedelta(seconds=i * step_s)).isoformat()}
            for i, v in enumerate(values)]


def _run(call: str, rows: list[dict[str, Any]], batch_size: int | None = None) -> list[dict[str, Any]]:
    s = asaql.Session(asaql.Options(batch_size=batch_size)) if batch_size else asaql.Session()
    s.add_input("src", rows)
    out = s.run(f"SELECT k, v, {call} AS r FROM src TIMESTAMP BY ts")["output"]
    return out.to_pylist()  # type: ignore[no-any-return]


def _quiet(n: int, seed: int = 0) -> np.ndarray:
    return 20.0 + np.random.default_rng(seed).uniform(-0.5, 0.5, n)


def _flags(det: Any, series: np.ndarray) -> np.ndarray:
    return np.array([det.update(float(x), i)[0] for i, x in enumerate(series)])


# ---------------------------------------------------------------- compile-time checks

@pytest.mark.parametrize(("call", "code", "at"), [
    (f"{SD}(v, 0.5, 10, 'spikes')", "bad_argument", "0.5"),
    (f"{SD}(v, 101, 10, 'spikes')", "bad_argument", "101"),
    (f"{CP}(v, 100.5, 10)", "bad_argument", "100.5"),
    (f"{CP}(v, v, 10)", "bad_argument", "v, 10"),
    (f"{SD}(v, 95, 1, 'spikes')", "bad_argument", "1, 'spikes'"),
    (f"{SD}(v, 95, 10.5, 'spikes')", "bad_argument", "10.5"),
    (f"{SD}(v, 95, 10, 'peaks')", "bad_argument", "'peaks'"),
    (f"{SD}(v, 95, 10, k)", "bad_argument", "k)"),
    (f"{SD}(v, 95, 10)", "wrong_arity", SD),
    (f"{CP}(v, 95, 10, 'spikes')", "wrong_arity", CP),
])
def test_bad_arguments_are_compile_errors_at_the_argument(call: str, code: str, at: str) -> None:
    query = f"SELECT {call} OVER (LIMIT DURATION(second, 10)) AS r FROM src"
    s = asaql.Session()
    s.add_input("src", [])
    with pytest.raises(asaql.QueryError) as info:
        s.compile(query)
    assert info.value.code == code
    assert query[info.value.span.start:].startswith(at), info.value.render(query)


@pytest.mark.parametrize("over", ["", "OVER (PARTITION BY k)", "OVER (PARTITION BY k WHEN v > 0)"])
def test_limit_duration_is_required(over: str) -> None:
    s = asaql.Session()
    s.add_input("src", [])
    with pytest.raises(asaql.QueryError) as info:
        s.compile(f"SELECT {CP}(v, 80, 10) {over} AS r FROM src")
    assert info.value.code == "limit_duration_required"


@pytest.mark.parametrize("confidence", ["1", "1.00", "100", "99.5"])
def test_confidence_bounds_are_inclusive(confidence: str) -> None:
    s = asaql.Session()
    s.add_input("src", [])
    s.compile(f"SELECT {SD}(v, {confidence}, 10, 'SpikesAndDips') OVER (LIMIT DURATION(second, 10)) "
              f"AS r, {CP}(v, {confidence}, 10) OVER (PARTITION BY k LIMIT DURATION(second, 10) "
              "WHEN v > 0) AS c FROM src")


def test_order_by_in_over_is_rejected() -> None:
    s = asaql.Session()
    s.add_input("src", [])
    with pytest.raises(asaql.QueryError):
        s.compile(f"SELECT {CP}(v, 80, 10) OVER (ORDER BY v LIMIT DURATION(second, 10)) AS r FROM src")


def test_detectors_reject_bad_parameters() -> None:
    with pytest.raises(ValueError, match="mode"):
        SpikeAndDipDetector(95, 10, "peaks")
    with pytest.raises(ValueError, match="confidence"):
        ChangePointDetector(0.5, 10)
    with pytest.raises(ValueError, match="historySize"):
        SpikeAndDipDetector(95, 1)


# ---------------------------------------------------------------- result record

def test_result_record_shape_and_both_access_forms() -> None:
    rows = _rows(list(_quiet(30)))
    s = asaql.Session()
    s.add_input("src", rows)
    out = s.run(
        f"WITH x AS (SELECT {SD}(v, 95, 10, 'spikes') OVER (LIMIT DURATION(second, 10)) AS sd, "
        f"{CP}(v, 80, 10) OVER (LIMIT DURATION(second, 10)) AS cp FROM src TIMESTAMP BY ts) "
        "SELECT GetType(sd) AS t, GetType(sd.IsAnomaly) AS ti, GetType(cp.Score) AS ts, "
        "GetRecordPropertyValue(sd, 'IsAnomaly') AS a1, sd.IsAnomaly AS a2, "
        "GetRecordPropertyValue(cp, 'Score') AS s1, cp.Score AS s2, sd AS rec FROM x"
    )["output"]
    rec_type = out.schema.field("rec").type
    assert str(rec_type.field("IsAnomaly").type) == "int64" and str(rec_type.field("Score").type) == "double"
    for r in out.to_pylist():
        assert (r["t"], r["ti"], r["ts"]) == ("record", "bigint", "float")
        assert r["a1"] == r["a2"] in (0, 1) and r["s1"] == r["s2"]
        assert set(r["rec"]) == {"IsAnomaly", "Score"}


# ---------------------------------------------------------------- warm-up, NULL, WHEN, partitions

def test_no_alarm_until_the_history_is_full() -> None:
    values = list(_quiet(20))
    values[3] = 500.0  # obvious outlier, but only 3 values are in the model
    sd = _run(f"{SD}(v, 95, 10, 'spikesanddips') OVER (LIMIT DURATION(second, 10))", _rows(values))
    cp = _run(f"{CP}(v, 80, 10) OVER (LIMIT DURATION(second, 10))", _rows(values))
    assert [r["r"]["IsAnomaly"] for r in sd[:10]] == [0] * 10
    assert sd[0]["r"]["Score"] == 0.5  # no history: no evidence either way
    assert sd[3]["r"]["Score"] < 1e-6  # scored all the same
    assert [r["r"] for r in cp[:10]] == [{"IsAnomaly": 0, "Score": 1.0}] * 10


def test_spike_right_after_warm_up_is_reported() -> None:
    values = list(_quiet(12))
    values[10] = 40.0  # the 11th event: its model holds exactly 10 values
    out = _run(f"{SD}(v, 95, 10, 'spikes') OVER (LIMIT DURATION(second, 10))", _rows(values))
    assert [i for i, r in enumerate(out) if r["r"]["IsAnomaly"]] == [10]


def test_sparse_events_never_fill_the_history() -> None:
    """One event every 10 s with 5 values wanted per 30 s: the model never holds historySize
    values, so nothing is reported (asaql does not impute gaps)."""
    values = list(_quiet(20))
    values[15] = 500.0
    out = _run(f"{SD}(v, 95, 5, 'spikes') OVER (LIMIT DURATION(second, 30))", _rows(values, step_s=10))
    assert not any(r["r"]["IsAnomaly"] for r in out)


def test_null_values_give_null_and_stay_out_of_the_model() -> None:
    values = list(_quiet(40))
    values[30] = 30.0
    holey: list[float | None] = []
    for v in values:
        holey += [v, None]
    call = f"{SD}(v, 95, 10, 'spikes') OVER (LIMIT DURATION(second, 100))"
    plain = _run(call, _rows(values))
    with_nulls = _run(call, _rows(holey))
    assert all(r["r"] is None for r in with_nulls[1::2])
    assert [r["r"] for r in with_nulls[0::2]] == [r["r"] for r in plain]
    assert plain[30]["r"]["IsAnomaly"] == 1


def test_when_filters_what_the_model_sees() -> None:
    values = list(_quiet(40))
    values[25] = 30.0
    mixed: list[float | None] = []
    for v in values:
        mixed += [v, -1000.0]  # the negatives fail WHEN: no result, not in the model
    call = f"{SD}(v, 95, 10, 'spikesanddips') OVER (LIMIT DURATION(second, 100) WHEN v > 0)"
    out = _run(call, _rows(mixed))
    assert all(r["r"] is None for r in out[1::2])
    flagged = [i for i, r in enumerate(out[0::2]) if r["r"]["IsAnomaly"]]
    assert flagged == [25]


def test_partitions_are_independent() -> None:
    a, b = list(_quiet(50, 1)), list(_quiet(50, 2))
    a[30], b[40] = 35.0, 4.0
    rows = [r for pair in zip(_rows(a, "a"), _rows(b, "b"), strict=True) for r in pair]
    call = "{}(v, 95, 20{}) OVER (PARTITION BY k LIMIT DURATION(second, 20))"
    for fn, extra in ((SD, ", 'spikesanddips'"), (CP, "")):
        together = _run(call.format(fn, extra), rows)
        alone = _run(call.format(fn, extra), _rows(a, "a")) + _run(call.format(fn, extra), _rows(b, "b"))
        assert sorted((r["k"], r["v"], r["r"]["IsAnomaly"], r["r"]["Score"]) for r in together) == \
            sorted((r["k"], r["v"], r["r"]["IsAnomaly"], r["r"]["Score"]) for r in alone)
    flagged = {(r["k"], r["v"]) for r in _run(call.format(SD, ", 'spikesanddips'"), rows) if r["r"]["IsAnomaly"]}
    assert flagged == {("a", 35.0), ("b", 4.0)}


# ---------------------------------------------------------------- detection quality

@pytest.mark.parametrize("confidence", [95, 99])
@pytest.mark.parametrize(("mode", "expected"), [("spikes", {150}), ("dips", {260}),
                                                ("spikesanddips", {150, 260})])
def test_planted_spikes_and_dips_found_only_for_their_mode(mode: str, expected: set[int],
                                                           confidence: int) -> None:
    series = _quiet(400, 7)
    series[150] = 26.0
    series[260] = 15.0
    found = set(np.nonzero(_flags(SpikeAndDipDetector(confidence, 120, mode), series))[0].tolist())
    assert found == expected


def test_spike_score_is_the_same_whichever_mode_reports_it() -> None:
    series = _quiet(80)
    series[70] = 24.0
    spikes, either = SpikeAndDipDetector(95, 60, "spikes"), SpikeAndDipDetector(95, 60, "spikesanddips")
    up = [spikes.update(float(x)) for x in series]
    both = [either.update(float(x)) for x in series]
    assert up[70] == both[70] and up[70][0] == 1


@pytest.mark.parametrize("confidence", [95, 99, 99.9])
def test_quiet_bounded_noise_raises_no_spike(confidence: float) -> None:
    for seed in range(3):
        assert not _flags(SpikeAndDipDetector(confidence, 120, "spikesanddips"), _quiet(600, seed)).any()


@pytest.mark.parametrize("confidence", [75, 80, 90, 95])
def test_quiet_noise_raises_no_change_point(confidence: float) -> None:
    for seed in range(3):
        assert not _flags(ChangePointDetector(confidence, 60), _quiet(600, seed)).any()
        gauss = 20.0 + np.random.default_rng(seed).normal(0.0, 0.3, 600)
        assert not _flags(ChangePointDetector(confidence, 120), gauss).any()


@pytest.mark.parametrize("history", [20, 60, 300])
@pytest.mark.parametrize("confidence", [80, 95])
def test_level_shift_is_found_once(history: int, confidence: float) -> None:
    series = 20.0 + np.random.default_rng(3).normal(0.0, 0.3, history + 200)
    series[history + 100:] += 1.5  # level shift of 5 noise sd
    found = np.nonzero(_flags(ChangePointDetector(confidence, history), series))[0] - (history + 100)
    assert found.tolist() and 0 <= found[0] <= 10
    assert len(found) == 1


@pytest.mark.parametrize("history", [20, 60, 300, 1200])
@pytest.mark.parametrize("confidence", [75, 80, 95])
def test_a_lone_spike_is_not_a_change_point(history: int, confidence: float) -> None:
    series = 20.0 + np.random.default_rng(4).normal(0.0, 0.3, history + 60)
    series[history + 30] += 50.0
    assert not _flags(ChangePointDetector(confidence, history), series).any()


def test_change_point_score_is_the_martingale() -> None:
    det = ChangePointDetector(95, 20)
    results = [det.update(float(x), i) for i, x in enumerate(np.r_[_quiet(40), _quiet(20) + 10])]
    alarm = [i for i, (flag, _) in enumerate(results) if flag]
    assert alarm and results[alarm[0]][1] >= 20.0 > results[alarm[0] - 1][1] > 1.0
    assert all(score >= 1.0 for _, score in results)


def test_confidence_100_never_alarms() -> None:
    series = np.r_[_quiet(50), 100.0, _quiet(50) + 30]
    assert not _flags(SpikeAndDipDetector(100, 20), series).any()
    assert not _flags(ChangePointDetector(100, 20), series).any()


# ---------------------------------------------------------------- determinism

@pytest.mark.parametrize("duration", [None, 25])
def test_vectorized_block_equals_one_event_at_a_time(duration: int | None) -> None:
    series = _quiet(300, 5)
    series[[50, 120, 200]] = [30.0, 10.0, 27.0]
    times = np.cumsum(np.random.default_rng(5).integers(0, 3, 300))
    one = SpikeAndDipDetector(95, 30, "spikesanddips")
    singles = []
    for x, t in zip(series, times, strict=True):
        if duration is not None:
            one.expire(int(t) - duration)
        singles.append(one.update(float(x), int(t)))
    block = SpikeAndDipDetector(95, 30, "spikesanddips")
    flags, scores = block.update_many(series[:170], times[:170], duration)
    flags2, scores2 = block.update_many(series[170:], times[170:], duration)
    assert np.r_[flags, flags2].tolist() == [f for f, _ in singles]
    assert np.r_[scores, scores2].tolist() == [s for _, s in singles]
    assert list(block.values) == list(one.values)


def test_same_results_at_every_batch_size() -> None:
    values = list(_quiet(120, 9))
    values[70], values[90] = 30.0, 12.0
    values[100:] = [v + 5 for v in values[100:]]
    call = (f"{SD}(v, 95, 30, 'spikesanddips') OVER (LIMIT DURATION(second, 30)) AS s, "
            f"{CP}(v, 80, 30) OVER (LIMIT DURATION(second, 30))")
    runs = [_run(call, _rows(values), batch_size) for batch_size in (1, 7, 1000)]
    assert runs[0] == runs[1] == runs[2]
    flagged = [i for i, r in enumerate(runs[0]) if r["s"]["IsAnomaly"]]
    assert flagged[:3] == [70, 90, 100]  # the shift looks like spikes until the history adapts
