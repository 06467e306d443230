"""Every number in eval.md can be recomputed from eval.json: the markdown is rendered from the JSON alone."""

import copy
import json
import random
import re

import pytest

from tunesmith.evaluate.report import eval_markdown, num, pct, points, signed

NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?: pts|%)?")


def leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def derivable(report) -> set[str]:
    """Each number of the JSON in every format the renderer uses, and the numbers written inside its strings."""
    allowed = {"95"}  # "95% CI": the interval's level, fixed by the method
    for leaf in leaves(report):
        if isinstance(leaf, bool) or leaf is None:
            continue
        if isinstance(leaf, int | float):
            allowed |= {
                str(int(leaf)),
                f"{leaf:.0f}",
                pct(leaf),
                num(leaf),
                signed(leaf),
                signed(leaf, 4),
                points(leaf),
            }
            allowed |= {f"{leaf:+.3f}", f"{leaf:.1%}", f"{leaf:.4f}"}
        else:
            allowed |= set(NUMBER.findall(str(leaf)))
    return allowed


def unexplained(report) -> list[str]:
    markdown = eval_markdown(report)
    return [n for n in NUMBER.findall(markdown) if n not in derivable(report)]


def scrambled(report, seed):
    """The same report with every float replaced by another, so a number the renderer computes itself (or copies
    from somewhere else) shows up as a mismatch."""
    rng = random.Random(seed)

    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, float):
            return rng.uniform(-3, 3)
        return value

    return walk(copy.deepcopy(report))


EVALS = ["tiny_eval", "tiny_qa_eval", "tiny_classify_eval"]  # extraction, questions about a context (--qa), classify


@pytest.mark.parametrize("evaluated", EVALS)
def test_eval_md_is_rendered_from_eval_json_alone(evaluated, request):
    result, _ = request.getfixturevalue(evaluated)
    from_disk = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert result.md_path.read_text(encoding="utf-8") == eval_markdown(from_disk)


@pytest.mark.parametrize("evaluated", EVALS)
def test_every_number_in_eval_md_is_in_eval_json(evaluated, request):
    report = json.loads(request.getfixturevalue(evaluated)[0].json_path.read_text(encoding="utf-8"))
    assert not unexplained(report)
    for seed in range(3):
        assert not unexplained(scrambled(report, seed))


def test_the_check_catches_a_number_that_is_not_in_the_json(tiny_eval):
    report = json.loads(tiny_eval[0].json_path.read_text(encoding="utf-8"))
    report["table"]["exact match"]["tuned"] = 0.5
    # A value whose percentage no other number of this report produces (the tiny model's scores vary by machine
    # and test order, and 12.3% once came out of one of them).
    stale = next(v for v in (0.123456, 0.234567, 0.345678, 0.456789) if f"{v:.1%}" not in derivable(report))
    report["table"]["exact match"]["tuned"] = stale
    markdown = eval_markdown(report)
    assert f"{stale:.1%}" in markdown
    report["table"]["exact match"]["tuned"] = 0.5  # the markdown above no longer derives from this JSON
    assert f"{stale:.1%}" in [n for n in NUMBER.findall(markdown) if n not in derivable(report)]
