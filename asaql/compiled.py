"""The compiled query, :class:`Job` (what ``Session.compile`` returns): its AST, logical and
optimized plans and ``explain()``, and its runs, ``stream()`` and ``run()``. (Job *files*, the
TOML that ``asaql run job.toml`` reads, are :mod:`asaql.job`.)

A Job holds no run state: each ``run()`` / ``stream()`` builds its operators and its
:class:`~asaql.exec.operator.ExecContext` (metrics, skipped events) afresh, so a job runs any
number of times, from several threads at once, each run with its own inputs if ``inputs=``
is given.

>>> import asaql
>>> job = asaql.compile("SELECT k INTO hot FROM t WHERE k > 1", inputs={"t": [{"k": 1}, {"k": 2}]})
>>> job
Job('SELECT k INTO hot FROM t WHERE k > 1', inputs=['t'], outputs=['hot'])
>>> job.run(inputs={"t": [{"k": 5}]}).rows("hot")
[{'k': 5}]
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from asaql.errors import ConfigError, Diagnostic
from asaql.exec import physical
from asaql.exec.operator import ExecContext
from asaql.exec.runtime import pull, strip_internal
from asaql.inputs import InputData
from asaql.plan import logical as lp
from asaql.plan.optimizer import optimize
from asaql.result import ResultStream, RunContext, RunResult, collect, unknown_output

if TYPE_CHECKING:
    from asaql.session import Session

__all__ = ["Job"]


@dataclass(repr=False)
class Job:
    """A compiled query: AST, logical plan, optimized plan; runs any number of times.

    A run's state (operators, metrics, the events it skipped) lives in the run, never on the
    job: runs do not see each other, and two threads may run one job at once.
    """

    session: Session
    text: str
    filename: str
    script: Any
    logical: lp.LogicalPlan
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __repr__(self) -> str:
        query = " ".join(self.text.split())
        query = query if len(query) <= 60 else query[:57] + "..."
        return f"Job({query!r}, inputs={self.input_names}, outputs={self.output_names})"

    @property
    def plan(self) -> lp.LogicalPlan:
        """The optimized plan (a fresh copy: runs never share plan nodes)."""
        return optimize(copy.deepcopy(self.logical), enabled=self.session.options.optimize)

    @property
    def output_names(self) -> list[str]:
        """The outputs, in script order (``INTO`` targets, then dead-letter outputs)."""
        names = [o.name for o in self.logical.outputs] + self.logical.dead_letters()
        return list(dict.fromkeys(names))

    @property
    def input_names(self) -> list[str]:
        """The inputs the query reads (stream, reference data and ML reference inputs)."""
        ml_inputs = {name.lower() for name, kind in self.session.inputs.items() if kind == "ml"}
        names = [n.input_name for n in self.logical.nodes() if isinstance(n, lp.Scan)]
        names += [n.function for n in self.logical.nodes()
                  if isinstance(n, lp.MLScore) and n.function.lower() in ml_inputs]  # not udf.<name>
        return list(dict.fromkeys(names))

    @property
    def function_names(self) -> list[str]:
        """The ML functions and endpoints the query calls."""
        return list(dict.fromkeys(n.function for n in self.logical.nodes() if isinstance(n, lp.MLScore)))

    def explain(self) -> str:
        """The logical, optimized and physical plans, as text."""
        plan = self.plan
        return "\n".join([
            "== Logical plan ==", self.logical.explain(), "",
            "== Optimized plan ==", plan.explain(), "",
            "== Physical plan ==", physical.describe_physical(plan),
        ])

    def context(self) -> ExecContext:
        """A fresh run context (metrics, clock, bad-data policy) from the session's options."""
        opts = self.session.options
        ctx = RunContext(batch_size=opts.batch_size, on_data_error=opts.on_data_error,
                         options=opts, report=self.session.report)
        if opts.clock is not None:
            ctx.clock = opts.clock
            ctx.start_time = opts.clock()
        return ctx

    def stream(self, ctx: ExecContext | None = None, *,
               inputs: Mapping[str, InputData] | None = None) -> ResultStream:
        """Start a run; iterate the result for (output name, batch) pairs as results are
        produced (a window's rows as soon as the watermark closes it).

        Args:
            ctx: a run context (default: a fresh one, see :meth:`context`).
            inputs: data for this run only, by input name, replacing what the session holds
                (the same kinds of data as ``Session.add_input``).

        The run is lazy: nothing is read before the first item is asked for. Closing the
        stream (``close()``, leaving a ``with`` block, or dropping it) stops the run: inputs,
        sinks and ML worker threads are released.
        """
        ctx = ctx or self.context()
        overrides = self.session.run_inputs(inputs)
        return ResultStream(self._results(ctx, overrides), ctx)

    def _results(self, ctx: ExecContext, overrides: dict[str, Any]) -> Iterator[tuple[str, pa.RecordBatch]]:
        operators = physical.build(self.plan, ctx, self.session.open_input(ctx, overrides))
        for name, batch in pull(operators, ctx):
            yield name, strip_internal(batch)

    def run(self, sinks: dict[str, Any] | None = None, *, inputs: Mapping[str, InputData] | None = None,
            ctx: ExecContext | None = None) -> RunResult:
        """Run to the end.

        Args:
            sinks: output name -> a path or a Sink object (``write(batch)``, ``close()``);
                outputs without a sink are collected and returned as tables.
            inputs: data for this run only (see :meth:`stream`).
            ctx: a run context (default: a fresh one).

        Returns:
            One table per collected output (an output that produced no rows is an empty table
            without columns), the metrics, and the malformed events skipped.
        """
        for name in sinks or {}:
            if name not in self.output_names:
                raise ConfigError(unknown_output(name, self.output_names))
        stream = self.stream(ctx, inputs=inputs)
        return collect(stream, dict(sinks or {}), self.output_names)
