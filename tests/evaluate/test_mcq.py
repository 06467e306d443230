import torch

from tunesmith.evaluate.general import Question
from tunesmith.evaluate.mcq import letter_ids, multiple_choice


class AlwaysLetter(torch.nn.Module):
    """A 'model' whose next-token logits at the last position always favour one answer letter."""

    def __init__(self, token_id, vocab):
        super().__init__()
        self.token_id, self.vocab, self.weight = token_id, vocab, torch.nn.Parameter(torch.zeros(1))
        self.seen_keep = None

    def forward(self, input_ids, attention_mask, logits_to_keep):
        self.seen_keep = logits_to_keep
        logits = torch.zeros(input_ids.shape[0], 1, self.vocab)
        logits[:, :, self.token_id] = 5.0

        class Out:
            pass

        out = Out()
        out.logits = logits
        return out


def test_the_answer_is_the_letter_with_the_highest_likelihood(smol_tokenizer):
    ids = letter_ids(smol_tokenizer)
    assert len(set(ids)) == 4
    questions = [Question("t", f"Q{i}?\nA. a\nB. b\nC. c\nD. d\nAnswer:", "ABCDC"[i]) for i in range(5)]
    model = AlwaysLetter(ids[2], len(smol_tokenizer))
    result = multiple_choice(model, smol_tokenizer, questions, batch_size=2)
    assert result.correct == [False, False, True, False, True] and result.accuracy == 0.4
    assert model.seen_keep == 1  # one position of logits per question, not the whole sequence


def test_the_shipped_probe_runs_on_a_tiny_model(smol_tokenizer):
    from tests.conftest import tiny_llama

    seen = []
    result = multiple_choice(
        tiny_llama(len(smol_tokenizer)), smol_tokenizer, limit=6, batch_size=4, on_progress=seen.append
    )
    assert len(result.correct) == 6 and seen == [4, 2]
