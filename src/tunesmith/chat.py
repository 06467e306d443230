"""Talk to a tuned model: the run's template, and by default the system message its training data used."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .evaluate.generate import generate
from .layout import read_default_system
from .runs import TunedModel, load_tuned


@dataclass
class Session:
    tuned: TunedModel
    system: str | None
    max_new_tokens: int
    history: list[dict] = field(default_factory=list)

    @classmethod
    def open(cls, run_dir: Path, system: str | None = None, max_new_tokens: int = 256) -> Session:
        tuned = load_tuned(run_dir, merge=True)
        return cls(tuned, system if system is not None else read_default_system(run_dir), max_new_tokens)

    def reply(self, text: str, keep_history: bool = False) -> str:
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + self.history
        messages.append({"role": "user", "content": text})
        answer = generate(self.tuned.model, self.tuned.tokenizer, [messages], self.max_new_tokens)[0].text
        if keep_history:
            self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        return answer
