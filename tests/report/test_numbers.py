"""Every number in report.html is in the files it was built from (in one of the report's formats, or one of its
named derivations): the check eval.md has, extended to the whole page, and shown to catch a number that is not."""

import json
import random

import pytest
from tests.report.conftest import DIRECTORIES

from tunesmith.report.build import build_report
from tunesmith.report.numbers import NUMBER, derivable, unexplained, visible_text


@pytest.mark.parametrize("kind", DIRECTORIES)
def test_every_number_in_report_html_is_in_its_files(kind, outputs):
    built = build_report(outputs / DIRECTORIES[kind])
    assert built.kind == ("run" if kind in ("sft", "classify") else kind)
    assert NUMBER.findall(visible_text(built.html))  # the page does show numbers
    assert unexplained(built.html, built.documents) == []


def scramble_floats(value, rng):
    if isinstance(value, dict):
        return {k: scramble_floats(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [scramble_floats(v, rng) for v in value]
    if isinstance(value, float):
        return round(rng.uniform(0.001, 3.0), 6)
    return value


def scramble_directory(root, seed):
    """Every float in every JSON / JSONL file under `root` replaced by another, so that a number the report
    computed itself, or copied from somewhere else, no longer matches."""
    rng = random.Random(seed)
    for path in root.rglob("*.json"):
        path.write_text(json.dumps(scramble_floats(json.loads(path.read_text()), rng)))
    for path in root.rglob("*.jsonl"):
        lines = [json.dumps(scramble_floats(json.loads(line), rng)) for line in path.read_text().splitlines() if line]
        path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("kind", DIRECTORIES)
def test_a_report_of_scrambled_files_shows_only_the_scrambled_numbers(kind, outputs):
    scramble_directory(outputs, seed=len(kind))
    built = build_report(outputs / DIRECTORIES[kind])
    assert unexplained(built.html, built.documents) == []


def test_the_check_catches_a_planted_number(outputs):
    built = build_report(outputs / "sft")
    planted = built.html.replace("</table>", "<tr><td>0.987654</td></tr></table>", 1)
    assert unexplained(planted, built.documents) == ["0.987654"]
    in_a_plot = built.html.replace("</svg>", "<text>12.345</text></svg>", 1)
    assert unexplained(in_a_plot, built.documents) == ["12.345"]


def test_the_check_catches_a_number_the_files_no_longer_hold(outputs):
    """A page built from yesterday's eval.json does not pass against today's."""
    run = outputs / "sft"
    report = json.loads((run / "eval.json").read_text())
    stale = next(v for v in (0.123456, 0.234567, 0.345678) if f"{100 * v:.1f}%" not in derivable([report]))
    report["table"]["exact match"]["tuned"] = stale
    (run / "eval.json").write_text(json.dumps(report))
    old_page = build_report(run).html
    assert f"{100 * stale:.1f}%" in visible_text(old_page)
    report["table"]["exact match"]["tuned"] = 0.5
    (run / "eval.json").write_text(json.dumps(report))
    assert f"{100 * stale:.1f}%" in unexplained(old_page, build_report(run).documents)


def test_numbers_glued_to_names_are_names_and_script_text_is_not_read():
    html = "<p>q4_k_m bf16 SmolLM2 step 7</p><script>var x = 123;</script><p title='tip 5'>x</p>"
    assert NUMBER.findall(visible_text(html)) == ["7", "5"]
