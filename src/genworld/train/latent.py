"""`genworld train --actions latent[:K]`: learn K latent actions from the frames first, then train the world
model on them in place of the dataset's actions (which may be absent: imported video).

The run records what it took in RUN/actions.json (`{"kind": "latent", "k": K, ...}`) next to the latent
action model (RUN/latent_actions.safetensors + .json); its spec's action is `Discrete(K)` with names
`latent_0..latent_{K-1}`, so `WorldSession`, `DreamEnv`, `genworld play` and `genworld dream` see K buttons.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from genworld.spec import Modality, WorldSpec
from genworld.train.data import EpisodeStore

LAM_STEM = "latent_actions"


def parse_actions(text: str) -> int | None:
    """`dataset` -> None; `latent` -> 8; `latent:K` -> K (K >= 2)."""
    if text in ("dataset", "", None):
        return None
    kind, _, k = text.partition(":")
    if kind != "latent":
        raise ValueError(f"--actions {text!r}: choose dataset (the dataset's own) or latent[:K]")
    try:
        n = int(k) if k else 8
    except ValueError:
        raise ValueError(f"--actions {text!r}: K must be a whole number, e.g. latent:8") from None
    if n < 2:
        raise ValueError(f"--actions {text!r}: K must be at least 2 latent actions")
    return n


def latent_spec(spec: WorldSpec, k: int) -> WorldSpec:
    """`spec` with its action (if any) replaced by `Discrete(k)` latent actions."""
    mods = [m for m in spec.modalities if m.kind != "action"]
    act = Modality("action", "action", (), spec.fps, dtype="int64", discrete=True,
                   names=tuple(f"latent_{i}" for i in range(k)),
                   description="latent action learned from the frames (genworld train --actions latent)")
    config = {**(spec.config or {}), "actions": {"kind": "latent", "k": k}}
    return replace(spec, modalities=tuple(mods) + (act,), config=config)


def read_actions(run_dir: str | Path) -> dict[str, Any]:
    """RUN/actions.json, or `{"kind": "dataset"}` for a run trained on the dataset's actions."""
    p = Path(run_dir) / "actions.json"
    return json.loads(p.read_text()) if p.exists() else {"kind": "dataset"}


def latent_store(store: EpisodeStore, k: int, out: Path, resume: bool, progress: bool = True,
                 steps: int | None = None) -> EpisodeStore:
    """Train (or, resuming, load) the latent action model of `out`, infer every step's latent action and return
    the store with them as its actions."""
    from genworld.models.latent_actions import (
        LatentActionConfig,
        load_latent_actions,
        save_latent_actions,
        train_latent_actions,
    )

    videos = store.spec.of_kind("video")
    if not videos:
        raise ValueError(f"--actions latent: world {store.spec.name!r} has no video to learn actions from")
    vkey = videos[0].key
    stem = str(out / LAM_STEM)
    out.mkdir(parents=True, exist_ok=True)
    if Path(stem + ".safetensors").exists():
        lam, meta = load_latent_actions(stem)
        if meta["config"]["k"] != k:
            raise ValueError(f"{out}: holds a latent action model with K = {meta['config']['k']}, not {k}; "
                             "choose another --out")
    else:  # a new run, or one interrupted before its latent action model was saved: (re)train it (short)
        cfg = LatentActionConfig(k=k, **({"steps": steps} if steps else {}))
        lam, info = train_latent_actions(store.arrays[vkey], cfg, progress=progress)
        true_key = next((m.key for m in store.spec.modalities if m.kind == "action"), None)
        save_latent_actions(lam, stem, {"trained_on": store.num_episodes, **info, "true_action": true_key})
        if progress:
            print(f"latent actions: {k} codes, {info['codes_used']} in use, reconstruction MSE {info['rec_mse']:.5f}")
    codes = [lam.infer(frames) for frames in store.arrays[vkey]]
    true = next((m for m in store.spec.modalities if m.kind == "action"), None)
    record = {"kind": "latent", "k": k, "model": LAM_STEM, "video_key": vkey,
              "true_action": None if true is None else true.key,
              "usage": np.bincount(np.concatenate(codes), minlength=k).tolist()}
    if true is not None and true.discrete:  # for `genworld play --map-actions`: the latent each true action
        z = np.concatenate([c[:-1] for c in codes])  # co-occurs with most (the last step's outcome is unseen)
        a = np.concatenate([np.asarray(x[:-1], np.int64) for x in store.arrays[true.key]])
        M = np.zeros((true.n_choices, k))
        np.add.at(M, (a, z), 1)
        record["latent_of_true"] = {name: int(M[i].argmax()) for i, name in enumerate(true.names) if M[i].sum()}
    tmp = out / "actions.json.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, out / "actions.json")
    arrays = {key: v for key, v in store.arrays.items() if key not in ({true.key} if true else set())}
    arrays["action"] = codes
    return EpisodeStore(latent_spec(store.spec, k), arrays)
