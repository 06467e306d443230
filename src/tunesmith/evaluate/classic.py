"""The strongest cheap alternative to fine-tuning a classifier: TF-IDF features and logistic regression.

Fitted on the same training split in seconds (scikit-learn), it answers the user's real question: not "did the
model learn anything?" (the majority class) but "was a transformer worth it over a classic text classifier?".
Word unigrams and bigrams with sublinear term frequency, an L2 logistic regression: the standard recipe.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

CLASSIC = "classic (TF-IDF + LR)"


@dataclass
class ClassicResult:
    predicted: list[int]  # class ids, in the labels' order
    seconds: float  # fitting and predicting


def tfidf_predictions(
    train_texts: Sequence[str], train_labels: Sequence[str], texts: Sequence[str], labels: Sequence[str]
) -> ClassicResult:
    """Fit on the training rows, predict the held-out ones; `labels` gives the id order (the run's labels.json)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    started = time.perf_counter()
    if len(set(train_labels)) < 2:  # nothing to learn: it answers the one label it saw
        only = labels.index(train_labels[0])
        return ClassicResult([only] * len(texts), time.perf_counter() - started)
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(max_iter=2000),
    )
    model.fit(list(train_texts), list(train_labels))
    predicted = [labels.index(label) for label in model.predict(list(texts))]
    return ClassicResult(predicted, time.perf_counter() - started)
