"""Find personal data and secrets in text: e-mails, phones, cards (Luhn), IBANs (mod 97), IPs, API keys."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# International (+country) or North-American shaped numbers; bare digit runs are too often ids or amounts.
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,3}"
    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4})\b"
)
CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b")
API_KEY = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{20,}|ghp_[A-Za-z0-9]{36}|github_pat_\w{22,}|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"
)
IBAN_LENGTHS = {"DE": 22, "GB": 22, "FR": 27, "ES": 24, "IT": 27, "NL": 18, "BE": 16, "CH": 21, "AT": 20, "PL": 28}


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number if d.isdigit()]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return len(digits) >= 13 and total % 10 == 0 and len(set(digits)) > 1


def iban_ok(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    expected = IBAN_LENGTHS.get(iban[:2])
    if not 15 <= len(iban) <= 34 or (expected and len(iban) != expected):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def phone_ok(candidate: str) -> bool:
    return 9 <= sum(c.isdigit() for c in candidate) <= 15


DETECTORS: dict[str, tuple[re.Pattern, Callable[[str], bool] | None]] = {
    "email": (EMAIL, None),
    "api_key": (API_KEY, None),
    "iban": (IBAN, iban_ok),
    "credit_card": (CARD, luhn_ok),
    "ip_address": (IPV4, None),
    "phone": (PHONE, phone_ok),
}


@dataclass(frozen=True)
class PiiHit:
    kind: str
    start: int
    end: int


def find_pii(text: str) -> list[PiiHit]:
    """Every detected span, earlier detectors winning where spans overlap (an IBAN's digits are no phone)."""
    hits: list[PiiHit] = []
    for kind, (pattern, valid) in DETECTORS.items():
        for match in pattern.finditer(text):
            if valid and not valid(match.group()):
                continue
            if any(match.start() < h.end and h.start < match.end() for h in hits):
                continue
            hits.append(PiiHit(kind, match.start(), match.end()))
    return sorted(hits, key=lambda h: h.start)


def redact(text: str) -> str:
    """The text with every detected span replaced by its kind in brackets, e.g. [EMAIL]."""
    for hit in reversed(find_pii(text)):
        text = f"{text[: hit.start]}[{hit.kind.upper()}]{text[hit.end :]}"
    return text
