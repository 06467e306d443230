"""The CUDA kernels are chosen only where they can run, a refused one falls back, and the fused cross-entropy is
called as Liger's interface expects (a stand-in with that interface gives the plain path's loss and gradients).
No GPU here: the kernels themselves are not run."""

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from tests.conftest import tiny_llama
from tests.training.test_loss import encoded_batch, loss_and_gradients

from tunesmith.training import kernels
from tunesmith.training.kernels import FLASH_ATTENTION, attention_kernel, load_with_attention_kernel


@pytest.mark.parametrize(
    ("cuda", "precision", "flash_attn", "expected"),
    [
        (True, "bf16", True, FLASH_ATTENTION),
        (True, "fp32", True, None),  # no fp32 kernels
        (True, "bf16", False, None),  # not installed
        (False, "bf16", True, None),  # a CPU
    ],
)
def test_flash_attention_is_chosen_only_for_bf16_on_cuda_when_installed(
    monkeypatch, cuda, precision, flash_attn, expected
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(kernels, "installed", lambda package: flash_attn and package == "flash_attn")
    assert attention_kernel(precision) == expected


def test_a_model_that_refuses_flash_attention_loads_with_the_default(monkeypatch, tiny_model_dir):
    """Here flash-attn is not installed, so transformers refuses the kernel for real: the run still loads."""
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(kernels, "attention_kernel", lambda precision: FLASH_ATTENTION)
    asked = []

    def load(kwargs):
        asked.append(kwargs.get("attn_implementation"))
        return AutoModelForCausalLM.from_pretrained(tiny_model_dir, **kwargs)

    model = load_with_attention_kernel(load, {"dtype": torch.bfloat16}, "bf16")
    assert asked == [FLASH_ATTENTION, None]
    assert model.config._attn_implementation != FLASH_ATTENTION


class StandInLigerLoss(torch.nn.Module):
    """liger_kernel.transformers.LigerFusedLinearCrossEntropyLoss's interface, computed the plain way."""

    calls = 0

    def __init__(self, ignore_index=-100, reduction="mean", softcap=None):
        super().__init__()
        self.reduction, self.softcap = reduction, softcap

    def forward(self, lin_weight, _input, target, bias=None):
        StandInLigerLoss.calls += 1
        logits = F.linear(_input, lin_weight, bias).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return F.cross_entropy(logits, target, reduction=self.reduction)


def test_the_fused_cross_entropy_is_called_as_liger_expects(monkeypatch, smol_tokenizer):
    batch, _ = encoded_batch(smol_tokenizer)
    model = tiny_llama(len(smol_tokenizer)).train()
    plain, count, plain_grads = loss_and_gradients(model, batch)
    monkeypatch.setattr(kernels, "liger_loss_class", lambda: StandInLigerLoss)
    monkeypatch.setattr(kernels, "on_cuda", lambda tensor: True)
    StandInLigerLoss.calls = 0
    fused, fused_count, fused_grads = loss_and_gradients(model, batch)
    assert StandInLigerLoss.calls == 1 and fused_count == count
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    assert fused_grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)


def test_no_fused_cross_entropy_on_a_cpu_without_liger_or_for_a_lora_wrapped_head(monkeypatch, smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer))
    monkeypatch.setattr(kernels, "liger_loss_class", lambda: StandInLigerLoss)
    assert kernels.fused_linear_cross_entropy(model.get_output_embeddings(), None) is None  # CPU weights
    monkeypatch.setattr(kernels, "on_cuda", lambda tensor: True)
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["lm_head"]))
    assert kernels.fused_linear_cross_entropy(wrapped.get_output_embeddings(), None) is None  # its LoRA path
    monkeypatch.setattr(kernels, "liger_loss_class", lambda: None)
    assert kernels.fused_linear_cross_entropy(model.get_output_embeddings(), None) is None  # not installed
