"""PNG plots of hyper-tuning (matplotlib, Agg: no display needed), each written atomically."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..layout import SEARCH_HISTORY_PLOT, SEARCH_IMPORTANCE_PLOT  # noqa: E402


def save_figure(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(figure)
    return path


def plot_lr_range(curve, path: Path) -> Path:
    """Raw and smoothed loss against the learning rate (log axis), the proposed rate and the fastest-fall band."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(curve.lrs, curve.losses, color="0.75", linewidth=1, label="loss")
    axes.plot(curve.lrs, curve.smoothed, color="C0", linewidth=2, label="smoothed loss (EMA)")
    if curve.fastest_range:
        axes.axvspan(*curve.fastest_range, color="C2", alpha=0.15, label="loss falls fastest")
    if curve.suggested_lr:
        axes.axvline(curve.suggested_lr, color="C3", linestyle="--", label=f"proposed {curve.suggested_lr:.2e}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    if curve.smoothed:  # from the lowest loss to a little over the smoothed curve before its minimum
        lowest = curve.smoothed.index(min(curve.smoothed))
        low, high = min(curve.losses), max(curve.smoothed[: lowest + 1])
        margin = max(high - low, 1e-3) * 0.15
        axes.set_ylim(low - margin, high + margin)
    axes.set_title("learning-rate range test")
    axes.legend()
    return save_figure(figure, path)


def plot_study(study, directory: Path, target: str = "eval loss") -> tuple[list[Path], list[str]]:
    """Optimisation history and parameter importances; returns the files written and why any was skipped."""
    from optuna.exceptions import ExperimentalWarning
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as optuna_plots

    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    written, skipped = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        if complete >= 1:
            axes = optuna_plots.plot_optimization_history(study, target_name=target)
            written.append(save_figure(axes.figure, directory / SEARCH_HISTORY_PLOT))
        else:
            skipped.append("history.png: no completed trial yet")
        if complete < 2:
            skipped.append(f"importances.png: needs 2 completed trials, the study has {complete}")
            return written, skipped
        try:
            axes = optuna_plots.plot_param_importances(study, target_name=target)
            written.append(save_figure(axes.figure, directory / SEARCH_IMPORTANCE_PLOT))
        except (ValueError, RuntimeError, ZeroDivisionError) as err:  # e.g. every trial had the same settings
            plt.close("all")
            skipped.append(f"importances.png: {err}")
    return written, skipped
