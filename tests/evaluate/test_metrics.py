import pytest

from tunesmith.evaluate.generate import Generation
from tunesmith.evaluate.metrics import exact_match, find_json, rouge_l, token_f1
from tunesmith.evaluate.scorer import score_generations

REF = '[{"name": "Bank", "type": "ORGANIZATION"}, {"name": "Ann", "type": "PERSON"}]'


def gen(text, stopped=True):
    return Generation(text, stopped, 5)


def test_perfect_answers_score_one():
    scores = score_generations([gen(REF), gen("[]")], [REF, "[]"])
    assert (scores.json_valid, scores.exact_match, scores.item_f1, scores.stopped) == (1, 1, 1, 1)


def test_key_order_and_spacing_do_not_matter_but_items_do():
    reordered = '[{"type":"ORGANIZATION","name":"Bank"}]'
    scores = score_generations([gen(reordered)], [REF])
    assert scores.json_valid == 1 and scores.exact_match == 0
    assert scores.item_precision == 1 and scores.item_recall == 0.5
    assert scores.item_f1 == pytest.approx(2 / 3)


def test_prose_around_json_is_invalid_but_its_items_still_count():
    wrapped = "Sure! ```json\n" + REF + "\n```"
    scores = score_generations([gen(wrapped, stopped=False)], [REF])
    assert scores.json_valid == 0 and scores.item_f1 == 1 and scores.stopped == 0


def test_repeated_items_count_as_a_multiset():
    twice = '[{"name": "Bank", "type": "ORGANIZATION"}, {"name": "Bank", "type": "ORGANIZATION"}]'
    scores = score_generations([gen(twice)], ['[{"name": "Bank", "type": "ORGANIZATION"}]'])
    assert scores.item_precision == 0.5 and scores.item_recall == 1


def test_find_json_skips_brackets_that_are_not_json():
    assert find_json("see [1] below: [2, 3]") == [1]
    assert find_json('[not json] then {"a": 1}') == {"a": 1}


def test_token_f1_counts_shared_words_and_wordless_answers_must_match():
    assert token_f1("The cat sat", "the cat sat on the mat") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert token_f1("dog", "cat") == 0
    assert token_f1("[]", "[]") == 1 and token_f1("[]", "{}") == 0 and token_f1("", "cat") == 0


def test_rouge_l_is_the_longest_common_subsequence_f_measure():
    assert rouge_l("the cat sat", "the cat sat on the mat") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert rouge_l("mat the on sat cat the", "the cat sat on the mat") == pytest.approx(0.5)  # LCS "the on the"
    assert token_f1("mat the on sat cat the", "the cat sat on the mat") == 1
    assert rouge_l("[]", "[]") == 1


def test_exact_match_compares_json_values_or_stripped_text():
    assert exact_match(' [{"type": "PERSON", "name": "Ann"}] ', '[{"name": "Ann", "type": "PERSON"}]')
    assert not exact_match("Sure: []", "[]")
    assert exact_match(" Rome. ", "Rome.") and not exact_match("rome.", "Rome.")
