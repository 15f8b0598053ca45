"""Every SAQL example on the event-time, joins and analytic-function pages is a tested case
folder: the block must say which (``<!-- case: path -->``) and be that folder's query, so the
case runner checks its output (test_cases.py) and the page cannot drift from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/event-time.md", "docs/joins.md", "docs/analytic-functions.md"]
BLOCK = re.compile(r"((?:<!-- [\w-]+: [^>]* -->\s*\n)*)```saql\n(.*?)```", re.S)


def _case_dir(ref: str) -> Path:
    if ref.startswith("shared/"):
        return ROOT.parent / "shared" / "conformance" / "cases" / ref[len("shared/"):]
    return ROOT / ref


@pytest.mark.parametrize("page", PAGES)
def test_every_example_is_a_case_folder(page: str) -> None:
    text = (ROOT / page).read_text()
    blocks = BLOCK.findall(text)
    assert blocks, f"{page} has no SAQL examples"
    for directives, code in blocks:
        match = re.search(r"<!-- case: ([^>]*?) -->", directives)
        assert match, f"{page}: a SAQL block without <!-- case: ... -->:\n{code}"
        folder = _case_dir(match.group(1).strip())
        if not folder.exists():
            pytest.skip(f"{folder} is not available here")
        assert (folder / "query.asaql").read_text().strip() == code.strip(), folder
