"""MLScore: enrich every event with the answer of an ML endpoint (or a local Python model).

The scorer (:mod:`asaql.ml.scorer`) keeps up to N requests of up to B events in flight and
answers chunks in input order. This operator feeds it the argument of each batch and glues the
answers back on, holding watermarks until every earlier event is answered::

    child ──► pending deque: [batch1, wm1, batch2, batch3, wm2] ──► scorer.map(args) (in flight)
                 ▲ popped in order as answers arrive: batch1+answers, wm1, batch2+answers, ...
                   (a watermark goes to the scorer as an empty chunk: answered, in order, once
                   every earlier event is)

A watermark that follows another one still unanswered is held back instead (:class:`_Held`),
the latest replacing the one before, and handed on before the next events or once everything
sent is answered: a live input's idle ticks (a watermark each, repeated or moving) must not
reach the scorer as a stream of marker chunks, each of which counts as new input and keeps a
partial request waiting for more (``linger``) for as long as the ticks come.

A large batch goes as pieces of about 8192 rows (whole requests each), each answered piece
going downstream as its own batch. The argument goes to the scorer as Arrow: requests are
slices of it, and the codecs build column-shaped bodies straight from its struct fields.

The answer becomes the scope column ``alias``; failures (with on_error='null', inside
TryEvaluate) leave NULL there and the message in ``__mlerr.<alias>``, which the evaluator turns
into an error when the value is read outside TryEvaluate.

Dead letters: when the node names a ``dead_letter`` output, failed events get NULL whatever
reads them (the job goes on) and a copy of each goes to a :class:`DeadLetterChannel` with the
function name, the HTTP status and the error (key masked)::

    | endpoint string | status int64 | error string | event <argument type> | __ts |

The physical builder makes one channel per dead-letter name and adds it to the run's outputs
with :func:`with_dead_letters`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from asaql.errors import ConfigError
from asaql.exec.evaluate import evaluate, from_python
from asaql.exec.operator import ML_ERROR_PREFIX, TS, ExecContext, Item, Watermark
from asaql.plan import expr as bx
from asaql.plan import logical as lp

__all__ = ["DeadLetterChannel", "MLScoreOperator", "piece_rows", "with_dead_letters"]


class MLScoreOperator:
    def __init__(
        self,
        node: lp.MLScore,
        child: Iterator[Item],
        ctx: ExecContext,
        dead_letter: DeadLetterChannel | None = None,
    ) -> None:
        self.node, self.child, self.ctx = node, child, ctx
        self.dead_letter = dead_letter

    def __iter__(self) -> Iterator[Item]:
        from asaql.ml.scorer import Scorer

        transport = getattr(self.ctx.options, "ml_transport", None)
        keep_going = self.node.on_error == "null" or self.dead_letter is not None
        scorer = Scorer(self.node.spec, transport=transport, on_error="null" if keep_going else "raise")
        self.ctx.metrics.endpoints[self.node.function] = scorer.metrics
        pending: deque[Item] = deque()
        args: deque[pa.Array | None] = deque()  # None: the marker chunk of a watermark
        held = _Held()
        try:
            for scored in scorer.map(self._arguments(pending, args, held)):
                arg = args.popleft()
                if arg is None:  # every event before this watermark is answered: pass it on
                    mark = held.answered()
                    yield pending.popleft()
                    if mark is not None:  # held back behind this one; nothing came after it
                        yield mark
                    continue
                batch = pending.popleft()
                assert isinstance(batch, pa.RecordBatch)
                errors = scored.errors
                if errors is not None and self.dead_letter is not None:
                    self.dead_letter.put(self._dead(batch, arg, errors))
                    errors = None  # routed: the value is NULL, reading it is no error
                mark = held.answered()
                yield self._attach(batch, scored.values, errors)
                if mark is not None:  # held back behind this batch; nothing came after it
                    yield mark
            yield from pending
            mark = held.answered(0)
            if mark is not None:
                yield mark
        finally:
            scorer.close()

    def _arguments(
        self, pending: deque[Item], args: deque[pa.Array | None], held: _Held
    ) -> Iterator[pa.Array | list[Any]]:
        # runs on the scorer's feeder thread: it pulls the whole upstream pipeline. The
        # argument column goes to the scorer as Arrow (its requests are slices of it), in
        # pieces of whole requests (see piece_rows). A watermark goes as an empty chunk: the
        # scorer answers it in order, as soon as every earlier event is answered, so a live
        # input's watermark is released then, not when the next event is scored
        step = piece_rows(self.node.spec.batch_size)
        for item in self.child:
            if isinstance(item, pa.RecordBatch):
                arg = _argument(self.node.arg, item, self.ctx)
                pieces = 1 if item.num_rows <= step else -(-item.num_rows // step)
                mark = held.events(pieces)
                if mark is not None:  # a watermark held back: it goes before these events
                    args.append(None)
                    pending.append(mark)
                    yield []
                if pieces == 1:
                    args.append(arg)
                    pending.append(item)
                    yield arg
                    continue
                for start in range(0, item.num_rows, step):
                    piece = arg.slice(start, step)
                    args.append(piece)
                    pending.append(item.slice(start, step))
                    yield piece
            elif held.hold(item):
                continue
            else:
                args.append(None)
                pending.append(item)
                yield []

    def _attach(self, batch: pa.RecordBatch, values: list[Any], errors: list[Any] | None) -> pa.RecordBatch:
        names = [n for n in batch.schema.names if n != TS]
        arrays = [batch.column(n) for n in names]
        names.append(self.node.alias)
        arrays.append(from_python(values) if values else pa.nulls(0))
        if errors is not None and any(e is not None for e in errors):
            names.append(ML_ERROR_PREFIX + self.node.alias)
            arrays.append(pa.array([None if e is None else str(e) for e in errors], pa.string()))
        names.append(TS)
        arrays.append(batch.column(TS))
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def _dead(self, batch: pa.RecordBatch, arg: pa.Array, errors: list[Any]) -> pa.RecordBatch:
        failed = [i for i, e in enumerate(errors) if e is not None]
        take = pa.array(failed, pa.int64())
        return pa.RecordBatch.from_arrays(
            [
                pa.array([self.node.function] * len(failed), pa.string()),
                pa.array([getattr(errors[i], "status", None) for i in failed], pa.int64()),
                pa.array([str(errors[i]) for i in failed], pa.string()),
                arg.take(take),
                batch.column(TS).take(take),
            ],
            names=["endpoint", "status", "error", "event", TS],
        )


class _Held:
    """Watermarks held back on their way to the scorer, shared by the feeder thread (which
    counts the chunks it sends) and the caller's thread (which counts the answered ones).

    A watermark goes to the scorer as a marker chunk unless the last chunk sent is itself a
    marker still unanswered: then it is held, a later one replacing it, and goes before the
    next events, or is handed on by the caller once every chunk sent is answered. So the
    scorer sees at most one marker after each run of events, whatever the idle ticks."""

    __slots__ = ("_lock", "_mark", "_marker_last", "_out")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mark: Item | None = None
        self._out = 0  # chunks sent and not yet answered
        self._marker_last = False  # the last chunk sent is a marker

    def hold(self, mark: Item) -> bool:
        """Feeder: whether ``mark`` is held (else it goes as a marker chunk). The end of the
        stream is never held; it makes a watermark held before it moot."""
        with self._lock:
            if isinstance(mark, Watermark) and mark.is_end:
                self._mark = None
            elif self._out and self._marker_last:
                self._mark = mark
                return True
            self._out += 1
            self._marker_last = True
            return False

    def events(self, chunks: int) -> Item | None:
        """Feeder: ``chunks`` event chunks go to the scorer; the watermark held before them,
        if any (it goes first, as a marker chunk)."""
        with self._lock:
            mark, self._mark = self._mark, None
            self._out += chunks + (mark is not None)
            self._marker_last = False
            return mark

    def answered(self, chunks: int = 1) -> Item | None:
        """Caller: ``chunks`` chunks answered; the held watermark once every chunk sent is."""
        with self._lock:
            self._out -= chunks
            if self._out or self._mark is None:
                return None
            mark, self._mark = self._mark, None
            return mark


def _argument(expr: bx.BoundExpr, batch: pa.RecordBatch, ctx: ExecContext) -> pa.Array:
    """The per-event argument column. A record argument (the several arguments of
    ``udf.f(a, b)``, the seed form's payload) is assembled here rather than by the evaluator,
    which stores a mixed-type (Variant) field as its JSON text: here such a field keeps its
    type, so the codec sends ``21.5`` and ``"x"``, as it does for the same field passed alone."""
    if isinstance(expr, bx.MakeRecord):
        fields = [_argument(field_expr, batch, ctx) for _, field_expr in expr.fields]
        return pa.StructArray.from_arrays(fields, names=[name for name, _ in expr.fields])
    value = evaluate(expr, batch, ctx)
    return value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value


PIECE_ROWS = 8192


def piece_rows(batch_size: int) -> int:
    """Rows per piece an input batch is cut into: whole requests, about PIECE_ROWS.

    Each piece's answers go downstream as soon as they are all in, instead of after the whole
    (64k-row) input batch: the first scored rows come out after a few requests, and writing
    them overlaps the requests still in flight (on a 100k-row file the last batch's write was
    a tenth of the run, done after the last answer).
    """
    return batch_size * max(1, PIECE_ROWS // batch_size)


class DeadLetterChannel:
    """Failed events of every ML call that names this dead-letter output, in arrival order.

    Operators ``put`` batches (possibly from a scorer's feeder thread when ML calls are
    chained; deque appends are atomic); :meth:`stream` is the output the runtime pulls.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._batches: deque[pa.RecordBatch] = deque()

    def put(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._batches.append(batch)

    def stream(self, running: _Running) -> Iterator[Item]:
        """Yield what has arrived; an empty batch while the query's outputs still run (the
        runtime pulls outputs in turn), and end once they all ended and the rest is out."""
        empty = pa.RecordBatch.from_arrays([], names=[])
        while True:
            while self._batches:
                yield self._batches.popleft()
            if not running.count:
                return
            yield empty


class _Running:
    """How many of the query's own outputs are still producing."""

    def __init__(self) -> None:
        self.count = 0

    def track(self, items: Iterator[Item]) -> Iterator[Item]:
        self.count += 1
        try:
            yield from items
        finally:
            self.count -= 1


def with_dead_letters(
    outputs: list[tuple[str, Iterator[Item]]], channels: dict[str, DeadLetterChannel]
) -> list[tuple[str, Iterator[Item]]]:
    """The query's outputs followed by one output per dead-letter channel."""
    if not channels:
        return outputs
    taken = {name.lower() for name, _ in outputs}
    for name in channels:
        if name.lower() in taken:
            raise ConfigError(
                f"dead-letter output '{name}' is also an output of the query (INTO {name}); "
                "give the function's dead_letter another name"
            )
    running = _Running()
    tracked = [(name, running.track(items)) for name, items in outputs]
    return tracked + [(name, channel.stream(running)) for name, channel in channels.items()]
