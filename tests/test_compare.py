"""compare: every strategy trains on the same data, and the table's numbers are the runs' own."""

import json

import pytest
from tests.conftest import write_sentiment_csv

from tunesmith.compare import (
    Comparison,
    StrategyRow,
    compare,
    comparison_cells,
    comparison_markdown,
    strategy_config,
)
from tunesmith.config import validate_config
from tunesmith.errors import TunesmithError


def sentiment_config(tmp_path, model_dir):
    data = write_sentiment_csv(tmp_path / "train.csv")
    return validate_config(
        {
            "name": "cmp",
            "base": str(model_dir),
            "task": "classify",
            "output_dir": str(tmp_path / "runs"),
            "lora": {"r": 4, "lora_alpha": 8},
            "data": {"train": str(data), "eval": str(data), "text_column": "tweet", "label_column": "sentiment"},
            "train": {"learning_rate": 1e-3, "warmup_steps": 0, "precision": "fp32", "max_steps": 3, "batch_size": 4},
            "compare": {
                "overrides": {"head": {"train.learning_rate": 0.05}, "lora": {"train.learning_rate": 0.05}},
                "drift_texts": 4,
            },
        }
    )


def test_strategy_config_applies_its_overrides_and_names_the_run(tmp_path, tiny_bert_dir):
    config = sentiment_config(tmp_path, tiny_bert_dir)
    head = strategy_config(config, "head")
    assert (head.strategy, head.name, head.train.learning_rate) == ("head", "cmp-head", 0.05)
    assert strategy_config(config, "full").train.learning_rate == 1e-3


def test_compare_trains_each_strategy_and_writes_one_table(tmp_path, tiny_bert_dir):
    config = sentiment_config(tmp_path, tiny_bert_dir)
    comparison = compare(config, max_steps=2)
    rows = {r.strategy: r for r in comparison.rows}
    assert list(rows) == ["full", "head", "lora"]
    assert rows["full"].trainable_percent == 100.0
    assert rows["head"].trainable_params == 32 * 3 + 3  # the classifier of a 32-wide body, 3 labels
    assert 0 < rows["lora"].trainable_percent < 100
    assert all(r.steps == 2 and r.artefact_bytes > 0 and r.peak_rss_bytes > 0 for r in rows.values())
    assert rows["head"].drift < 1e-6  # a frozen body did not move (cosine rounding aside)
    assert rows["full"].drift > 1e-4 and rows["lora"].drift > 1e-4
    assert comparison.baseline["accuracy"] == 0.4  # 4 of the 10 rows are negative
    saved = json.loads((tmp_path / "runs" / "cmp-compare" / "compare.json").read_text())
    assert [r["strategy"] for r in saved["rows"]] == ["full", "head", "lora"]
    markdown = (tmp_path / "runs" / "cmp-compare" / "compare.md").read_text()
    assert markdown == comparison_markdown(comparison)
    for row in saved["rows"]:
        assert f"{100 * row['metrics']['accuracy']:.1f}%" in markdown


def test_an_error_in_a_strategy_s_process_is_raised_here_with_its_message_and_exit_code(tmp_path, tiny_bert_dir):
    config = sentiment_config(tmp_path, tiny_bert_dir)
    bad = tmp_path / "bad.csv"
    bad.write_text("tweet,sentiment\ngood day,positive\n,negative\n", encoding="utf-8")
    broken = validate_config(
        config.model_dump(mode="json") | {"data": config.data.model_dump(mode="json") | {"train": str(bad)}}
    )
    with pytest.raises(TunesmithError, match="bad.csv:3") as raised:
        compare(broken, ["head"], max_steps=1)
    assert raised.value.exit_code == 2


def test_compare_md_and_the_terminal_table_show_the_same_cells():
    from tunesmith.render import strategy_table

    row = StrategyRow(
        strategy="lora",
        run_dir="runs/x-lora",
        steps=2,
        trainable_params=12,
        all_params=1000,
        trainable_percent=1.2,
        wall_seconds=61.2,
        peak_rss_bytes=3 * 2**30,
        artefact_bytes=5 * 2**20,
        throughput=1234.5,
        throughput_unit="tokens/s",
        best_eval_loss=None,
        metrics={"accuracy": 0.5},
        drift=0.0123,
        note="",
    )
    comparison = Comparison("x", "base", "classify", 8, ["accuracy"], "drift", [row], {"accuracy": 0.4})
    header, rows = comparison_cells(comparison)
    assert rows == [["lora", "12 (1.2%)", "61 s", "3.00 GiB", "5.0 MiB", "1,234 tokens/s", "-", "50.0%", "0.0123"]]
    markdown = comparison_markdown(comparison)
    assert "| " + " | ".join(header) + " |" in markdown and "| " + " | ".join(rows[0]) + " |" in markdown
    table = strategy_table(comparison)
    assert [column.header for column in table.columns] == header
    assert [list(column.cells) for column in table.columns] == [[cell] for cell in rows[0]]
