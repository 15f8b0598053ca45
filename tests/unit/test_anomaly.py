"""Anomaly detectors on synthetic series: planted spikes, dips and level shifts are found; a
quiet series raises nothing; the SAQL functions return {IsAnomaly: bigint, Score: float} per
partition."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import asaql
from asaql.functions.anomaly import ChangePointDetector, SpikeAndDipDetector, kde_pvalues, normal_cdf


def _quiet(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10.0 + rng.uniform(-0.5, 0.5, n)


def _flags(det: object, series: np.ndarray) -> list[int]:
    return [det.update(float(x), i)[0] for i, x in enumerate(series)]  # type: ignore[attr-defined]


def test_normal_cdf() -> None:
    z = np.array([-3.0, -1.0, 0.0, 1.0, 1.96])
    np.testing.assert_allclose(normal_cdf(z), [0.0013499, 0.1586553, 0.5, 0.8413447, 0.9750021], atol=1e-6)


def test_kde_pvalues_are_tails() -> None:
    h = _quiet(200)
    up, down = kde_pvalues(h, 20.0)
    assert up < 1e-6 < 0.99 < down


@pytest.mark.parametrize("mode", ["spikes", "dips", "spikesanddips"])
def test_spikes_and_dips_are_found(mode: str) -> None:
    series = _quiet(300)
    series[120] = 25.0  # spike
    series[220] = -5.0  # dip
    flags = _flags(SpikeAndDipDetector(99.0, 60, mode), series)
    found = {i for i, f in enumerate(flags) if f}
    expected = {"spikes": {120}, "dips": {220}, "spikesanddips": {120, 220}}[mode]
    assert found == expected


def test_quiet_series_raises_nothing() -> None:
    for seed in range(3):
        series = _quiet(500, seed)
        assert not any(_flags(SpikeAndDipDetector(99.5, 60, "spikesanddips"), series))
        assert not any(_flags(ChangePointDetector(95.0, 60), series))


def test_level_shift_is_found_and_a_single_spike_is_not_a_change() -> None:
    series = _quiet(400)
    series[100] = 30.0  # a lone spike: not a persistent change
    series[250:] += 8.0  # level shift
    det = ChangePointDetector(95.0, 60)
    results = [det.update(float(x), i) for i, x in enumerate(series)]
    found = [i for i, (flag, _) in enumerate(results) if flag]
    assert found and 250 <= found[0] <= 260
    assert all(i >= 250 for i in found)
    assert results[found[0]][1] >= 20.0  # martingale score past 1 / (1 - 0.95)


def test_history_expires_with_the_duration() -> None:
    det = SpikeAndDipDetector(95.0, 10)
    for i in range(10):
        det.update(1.0, i)
    det.expire(8)
    assert len(det.values) == 2


def test_saql_functions_per_partition() -> None:
    t0 = dt.datetime(2024, 5, 14, 10, 0, tzinfo=dt.timezone.utc)
    rows = []
    for i in range(120):
        for dev in ("d1", "d2"):
            value = 10.0 + 0.1 * ((i * 7 + (dev == "d2") * 3) % 5)
            if dev == "d1" and i == 100:
                value = 50.0
            rows.append({"dev": dev, "v": value, "ts": (t0 + dt.timedelta(seconds=i)).isoformat()})
    s = asaql.Session()
    s.add_input("src", rows)
    out = s.run(
        "SELECT dev, AnomalyDetection_SpikeAndDip(v, 99, 60, 'spikes') OVER (PARTITION BY dev "
        "LIMIT DURATION(second, 60)) AS sd, AnomalyDetection_ChangePoint(v, 95, 60) OVER "
        "(PARTITION BY dev LIMIT DURATION(second, 60)) AS cp FROM src TIMESTAMP BY ts"
    )["output"].to_pylist()
    spikes = [(i // 2, r["dev"]) for i, r in enumerate(out) if r["sd"]["IsAnomaly"]]
    assert spikes == [(100, "d1")]
    assert all(isinstance(r["sd"]["Score"], float) and r["cp"]["IsAnomaly"] in (0, 1) for r in out)
