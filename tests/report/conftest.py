"""Report fixtures: the JSON files real tiny runs wrote (a generation run with its eval and export, a classifier, a
compare of two strategies, a search of three trials), copied to a temporary folder for each test."""

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
DIRECTORIES = {
    "sft": "sft",
    "classify": "classify",
    "compare": "compare/cmp-compare",
    "search": "search/tiny-tune",
}


@pytest.fixture
def outputs(tmp_path) -> Path:
    """A copy of every fixture directory; DIRECTORIES[kind] below it is the one a report is built for."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "runs"))
