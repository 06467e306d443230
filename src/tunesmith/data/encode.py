"""Chat template -> input_ids + labels. Loss only on assistant tokens, each turn's terminator included.

Assistant spans are found by rendering the conversation prefix by prefix with the tokenizer's own chat
template (most templates carry no generation markers), never from pad ids: pad often equals eos, and a
mask built from pad ids hides every terminator, so the tuned model never stops (trl#976).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import DataError, DataProblem
from .formats import Example

IGNORE = -100


@dataclass
class EncodedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE where the token is context, the token id where it is supervised
    source: str
    truncated: bool = False

    @property
    def supervised_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)

    @property
    def length(self) -> int:
        return len(self.input_ids)

    @property
    def weight(self) -> int:
        """Loss terms this example contributes: its supervised tokens."""
        return self.supervised_tokens


@dataclass
class EncodedDataset:
    examples: list[EncodedExample]
    truncated: int = 0
    dropped: list[str] = field(default_factory=list)  # sources of examples left with nothing to learn

    @property
    def supervised_tokens(self) -> int:
        return sum(e.supervised_tokens for e in self.examples)


class TemplateRefused(ValueError):
    """The chat template raised for this conversation (e.g. a second system message it does not allow)."""


def render_ids(tokenizer, messages: Sequence[dict], add_generation_prompt: bool) -> list[int]:
    """Token ids of a conversation rendered by the tokenizer's chat template, with exactly one BOS."""
    try:
        text = tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    except Exception as err:  # jinja's TemplateError, or the template's own raise_exception("...")
        raise TemplateRefused(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return with_one_bos(tokenizer, ids)


def with_one_bos(tokenizer, ids: list[int]) -> list[int]:
    """Add the BOS the tokenizer expects if the template did not render it; never two (OpenRLHF#393)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return ids
    expects_bos = tokenizer("x", add_special_tokens=True)["input_ids"][:1] == [bos]
    if expects_bos and ids[:1] != [bos]:
        ids = [bos, *ids]
    while ids[:2] == [bos, bos]:
        ids = ids[1:]
    return ids


def encode_prompt(tokenizer, messages: Sequence[dict]) -> list[int]:
    """What the model sees at inference: the same template as training, ending with the assistant header."""
    return render_ids(tokenizer, messages, add_generation_prompt=True)


def encode_example(tokenizer, example: Example, max_length: int) -> EncodedExample:
    try:
        return encode_turns(tokenizer, example, max_length)
    except TemplateRefused as refused:
        file, _, line = example.source.rpartition(":")
        message = f"the base's chat template cannot render this conversation: {refused}"
        where = (file, int(line)) if line.isdigit() else (example.source, 0)
        raise DataError([DataProblem(*where, "messages", message)]) from None


def encode_turns(tokenizer, example: Example, max_length: int) -> EncodedExample:
    messages = example.as_dicts()
    ids = render_ids(tokenizer, messages, add_generation_prompt=False)
    labels = [IGNORE] * len(ids)
    for turn, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(render_ids(tokenizer, messages[:turn], add_generation_prompt=True))
        through = render_ids(tokenizer, messages[: turn + 1], add_generation_prompt=False)
        if ids[: len(through)] != through or start >= len(through):
            problem = DataProblem(example.source, 0, f"messages[{turn}]", "chat template is not prefix-stable")
            raise DataError([problem])
        end = end_of_turn(through, start, tokenizer.eos_token_id)
        labels[start:end] = ids[start:end]
    truncated = len(ids) > max_length
    return EncodedExample(ids[:max_length], labels[:max_length], example.source, truncated)


def end_of_turn(ids: list[int], start: int, eos: int | None) -> int:
    """End of the supervised span: just after the turn's terminator (eos), or the whole turn if it has none.

    Tokens the template puts after the terminator (a newline) are not supervised: generation stops at eos.
    """
    span = ids[start:]
    if eos is not None and eos in span:
        return start + len(span) - span[::-1].index(eos)
    return len(ids)


def encode_dataset(tokenizer, examples: Sequence[Example], max_length: int) -> EncodedDataset:
    """Encode every example; drop (and report) those left with no supervised token after truncation."""
    dataset = EncodedDataset([])
    for example in examples:
        encoded = encode_example(tokenizer, example, max_length)
        dataset.truncated += encoded.truncated
        if encoded.supervised_tokens == 0:
            dataset.dropped.append(example.source)
        else:
            dataset.examples.append(encoded)
    return dataset
