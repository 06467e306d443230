"""`tunesmith eval` on classification runs: majority class | tuned, the confusion matrix, the verdicts that apply."""

import json
import shutil

import pytest
from tests.conftest import SENTIMENT_ROWS
from tests.evaluate.conftest import classify_config, write_channel_csv

from tunesmith.errors import ConfigError
from tunesmith.evaluate.run import EvalOptions, evaluate_run
from tunesmith.finetune import train
from tunesmith.runs import read_run_config

LABELS = ["negative", "neutral", "positive"]
TEST_ROWS = SENTIMENT_ROWS + SENTIMENT_ROWS[:2]  # 5 positive, 3 neutral, 4 negative
GOTCHAS = ["overfitting", "exported checkpoint", "bias", "fine-tune vs the best cheap alternative"]


def test_a_classify_run_is_scored_against_the_majority_class_of_its_training_labels(tiny_classify_eval):
    result, events = tiny_classify_eval
    report = result.report
    assert report["task"] == "classify" and report["columns"] == ["majority class", "classic (TF-IDF + LR)", "tuned"]
    assert report["labels"] == LABELS and report["examples"] == 12 and report["primary_metric"] == "accuracy"
    # positive is the test file's most frequent label (5 of 12); the baseline must use training's (negative, 4 of 10)
    assert report["majority_label"] == "negative"
    table = report["table"]
    per_label = [f"{metric}: {label}" for label in LABELS for metric in ("precision", "recall")]
    assert list(table) == ["accuracy", "macro-F1", *per_label]
    assert table["accuracy"]["majority class"] == pytest.approx(4 / 12)
    assert table["recall: negative"]["majority class"] == 1 and table["recall: positive"]["majority class"] == 0
    assert [v["gotcha"] for v in report["verdicts"]] == GOTCHAS
    lift = report["fine_tune_or_prompt"]
    best_cheap = max(("majority class", "classic (TF-IDF + LR)"), key=lambda c: table["accuracy"][c])
    assert lift["baseline_name"] == best_cheap and lift["baseline"] == table["accuracy"][best_cheap]
    assert lift["classic_seconds"] < 30 and report["seconds"]["classic (TF-IDF + LR)"] >= 0
    assert {"forgetting", "memorisation", "few_shot"}.isdisjoint(report)
    assert json.loads(result.json_path.read_text()) == report
    markdown = result.md_path.read_text()
    assert "| metric | majority class | classic (TF-IDF + LR) | tuned |" in markdown
    assert "## Not applicable to classifiers" in markdown
    assert "| true \\ predicted | negative | neutral | positive |" in markdown
    phases = [e.name for e in events if type(e).__name__ == "Phase"]
    assert any(p.startswith("tuned classifies 12 examples") for p in phases)


def test_the_confusion_matrix_counts_each_prediction_once_and_agrees_with_the_table(tiny_classify_eval):
    report = tiny_classify_eval[0].report
    answers, matrix, table = report["answers"], report["confusion"]["matrix"], report["table"]
    assert [a["label"] for a in answers] == [label for _, label in TEST_ROWS]
    assert sum(map(sum, matrix)) == report["examples"] == len(answers)
    counted = [[0] * 3 for _ in LABELS]
    for answer in answers:
        counted[LABELS.index(answer["label"])][LABELS.index(answer["predicted"])] += 1
    assert matrix == counted
    assert table["accuracy"]["tuned"] == pytest.approx(sum(matrix[i][i] for i in range(3)) / 12)
    for i, label in enumerate(LABELS):
        predicted, actual = sum(row[i] for row in matrix), sum(matrix[i])
        assert table[f"precision: {label}"]["tuned"] == pytest.approx(matrix[i][i] / predicted if predicted else 0)
        assert table[f"recall: {label}"]["tuned"] == pytest.approx(matrix[i][i] / actual)


def test_accuracy_per_slice_is_the_accuracy_of_that_slice_s_rows(tiny_classify_eval):
    report = tiny_classify_eval[0].report
    slices = {s["value"]: s for s in report["bias"]["slices"]}
    assert report["bias"]["field"] == "channel" and report["bias"]["metric"] == "accuracy"
    for value, rows in (("app", report["answers"][::2]), ("web", report["answers"][1::2])):
        correct = sum(a["label"] == a["predicted"] for a in rows)
        assert slices[value]["n"] == 6 and slices[value]["metric"] == pytest.approx(correct / 6)
    gap = max(s["metric"] for s in slices.values()) - min(s["metric"] for s in slices.values())
    assert report["verdicts"][2]["value"] == pytest.approx(gap)


@pytest.mark.parametrize("strategy", ["lora", "head"])
def test_scoring_the_run_s_eval_file_reproduces_what_training_measured(
    strategy, tmp_path, tiny_bert_dir, tiny_classify_run
):
    """Training scored its exported model on data.eval (train_summary.json); eval of the same file, through the
    saved adapter/ (lora) or model/ (head), must predict the same classes."""
    if strategy == "lora":
        run_dir = shutil.copytree(tiny_classify_run, tmp_path / "run")  # leave the shared run's eval.json alone
    else:
        config = classify_config(tmp_path, tiny_bert_dir, strategy)
        train(config)
        run_dir = config.run_dir
    assert (run_dir / ("adapter" if strategy == "lora" else "model")).is_dir()
    summary = json.loads((run_dir / "train_summary.json").read_text())["eval_metrics"]
    eval_file = read_run_config(run_dir).data.eval
    report = evaluate_run(run_dir, EvalOptions(data=eval_file, bootstrap=20)).report
    assert report["examples"] == summary["n"] == 10
    assert report["confusion"]["matrix"] == summary["confusion"]
    assert report["table"]["accuracy"]["tuned"] == pytest.approx(summary["accuracy"])


def test_a_data_file_with_a_label_unseen_in_training_is_a_one_line_error_naming_its_line(tmp_path, tiny_classify_run):
    rows = [("fine I guess", "neutral"), ("oh great, another delay", "sarcastic"), ("whatever", "bored")]
    path = write_channel_csv(tmp_path / "unseen.csv", rows)
    with pytest.raises(ConfigError) as raised:
        evaluate_run(tiny_classify_run, EvalOptions(data=path))
    message = str(raised.value)
    assert message.startswith("unseen.csv:3: label 'sarcastic' was not seen in training (negative, neutral, positive)")
    assert message.endswith("(and 1 more rows)") and "\n" not in message


def test_generation_options_and_an_unknown_slice_column_are_config_errors(tiny_classify_run):
    with pytest.raises(ConfigError, match="--constrain applies to generation runs"):
        evaluate_run(tiny_classify_run, EvalOptions(constrain="json"))
    with pytest.raises(ConfigError, match="no record in test.csv has a field 'gender'"):
        evaluate_run(tiny_classify_run, EvalOptions(slice_by="gender"))
