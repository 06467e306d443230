"""PII detectors: checksums keep look-alike numbers out; redaction replaces each span with its kind."""

import pytest

from tunesmith.data.pii import find_pii, iban_ok, luhn_ok, redact


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mail jane.doe@example.co.uk today", "email"),
        ("call +1 415 555 0134 now", "phone"),
        ("call (415) 555-0134 now", "phone"),
        ("card 4111-1111-1111-1111 ok", "credit_card"),
        ("pay to DE89 3704 0044 0532 0130 00", "iban"),
        ("from 192.168.0.254 at noon", "ip_address"),
        ("token ghp_0123456789abcdefghijABCDEFGHIJ012345", "api_key"),
        ("aws AKIAIOSFODNN7EXAMPLE key", "api_key"),
    ],
)
def test_each_kind_is_found(text, kind):
    assert [hit.kind for hit in find_pii(text)] == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails Luhn",
        "DE89 3704 0044 0532 0130 02 fails mod 97",
        "version 1.2.3.4567 and 999.1.1.1",
        "Section 6 . 1 dated 2019, amount 1,000,000, zip 10001",
        "0000 0000 0000 0000",
    ],
)
def test_look_alikes_are_not_pii(text):
    assert find_pii(text) == []


def test_checksums():
    assert luhn_ok("4539 1488 0343 6467") and not luhn_ok("4539 1488 0343 6468")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")


def test_redact_replaces_every_span():
    text = "Mail a@b.io, card 4111111111111111, host 8.8.8.8."
    assert redact(text) == "Mail [EMAIL], card [CREDIT_CARD], host [IP_ADDRESS]."
