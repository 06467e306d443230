"""Everything exact resume needs, stored without pickle: tensors in safetensors, the rest in JSON.

Trainable weights, AdamW moments, and every RNG state (torch, CUDA, Python, NumPy) are captured after an
optimizer step and restored before the next one, so a resumed run computes exactly what an uninterrupted
run would have (bit-identical on CPU in fp32).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..layout import CHECKPOINT_ARTEFACT as ARTEFACT
from ..layout import OPTIMIZER_STATE as OPTIMIZER
from ..layout import RESUME_META as META
from ..layout import RNG_STATE as RNG
from ..layout import TRAINABLE_WEIGHTS as WEIGHTS
from ..strategies import Plan


def save_training_state(directory: Path, plan: Plan, optimizer: torch.optim.Optimizer) -> None:
    """Optimizer, RNG and, unless the checkpoint's artefact/ already holds them bit for bit (a full or head
    fine-tune saves the whole model there), the trainable weights."""
    weights = {name: p.detach().contiguous() for name, p in plan.model.named_parameters() if p.requires_grad}
    if not artefact_holds(directory, weights):
        save_file(weights, directory / WEIGHTS)
    tensors, scalars = split_optimizer_state(optimizer.state_dict())
    save_file(tensors, directory / OPTIMIZER)
    save_file(torch_rng_states(), directory / RNG)
    meta = {"optimizer": scalars, "python_rng": python_rng_state(), "numpy_rng": numpy_rng_state()}
    (directory / META).write_text(json.dumps(meta), encoding="utf-8")


def tensors_named(files: list[Path], names: set[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """The tensors called `names` in these safetensors files, one at a time, so a whole model is never held twice
    in memory."""
    for path in files:
        with safe_open(path, framework="pt") as handle:
            for name in sorted(names & set(handle.keys())):
                yield name, handle.get_tensor(name)


def artefact_files(directory: Path) -> list[Path]:
    return sorted((directory / ARTEFACT).glob("*.safetensors"))  # one file, or shards


def artefact_holds(directory: Path, weights: dict[str, torch.Tensor]) -> bool:
    """True if the checkpoint's artefact stores every trainable tensor under its parameter name, bit for bit."""
    matched = set()
    for name, stored in tensors_named(artefact_files(directory), set(weights)):
        if stored.dtype != weights[name].dtype or not torch.equal(stored, weights[name]):
            return False
        matched.add(name)
    return matched == weights.keys()


def load_trainable_weights(directory: Path, plan: Plan) -> None:
    """From trainable.safetensors (exactly the trainable tensors), or else from the checkpoint's artefact (the whole
    model, holding them among the frozen ones). Names are checked before any weight is touched."""
    params = {name: p for name, p in plan.model.named_parameters() if p.requires_grad}
    own_file = directory / WEIGHTS
    files = [own_file] if own_file.exists() else artefact_files(directory)
    stored = set()
    for path in files:
        with safe_open(path, framework="pt") as handle:
            stored |= set(handle.keys())
    complete = stored == params.keys() if own_file.exists() else params.keys() <= stored
    if not complete:
        raise ValueError(f"{directory}: trainable parameters differ from this run's model")
    with torch.no_grad():
        for name, tensor in tensors_named(files, set(params)):
            params[name].copy_(tensor)


def load_training_state(directory: Path, plan: Plan, optimizer: torch.optim.Optimizer) -> None:
    load_trainable_weights(directory, plan)
    meta = json.loads((directory / META).read_text(encoding="utf-8"))
    optimizer.load_state_dict(join_optimizer_state(load_file(directory / OPTIMIZER), meta["optimizer"]))
    restore_torch_rng(load_file(directory / RNG))
    restore_python_rng(meta["python_rng"])
    restore_numpy_rng(meta["numpy_rng"])


def split_optimizer_state(state: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {"param_groups": state["param_groups"], "state": {}}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.contiguous()
            else:
                scalars["state"].setdefault(str(index), {})[key] = value
    return tensors, scalars


def join_optimizer_state(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> dict:
    state: dict[int, dict] = {int(i): dict(slots) for i, slots in scalars["state"].items()}
    for name, tensor in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    return {"state": state, "param_groups": scalars["param_groups"]}


def torch_rng_states() -> dict[str, torch.Tensor]:
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states |= {f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return states


def restore_torch_rng(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["cpu"])
    cuda = [states[k] for k in sorted(states) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def python_rng_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def restore_python_rng(state: list) -> None:
    random.setstate((state[0], tuple(state[1]), state[2]))


def numpy_rng_state() -> list:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def restore_numpy_rng(state: list) -> None:
    kind, keys, pos, has_gauss, cached = state
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
