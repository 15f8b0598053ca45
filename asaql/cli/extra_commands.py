"""Subcommands contributed by other modules (``asaql test``, ...): each registers a parser and
a handler here so that cli/main.py stays a short table."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["handler", "register"]

Handler = Callable[[argparse.Namespace], int]
_HANDLERS: dict[str, Handler] = {}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the parsers of optional subcommands."""
    try:
        from asaql.project import cli as project_cli
    except ImportError:
        return
    for name, (configure, run) in project_cli.COMMANDS.items():
        configure(sub.add_parser(name, help=run.__doc__))
        _HANDLERS[name] = run


def handler(name: str | None) -> Handler | None:
    return _HANDLERS.get(name or "")
