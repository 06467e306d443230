"""`tunesmith report` and `tunesmith runs` as a user meets them, and the rebuild every command ends with: a report
that cannot be built is one line, never a lost run."""

import json

from tests.report.conftest import DIRECTORIES
from typer.testing import CliRunner

from tunesmith.cli import app
from tunesmith.layout import REPORT_HTML
from tunesmith.report import rebuild


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_report_writes_report_html_for_a_run_a_compare_and_a_search(outputs):
    for directory in DIRECTORIES.values():
        result = invoke("report", outputs / directory)
        assert result.exit_code == 0, result.output
        page = (outputs / directory / REPORT_HTML).read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>") and "written:" in result.output


def test_report_of_a_folder_that_is_no_run_is_one_line_and_exit_2(tmp_path):
    result = invoke("report", tmp_path)
    assert result.exit_code == 2 or "not a run, compare or tune directory" in str(result.exception)


def test_runs_lists_status_best_loss_headline_and_verdicts(outputs):
    result = invoke("runs", "--output-dir", outputs, "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["tiny"]["status"] == "exported"  # train_summary, eval.json and export/export.json
    assert rows["tiny"]["headline"].startswith("entity F1 ")
    verdicts = [
        v["status"]
        for name in ("eval.json", "export/export.json")
        for v in json.loads((outputs / "sft" / name).read_text())["verdicts"]
    ]
    assert rows["tiny"]["verdicts"] == {s: verdicts.count(s) for s in ("ok", "warn", "fail")}
    assert rows["tiny-classify-lora"]["headline"].startswith("accuracy ")
    table = invoke("runs", "--output-dir", outputs)
    assert "tiny-classify-lora" in table.output and "entity" in table.output


def test_runs_lists_compares_and_searches_too(outputs):
    compare = json.loads(invoke("runs", "--output-dir", outputs / "compare", "--json").output)
    assert {r["kind"] for r in compare} == {"compare", "run"}
    (search,) = json.loads(invoke("runs", "--output-dir", outputs / "search", "--json").output)
    assert search["status"] == "3/3 trials" and search["headline"].startswith("eval_loss ")


def test_a_report_that_cannot_be_built_leaves_the_run_alone_and_says_why(outputs):
    run = outputs / "sft"
    (run / "eval.json").write_text("{not json", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    path, reason = rebuild(run)
    assert path is None and "eval.json: damaged" in reason and "tunesmith report" in reason
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
