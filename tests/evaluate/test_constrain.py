import json

from tests.conftest import tiny_llama

from tunesmith.evaluate.constrain import JsonConstraint, regular_tokens
from tunesmith.evaluate.generate import generate
from tunesmith.evaluate.metrics import INVALID, parse_json

PROMPTS = [[{"role": "user", "content": text}] for text in ("Hi", "List the people in: Ann met Bob.", "x")]
NAMES = {"type": "array", "items": {"type": "string", "enum": ["Ann", "Bob"]}, "maxItems": 2}


def test_a_random_model_under_a_schema_answers_json_that_satisfies_it(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer), seed=2)
    free = generate(model, smol_tokenizer, PROMPTS, max_new_tokens=24, batch_size=3)
    assert all(parse_json(g.text) is INVALID for g in free)  # unconstrained, it writes noise
    constrained = generate(model, smol_tokenizer, PROMPTS, 60, 3, constraint=JsonConstraint(smol_tokenizer, NAMES))
    for g in constrained:
        assert g.stopped, g.text
        value = json.loads(g.text)
        assert isinstance(value, list) and len(value) <= 2 and set(value) <= {"Ann", "Bob"}


def test_constrained_batches_equal_one_at_a_time(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer), seed=2)
    constraint = JsonConstraint(smol_tokenizer, NAMES)
    batched = generate(model, smol_tokenizer, PROMPTS, 40, 3, constraint=constraint)
    single = [generate(model, smol_tokenizer, [p], 40, 1, constraint=constraint)[0] for p in PROMPTS]
    assert [g.text for g in batched] == [g.text for g in single]


def test_the_vocabulary_table_keeps_leading_spaces_and_leaves_out_special_tokens(smol_tokenizer):
    table = {token_id: text for token_id, text, _ in regular_tokens(smol_tokenizer)}
    space_the = smol_tokenizer.encode(" the", add_special_tokens=False)
    assert len(space_the) == 1 and table[space_the[0]] == " the"
    assert smol_tokenizer.eos_token_id not in table and len(table) > 49000
