"""Training configuration and presets (`tiny`, `small`, `base`): functions that return configs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genworld.models.audio_tokenizer import AudioTokenizerConfig
from genworld.models.config import WorldModelConfig, from_dict, to_dict
from genworld.models.dynamics import DynamicsConfig
from genworld.models.image_tokenizer import ImageTokenizerConfig
from genworld.spec import WorldSpec

FORMAT_VERSION = 3  # bump when a run directory written by an older version can no longer be read


@dataclass
class TrainConfig:
    """How to train: budgets, batches, optimiser, validation, checkpoints and devices."""

    seed: int = 0
    tok_steps: int = 1500  # stage 1: tokenizers
    dyn_steps: int = 6000  # stage 2: dynamics on cached tokens
    max_minutes: float | None = None  # wall-clock budget for both stages, tokenizing included (None: steps only)
    tok_fraction: float = 0.3  # share of a --max-steps / --max-minutes budget given to stage 1
    tok_batch_size: int = 32  # frames per tokenizer step
    batch_size: int = 16  # windows per dynamics step (global, split across ranks)
    lr_tok: float = 2e-3
    lr_dyn: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 100
    grad_clip: float = 1.0
    val_episodes: int = 4  # held out (deterministic by seed); at most a quarter of the episodes
    val_every: int = 250
    log_every: int = 10
    ckpt_every: int = 500  # steps
    ckpt_every_s: float = 60.0  # and at least this often in seconds
    n_contexts: int = 8  # real windows stored in the run for sessions without a dataset
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False  # torch.compile the dynamics (GPU)
    bf16: bool = True  # bf16 autocast on CUDA (CPU trains in fp32)


@dataclass
class RunConfig:
    """A run: the model and how it was trained; saved as config.json in the run directory."""

    preset: str = "tiny"
    model: WorldModelConfig = field(default_factory=WorldModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(to_dict(self), indent=2)

    @classmethod
    def from_json_dict(cls, d: dict[str, Any], where: str = "config.json") -> RunConfig:
        if d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{where}: run format version {d.get('format_version')} is not supported by this "
                             f"genworld (expects {FORMAT_VERSION}); retrain with this version")
        return from_dict(cls, _without_retired(d, where), where)


# Options measured and removed (docs/experiments.md), with the value that meant off (None: any value, they did
# nothing without another one on). A run saved with them off loads as if they had never been there.
RETIRED: dict[str, Any] = {
    "model.video_conv": 0, "model.video_local": 0, "model.proprio_residual": False, "model.contact_reader": 0,
    "model.object_slots": 0, "model.object_edges": None, "model.object_render": None,
    "model.contact_reader_samples": None, "model.contact_reader_mix": None, "train.pair_batch": None}


def _without_retired(d: dict[str, Any], where: str) -> dict[str, Any]:
    """`d` (a saved RunConfig) without the retired options; one that was on is an error."""
    d = dict(d)
    for dotted, off in RETIRED.items():
        section, key = dotted.split(".")
        part = d.get(section)
        if not isinstance(part, dict) or key not in part:
            continue
        if off is not None and part[key] != off:
            raise ValueError(f"{where}: {dotted}={json.dumps(part[key])} was an experiment that has been removed "
                             "from genworld (docs/experiments.md); this run cannot be rebuilt by this version")
        d[section] = {k: v for k, v in part.items() if k != key}
    return d


def read_run_config(run_dir: Path) -> RunConfig:
    """The RunConfig saved in a run directory, with a clear error if absent or unreadable."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no config.json; is this a genworld run directory (genworld train --out)?")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from e
    return RunConfig.from_json_dict(d, str(path))


def _recipe(spec: WorldSpec) -> dict[str, Any]:
    """What every preset shares, whatever its size: the world's spec and the recipe of the model."""
    return dict(spec=spec.to_json(), video_delta=True, video_regress=1.0, decode_expectation=True,
                proprio_pointers=1, memory=True, self_forcing=0.5, canvas=True, video_copy=True,
                loss_weights={"video": 1.0, "audio": 0.5, "touch": 3.0, "proprio": 1.0, "reward": 1.0, "done": 1.0})


def tiny(spec: WorldSpec) -> RunConfig:
    """About 1.4M parameters (0.5M in the dynamics): trains in minutes on 2 CPU cores, steps at 30+ per second.

    The recipe (every preset's): each image token's change since the previous step as an input, a head regressing
    the next code values, a pointer read off proprio; one real step from earlier in the episode seen by every step
    (memory); half the training windows read the model's own one-step predictions as context (self-forcing); and
    rollouts redraw only the code patches that changed (canvas). See docs/model.md."""
    return RunConfig("tiny", WorldModelConfig(
        image=ImageTokenizerConfig(channels=(64,), levels=(8, 5, 5, 5)),
        audio=AudioTokenizerConfig(n_tokens=4, hidden=256),
        dynamics=DynamicsConfig(dim=96, depth=4, heads=4, window=8),
        **_recipe(spec),
    ), TrainConfig(lr_dyn=3e-3, tok_fraction=0.2))


def small(spec: WorldSpec) -> RunConfig:
    """About 6M parameters: a workstation or one GPU; the tiny recipe at a larger size."""
    return RunConfig("small", WorldModelConfig(
        image=ImageTokenizerConfig(channels=(96,), levels=(8, 8, 5, 5, 5)),
        audio=AudioTokenizerConfig(n_tokens=6, hidden=384),
        dynamics=DynamicsConfig(dim=256, depth=6, heads=8, window=12),
        **_recipe(spec),
    ), TrainConfig(tok_steps=4000, dyn_steps=20000, batch_size=32, tok_batch_size=64, lr_dyn=1e-3, tok_fraction=0.2))


def base(spec: WorldSpec) -> RunConfig:
    """About 40M parameters: GPUs, with torchrun for several; the tiny recipe at a larger size."""
    return RunConfig("base", WorldModelConfig(
        image=ImageTokenizerConfig(channels=(128,), levels=(8, 8, 8, 5, 5, 5)),
        audio=AudioTokenizerConfig(n_tokens=8, hidden=512),
        dynamics=DynamicsConfig(dim=512, depth=12, heads=8, window=16),
        **_recipe(spec),
    ), TrainConfig(tok_steps=10000, dyn_steps=100000, batch_size=64, tok_batch_size=128, lr_dyn=3e-4,
                   warmup=1000, ckpt_every=2000, tok_fraction=0.2))


PRESETS = {"tiny": tiny, "small": small, "base": base}

FIXED = {"format_version", "preset", "model.spec"}  # what --set may not change: version, name, the data's world


def set_options(cfg: RunConfig, items: list[str]) -> RunConfig:
    """A copy of `cfg` with `KEY=VALUE` settings applied, KEY a dotted path ("model.flow_width",
    "train.lr_dyn", "model.loss_weights.touch") and VALUE JSON (bare words are strings). Each value must
    have the type of the one it replaces (an int where a float is expected is fine); an unknown key is an
    error that lists the known ones at that level."""
    d = to_dict(cfg)
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set model.flow_width=32")
        if key in FIXED or key.startswith("model.spec."):
            raise ValueError(f"--set {key}: cannot be changed (it is the {'data' if key.startswith('model.spec') else 'run'}'s)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *path, last = key.split(".")
        node = d
        for i, part in enumerate(path):
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                known = sorted(k for k, v in node.items() if isinstance(v, dict)) if isinstance(node, dict) else []
                raise ValueError(f"--set {key}: no section {'.'.join(path[: i + 1])!r}; sections there: {known}")
            node = node[part]
        if last not in node:
            raise ValueError(f"--set {key}: unknown key {last!r}; known keys there: {sorted(node)}")
        old = node[last]
        if old is not None and value is not None:
            # bool is an int to Python, but not here; an int is fine where a float is expected
            kinds = (int, float) if type(old) is float else (type(old),)
            if type(value) not in kinds:
                raise ValueError(f"--set {key}={raw}: expected a value like {json.dumps(old)} "
                                 f"({type(old).__name__}), got {type(value).__name__}")
            value = float(value) if type(old) is float else value
        node[last] = value
    return RunConfig.from_json_dict(d, where="--set")


def preset(name: str, spec: WorldSpec) -> RunConfig:
    """The preset config `name` for a world spec."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](spec)
