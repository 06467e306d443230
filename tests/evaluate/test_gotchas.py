"""Planted runs and answers: each gotcha is caught when it is there and passes when it is not."""

import json

import pytest
from tests.conftest import chat, write_jsonl

from tunesmith.config import validate_config
from tunesmith.data.formats import read_examples
from tunesmith.errors import ConfigError
from tunesmith.evaluate.generate import Generation
from tunesmith.evaluate.gotchas import (
    FAIL,
    OK,
    WARN,
    Thresholds,
    abstains,
    content_words,
    invented_names,
    overfitting,
    unsupported_words,
)
from tunesmith.evaluate.options import Clock, EvalOptions
from tunesmith.evaluate.probes import bias, memorisation_verdict, qa_section, qa_verdicts, slice_values, task_verdicts
from tunesmith.evaluate.run import answer_all, memorisation, read_inputs
from tunesmith.evaluate.scorer import ABSTENTION, FALSE_ABSTENTION, UNSUPPORTED, GenerationScorer, column_table

SENTENCE = "Acme Bank lent Jane Doe $5m in Boston ."


def write_run(run_dir, train_losses, eval_losses, exported_step):
    """metrics.jsonl with a train line per step and an eval line every 10 steps, and train_summary.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for step, loss in enumerate(train_losses, start=1):
        lines.append({"type": "train", "step": step, "loss": loss})
        if step % 10 == 0:
            lines.append({"type": "eval", "step": step, "eval_loss": eval_losses[step // 10 - 1]})
    write_jsonl(run_dir / "metrics.jsonl", lines)
    (run_dir / "train_summary.json").write_text(json.dumps({"best_step": exported_step, "wall_seconds": 12.5}))
    return run_dir


def falling(start, end, n):
    return [start + (end - start) * i / (n - 1) for i in range(n)]


def test_an_overfit_run_fails_eval_rising_while_train_falls(tmp_path):
    run = write_run(tmp_path / "overfit", falling(2.0, 0.1, 40), [1.5, 1.2, 1.4, 1.7], exported_step=20)
    fit = overfitting(run)
    early, exported = fit.verdicts
    assert early.gotcha == "overfitting" and early.status == FAIL
    assert early.value == pytest.approx((1.7 - 1.2) / 1.2) and fit.train_falling
    assert fit.best_step == 20 and exported.status == OK  # the best, not the last, was exported
    assert [p.step for p in fit.points] == [10, 20, 30, 40]
    assert fit.points[-1].gap == pytest.approx(1.7 - sum(falling(2.0, 0.1, 40)[30:]) / 10)


def test_a_healthy_run_is_ok_and_exporting_the_last_instead_of_the_best_fails(tmp_path):
    healthy = overfitting(write_run(tmp_path / "ok", falling(2.0, 1.0, 40), [1.5, 1.3, 1.2, 1.15], 40))
    assert [v.status for v in healthy.verdicts] == [OK, OK]
    last = overfitting(write_run(tmp_path / "last", falling(2.0, 0.1, 40), [1.5, 1.2, 1.4, 1.7], 40))
    assert last.verdicts[1].gotcha == "exported checkpoint" and last.verdicts[1].status == FAIL


def test_a_checkpoint_exported_by_the_task_metric_it_was_told_to_use_is_not_a_failure(tmp_path):
    run = write_run(tmp_path / "by-accuracy", falling(2.0, 0.1, 40), [1.5, 1.2, 1.4, 1.7], 40)
    summary = json.loads((run / "train_summary.json").read_text())
    (run / "train_summary.json").write_text(json.dumps(summary | {"selected_by": "accuracy"}))
    exported = overfitting(run).verdicts[1]
    assert exported.status == OK and "accuracy" in exported.note and "step 20" in exported.note


def test_eval_rising_while_train_loss_also_rises_is_a_warning_not_overfitting(tmp_path):
    diverging = overfitting(write_run(tmp_path / "div", falling(1.0, 3.0, 40), [1.5, 1.2, 1.4, 1.7], 20))
    assert diverging.verdicts[0].status == WARN and diverging.train_falling is False


def test_a_run_without_eval_losses_cannot_be_judged(tmp_path):
    fit = overfitting(write_run(tmp_path / "none", falling(2.0, 1.0, 9), [], None))
    assert fit.verdicts[0].status == WARN and "cannot judge" in fit.verdicts[0].note


class CopyingGenerator:
    """A 'model' that reproduces the training answer for every training prompt and answers [] otherwise."""

    def __init__(self, train):
        self.known = {json.dumps(e.as_dicts()[:-1]): e.messages[-1].content for e in train}

    def __call__(self, name, prompts, base):
        return [Generation(self.known.get(json.dumps(p), "[]"), True, 3) for p in prompts]


def entity_chats(n, offset=0):
    return [
        chat(f"Sentence {i}: Bank{i} hired Person{i}.", json.dumps([{"name": f"Bank{i}"}]))
        for i in range(offset, offset + n)
    ]


def test_a_model_that_copies_training_answers_has_a_high_memorisation_rate(tmp_path):
    train = read_examples(write_jsonl(tmp_path / "train.jsonl", entity_chats(30)))
    held_out = read_examples(write_jsonl(tmp_path / "test.jsonl", entity_chats(10, offset=100)))
    generator, scorer = CopyingGenerator(train), GenerationScorer(json_task=True)
    answers = generator("tuned", [e.as_dicts()[:-1] for e in held_out], False)
    scores = [
        scorer.score(a, e.messages[-1].content, e.messages[-2].content) for a, e in zip(answers, held_out, strict=True)
    ]

    class Options:
        memorisation_sample = 20

    section = memorisation(generator, train, [], scores, Options)
    assert section["train_sample"] == 20 and section["train_exact_match"] == 1 and section["held_out_exact_match"] == 0
    verdict = memorisation_verdict(section, Thresholds())
    assert verdict.status == FAIL and verdict.value == 1


def test_invented_entities_are_names_not_found_in_the_input():
    answer = [{"name": "Acme Bank", "type": "ORGANIZATION"}, {"name": "john smith", "type": "PERSON"}]
    assert invented_names(answer, SENTENCE) == (1, 2)
    assert invented_names([{"name": "JANE   doe", "type": "PERSON"}], SENTENCE) == (0, 1)  # case and spaces
    assert invented_names(["Boston", "Paris"], SENTENCE) == (1, 2)
    assert invented_names("not a list", SENTENCE) == (0, 0)


def test_generations_that_invent_entities_fail_the_hallucination_probe():
    scorer = GenerationScorer(json_task=True)
    reference = '[{"name": "Acme Bank", "type": "ORGANIZATION"}]'
    honest = Generation(reference, True, 9)
    inventive = Generation(
        '[{"name": "Acme Bank", "type": "ORGANIZATION"}, {"name": "Globex", "type": "ORGANIZATION"}]', True, 9
    )
    table = {}
    for name, answers in (("base zero-shot", [honest] * 4), ("tuned", [inventive] * 4)):
        row = scorer.aggregate([scorer.score(a, reference, SENTENCE) for a in answers])
        for metric, value in row.items():
            table.setdefault(metric, {})[name] = value
    assert table["invented entities"] == {"base zero-shot": 0, "tuned": 0.5}
    verdicts = {v.gotcha: v for v in task_verdicts(table, scorer, Thresholds())}
    assert verdicts["hallucination"].status == FAIL and verdicts["format control"].status == OK


def test_a_skewed_slice_is_flagged_with_the_largest_gap(tmp_path):
    rows = [chat(f"q{i}", "yes") | {"group": "a" if i < 10 else "b", "other": i} for i in range(20)]
    path = write_jsonl(tmp_path / "test.jsonl", rows)
    examples = read_examples(path)
    values = slice_values(path, examples, "group")
    assert values == ["a"] * 10 + ["b"] * 10
    scorer = GenerationScorer(json_task=False)
    answers = ["yes"] * 10 + ["yes"] * 3 + ["no"] * 7  # slice b is mostly wrong
    scores = [scorer.score(Generation(a, True, 1), "yes", "q") for a in answers]
    section, verdict = bias("group", values, scores, scorer, Thresholds())
    assert [(s["value"], s["n"], s["metric"]) for s in section["slices"]] == [("a", 10, 1.0), ("b", 10, 0.3)]
    assert verdict.status == FAIL and verdict.value == pytest.approx(0.7) and "'b'" in verdict.note
    assert bias("group", values, [scores[0]] * 20, scorer, Thresholds())[1].status == OK  # no gap, no flag
    with pytest.raises(ConfigError, match="no record in test.jsonl has a field 'gender'"):
        slice_values(path, examples, "gender")


def test_an_mmlu_drop_fails_only_when_its_interval_excludes_no_change():
    from tunesmith.evaluate.probes import forgetting_verdicts

    text = {"base_nll": 3.0, "tuned_nll": 3.03, "nll_increase": 0.03, "mean_kl": 0.1, "tokens": 1000}
    noisy = {"questions": 8, "base": 0.5, "tuned": 0.125, "delta": -0.375, "delta_ci": [-0.75, 0.0]}
    clear = {"questions": 200, "base": 0.5, "tuned": 0.3, "delta": -0.2, "delta_ci": [-0.28, -0.12]}
    general, knowledge = forgetting_verdicts({"general_text": text, "mmlu": noisy}, Thresholds())
    assert general.status == OK and general.value == pytest.approx(0.01)
    assert knowledge.status == WARN and "includes no change" in knowledge.note
    assert forgetting_verdicts({"general_text": text, "mmlu": clear}, Thresholds())[1].status == FAIL


def test_a_really_overfit_run_gets_the_overfitting_fail(tmp_path, tiny_model_dir):
    """Tiny data, many epochs, a high learning rate: the tiny model memorises 6 arbitrary answers, so the
    held-out loss turns up while the training loss keeps falling."""
    from tunesmith.config import validate_config
    from tunesmith.finetune import train

    def arbitrary(n, offset):
        codes = [f"The code is {(i * 7919) % 9973} {(i * 104729) % 997}." for i in range(offset, offset + n)]
        return [chat(f"Code for item {i}?", code) for i, code in enumerate(codes, start=offset)]

    settings = {"learning_rate": 1e-2, "max_steps": 120, "batch_size": 6, "eval_every": 10, "warmup_steps": 0}
    settings |= {"schedule": "constant"}
    config = validate_config(
        {
            "name": "overfit",
            "base": str(tiny_model_dir),
            "output_dir": str(tmp_path / "runs"),
            "strategy": "full",
            "data": {"train": str(write_jsonl(tmp_path / "train.jsonl", arbitrary(6, 0))),
                     "eval": str(write_jsonl(tmp_path / "eval.jsonl", arbitrary(6, 50))), "max_length": 64},
            "train": settings | {"precision": "fp32", "seed": 0, "keep_checkpoints": 1},
        }
    )  # fmt: skip
    result = train(config)
    fit = overfitting(result.run_dir)
    early, exported = fit.verdicts
    assert early.status == FAIL and fit.train_falling, early.note
    assert exported.status == OK and fit.best_step < result.steps  # the best, not the last, was exported


# --- questions about a context (--qa) ------------------------------------------------------------------------

QA_SYSTEM = "Answer from the context only. Amounts are in euros."


def qa_chat(i: int, answerable: bool = True) -> dict:
    context = f"Context: Bank{i} lent 5 million to Person{i} in 2019 ."
    if answerable:
        return chat(f"{context}\nQuestion: Who lent money to Person{i}?", f"Bank{i}", system=QA_SYSTEM)
    return chat(f"{context}\nQuestion: What is the name of Person{i}'s dog?", "Not mentioned.", system=QA_SYSTEM)


class PlantedGenerator:
    """A 'model' whose answer is a function of the question's own user turn (the last message of the prompt)."""

    def __init__(self, answer):
        self.answer = answer

    def __call__(self, name, prompts, base):
        return [Generation(self.answer(p[-1]["content"]), True, 3) for p in prompts]


def lender(question: str) -> str:
    return question.split()[1]  # "Context: Bank3 lent ..." -> "Bank3"


def qa_table(tmp_path, records, generator) -> tuple[dict, dict]:
    """Every column answered by the planted generator, scored as `tunesmith eval --qa` scores them."""
    path = write_jsonl(tmp_path / "qa.jsonl", records)
    config = validate_config({"name": "qa", "base": "unused", "data": {"train": str(path), "test": str(path)}})
    inputs = read_inputs(tmp_path, config, EvalOptions(qa=True))
    scorer = GenerationScorer(json_task=False, qa=True)
    _, scores = answer_all(generator, scorer, inputs, [[] for _ in inputs.examples], Clock())  # k=0: no shots
    return column_table(scorer, scores), qa_section(inputs.references, inputs.quotable)


def test_content_words_keep_numbers_and_drop_stopwords_and_abstention_phrases_are_found():
    assert content_words("The loan was 5 million in 2019") == {"loan", "5", "million", "2019"}
    assert unsupported_words("Bank3 lent 6 million", "Context: BANK3 lent 5 million.") == {"6"}
    assert abstains("I DON\u2019T   know.") and abstains("That is not mentioned in the passage.")
    assert abstains("This question is unanswerable") and not abstains("Bank3")


def test_an_answer_copied_from_the_context_is_supported_and_an_invented_name_fails(tmp_path):
    records = [qa_chat(i) for i in range(6)]
    # "euros" occurs only in the system message: the context is the system and the user turns
    copying = PlantedGenerator(lambda q: f"{lender(q)} lent 5 million euros")
    table, section = qa_table(tmp_path, records, copying)
    assert set(table[UNSUPPORTED].values()) == {0.0} and ABSTENTION not in table
    assert section == section | {"answerable": 6, "unanswerable": 0, "reference_unsupported": 0.0}
    (verdict,) = qa_verdicts(table, section, Thresholds())
    assert verdict.gotcha == "hallucination" and verdict.status == OK

    inventing = PlantedGenerator(lambda q: f"{lender(q)} and Globex")
    table, section = qa_table(tmp_path, records, inventing)
    assert table[UNSUPPORTED]["tuned"] == 1.0
    assert qa_verdicts(table, section, Thresholds())[0].status == FAIL


def test_on_unanswerable_questions_a_model_that_always_answers_never_abstains_and_a_careful_one_always_does(tmp_path):
    records = [qa_chat(i, answerable=i % 2 == 0) for i in range(8)]
    always = PlantedGenerator(lender)  # a supported span even where the question cannot be answered
    table, section = qa_table(tmp_path, records, always)
    assert (section["answerable"], section["unanswerable"]) == (4, 4)
    assert table[ABSTENTION]["tuned"] == 0.0 and table[FALSE_ABSTENTION]["tuned"] == 0.0
    assert table[UNSUPPORTED]["tuned"] == 0.0
    assert [(v.gotcha, v.status) for v in qa_verdicts(table, section, Thresholds())] == [
        ("hallucination", OK),
        ("abstention", FAIL),
    ]

    careful = PlantedGenerator(lambda q: "I don't know." if "dog" in q else lender(q))
    table, section = qa_table(tmp_path, records, careful)
    assert table[ABSTENTION] == {"base zero-shot": 1.0, "base few-shot (k=0)": 1.0, "tuned": 1.0}
    assert table[FALSE_ABSTENTION]["tuned"] == 0.0
    assert qa_verdicts(table, section, Thresholds())[1].status == OK

    refusing = PlantedGenerator(lambda q: "The context provides insufficient information.")
    table, section = qa_table(tmp_path, records, refusing)
    assert table[ABSTENTION]["tuned"] == 1.0 and table[FALSE_ABSTENTION]["tuned"] == 1.0
    assert "declined 100.0% of the answerable ones" in qa_verdicts(table, section, Thresholds())[1].note
