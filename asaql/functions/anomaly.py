"""Built-in anomaly detectors: ``AnomalyDetection_SpikeAndDip`` and ``AnomalyDetection_ChangePoint``.

Both follow the algorithm families ASA documents (asa-ml-integration.md §3), as ML.NET's IID
detectors do; scores are not bit-identical to Microsoft's models.

**SpikeAndDip** (adaptive kernel density estimation). The last ``historySize`` values form the
model. A new value ``x`` is scored by a Gaussian kernel density over that history whose
bandwidth adapts to the history's spread (Silverman's rule on the smaller of the standard
deviation and the scaled inter-quartile range)::

    p_up(x)   = mean_j Phi((h_j - x) / bw)      how likely a value at least this high is
    p_down(x) = mean_j Phi((x - h_j) / bw)      ... at least this low

``Score`` is the p-value of the mode (``spikes``: p_up, ``dips``: p_down, ``spikesanddips``:
the smaller one, doubled); ``IsAnomaly`` is 1 when ``Score < 1 - confidence/100``. The value
then joins the history.

**ChangePoint** (exchangeability martingales). Each value gets a two-sided p-value as above,
bounded below by ``1/(n+1)`` (a conformal p-value cannot be smaller). A power martingale bets
against exchangeability, ``M <- M * eps * p^(eps-1)`` with ``eps = 0.1``; its log is floored at
0 (so evidence does not have to first undo a long quiet past) and ``Score`` is ``M``, which
grows exponentially while the series keeps showing values the history did not. By Ville's
inequality an exchangeable series rarely reaches ``1 / (1 - confidence/100)``; crossing it sets
``IsAnomaly`` and resets the martingale and the history (the new level becomes the model).
A single spike only moves ``M`` by at most ``eps (n+1)^(1-eps)``, so it takes a persistent
change to be reported.

Before the history holds ``min(historySize, 3)`` values nothing is reported (Score 1 / 0).
The per-event work is ``O(historySize)`` with numpy; the loop over events is in
:mod:`asaql.exec.analytic`.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["ChangePointDetector", "SpikeAndDipDetector", "kde_pvalues", "normal_cdf"]

_MIN_HISTORY = 3
_EPS = 0.1


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorized (erfc by W. J. Cody's rational fit via numpy)."""
    return 0.5 * _erfc(-np.asarray(z, dtype=np.float64) / math.sqrt(2.0))


def _erfc(x: np.ndarray) -> np.ndarray:
    # Numerical Recipes erfcc: fractional error < 1.2e-7 everywhere
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    ans = t * np.exp(poly)
    return np.where(x >= 0, ans, 2.0 - ans)


def _bandwidth(h: np.ndarray) -> float:
    n = len(h)
    sd = float(h.std(ddof=1)) if n > 1 else 0.0
    q75, q25 = np.percentile(h, [75, 25])
    spread = min(sd, float(q75 - q25) / 1.34) if q75 > q25 else sd
    scale = max(abs(float(h.mean())), 1.0)
    return max(0.9 * spread * n ** -0.2, 1e-6 * scale)


def kde_pvalues(history: np.ndarray, x: float) -> tuple[float, float]:
    """(p_up, p_down) of ``x`` under a Gaussian KDE of ``history``."""
    h = np.asarray(history, dtype=np.float64)
    bw = _bandwidth(h)
    up = float(normal_cdf((h - x) / bw).mean())
    down = float(normal_cdf((x - h) / bw).mean())
    return up, down


class SpikeAndDipDetector:
    def __init__(self, confidence: float, history: int, mode: str = "spikesanddips") -> None:
        self.alpha = 1.0 - float(confidence) / 100.0
        self.size = int(history)
        self.mode = mode
        self.values: deque[float] = deque(maxlen=self.size)
        self.times: deque[int] = deque(maxlen=self.size)

    def expire(self, oldest: int) -> None:
        """Forget values older than ``oldest`` (the LIMIT DURATION)."""
        while self.times and self.times[0] < oldest:
            self.times.popleft()
            self.values.popleft()

    def update(self, x: float, t: int = 0) -> tuple[int, float]:
        score = 1.0
        if len(self.values) >= min(self.size, _MIN_HISTORY):
            up, down = kde_pvalues(np.fromiter(self.values, dtype=np.float64), x)
            if self.mode == "spikes":
                score = up
            elif self.mode == "dips":
                score = down
            else:
                score = min(1.0, 2.0 * min(up, down))
        self.values.append(float(x))
        self.times.append(t)
        return int(score < self.alpha), float(score)


class ChangePointDetector:
    def __init__(self, confidence: float, history: int) -> None:
        self.threshold = math.log(1.0 / max(1.0 - float(confidence) / 100.0, 1e-12))
        self.size = int(history)
        self.values: deque[float] = deque(maxlen=self.size)
        self.times: deque[int] = deque(maxlen=self.size)
        self.log_m = 0.0

    def expire(self, oldest: int) -> None:
        while self.times and self.times[0] < oldest:
            self.times.popleft()
            self.values.popleft()

    def update(self, x: float, t: int = 0) -> tuple[int, float]:
        alarm = 0
        n = len(self.values)
        if n >= min(self.size, _MIN_HISTORY):
            up, down = kde_pvalues(np.fromiter(self.values, dtype=np.float64), x)
            p = max(min(1.0, 2.0 * min(up, down)), 1.0 / (n + 1))
            self.log_m = max(0.0, self.log_m + math.log(_EPS) + (_EPS - 1.0) * math.log(p))
            if self.log_m >= self.threshold:
                alarm = 1
        score = math.exp(min(self.log_m, 700.0))
        if alarm:
            self.log_m = 0.0
            self.values.clear()
            self.times.clear()
        self.values.append(float(x))
        self.times.append(t)
        return alarm, score
