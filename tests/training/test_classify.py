"""Classification pieces: cached features are exactly what the head sees in a fresh forward pass."""

import torch
from transformers import AutoModelForSequenceClassification

from tunesmith.base import load_tokenizer
from tunesmith.data.encode_text import ClassifyExample
from tunesmith.strategies.head import classifier_of
from tunesmith.training.classify import HeadNLL, collate_classify, extract_features

TEXTS = ["a short one", "a much longer sentence with many more words in it than the first", "mid length text here"]


def features_match_fresh_forward(model_dir, pad_id):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3).eval()
    model.config.pad_token_id = pad_id
    tokenizer = load_tokenizer(str(model_dir))
    examples = [ClassifyExample(tokenizer(t)["input_ids"], i, f"x:{i}") for i, t in enumerate(TEXTS)]
    _, head = classifier_of(model)
    cached = extract_features(model, head, examples, pad_id, batch_size=2, device=torch.device("cpu"))
    head_logits = HeadNLL(head).logits(torch.stack([f.features for f in cached]))
    with torch.no_grad():
        fresh = model(**{k: v for k, v in collate_classify(examples, pad_id).items() if k != "labels"}).logits
    torch.testing.assert_close(head_logits, fresh, rtol=1e-5, atol=1e-6)


def test_encoder_features_equal_a_fresh_forward_pass(tiny_bert_dir):
    features_match_fresh_forward(tiny_bert_dir, pad_id=0)


def test_decoder_features_equal_a_fresh_forward_pass(tiny_model_dir):
    features_match_fresh_forward(tiny_model_dir, pad_id=2)


def test_a_head_that_pools_the_sequence_itself_gets_its_first_token(tmp_path, minilm_tokenizer):
    """MPNet's and RoBERTa's heads take the whole sequence and read token 0 (the built-in mpnet-base has one)."""
    from transformers import MPNetConfig, MPNetForSequenceClassification

    config = MPNetConfig(
        vocab_size=len(minilm_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=0, num_labels=3,
    )  # fmt: skip
    torch.manual_seed(0)
    MPNetForSequenceClassification(config).save_pretrained(tmp_path, safe_serialization=True)
    minilm_tokenizer.save_pretrained(tmp_path)
    features_match_fresh_forward(tmp_path, pad_id=0)
