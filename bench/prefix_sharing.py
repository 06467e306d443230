"""train.share_prefix on and off, on the same real micro-batches of the example: time and equality.

Usage: python bench/prefix_sharing.py [--batches 10] [--compile]
Each micro-batch runs forward + backward with the shared prompt prefix computed once and with every row computed
whole, in alternating order (so a change of machine load hits both alike); the loss and the LoRA gradients of the
two are compared. Prints one line per micro-batch and the totals as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from packing_speed import EXAMPLE, build

from tunesmith.training.batching import collate
from tunesmith.training.loss import shared_prefix_length
from tunesmith.training.step import micro_batch_stream


def forward_backward(module, params, batch, share: bool) -> tuple[float, float, torch.Tensor]:
    module.share_prefix = share
    tick = time.perf_counter()
    loss = module(**batch)
    loss.backward()
    seconds = time.perf_counter() - tick
    grads = torch.cat([p.grad.flatten() for p in params])
    for p in params:
        p.grad = None
    return seconds, loss.item(), grads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=10, help="timed micro-batches (after 2 untimed)")
    parser.add_argument("--compile", action="store_true", help="compile the blocks as train.compile does")
    args = parser.parse_args()
    config, base, data, module, _, params, precision = build(EXAMPLE, args.compile)
    stream = micro_batch_stream(data.train.examples, config.train.batch_size, config.train.seed, True)
    batches = [collate(next(stream)[1], base.tokenizer.pad_token_id) for _ in range(args.batches + 2)]
    for batch in batches[:2]:  # warm-up (and compilation)
        forward_backward(module, params, batch, True)
        forward_backward(module, params, batch, False)
    seconds = {True: 0.0, False: 0.0}
    worst_loss, worst_grad = 0.0, 0.0
    for i, batch in enumerate(batches[2:]):
        results = {share: forward_backward(module, params, batch, share) for share in ((i % 2 == 0), (i % 2 == 1))}
        (once_s, once_loss, once_grads), (whole_s, whole_loss, whole_grads) = results[True], results[False]
        seconds[True] += once_s
        seconds[False] += whole_s
        worst_loss = max(worst_loss, abs(once_loss - whole_loss) / abs(whole_loss))
        worst_grad = max(worst_grad, ((once_grads - whole_grads).norm() / whole_grads.norm()).item())
        rows, width = batch["input_ids"].shape
        print(
            f"{rows} x {width}: prefix {shared_prefix_length(batch)} tokens, {whole_s:.2f} s whole rows,"
            f" {once_s:.2f} s prefix once",
            file=sys.stderr,
            flush=True,
        )
    summary = {
        "precision": precision,
        "compile": args.compile,
        "batches": args.batches,
        "seconds_whole_rows": round(seconds[False], 1),
        "seconds_prefix_once": round(seconds[True], 1),
        "speedup": round(seconds[False] / seconds[True], 3),
        "max_relative_loss_difference": float(f"{worst_loss:.2g}"),
        "max_relative_gradient_difference": float(f"{worst_grad:.2g}"),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
