"""The only numbers a report shows that no file holds as such, each named: the trainable share of the parameters,
and the counts of the answer filters. The number check (numbers.unexplained) accepts these and nothing else."""

from __future__ import annotations

from typing import Any

from .answers import AnswerTable
from .run_page import trainable_share
from .sources import CompareFiles, RunFiles, SearchFiles


def derived_for_run(run: RunFiles, answers: AnswerTable | None) -> dict[str, Any]:
    values: dict[str, Any] = {"trainable_share": trainable_share(run.summary)}
    if answers is not None:
        values["answers"] = len(answers.rows)
        values["answer_flags"] = answers.counts()
    return values


def derived_for_compare(compare: CompareFiles) -> dict[str, Any]:
    return {"trainable_share": {s: trainable_share(r.summary) for s, r in compare.runs.items()}}


def derived_for_search(search: SearchFiles) -> dict[str, Any]:
    return {"trials": len(search.search.get("trials", []))}
