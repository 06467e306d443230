"""Exact duplicates (normalised text) and near-duplicates (MinHash LSH over word sets), within and across sets."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from datasketch import LeanMinHash, MinHash, MinHashLSH
from datasketch.hashfunc import sha1_hash32

NUM_PERM = 64
MIN_WORDS = 5  # shorter texts are compared exactly only: two short answers share most words by chance
WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Match:
    """`source` repeats `original` (the earlier record, or the train record an eval/probe row leaks from)."""

    source: str
    original: str
    kind: str  # exact | near
    similarity: float


def normalise(text: str) -> str:
    """Case, accents' composed forms, punctuation and spacing do not make two texts different."""
    return " ".join(WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def fingerprint(text: str) -> str:
    return hashlib.blake2b(normalise(text).encode(), digest_size=16).hexdigest()


def word_set(text: str) -> set[str]:
    return set(normalise(text).split())


@lru_cache(maxsize=1 << 20)
def word_hash(word: str) -> int:
    # Words repeat across a corpus (Zipf): hashing each distinct word once halves the MinHash time.
    return sha1_hash32(word.encode())


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class NearIndex:
    """MinHash signatures of word sets in an LSH index; candidates are confirmed by their exact Jaccard."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self.words: dict[str, set[str]] = {}

    def signatures(self, word_sets: Sequence[set[str]]) -> list[LeanMinHash | None]:
        minhashes = MinHash.bulk([list(words) for words in word_sets], num_perm=NUM_PERM, hashfunc=word_hash)
        return [LeanMinHash(m) if len(w) >= MIN_WORDS else None for m, w in zip(minhashes, word_sets, strict=True)]

    def add(self, key: str, words: set[str], signature: LeanMinHash | None) -> None:
        if signature is not None:
            self.lsh.insert(key, signature, check_duplication=False)
            self.words[key] = words

    def best_match(self, words: set[str], signature: LeanMinHash | None) -> tuple[str, float] | None:
        if signature is None:
            return None
        scored = [(jaccard(words, self.words[key]), key) for key in self.lsh.query(signature)]
        scored = [(score, key) for score, key in scored if score >= self.threshold]
        return (max(scored)[1], max(scored)[0]) if scored else None


def find_duplicates(sources: Sequence[str], texts: Sequence[str], threshold: float) -> list[Match]:
    """Every record that repeats an earlier one of the same set, exactly or nearly."""
    matches, first_seen = [], {}
    index = NearIndex(threshold)
    word_sets = [word_set(t) for t in texts]
    for source, text, words, signature in zip(sources, texts, word_sets, index.signatures(word_sets), strict=True):
        key = fingerprint(text)
        if key in first_seen:
            matches.append(Match(source, first_seen[key], "exact", 1.0))
            continue
        first_seen[key] = source
        near = index.best_match(words, signature)
        if near:
            matches.append(Match(source, near[0], "near", round(near[1], 3)))
        else:
            index.add(source, words, signature)
    return matches


def find_overlap(
    train_sources: Sequence[str],
    train_texts: Sequence[str],
    sources: Sequence[str],
    texts: Sequence[str],
    threshold: float,
) -> list[Match]:
    """Records of another set (eval, a benchmark) that repeat a train record: leakage."""
    exact = {fingerprint(t): s for s, t in zip(train_sources, train_texts, strict=True)}
    index = NearIndex(threshold)
    train_words = [word_set(t) for t in train_texts]
    for source, words, signature in zip(train_sources, train_words, index.signatures(train_words), strict=True):
        index.add(source, words, signature)
    matches = []
    words_of = [word_set(t) for t in texts]
    for source, text, words, signature in zip(sources, texts, words_of, index.signatures(words_of), strict=True):
        original = exact.get(fingerprint(text))
        if original:
            matches.append(Match(source, original, "exact", 1.0))
        elif near := index.best_match(words, signature):
            matches.append(Match(source, near[0], "near", round(near[1], 3)))
    return matches
