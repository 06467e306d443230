"""How report.html writes a number, and the check that every number it shows comes from the files it was built
from: a number in the page is one of those files' numbers (or numbers quoted in their strings) in one of the
formats below, or one of the few named derivations of derive.py. Plot axes are labelled with the data's own first,
last, lowest and highest values, so they pass the same check."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import Any

# A number as the page shows it: 4,884,480 | 0.1434 | -3 | +1.2 | 41.3% | 1e-05. Digits glued to a letter
# ("q4_k_m", "bf16") are part of a name, not a number.
NUMBER = re.compile(r"(?<![\w.])[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[+-]?\d+)?%?")
FIXED = {"95", "95%"}  # "95% CI": the interval's level, fixed by the method


def integer(value: int) -> str:
    return f"{value:,}"


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def percent(value: float) -> str:
    """A number that is a percentage already (compare.json's trainable_percent)."""
    return f"{value:.3g}%"


def share(value: float) -> str:
    """A share as a percentage to 3 significant digits: a trainable share of 0.000161 is 0.0161%, not 0.0%."""
    return f"{100 * value:.3g}%"


def fixed(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}"


def sig(value: float, digits: int = 4) -> str:
    """Significant digits: learning rates (0.001, 1e-05), losses on an axis."""
    return f"{value:.{digits}g}"


def signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}"


def points(value: float) -> str:
    return f"{100 * value:+.1f} pts"


def seconds(value: float) -> str:
    return f"{value:,.0f} s" if value >= 10 else f"{value:.1f} s"


def gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def size(value: float) -> str:
    if value < 2**20:
        return f"{value:,.0f} bytes"
    return gib(value) if value >= 2**30 else mib(value)


def plain(value: Any) -> str:
    """A setting as the config file spells it (Python's shortest round-trip form of a number)."""
    return str(value)


def forms(value: float) -> set[str]:
    """Every spelling the formats above give `value` (what the check accepts for it)."""
    if isinstance(value, bool) or not math.isfinite(value):
        return set()
    spelled = {plain(value), integer(int(value)), f"{value:.0f}", pct(value), f"{100 * value:.0f}%"}
    spelled |= (
        {fixed(value, d) for d in range(5)} | {sig(value, d) for d in (2, 3, 4)} | {signed(value, d) for d in (3, 4)}
    )
    spelled |= {f"{100 * value:+.1f}", f"{value:,.0f}", f"{value / 2**30:.2f}", f"{value / 2**20:.1f}"}
    spelled |= {percent(value), share(value)}
    return spelled


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def derivable(sources: Iterable[Any]) -> set[str]:
    """The numbers a page built from `sources` may show: each number in every format, and the numbers written
    inside the strings (keys too: a confusion label, a metric named 'precision: 2')."""
    allowed = set(FIXED)
    for leaf in leaves(list(sources)):
        if isinstance(leaf, bool) or leaf is None:
            continue
        if isinstance(leaf, int | float):
            allowed |= forms(leaf)
        else:
            allowed |= set(NUMBER.findall(str(leaf)))
    return allowed


class _Text(HTMLParser):
    """The text a reader sees: every text node (SVG labels and tooltips too), outside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs) -> None:
        self.skipping += tag in ("script", "style")
        self.parts.extend(value for name, value in attrs if name in ("title", "placeholder") and value)

    def handle_endtag(self, tag) -> None:
        self.skipping -= tag in ("script", "style")

    def handle_data(self, data) -> None:
        if not self.skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " \n ".join(parser.parts)  # text nodes kept apart: two cells never read as one number


def unexplained(html: str, sources: Iterable[Any]) -> list[str]:
    """The numbers in the page that none of its sources explains (empty when the page is honest)."""
    allowed = derivable(sources)
    return [n for n in NUMBER.findall(visible_text(html)) if n not in allowed]
