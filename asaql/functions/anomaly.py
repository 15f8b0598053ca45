"""Built-in anomaly detectors: ``AnomalyDetection_SpikeAndDip`` and ``AnomalyDetection_ChangePoint``.

Both follow the algorithm families ASA documents (adaptive kernel density estimation for
spikes and dips, exchangeability martingales for change points; asa-ml-integration.md §3) in
the shape of the i.i.d. detectors ASA runs on. Scores are not bit-identical to Microsoft's.
One model per partition; it sees the qualifying events (``WHEN``, non-NULL value) in time order.

**History.** The model of an event is the ``historySize`` qualifying events before it that are
no older than ``LIMIT DURATION`` (the event itself is scored first, then joins the history).
**Warm-up:** until that history holds ``historySize`` values, ``IsAnomaly`` is 0 (the scores are
still reported). Gaps are not imputed: a history emptied by ``LIMIT DURATION`` warms up again.

**SpikeAndDip.** ``x`` is scored by a Gaussian kernel density over the history whose kernel
width adapts to the history's spread (its standard deviation ``s``)::

    p_up(x)   = mean_j Phi((h_j - x) / s)       how likely a value at least this high is
    p_down(x) = mean_j Phi((x - h_j) / s)       ... at least this low

A past spike still in the history widens ``s`` and so blunts the model until it leaves
(as ASA documents: a second, smaller spike in the same window may not be reported).

Both are kept in ``[1e-8, 1 - 1e-8]`` and are 0.5 with no history. ``Score`` is the tail of
the mode (``spikes``: p_up, ``dips``: p_down, ``spikesanddips``: the smaller one), so a spike
has the same Score in ``spikes`` and ``spikesanddips``; ``IsAnomaly`` is 1 when
``Score <= 1 - confidence/100``. A dip never raises ``spikes``, nor a spike ``dips``.

**ChangePoint.** Each value gets the two-sided p-value ``p = 2 min(p_up, p_down)`` against a
*reference* history. A power martingale bets against exchangeability, ``log M += log(eps) +
(eps - 1) log p`` with ``eps = 0.1``, floored at 0 (evidence does not first undo a quiet past).
``Score`` is ``M``; ``IsAnomaly`` is 1 when ``M >= 1 / (1 - confidence/100)`` (by Ville's
inequality an exchangeable series rarely gets there). Persistence::

    reference ---- frozen while M > 1 ----> values meanwhile wait in `pending`
      M back to 1:  pending joins the reference
      M crosses:    alarm; the reference becomes pending + this value (the new level is the
                    model, which warms up again, so one shift raises one alarm)

and one event moves ``log M`` by at most a third of the threshold, so it takes three or more
consecutive values outside the history to report a change: a lone spike never does.

Work per event is ``O(historySize)`` numpy; :meth:`SpikeAndDipDetector.update_many` scores a
whole run of events at once (a block of ``rows x historySize``), with the same results as
:meth:`~SpikeAndDipDetector.update` one event at a time.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "MIN_PVALUE",
    "MODES",
    "ChangePointDetector",
    "SpikeAndDipDetector",
    "kde_pvalues",
    "kde_tails",
    "normal_cdf",
]

MODES = ("spikes", "dips", "spikesanddips")
MIN_PVALUE = 1e-8
_EPS = 0.1  # the power martingale's epsilon
_STEPS = 3  # ChangePoint: least number of consecutive events that can raise an alarm
_BLOCK = 1 << 20  # cells (rows x historySize) scored at once by update_many


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorized.

    >>> [round(float(v), 4) for v in normal_cdf(np.array([-1.96, 0.0, 1.0]))]
    [0.025, 0.5, 0.8413]
    """
    return 0.5 * _erfc(-np.asarray(z, dtype=np.float64) / math.sqrt(2.0))


def _erfc(x: np.ndarray) -> np.ndarray:
    # Chebyshev fit of erfc (Numerical Recipes erfcc): fractional error < 1.2e-7 everywhere
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    ans = t * np.exp(poly)
    return np.where(x >= 0, ans, 2.0 - ans)


def kde_tails(windows: np.ndarray, weights: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p_up, p_down) of ``x[i]`` under a Gaussian KDE of the history in row ``i`` of ``windows``.

    ``weights`` is 1.0 where a cell of ``windows`` is history and 0.0 where it is padding (the
    padding must be finite). The kernel width is the population standard deviation of the
    row's history, at least ``1e-6 * max(|mean|, 1)``. A row without history gives 0.5, 0.5.
    Tails are clamped to ``[MIN_PVALUE, 1 - MIN_PVALUE]``.
    """
    n = weights.sum(axis=1)
    count = np.maximum(n, 1.0)
    mean = (windows * weights).sum(axis=1) / count
    dev = (windows - mean[:, None]) * weights
    width = np.maximum(np.sqrt((dev * dev).sum(axis=1) / count), 1e-6 * np.maximum(np.abs(mean), 1.0))
    z = (windows - x[:, None]) / width[:, None]
    up = (normal_cdf(z) * weights).sum(axis=1) / count
    down = (normal_cdf(-z) * weights).sum(axis=1) / count
    empty = n == 0
    up = np.clip(np.where(empty, 0.5, up), MIN_PVALUE, 1.0 - MIN_PVALUE)
    down = np.clip(np.where(empty, 0.5, down), MIN_PVALUE, 1.0 - MIN_PVALUE)
    return up, down


def kde_pvalues(history: np.ndarray, x: float) -> tuple[float, float]:
    """(p_up, p_down) of ``x`` under a Gaussian KDE of ``history``.

    >>> up, down = kde_pvalues(np.array([1.0, 2.0, 3.0]), 2.0)
    >>> round(up, 6) == round(down, 6) == 0.5
    True
    """
    h = np.asarray(history, dtype=np.float64).reshape(1, -1)
    up, down = kde_tails(h, np.ones_like(h), np.array([float(x)]))
    return float(up[0]), float(down[0])


def _alpha(confidence: float) -> float:
    if not 1.0 <= float(confidence) <= 100.0:
        raise ValueError(f"confidence must be between 1 and 100, got {confidence}")
    return 1.0 - float(confidence) / 100.0


def _size(history: int) -> int:
    if int(history) < 2:
        raise ValueError(f"historySize must be at least 2, got {history}")
    return int(history)


class SpikeAndDipDetector:
    """One partition's SpikeAndDip model (see the module docstring).

    >>> det = SpikeAndDipDetector(95, 4, "spikes")
    >>> [det.update(v)[0] for v in [10.0, 10.2, 9.9, 10.1, 10.0, 30.0, 9.0]]
    [0, 0, 0, 0, 0, 1, 0]
    """

    def __init__(self, confidence: float, history: int, mode: str = "spikesanddips") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.alpha = _alpha(confidence)
        self.size = _size(history)
        self.mode = mode
        self.values: deque[float] = deque(maxlen=self.size)
        self.times: deque[int] = deque(maxlen=self.size)

    def expire(self, oldest: int) -> None:
        """Forget values older than ``oldest`` (the LIMIT DURATION; ``oldest`` itself stays)."""
        while self.times and self.times[0] < oldest:
            self.times.popleft()
            self.values.popleft()

    def update(self, x: float, t: int = 0) -> tuple[int, float]:
        """Score one value against the history, then add it. Returns (IsAnomaly, Score)."""
        flags, scores = self.update_many(np.array([x], dtype=np.float64), np.array([t], dtype=np.int64))
        return int(flags[0]), float(scores[0])

    def update_many(self, x: np.ndarray, t: np.ndarray,
                    duration: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Score a run of one partition's events (``t`` non-decreasing) and add them.

        Event ``i`` is scored against the ``historySize`` values before it that are no older
        than ``t[i] - duration`` (no time bound when ``duration`` is None), exactly as calling
        :meth:`expire` and :meth:`update` per event does. Returns (IsAnomaly int64, Score).
        """
        x = np.asarray(x, dtype=np.float64)
        t = np.asarray(t, dtype=np.int64)
        size, kept = self.size, len(self.values)
        all_x = np.concatenate([np.fromiter(self.values, np.float64, kept), x])
        all_t = np.concatenate([np.fromiter(self.times, np.int64, kept), t])
        at = kept + np.arange(len(x))  # each event's index in all_x
        first = np.maximum(at - size, 0)  # first history index of each event
        if duration is not None:
            first = np.maximum(first, np.searchsorted(all_t, t - duration, side="left"))
        padded = np.concatenate([np.zeros(size), all_x])
        rows = sliding_window_view(padded, size)[kept:kept + len(x)]  # row i: all_x[at-size:at]
        columns = np.arange(size)
        scores = np.empty(len(x))
        step = max(1, _BLOCK // size)
        for lo in range(0, len(x), step):
            hi = lo + step
            weights = (columns[None, :] >= (first[lo:hi] - at[lo:hi] + size)[:, None]).astype(np.float64)
            up, down = kde_tails(np.ascontiguousarray(rows[lo:hi]), weights, x[lo:hi])
            scores[lo:hi] = {"spikes": up, "dips": down}.get(self.mode, np.minimum(up, down))
        full = (at - first) == size
        flags = (full & (scores <= self.alpha)).astype(np.int64)
        if len(x):
            start = max(int(first[-1]), len(all_x) - size)
            self.values = deque(all_x[start:].tolist(), maxlen=size)
            self.times = deque(all_t[start:].tolist(), maxlen=size)
        return flags, scores


class ChangePointDetector:
    """One partition's ChangePoint model (see the module docstring).

    >>> det = ChangePointDetector(95, 5)
    >>> flags = [det.update(v)[0] for v in [1.0, 1.2, 0.9, 1.1, 1.0, 9.0, 9.1, 8.9, 9.2]]
    >>> flags.index(1)
    7
    """

    def __init__(self, confidence: float, history: int) -> None:
        alpha = _alpha(confidence)
        self.threshold = math.inf if alpha <= 0.0 else math.log(1.0 / alpha)
        self.size = _size(history)
        self.values: deque[float] = deque(maxlen=self.size)  # the reference history
        self.times: deque[int] = deque(maxlen=self.size)
        self.pending: deque[tuple[float, int]] = deque()  # seen while M > 1, newest last
        self.log_m = 0.0

    def expire(self, oldest: int) -> None:
        """Forget values older than ``oldest`` (the LIMIT DURATION; ``oldest`` itself stays)."""
        while self.times and self.times[0] < oldest:
            self.times.popleft()
            self.values.popleft()
        while self.pending and self.pending[0][1] < oldest:
            self.pending.popleft()

    def _flush(self) -> None:
        for value, time in self.pending:
            self.values.append(value)
            self.times.append(time)
        self.pending.clear()

    def update(self, x: float, t: int = 0) -> tuple[int, float]:
        """Score one value, update the martingale and the history. Returns (IsAnomaly, Score)."""
        if len(self.values) < self.size:
            self._flush()
        if len(self.values) < self.size:  # warm-up
            self.log_m = 0.0
            self.values.append(float(x))
            self.times.append(t)
            return 0, 1.0
        h = np.fromiter(self.values, np.float64, self.size).reshape(1, -1)
        up, down = kde_tails(h, np.ones_like(h), np.array([float(x)]))
        p = min(1.0, 2.0 * float(min(up[0], down[0])))
        bet = math.log(_EPS) + (_EPS - 1.0) * math.log(p)
        self.log_m = max(0.0, self.log_m + min(bet, self.threshold / _STEPS + 1e-9))
        score = math.exp(min(self.log_m, 700.0))
        if self.log_m >= self.threshold:
            self.values.clear()
            self.times.clear()
            self._flush()
            self.values.append(float(x))
            self.times.append(t)
            self.log_m = 0.0
            return 1, score
        self.pending.append((float(x), t))
        if self.log_m == 0.0 or len(self.pending) >= self.size:
            self._flush()
        return 0, score
