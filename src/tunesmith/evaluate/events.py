"""What long evaluation work reports to its caller (the CLI renders these as progress bars)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Phase:
    """A new phase begins; `total` units of work (prompts, passages, questions) follow, if known."""

    name: str
    total: int = 0


@dataclass
class Progress:
    advance: int
