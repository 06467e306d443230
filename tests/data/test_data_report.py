"""The data report's markdown: the epoch-time table says what its calibration step was timed on."""

from tests.conftest import VARIED_CHATS, write_jsonl

from tunesmith.data.audit import AuditSettings, audit_dataset
from tunesmith.data.report import report_markdown
from tunesmith.estimate import EpochEstimate


def test_the_epoch_time_table_names_what_the_calibration_step_was_timed_on(tmp_path, smol_tokenizer):
    files = [write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)]
    report = audit_dataset(files, [], [], AuditSettings(), smol_tokenizer).report
    assert "time per epoch" not in report_markdown(report)
    lora = EpochEstimate("lora", 3.42, 298.0, 348.0, "cpu", "fp32", 5 * 2**30, "nothing needed", "examples")
    report.epoch_estimates = [lora]
    markdown = report_markdown(report)
    assert "| lora | 3.42 | 298 | 5.8 min | 5.0 GiB | nothing needed |" in markdown
    assert "batch 8 of your examples nearest the mean length" in markdown
    report.epoch_estimates = [EpochEstimate("lora", 3.42, 298.0, 348.0, "cpu", "fp32", 5 * 2**30, "", "random tokens")]
    assert "batch 8 of random tokens of the mean length" in report_markdown(report)
