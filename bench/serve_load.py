"""Load test of `tunesmith serve` on a finished run, loopback only, bounded in count and time.

N concurrent clients (the official openai client) send the run's held-out prompts for D seconds (and at most
--max-requests in all); the same prompts are then answered one at a time by the run's model in PyTorch, as
`tunesmith generate` answers them. Prints requests/s, output tokens/s, p50/p99 latency, errors and the server's
resident memory over the run, and the throughput ratio; writes bench/results/serve-<timestamp>.json.
With --agreement, it instead answers every held-out prompt once through the API (greedy) and compares the answers
with the run's model in PyTorch (fp32, export's reference): identical answers and token agreement.

    python bench/serve_load.py runs/ner-finance-lora --clients 8 --seconds 60
    python bench/serve_load.py runs/ner-finance-lora --agreement --quant f16
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
from openai import OpenAI

from tunesmith.base.precision import run_dtype
from tunesmith.evaluate.generate import generate
from tunesmith.export.run import held_out_prompts
from tunesmith.runs import load_tuned, read_run_config
from tunesmith.serve.run import ServeOptions, serve_run

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load(handle, prompts, clients: int, seconds: float, max_requests: int, max_tokens: int) -> dict:
    client = OpenAI(base_url=handle.url, api_key="none", max_retries=0, timeout=120)
    latencies, tokens, errors, lock = [], [], [], threading.Lock()
    stop_at, counter = time.monotonic() + seconds, iter(range(max_requests))
    rss, server = [], psutil.Process(handle.process.pid)

    def worker(offset: int) -> None:
        while time.monotonic() < stop_at:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.perf_counter()
            try:
                answer = client.chat.completions.create(
                    model=handle.model, messages=prompts[(index + offset) % len(prompts)], temperature=0,
                    max_tokens=max_tokens,
                )  # fmt: skip
            except Exception as err:  # counted, not raised: a load test reports its errors
                with lock:
                    errors.append(repr(err)[:200])
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
                tokens.append(answer.usage.completion_tokens)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        rss.append(server.memory_info().rss)
        time.sleep(1.0)
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": len(latencies) / elapsed,
        "output_tokens_per_s": sum(tokens) / elapsed,
        "latency_p50_s": statistics.median(ordered) if ordered else None,
        "latency_p99_s": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else None,
        "server_rss_mib_first_last_max": [rss[0] / 2**20, rss[-1] / 2**20, max(rss) / 2**20] if rss else None,
    }


def one_at_a_time(run_dir: Path, prompts, count: int, max_tokens: int) -> dict:
    config = read_run_config(run_dir)
    tuned = load_tuned(run_dir, dtype=run_dtype(config))
    began = time.perf_counter()
    answers = [generate(tuned.model, tuned.tokenizer, [p], max_tokens, batch_size=1)[0] for p in prompts[:count]]
    elapsed = time.perf_counter() - began
    produced = sum(a.new_tokens + a.stopped for a in answers)  # the stop token counts, as the server counts it
    return {"requests": count, "seconds": elapsed, "requests_per_s": count / elapsed,
            "output_tokens_per_s": produced / elapsed}  # fmt: skip


def agreement(handle, run_dir: Path, prompts, max_tokens: int) -> dict:
    import torch

    from tunesmith.evaluate.generate import Generation
    from tunesmith.export.verify import agreement as compare

    client = OpenAI(base_url=handle.url, api_key="none", max_retries=0, timeout=120)
    served = []
    for messages in prompts:
        answer = client.chat.completions.create(
            model=handle.model, messages=messages, temperature=0, max_tokens=max_tokens
        )
        choice = answer.choices[0]
        served.append(Generation(choice.message.content or "", choice.finish_reason == "stop", 0))
    tuned = load_tuned(run_dir, dtype=torch.float32)
    reference = generate(tuned.model, tuned.tokenizer, prompts, max_tokens, batch_size=16)
    identical, tokens = compare(served, reference, tuned.tokenizer)
    return {"prompts": len(prompts), "identical_answers": identical, "token_agreement": tokens,
            "stopped_served": sum(g.stopped for g in served) / len(served),
            "stopped_pytorch": sum(g.stopped for g in reference) / len(reference)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=2000)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--pytorch-prompts", type=int, default=20)
    parser.add_argument("--quant", default="q8_0")
    parser.add_argument("--agreement", action="store_true", help="compare served answers with PyTorch's instead")
    args = parser.parse_args()
    config = read_run_config(args.run_dir)
    prompts = held_out_prompts(config, 100).conversations
    options = ServeOptions(port=free_port(), parallel=args.parallel, max_tokens=args.max_tokens, quant=args.quant)
    with serve_run(args.run_dir, options) as handle:
        if args.agreement:
            result = {"quant": args.quant, "agreement": agreement(handle, args.run_dir, prompts, args.max_tokens)}
        else:
            served = load(handle, prompts, args.clients, args.seconds, args.max_requests, args.max_tokens)
    if not args.agreement:
        alone = one_at_a_time(args.run_dir, prompts, args.pytorch_prompts, args.max_tokens)
        result = {"quant": args.quant, "served": served, "pytorch_one_at_a_time": alone,
                  "throughput_ratio": served["output_tokens_per_s"] / alone["output_tokens_per_s"],
                  "requests_ratio": served["requests_per_s"] / alone["requests_per_s"]}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"serve-{stamp}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
