"""The data audit's one-line warnings, cheap enough to show before every training run: repeated examples,
held-out examples that also appear in training (leakage), and personal data (`data check` has the full audit)."""

from __future__ import annotations

from collections.abc import Sequence

from .dedup import fingerprint
from .pii import find_pii


def content_of(item) -> str:
    """The text of an Example (every turn) or a Record (prompt and answer)."""
    messages = getattr(item, "messages", None)
    if messages:
        return "\n".join(m.content for m in messages)
    return item.content


def data_warnings(train: Sequence, held_out: Sequence, eval_name: str = "eval") -> list[str]:
    prints = [fingerprint(content_of(item)) for item in train]
    seen = set(prints)
    warnings = []
    if duplicates := len(prints) - len(seen):
        warnings.append(f"{duplicates} training examples repeat an earlier one (tunesmith data prepare drops them)")
    if leaked := sum(fingerprint(content_of(item)) in seen for item in held_out):
        warnings.append(
            f"{leaked} of {len(held_out)} examples of {eval_name} also appear in training (leaked): the eval loss "
            "will look better than it is"
        )
    if personal := sum(bool(find_pii(content_of(item))) for item in train):
        warnings.append(f"{personal} training examples hold personal data (e-mail, phone, card, IBAN, IP, API key)")
    return warnings
