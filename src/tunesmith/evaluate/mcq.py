"""General multiple-choice probe (MMLU): the answer is the letter A-D with the highest next-token log-likelihood.

One forward pass per question (batched, left padding, logits of the last position only), with the chat template
the model was tuned with, so a drop in accuracy after tuning is forgetting, not a change of prompt format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..data.encode import encode_prompt
from .general import Question, mmlu_questions

LETTERS = "ABCD"
INSTRUCTION = "Answer the multiple-choice question with the letter of the correct option (A, B, C or D)."


@dataclass
class ChoiceResult:
    correct: list[bool]  # per question, in order

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct) if self.correct else 0.0


def letter_ids(tokenizer) -> list[int]:
    """The first token of each answer letter as the assistant's reply would start with it."""
    return [tokenizer(letter, add_special_tokens=False)["input_ids"][0] for letter in LETTERS]


def question_prompt(question: Question) -> list[dict]:
    return [{"role": "user", "content": f"{INSTRUCTION}\n\n{question.question}"}]


@torch.no_grad()
def last_logits(model, rows: list[list[int]], pad_id: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    device = next(model.parameters()).device
    input_ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return model(input_ids=input_ids, attention_mask=mask, logits_to_keep=1).logits[:, -1].float()


@torch.no_grad()
def multiple_choice(
    model,
    tokenizer,
    questions: Sequence[Question] | None = None,
    *,
    limit: int | None = None,
    batch_size: int = 16,
    on_progress: Callable[[int], None] | None = None,
) -> ChoiceResult:
    """Which questions the model answers correctly (the shipped MMLU questions unless `questions`)."""
    questions = list(questions) if questions is not None else mmlu_questions(limit)
    model.eval()
    choices = torch.tensor(letter_ids(tokenizer))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = [encode_prompt(tokenizer, question_prompt(q)) for q in questions]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # batches of similar length: little padding
    correct = [False] * len(rows)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        logits = last_logits(model, [rows[i] for i in indices], pad_id)
        picked = logits[:, choices.to(logits.device)].argmax(-1).tolist()
        for i, p in zip(indices, picked, strict=True):
            correct[i] = LETTERS[p] == questions[i].answer
        if on_progress:
            on_progress(len(indices))
    return ChoiceResult(correct)
