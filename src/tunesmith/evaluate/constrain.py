"""Decoding under a JSON constraint (any JSON, or a JSON Schema), with lm-format-enforcer.

lm-format-enforcer's parser and token enforcer are used as they are. Its transformers integration module is not:
in lm-format-enforcer 0.11.3 it imports `transformers.tokenization_utils`, which transformers 5 removed, and fails
with "transformers is not installed" (fixed upstream in noamgat/lm-format-enforcer#175, not yet released). So the
vocabulary table it needs is built here the way that module builds it, and the enforcer is handed to
transformers' own `prefix_allowed_tokens_fn`.
"""

from __future__ import annotations

import functools
from typing import Any

from lmformatenforcer import JsonSchemaParser, TokenEnforcer, TokenEnforcerTokenizerData


def regular_tokens(tokenizer) -> list[tuple[int, str, bool]]:
    """(id, text, starts a word) for every non-special token, as lm-format-enforcer's integration computes them."""
    zero = tokenizer.encode("0", add_special_tokens=False)[-1]
    special = set(tokenizer.all_special_ids)
    tokens = []
    for token_id in range(len(tokenizer)):
        if token_id in special:
            continue
        after_zero = tokenizer.decode([zero, token_id])[1:]  # keeps a leading space that decode alone drops
        alone = tokenizer.decode([token_id])
        tokens.append((token_id, after_zero, len(after_zero) > len(alone)))
    return tokens


@functools.lru_cache(maxsize=4)
def tokenizer_data(tokenizer) -> TokenEnforcerTokenizerData:
    """Built once per tokenizer (it decodes the whole vocabulary: a few seconds for 49k tokens)."""

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(regular_tokens(tokenizer), decode, tokenizer.eos_token_id, False, len(tokenizer))


class JsonConstraint:
    """Answers must be JSON (satisfying `schema` if given). One enforcer per generate call: it tells the rows of
    a batch apart by their token prefixes, so left-padded rows of different prompts never share a state."""

    def __init__(self, tokenizer, schema: dict[str, Any] | None = None):
        self.tokenizer, self.schema = tokenizer, schema
        self.data = tokenizer_data(tokenizer)

    def generate_kwargs(self) -> dict[str, Any]:
        enforcer = TokenEnforcer(self.data, JsonSchemaParser(self.schema))

        def allowed(batch_id: int, sent) -> list[int]:
            return enforcer.get_allowed_tokens(sent.tolist()).allowed_tokens

        return {"prefix_allowed_tokens_fn": allowed}
