"""Errors a user can act on. The CLI prints them in one line and exits with their exit code."""

from __future__ import annotations


class TunesmithError(Exception):
    """A problem with the user's input or environment, not a bug: no traceback, exit code 2."""

    exit_code = 2


class ConfigError(TunesmithError):
    """run.yaml or a CLI override is invalid."""


class DataError(TunesmithError):
    """One or more records of a data file are invalid; each problem names file:line: field."""

    def __init__(self, problems: list[DataProblem]):
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{len(problems)} data {noun}:\n{shown}{more}")


class DataProblem:
    """One invalid field of one record, rendered as `file:line: field: message`."""

    def __init__(self, file: str, line: int, field: str, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"DataProblem({str(self)!r})"


class UnreadableInput(TunesmithError):
    """An input that is not a regular file, is too large, or cannot be read; the message names the file."""


class RefusedOverwrite(TunesmithError):
    """An output path holds something tunesmith did not write there: it is left alone."""


class CorruptArtefact(TunesmithError):
    """A file tunesmith wrote (adapter/, model/, a checkpoint) no longer matches its MANIFEST or holds non-finite
    weights: it is refused before anything is loaded from it."""


class Terminated(BaseException):
    """SIGTERM outside the training loop: unwinds like Ctrl-C (temporary files are removed), exit 143."""


class ModelLoadError(TunesmithError):
    """A base model could not be found or loaded."""


class UnsafeFileError(TunesmithError):
    """A file could run code when loaded (pickle weights, remote code) and the user did not opt in."""
