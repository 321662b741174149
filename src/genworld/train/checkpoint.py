"""Checkpoints: tensors in safetensors, everything else in JSON, written atomically.

`RUN/checkpoints/step-XXXXXXXX.safetensors` holds `model.*` weights and `optim.<i>.<name>` optimiser
state; the `.json` beside it (written last, so its presence marks a complete checkpoint) holds the
stage, step, elapsed time, optimiser hyper-parameters, RNG states and the tensor file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

KEEP = 2  # checkpoints kept on disk


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rng_state() -> dict[str, Any]:
    """Torch and numpy global RNG states as JSON-able data."""
    st = {"torch": torch.get_rng_state().tolist(), "numpy": np.random.get_state()[1].tolist()}
    if torch.cuda.is_available():
        st["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(torch.tensor(st["torch"], dtype=torch.uint8))
    np.random.set_state(("MT19937", np.array(st["numpy"], dtype=np.uint32), 624, 0, 0.0))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in st["cuda"]])


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optim: torch.optim.Optimizer | None,
                    state: dict[str, Any]) -> Path:
    """Write one checkpoint atomically; returns the JSON path. Older ones beyond KEEP are removed."""
    ck = Path(run_dir) / "checkpoints"
    ck.mkdir(parents=True, exist_ok=True)
    name = f"step-{state['global_step']:08d}"
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    groups = []
    if optim is not None:
        sd = optim.state_dict()
        for i, s in sd["state"].items():
            for k, v in s.items():
                tensors[f"optim.{i}.{k}"] = torch.as_tensor(v).detach().contiguous().cpu()
        groups = sd["param_groups"]
    tmp = ck / (name + ".safetensors.tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, ck / (name + ".safetensors"))
    meta = {**state, "optim_groups": groups, "rng": rng_state(),
            "tensors_sha256": _sha256(ck / (name + ".safetensors"))}
    atomic_write_text(ck / (name + ".json"), json.dumps(meta))
    for old in sorted(ck.glob("step-*.json"))[:-KEEP]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return ck / (name + ".json")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint's JSON path, or None."""
    found = sorted((Path(run_dir) / "checkpoints").glob("step-*.json"))
    return found[-1] if found else None


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Read and verify a checkpoint -> (model state dict, optimiser state per param index, JSON meta)."""
    path = Path(path)
    tfile = path.with_suffix(".safetensors")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"checkpoint {path} is unreadable ({e}); delete it to fall back to an older one") from e
    if not tfile.exists():
        raise ValueError(f"checkpoint {path}: tensor file {tfile.name} is missing; delete {path.name} to fall back")
    if _sha256(tfile) != meta.get("tensors_sha256"):
        raise ValueError(f"checkpoint {tfile} is corrupt or truncated (SHA-256 mismatch); delete it and "
                         f"{path.name} to resume from the previous checkpoint")
    try:
        tensors = load_file(str(tfile))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"checkpoint {tfile} cannot be read as safetensors: {e}") from e
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    optim: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            optim.setdefault(i, {})[name] = v
    return model, optim, meta


def load_model_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """load_state_dict with an error that names missing/unexpected/mis-shaped tensors."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or extra or shapes:
        raise ValueError(f"{where}: checkpoint does not fit the model (missing {missing[:5]}, unexpected "
                         f"{extra[:5]}, shape mismatch {sorted(shapes)[:5]}); it was written by a different "
                         "config or version")
    model.load_state_dict(state)


def optim_state_dict(optim_tensors: dict[str, dict[str, torch.Tensor]], groups: list[dict[str, Any]]) -> dict:
    """Rebuild an optimiser state_dict from checkpoint parts."""
    return {"state": {int(i): s for i, s in optim_tensors.items()}, "param_groups": groups}
