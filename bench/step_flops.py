"""The FLOPs a training step executes, counted from what it ran, and the matmul peaks they are compared with.

Counted per forward piece (training's own split_by_tokens, collate and shared_prefix_length decide the pieces, their
padded width and the prompt prefix that runs once): every executed position (the shared prefix once, then each row's
rest, padding included: it is computed) multiplies the blocks' linear weights — forward 2 FLOPs a weight, the input
gradient 2 more, the weight gradient 2 more where the weight trains (LoRA's adapters; every weight in a full
fine-tune); the LM head runs only where a logit is read (the supervised positions for tunesmith, every position for
TRL); attention adds 4 x heads x head_dim per (query, key) pair of the causal triangle per layer, three times over
for its backward; gradient checkpointing adds one more forward of the blocks. Not counted: the input gradient of
layer 0's frozen projections that autograd skips (~1% of a LoRA step), element-wise work, the optimizer.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from tunesmith.base.blocks import transformer_blocks
from tunesmith.training.batching import collate, split_by_tokens
from tunesmith.training.loss import IGNORE, shared_prefix_length


@dataclass(frozen=True)
class ModelShape:
    body_weights: int  # frozen + trainable weights of the blocks' linear layers (LoRA's adapters not included)
    lora_weights: int  # LoRA's A and B (0 for a full fine-tune)
    head_weights: int  # the LM head: hidden x vocab
    layers: int
    attention_width: int  # query heads x head dim
    kv_width: int  # key/value heads x head dim
    hidden: int
    intermediate: int
    full: bool  # every weight trains (weight gradients for the body and the head)


def model_shape(model: nn.Module, full: bool) -> ModelShape:
    config = model.config.get_text_config(decoder=True)
    blocks = transformer_blocks(model)
    body = lora = 0
    for name, module in blocks.named_modules():
        if isinstance(module, nn.Linear):  # bitsandbytes' 4-bit layers too: in x out, not the packed storage
            size = module.in_features * module.out_features
            lora, body = (lora + size, body) if "lora_" in name else (lora, body + size)
    head = model.get_output_embeddings().weight
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    widths = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    return ModelShape(body, lora, head.shape[0] * head.shape[1], len(blocks), *widths, config.hidden_size,
                      config.intermediate_size, full)  # fmt: skip


@dataclass
class Piece:
    rows: int
    width: int  # padded length
    shared: int  # leading tokens run once for all rows
    logits: int  # positions the LM head runs at

    @property
    def executed_tokens(self) -> int:
        return self.shared + self.rows * (self.width - self.shared)

    @property
    def attention_pairs(self) -> int:
        triangle = lambda n: n * (n + 1) // 2  # noqa: E731
        return triangle(self.shared) + self.rows * (triangle(self.width) - triangle(self.shared))


def piece_flops(shape: ModelShape, piece: Piece, recompute: bool = False) -> float:
    weight_grad = 2 if shape.full else 0
    tokens, pairs = piece.executed_tokens, piece.attention_pairs
    linear = tokens * ((4 + weight_grad) * shape.body_weights + 6 * shape.lora_weights)
    attention = 3 * 4 * shape.attention_width * pairs * shape.layers
    head = piece.logits * (4 + weight_grad) * shape.head_weights
    again = tokens * 2 * (shape.body_weights + shape.lora_weights) + 4 * shape.attention_width * pairs * shape.layers
    return linear + attention + head + (again if recompute else 0)


def tunesmith_pieces(micro_batches, max_tokens: int | None, share_prefix: bool, pad_id: int = 0) -> list[Piece]:
    """The forward pieces tunesmith's loop runs for these micro-batches (lists of encoded examples)."""
    pieces = []
    for micro_batch in micro_batches:
        for examples in split_by_tokens(micro_batch, max_tokens):
            batch = collate(examples, pad_id)
            shared = shared_prefix_length(batch) if share_prefix else 0
            logits = int((batch["labels"][:, shared + 1 :] != IGNORE).sum())
            pieces.append(Piece(len(examples), batch["input_ids"].shape[1], shared, logits))
    return pieces


def padded_piece(rows: int, width: int) -> Piece:
    """A plain padded batch with logits at every position (what TRL's trainer runs)."""
    return Piece(rows, width, 0, rows * width)


def timed_gflops(m: int, k: int, n: int, dtype: torch.dtype, device: str = "cpu", reps: int = 5) -> float:
    """Best GFLOP/s of an (m x k) @ (k x n) matmul after two warm-ups."""
    a = torch.randn(m, k, dtype=dtype, device=device)
    b = torch.randn(k, n, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        sync()
        tick = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - tick)
    return 2 * m * k * n / best / 1e9


def step_gemms(shape: ModelShape, tokens: int, logits: int, lora_rank: int) -> list[tuple[int, int, int, int]]:
    """(m, k, n, times per step) of the products a step runs at `tokens` rows per layer and `logits` rows at the LM
    head: forward, input gradient, and the weight gradient where weights train. What the shape-matched peak times."""
    d, f, w, kv, layers = shape.hidden, shape.intermediate, shape.attention_width, shape.kv_width, shape.layers
    forward = [(tokens, d, w), (tokens, d, kv), (tokens, d, kv), (tokens, w, d), (tokens, d, f), (tokens, d, f)]
    forward.append((tokens, f, d))
    gemms = forward + [(m, n, k) for m, k, n in forward]
    if shape.full:
        gemms += [(k, m, n) for m, k, n in forward]
    elif lora_rank:
        adapters = [(tokens, k, lora_rank) for _, k, _ in forward] + [(tokens, lora_rank, n) for _, _, n in forward]
        gemms += adapters * 3  # forward, input gradient, weight gradient (the same sizes, transposed)
    vocab = shape.head_weights // d
    head = [(logits, d, vocab), (logits, vocab, d)] + ([(d, logits, vocab)] if shape.full else [])
    return [(m, k, n, layers) for m, k, n in gemms] + [(m, k, n, 1) for m, k, n in head]


def shape_matched_peak(gemms: list[tuple[int, int, int, int]], dtype: torch.dtype, device: str = "cpu") -> float:
    """GFLOP/s of the step's own products: their FLOPs over their summed best times, each as often as a step runs
    it (the 576-wide products of SmolLM2 run far from a large square matmul's rate)."""
    seconds = flops = 0.0
    for m, k, n, times in gemms:
        work = 2 * m * k * n * times
        flops += work
        seconds += work / (timed_gflops(m, k, n, dtype, device) * 1e9)
    return flops / seconds / 1e9


def shape_dict(shape: ModelShape) -> dict:
    return asdict(shape)
