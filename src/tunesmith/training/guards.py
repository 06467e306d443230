"""Guards of a run: stop cleanly on SIGTERM/SIGINT, skip non-finite steps, give up on divergence."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from ..errors import TunesmithError

EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


class Interrupted(TunesmithError):
    """The run was asked to stop; a checkpoint of the last finished step was saved first."""

    def __init__(self, signum: int, step: int, run_dir: Path):
        self.exit_code = EXIT_CODES.get(signum, 1)
        name = signal.Signals(signum).name
        super().__init__(f"{name}: stopped after step {step}, checkpoint saved; run the same command to resume")


class TrainingDiverged(TunesmithError):
    exit_code = 1


class StopSignals:
    """While active, SIGTERM/SIGINT set `requested` (the loop checkpoints and stops at the step boundary).
    A second signal stops at once."""

    def __init__(self) -> None:
        self.requested: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in EXIT_CODES:
                self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def handle(self, signum, frame) -> None:
        if self.requested is not None:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        self.requested = signum

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


class DivergenceGuard:
    """Counts non-finite steps; `allows` says whether to apply the update, and raises after too many in a row."""

    def __init__(self, max_in_a_row: int):
        self.max_in_a_row = max_in_a_row
        self.in_a_row = 0
        self.skipped = 0

    def allows(self, finite: bool) -> bool:
        if finite:
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        self.skipped += 1
        if self.in_a_row >= self.max_in_a_row:
            raise TrainingDiverged(
                f"loss or gradients were not finite for {self.in_a_row} steps in a row; stopped with the last "
                "good checkpoint intact. Lower the learning rate or check the data"
            )
        return False
