"""Window specifications and their vectorized assigners.

All times are integer **microseconds since 1970-01-01T00:00:00Z** (the storage of
``timestamp[us, UTC]``). Every window covers ``(start, end]``: the start is *exclusive*, the end
*inclusive*, and the event time of a window's result (``System.Timestamp()``) is its end.
Windows are aligned to time zero plus the offset (asa-language.md §6)::

    TumblingWindow(second, 10)            ( 00 , 10 ]( 10 , 20 ]( 20 , 30 ]
                                                    ^ an event at :10 belongs to (00,10]
    TumblingWindow(second, 10, -1ms)      (-0.001, 9.999](9.999, 19.999] ...
    HoppingWindow(second, 10, 5)          ( 00 , 10 ]
                                               ( 05 , 15 ]
                                                    ( 10 , 20 ]   an event at :10 is in 2

Assigners take the event times of a batch (``numpy.int64``) and return, for every
(event, window) membership, the index of the event and the window end. They never loop per
event in Python. Session and sliding windows depend on neighbouring events, so they are
assigned from buffered events once the watermark makes them final (see
:mod:`asaql.exec.window_aggregate`); :func:`assign_sessions` has the one per-key loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "MAX_WINDOW_US",
    "UNIT_US",
    "Hopping",
    "Session",
    "Sliding",
    "Snapshot",
    "Tumbling",
    "WindowSpec",
    "assign_sessions",
    "hopping",
    "sliding_points",
    "unit_us",
]

#: microseconds per time unit, by every spelling ASA accepts
UNIT_US: dict[str, int] = {}
for _names, _us in (
    (("day", "dd", "d"), 86_400_000_000),
    (("hour", "hh"), 3_600_000_000),
    (("minute", "mi", "n"), 60_000_000),
    (("second", "ss", "s"), 1_000_000),
    (("millisecond", "ms"), 1_000),
    (("microsecond", "mcs"), 1),
):
    for _name in _names:
        UNIT_US[_name] = _us

#: windows may not be longer than 7 days (asa-language.md §13)
MAX_WINDOW_US = 7 * 86_400_000_000


def unit_us(unit: str) -> int | None:
    """Microseconds in one ``unit`` (None for an unknown unit).

    >>> unit_us("mi"), unit_us("SECOND"), unit_us("fortnight")
    (60000000, 1000000, None)
    """
    return UNIT_US.get(unit.lower())


def _ceil_div(a: np.ndarray, b: int) -> np.ndarray:
    return -((-a) // b)


@dataclass(frozen=True)
class Tumbling:
    """Fixed, contiguous windows ``(offset + k*size, offset + (k+1)*size]``.

    An event exactly on a boundary belongs to the window that *ends* there.

    >>> import numpy as np
    >>> Tumbling(10).ends(np.array([0, 1, 10, 11]))
    array([ 0, 10, 10, 20])
    >>> Tumbling(10, offset=-1).ends(np.array([9, 10]))
    array([ 9, 19])
    """

    size: int
    offset: int = 0

    def ends(self, ts: np.ndarray) -> np.ndarray:
        return _ceil_div(ts - self.offset, self.size) * self.size + self.offset

    def assign(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(event index, window end) per membership: exactly one window per event."""
        return np.arange(len(ts), dtype=np.int64), self.ends(ts)


@dataclass(frozen=True)
class Hopping:
    """Windows of length ``size`` ending every ``hop`` (at ``offset + k*hop``), each
    ``(end - size, end]``. An event belongs to every window whose end is in
    ``[t, t + size)``: ``size/hop`` windows when hop divides size, else ``floor`` or ``ceil``
    of it. Use :func:`hopping` to build one (hop == size gives a :class:`Tumbling`).

    >>> import numpy as np
    >>> rows, ends = Hopping(10, 5).assign(np.array([10, 12]))
    >>> rows.tolist(), ends.tolist()
    ([0, 0, 1, 1], [10, 15, 15, 20])
    >>> Hopping(10, 4).assign(np.array([1]))[1].tolist()   # hop does not divide size
    [4, 8]
    """

    size: int
    hop: int
    offset: int = 0

    def assign(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first = _ceil_div(ts - self.offset, self.hop) * self.hop + self.offset
        per_event = -(-self.size // self.hop)
        rows = np.repeat(np.arange(len(ts), dtype=np.int64), per_event)
        steps = np.tile(np.arange(per_event, dtype=np.int64), len(ts))
        ends = first[rows] + steps * self.hop
        keep = ends < ts[rows] + self.size
        if keep.all():
            return rows, ends
        return rows[keep], ends[keep]


def hopping(size: int, hop: int, offset: int = 0) -> Tumbling | Hopping:
    """A hopping window; with ``hop == size`` it is the tumbling window it equals.

    >>> hopping(10, 10, 2)
    Tumbling(size=10, offset=2)
    """
    if hop == size:
        return Tumbling(size, offset)
    return Hopping(size, hop, offset)


@dataclass(frozen=True)
class Snapshot:
    """``GROUP BY System.Timestamp()``: one window per distinct event time, ending at it."""

    def assign(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(len(ts), dtype=np.int64), ts.copy()


@dataclass(frozen=True)
class Sliding:
    """Every window ``(p - size, p]``, reported only where its content changes: at each event
    time ``t`` (the event enters) and at ``t + size`` (it leaves), and never when empty.
    Points are computed per group key (see :func:`sliding_points`)."""

    size: int


@dataclass(frozen=True)
class Session:
    """A session starts at its first event; each event within ``timeout`` of the previous one
    (``gap <= timeout``) extends it; it closes ``timeout`` after its last event. Max duration is
    checked at multiples of ``max_duration`` counted from time zero: at such an instant, a
    session that has lasted ``max_duration`` or more closes there, and a session continuing
    from it opens at that instant (so a session may last up to about twice the maximum).
    ``partitioned``: sessions per ``OVER (PARTITION BY ...)`` key; otherwise global."""

    timeout: int
    max_duration: int
    partitioned: bool = False

    def cut(self, start: int) -> int:
        """The check instant at which a session opened at ``start`` is cut.

        >>> Session(2, 5).cut(1), Session(2, 5).cut(5), Session(2, 5).cut(6)
        (10, 10, 15)
        """
        m = self.max_duration
        return -(-(start + m) // m) * m


WindowSpec = Tumbling | Hopping | Snapshot | Sliding | Session


def assign_sessions(
    spec: Session, times: list[int], carry: tuple[int, int] | None = None
) -> list[tuple[int, int, int, int]]:
    """Split one partition's sorted event times into sessions.

    ``carry`` is ``(cut, last)`` when the partition's previous session (already emitted) was
    cut by max duration at ``cut`` with its last event at ``last``: an event within the
    timeout of ``last`` continues it as a session opened at ``cut``.

    Returns ``(first_index, end_index_exclusive, session_start, session_end)`` per session;
    the session's result time is ``session_end``. This is the per-key loop over event
    times (sessions chain through their events, so it cannot be one vector expression).

    >>> s = Session(timeout=2, max_duration=5)
    >>> assign_sessions(s, [1, 3, 5, 7, 9, 11, 20])   # cut at 10, continued from 10
    [(0, 5, 1, 10), (5, 6, 10, 13), (6, 7, 20, 22)]
    """
    out: list[tuple[int, int, int, int]] = []
    n = len(times)
    i = 0
    while i < n:
        if i == 0 and carry is not None and times[0] - carry[1] <= spec.timeout:
            start, last = carry
        else:
            start = last = times[i]
        first = i
        cut = spec.cut(start)
        while True:
            while i < n and times[i] - last <= spec.timeout and times[i] <= cut:
                last = times[i]
                i += 1
            closes_by_timeout = last + spec.timeout
            if closes_by_timeout <= cut:
                out.append((first, i, start, closes_by_timeout))
                break
            out.append((first, i, start, cut))
            if i < n and times[i] - last <= spec.timeout:
                start, first = cut, i
                cut = spec.cut(start)
                continue
            break
    return [s for s in out if s[1] > s[0]]


def sliding_points(keys: np.ndarray, times: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate result points of a sliding window: every ``t`` and ``t + size`` per group key
    (``keys`` are dense integer group ids). Returns unique (key, point) pairs sorted by both.

    >>> k, p = sliding_points(np.array([0, 0]), np.array([2, 5]), 10)
    >>> k.tolist(), p.tolist()
    ([0, 0, 0, 0], [2, 5, 12, 15])
    """
    all_keys = np.concatenate([keys, keys])
    all_points = np.concatenate([times, times + size])
    order = np.lexsort((all_points, all_keys))
    all_keys, all_points = all_keys[order], all_points[order]
    if len(all_keys) == 0:
        return all_keys, all_points
    fresh = np.ones(len(all_keys), dtype=bool)
    fresh[1:] = (all_keys[1:] != all_keys[:-1]) | (all_points[1:] != all_points[:-1])
    return all_keys[fresh], all_points[fresh]
