import pytest

from tunesmith.evaluate.generate import Generation
from tunesmith.evaluate.metrics import find_json, score_generations

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
