"""Planted defects are all found, and a clean dataset is not flagged at all."""

import hashlib
import json
import random

import pytest
from tests.conftest import write_jsonl

from tunesmith.data.audit import AuditSettings, audit_dataset

SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "vo", "ri", "pe", "zu", "fa", "go", "hi", "ju", "be", "do"]


def word(rng: random.Random) -> str:
    return "".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))


def clean_rows(n: int, seed: int = 0) -> list[dict]:
    """Distinct chat rows of made-up words: no digits (so no PII), no repeats, answers of similar length."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        prompt = " ".join(word(rng) for _ in range(16))
        answer = " ".join(word(rng) for _ in range(10))
        rows.append(
            {
                "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                "region": ["north", "south", "east"][i % 3],
            }
        )
    return rows


def with_words_changed(row: dict, changes: int) -> dict:
    copy = json.loads(json.dumps(row))
    words = copy["messages"][0]["content"].split()
    for i in range(changes):
        words[3 * i + 1] = f"changed{'x' * i}"
    copy["messages"][0]["content"] = " ".join(words)
    return copy


def set_answer(row: dict, answer: str) -> dict:
    copy = json.loads(json.dumps(row))
    copy["messages"][-1]["content"] = answer
    return copy


def audit(tmp_path, train, eval=(), against=(), **settings):
    paths = [write_jsonl(tmp_path / f"{name}.jsonl", rows) for name, rows in [("train", train)]]
    eval_paths = [write_jsonl(tmp_path / "eval.jsonl", list(eval))] if eval else []
    against_paths = [write_jsonl(tmp_path / "probe.jsonl", list(against))] if against else []
    return audit_dataset(paths, eval_paths, against_paths, AuditSettings(**settings)).report


def test_a_clean_dataset_has_no_findings(tmp_path):
    report = audit(tmp_path, clean_rows(120), clean_rows(30, seed=1), clean_rows(20, seed=2), slice_by="region")
    assert report.problems == []
    assert report.duplicates == [] and report.leakage == [] and report.benchmark_overlap == []
    assert report.quality == [] and report.pii == []
    assert [s.flags for s in report.slices] == [[], [], []]


def test_every_planted_defect_is_found_and_nothing_else(tmp_path):
    rows = clean_rows(120)
    evals = clean_rows(30, seed=1)
    probes = clean_rows(20, seed=2)
    rows[10] = json.loads(json.dumps(rows[4]))  # exact duplicate
    rows[11] = set_answer(rows[5], rows[5]["messages"][1]["content"].upper() + " !")  # same text, other case
    rows[12] = with_words_changed(rows[6], 2)  # near duplicate
    evals[3] = json.loads(json.dumps(rows[20]))  # leaked exactly
    evals[7] = with_words_changed(rows[21], 2)  # leaked nearly
    probes[5] = with_words_changed(rows[22], 1)  # benchmark contamination
    rows[30] = set_answer(rows[30], "Write to jane.doe@example.com or call +44 20 7946 0958.")
    rows[31] = set_answer(rows[31], "Card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32.")
    rows[32] = set_answer(rows[32], "Server 10.0.12.7 uses key sk-live4f9a8b7c6d5e4f3a2b1c0d9e8f7a.")
    for i in range(60, 120, 3):  # every "west" row gets a curt answer: a skewed slice
        rows[i]["region"] = "west"
        rows[i] = set_answer(rows[i], "ok fine")

    report = audit(tmp_path, rows, evals, probes, slice_by="region")

    assert {(m.source, m.original, m.kind) for m in report.duplicates} == {
        ("train.jsonl:11", "train.jsonl:5", "exact"),
        ("train.jsonl:12", "train.jsonl:6", "exact"),
        ("train.jsonl:13", "train.jsonl:7", "near"),
    }
    assert {(m.source, m.original, m.kind) for m in report.leakage} == {
        ("eval.jsonl:4", "train.jsonl:21", "exact"),
        ("eval.jsonl:8", "train.jsonl:22", "near"),
    }
    assert [(m.source, m.original) for m in report.benchmark_overlap] == [("probe.jsonl:6", "train.jsonl:23")]
    assert sorted((f.source, f.kind) for f in report.pii) == [
        ("train.jsonl:31", "email"),
        ("train.jsonl:31", "phone"),
        ("train.jsonl:32", "credit_card"),
        ("train.jsonl:32", "iban"),
        ("train.jsonl:33", "api_key"),
        ("train.jsonl:33", "ip_address"),
    ]
    flagged = {s.name for s in report.slices if s.flags}
    assert flagged == {"west"}
    assert report.quality == []


def test_quality_flags_short_echoing_and_looping_answers(tmp_path):
    rows = clean_rows(20)
    rows[1] = set_answer(rows[1], " ")
    rows[1]["messages"][-1]["content"] = "."
    rows[2] = set_answer(rows[2], rows[2]["messages"][0]["content"])
    rows[3] = set_answer(rows[3], "I am sorry but I cannot. " * 8)
    report = audit(tmp_path, rows)
    assert sorted((f.source, f.kind) for f in report.quality) == [
        ("train.jsonl:2", "short_answer"),
        ("train.jsonl:3", "repeats_prompt"),
        ("train.jsonl:4", "repetitive"),
    ]


def test_labels_report_counts_imbalance_and_classes_missing_from_eval(tmp_path):
    train = [{"text": f"row {word(random.Random(i))} {i}", "label": label} for i, label in enumerate("aaaaaabbc")]
    evals = [{"text": "other text", "label": "a"}, {"text": "more text", "label": "d"}]
    report = audit(tmp_path, train, evals)
    assert report.task == "classify"
    assert report.labels.train == {"a": 6, "b": 2, "c": 1}
    assert report.labels.imbalance_ratio == 6.0
    assert report.labels.missing_from_eval == ["b", "c"]
    assert report.labels.unseen_in_train == ["d"]


def test_gender_term_slices_flag_a_label_skew(tmp_path):
    rows = [{"text": f"she said {word(random.Random(i))}", "label": "neg"} for i in range(10)]
    rows += [{"text": f"he said {word(random.Random(i + 50))}", "label": "pos"} for i in range(10)]
    rows += [{"text": f"they said {word(random.Random(i + 99))}", "label": ["pos", "neg"][i % 2]} for i in range(10)]
    report = audit(tmp_path, rows, slice_terms="gender")
    assert {s.name: (s.count, s.labels) for s in report.slices} == {
        "female": (10, {"neg": 10}),
        "male": (10, {"pos": 10}),
    }
    assert all(s.flags for s in report.slices)


def test_invalid_rows_are_grouped_with_counts_and_inputs_stay_untouched(tmp_path):
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}
    robot = json.loads(json.dumps(bad).replace("bot", "robot"))
    path = write_jsonl(tmp_path / "train.jsonl", [*clean_rows(3), bad, robot, {"prompt": "a", "completion": ""}])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    report = audit_dataset([path]).report
    assert (
        report.problems[0]
        == "train.jsonl:4: messages[1].role: unknown role 'bot'; expected one of system, user, assistant"
    )
    assert [(g.count, g.pattern) for g in report.problem_groups] == [
        (2, "messages[*].role: unknown role '…'; expected one of system, user, assistant"),
        (1, "completion: empty content"),
    ]
    assert report.valid["train"] == 3 and report.rows["train"] == 6
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("max_length", [24, 4096])
def test_token_stats_use_the_chat_template_and_count_over_long_rows(tmp_path, smol_tokenizer, max_length):
    rows = clean_rows(12)
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    report = audit_dataset([path], settings=AuditSettings(max_length=max_length), tokenizer=smol_tokenizer).report
    stats = report.tokens
    first = smol_tokenizer.apply_chat_template(rows[0]["messages"], tokenize=False)
    templated = len(smol_tokenizer(first, add_special_tokens=False)["input_ids"])
    answer = len(smol_tokenizer(rows[0]["messages"][1]["content"], add_special_tokens=False)["input_ids"])
    assert stats.fields["total"].max >= templated > stats.fields["answer"].max >= answer > 0
    assert sum(stats.histogram.values()) == 12
    assert stats.over_max_length == (12 if max_length == 24 else 0)
    assert stats.training_tokens <= 12 * max_length
