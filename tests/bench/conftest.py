"""The bench tests run TRL's SFTTrainer in this process; its Accelerator fixes accelerate's process-wide state
(mixed precision bf16), which every later Accelerator() in the suite would then refuse. Reset it after each test."""

import pytest


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
