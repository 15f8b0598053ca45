"""AST -> logical plan.

``bind(script, catalog)`` walks the statements in order: CREATE TABLE declares input schemas,
WITH steps become named sub-plans, every other SELECT becomes an ``Output``. Per SELECT the
order of evaluation is ASA's (asa-language.md §15)::

    FROM/TIMESTAMP BY -> JOIN / APPLY -> WHERE -> GROUP BY + aggregates -> HAVING -> SELECT -> INTO
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asaql.errors import BindError, Diagnostic, did_you_mean
from asaql.plan import logical as lp
from asaql.plan.bind.expressions import ExprBinder, Scope
from asaql.plan.bind.group import check_aggregate_placement
from asaql.plan.bind.select import bind_select
from asaql.plan.bind.substreams import check_substreams
from asaql.plan.catalog import Catalog
from asaql.sql import ast

__all__ = ["BindResult", "bind"]

DEFAULT_OUTPUT = "output"


@dataclass
class BindResult:
    plan: lp.LogicalPlan
    diagnostics: list[Diagnostic] = field(default_factory=list)


@dataclass
class ScriptContext:
    """State shared by the statements of one script."""

    catalog: Catalog
    strict: bool
    diagnostics: list[Diagnostic] = field(default_factory=list)
    steps: dict[str, tuple[str, list[str] | None]] = field(default_factory=dict)
    schemas: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    ml_counter: int = 0

    def step(self, name: str) -> tuple[str, list[str] | None] | None:
        return self.steps.get(name.lower())

    def unknown_source(self, name: str, span: object) -> BindError:
        candidates = [i.name for i in self.catalog.inputs.values()] + [n for n, _ in self.steps.values()]
        return BindError(
            f"unknown input or step '{name}'",
            span=span,  # type: ignore[arg-type]
            code="unknown_input",
            help=did_you_mean(name, candidates)
            or (f"known inputs: {', '.join(sorted(candidates))}" if candidates else
                "declare it as an input (asaql run: --input NAME=PATH, or --ref for reference "
                "data; the library: Session.add_input / add_reference)"),
        )


def bind(script: ast.Script, catalog: Catalog, *, strict: bool = False,
         collect_errors: bool = False) -> BindResult:
    """Bind a parsed script against a catalog of inputs and functions. The first error is
    raised; with ``collect_errors`` (``asaql check``) every statement is bound and each error
    becomes a diagnostic (a failed WITH step is then known, with unknown fields, so that the
    statements reading it report their own errors, not its)."""
    ctx = ScriptContext(catalog=catalog, strict=strict)
    plan = lp.LogicalPlan()
    failed = 0
    for stmt in script.statements:
        try:
            if isinstance(stmt, ast.CreateTable):
                _create_table(stmt, ctx)
            elif isinstance(stmt, ast.WithBlock):
                for step in stmt.steps:
                    try:
                        _with_step(step, ctx, plan)
                    except BindError:
                        if ctx.step(step.name) is None:
                            ctx.steps[step.name.lower()] = (step.name, None)
                        raise
            else:
                plan.outputs.append(_output(stmt, ctx))
        except BindError as exc:
            if not collect_errors:
                raise
            failed += 1
            ctx.diagnostics.append(exc.diagnostic())
    if not failed:
        _check_outputs(plan)
        check_substreams(plan)
    return BindResult(plan=plan, diagnostics=ctx.diagnostics)


def _create_table(stmt: ast.CreateTable, ctx: ScriptContext) -> None:
    binder = ExprBinder(Scope(), ctx.diagnostics, strict=ctx.strict)
    cols = tuple((c.name, binder.type_name(c.type_name, c.span)) for c in stmt.columns)
    ctx.schemas[stmt.name.lower()] = cols


def _with_step(step: ast.WithStep, ctx: ScriptContext, plan: lp.LogicalPlan) -> None:
    if ctx.step(step.name) is not None:
        raise BindError(f"step '{step.name}' is defined twice", span=step.span, code="duplicate_step")
    for select in _selects(step.query):
        if select.into is not None:
            raise BindError(
                "INTO is not allowed inside a WITH step",
                span=select.into_span or select.span,
                code="into_in_with",
                help="move the SELECT ... INTO out of the WITH block and read the step from it",
            )
    node, fields = _query(step.query, ctx)
    plan.steps[step.name] = node
    ctx.steps[step.name.lower()] = (step.name, fields)


def _output(stmt: ast.Select | ast.Union, ctx: ScriptContext) -> lp.Output:
    with_into = [s for s in _selects(stmt) if s.into is not None]
    if len(with_into) > 1:
        second = with_into[1]
        raise BindError(
            f"a UNION has one output: INTO may appear only once (found INTO {with_into[0].into} "
            f"and INTO {second.into})",
            span=second.into_span or second.span,
            code="union_into",
            help="name the output once, with INTO in the first SELECT of the UNION",
        )
    into = with_into[0].into if with_into else None
    node, _ = _query(stmt, ctx)
    return lp.Output(child=node, name=into or DEFAULT_OUTPUT, span=stmt.span)


def _query(query: ast.Select | ast.Union, ctx: ScriptContext) -> tuple[lp.PlanNode, list[str] | None]:
    for select in _selects(query):
        check_aggregate_placement(select)
    if isinstance(query, ast.Select):
        return bind_select(query, ctx)
    parts = [bind_select(s, ctx) for s in query.queries]
    first = parts[0][1]
    for select, (_, fields) in zip(query.queries, parts, strict=True):
        if first is not None and fields is not None and len(fields) != len(first):
            raise BindError(
                f"every query of a UNION must have the same number of columns: the first has "
                f"{len(first)}, this one {len(fields)}",
                span=select.span, code="union_width",
            )
    return lp.Union(children=[n for n, _ in parts], span=query.span), parts[0][1]


def _selects(query: ast.Select | ast.Union) -> list[ast.Select]:
    return [query] if isinstance(query, ast.Select) else list(query.queries)


def _check_outputs(plan: lp.LogicalPlan) -> None:
    if not plan.outputs:
        raise BindError("the query has no SELECT that produces output", code="no_output")
