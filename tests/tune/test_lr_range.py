"""The learning-rate range test: exponential schedule, bias-corrected EMA, the stopping and proposal rules."""

import json
import math

import numpy as np
import pytest
from tests.conftest import VARIED_CHATS, write_jsonl

from tunesmith.config import validate_config
from tunesmith.events import LrStep
from tunesmith.tune.lr_range import RULE, LrCurve, Smoother, analyse, exploded, exponential_lr, tune_lr


def test_schedule_runs_from_min_to_max_evenly_in_log():
    lrs = [exponential_lr(i, 5, 1e-6, 1e-2) for i in range(5)]
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1e-2)
    assert np.allclose(np.diff(np.log10(lrs)), 1.0)


def test_bias_corrected_ema_starts_at_the_first_value_and_lags_a_step_change():
    smoother = Smoother(0.9)
    assert smoother.add(5.0) == pytest.approx(5.0)  # an uncorrected EMA would say 0.5
    assert smoother.add(5.0) == pytest.approx(5.0)
    after_jump = smoother.add(1.0)
    assert 1.0 < after_jump < 5.0


def test_explosion_is_four_times_the_lowest_smoothed_loss():
    assert not exploded([3.0, 1.0, 3.9], 4.0)
    assert exploded([3.0, 1.0, 4.1], 4.0)


def synthetic_curve(points=100, noise=0.0):
    """A loss that is flat, then falls fastest around lr 1e-3, bottoms out, then rises; with batch noise."""
    lrs = [exponential_lr(i, points, 1e-6, 1.0) for i in range(points)]
    x = np.log10(lrs)
    loss = 2.0 - 1.5 / (1 + np.exp(-(x + 3) * 4)) + np.maximum(x + 1, 0) ** 2
    loss = loss + noise * np.random.default_rng(0).standard_normal(points)
    smoother = Smoother(0.9)
    return LrCurve(lrs=lrs, losses=list(loss), smoothed=[smoother.add(v) for v in loss])


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_the_steepest_fall_is_found_even_with_noisy_batches(noise):
    curve = analyse(synthetic_curve(noise=noise), 100)
    assert math.log10(curve.steepest_lr) == pytest.approx(-3, abs=0.3)
    low, high = curve.fastest_range
    assert low < curve.steepest_lr < high and high / low < 100
    smoothed = np.array(curve.smoothed)
    assert curve.min_loss_lr == pytest.approx(curve.lrs[int(np.argmin(smoothed))] / 10)
    assert curve.suggested_lr == max(curve.steepest_lr, curve.min_loss_lr)


def test_the_proposal_is_the_larger_of_the_steepest_fall_and_the_minimum_over_ten():
    """A curve that falls fastest early and bottoms out late (the JSON example's shape: steepest 8.7e-5, minimum /
    10 5e-4, best short run 3e-3) is proposed the minimum / 10; one whose minimum is close behind its steepest fall
    keeps the steepest fall."""
    lrs = [exponential_lr(i, 100, 1e-6, 1.0) for i in range(100)]
    x = np.log10(lrs)
    late = list(2.0 - 1.0 / (1 + np.exp(-(x + 4) * 6)) - 0.3 * np.clip(x + 4, 0, 2) + 4 * np.maximum(x + 1.3, 0) ** 2)
    curve = analyse(LrCurve(lrs=lrs, losses=late, smoothed=late), 100)
    assert curve.steepest_lr < curve.min_loss_lr == curve.suggested_lr
    early = list(2.0 - 1.5 / (1 + np.exp(-(x + 3) * 4)) + 20 * np.maximum(x + 2.5, 0) ** 2)
    curve = analyse(LrCurve(lrs=lrs, losses=early, smoothed=early), 100)
    assert curve.min_loss_lr < curve.steepest_lr == curve.suggested_lr


def test_no_proposal_when_the_loss_never_falls():
    lrs = [exponential_lr(i, 20, 1e-6, 1.0) for i in range(20)]
    rising = [1.0 + i for i in range(20)]
    assert analyse(LrCurve(lrs=lrs, losses=rising, smoothed=rising), 20).suggested_lr is None


def test_range_test_on_a_tiny_model_writes_curve_and_plot(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    config = validate_config(
        {
            "name": "tiny",
            "base": str(tiny_model_dir),
            "output_dir": str(tmp_path / "runs"),
            "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
            "data": {"train": str(data), "eval": str(data), "max_length": 96},
            "train": {"batch_size": 4, "precision": "fp32"},
            "tune": {"lr": {"steps": 8, "min_lr": 1e-5, "max_lr": 10.0}},
        }
    )
    events = []
    result = tune_lr(config, on_event=events.append)
    steps = [e for e in events if isinstance(e, LrStep)]
    assert [e.step for e in steps] == list(range(1, len(steps) + 1)) and len(steps) == len(result.curve.lrs)
    assert result.curve.lrs[0] == pytest.approx(1e-5)
    assert len(steps) == 8 or result.curve.stopped
    saved = json.loads(result.curve_path.read_text())
    assert saved["losses"] == result.curve.losses and saved["rule"] == RULE
    assert result.curve_path.parent == config.tune_dir
    assert result.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
