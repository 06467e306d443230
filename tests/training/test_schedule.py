import pytest

from tunesmith.training.schedule import learning_rate_at


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_warmup_then_decay_to_the_floor(schedule):
    lrs = [learning_rate_at(s, 100, 1.0, 10, schedule, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(0.1)


def test_constant_stays_at_peak_after_warmup():
    assert learning_rate_at(50, 100, 2e-4, 10, "constant", 0.0) == 2e-4
