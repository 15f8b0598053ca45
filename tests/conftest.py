"""Shared fixtures and options for the test suite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-expected", action="store_true",
                     help="rewrite expected files of tests/cases from the actual output")


@pytest.fixture
def fixed_clock():
    moment = dt.datetime(2024, 5, 14, 12, 0, 0, tzinfo=dt.timezone.utc)
    return lambda: moment
