"""The classic baseline: TF-IDF + logistic regression, fitted on the training rows only."""

from tunesmith.evaluate.classic import tfidf_predictions

LABELS = ["bad", "good"]
TRAIN = [("great film, loved it", "good"), ("awful film, hated it", "bad")] * 5 + [("loved the great cast", "good")]


def test_words_that_separate_the_classes_are_learned_from_training_rows():
    texts, labels = zip(*TRAIN, strict=True)
    result = tfidf_predictions(texts, labels, ["i loved it", "i hated it", "great"], LABELS)
    assert result.predicted == [1, 0, 1] and result.seconds >= 0


def test_one_training_label_answers_that_label():
    result = tfidf_predictions(["a", "b"], ["good", "good"], ["c"], LABELS)
    assert result.predicted == [1]
