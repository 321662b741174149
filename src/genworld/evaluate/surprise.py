"""Violation-of-expectation (IntPhys protocol) on bounce: pairs of clips that differ only by an impossible event.

Each pair takes a window of a real episode's ground-truth tables, copies it, and edits the copy from the
event step on: an object vanishes, passes through a wall (keeps its pre-bounce velocity instead of
bouncing), changes colour, or teleports. Both clips are re-rendered with the bounce renderer; the other
modalities (sound, touch, proprioception, actions) are the real ones in both. A predictor is run
teacher-forced (it sees every real step of the clip before predicting the next one); its surprise is the
largest per-step frame MSE from the event on. A pair is right when the impossible clip is more surprising
(ties count one half); chance is 50%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genworld.evaluate.config import EvalConfig

X, Y, VX, VY, RADIUS, COLOUR, EXISTS = 0, 1, 2, 3, 4, 6, 8
KINDS = ("vanish", "wall", "recolour", "teleport")
EVENT = 2  # the event happens at predicted step EVENT + 1 (0-based index EVENT after the context)


@dataclass
class Pair:
    """One possible / impossible pair: (L, K, 10) tables each, from episode `episode` starting at `start`."""

    kind: str
    episode: int
    start: int
    obj: int
    possible: np.ndarray
    impossible: np.ndarray


def _candidates(tables: np.ndarray, s: int, L: int) -> list[int]:
    """Objects (rows >= 1) that exist and are visible over the whole clip."""
    w = tables[s: s + L]
    ok = (w[:, 1:, EXISTS] > 0.5).all(0) & (w[:, 1:, 7] > 0.5).all(0)
    return [int(k) + 1 for k in np.flatnonzero(ok)]


def make_pairs(episodes: list[dict[str, np.ndarray]], config: dict[str, Any], cfg: EvalConfig,
               rng: np.random.Generator) -> tuple[list[Pair], dict[str, str]]:
    """Up to cfg.surprise_pairs pairs per kind, and a reason for each kind that found none."""
    C, L = cfg.context, cfg.context + cfg.surprise_steps
    size = float(config["image_size"])
    palette_n = len(config["palette"])
    occ_id = int(config.get("occluder_colour_id", palette_n - 1))
    pairs: list[Pair] = []
    missing: dict[str, str] = {}
    e = C + EVENT  # clip index of the event
    for kind in KINDS:
        found = 0
        order = rng.permutation(len(episodes))
        for rep in range(4 * cfg.surprise_pairs):
            if found >= cfg.surprise_pairs:
                break
            i = int(order[rep % len(order)])
            tab = episodes[i]["gt.objects"].astype(np.float64)
            T = len(tab)
            if T < L:
                continue
            if kind == "wall":
                hit = _wall_hit(episodes[i]["gt.contacts"], tab, e, L)
                if hit is None:
                    continue
                s, k = hit
            else:
                s = int(rng.integers(0, T - L + 1))
                cands = _candidates(tab, s, L)
                if not cands:
                    continue
                k = int(rng.choice(cands))
            pos = tab[s: s + L].copy()
            imp = pos.copy()
            if kind == "vanish":
                imp[e:, k, EXISTS] = 0.0
                imp[e:, k, 7] = 0.0
            elif kind == "recolour":
                used = set(tab[0, :, COLOUR].astype(int).tolist()) | {0, occ_id}
                free = [c for c in range(palette_n) if c not in used]
                if not free:
                    continue
                imp[e:, k, COLOUR] = float(rng.choice(free))
            elif kind == "teleport":
                r = imp[e, k, RADIUS]
                target = np.array([size - imp[e, k, X], size - imp[e, k, Y]])
                shift = target - imp[e, k, :2]
                if np.hypot(*shift) < size / 4:  # too close to the centre to make a clear jump
                    shift = np.where(imp[e, k, :2] < size / 2, size / 3, -size / 3)
                imp[e:, k, :2] = np.clip(imp[e:, k, :2] + shift, r, size - r)
            elif kind == "wall":
                v = pos[e - 1, k, :2] - pos[e - 2, k, :2]
                steps = np.arange(1, L - e + 1)[:, None]
                imp[e:, k, :2] = pos[e - 1, k, :2] + v * steps
            pairs.append(Pair(kind, i, s, k, pos, imp))
            found += 1
        if not found:
            missing[kind] = ("no wall bounce of an object in the evaluated episodes" if kind == "wall"
                             else f"no clip of {L} steps with a visible object (or no free palette colour)")
    return pairs, missing


def _wall_hit(contacts: np.ndarray, tab: np.ndarray, e: int, L: int) -> tuple[int, int] | None:
    """(clip start, object) of a clean wall bounce of an object that moved freely for the two steps before."""
    K = tab.shape[1]
    for t in range(e + 1, len(tab) - (L - e) + 1):
        for k in range(1, K):
            if contacts[t, k, K] > 0 and contacts[t - 1, k].sum() == 0 and contacts[t - 2, k].sum() == 0 \
                    and contacts[t - 1, :, k].sum() == 0 and tab[t, k, EXISTS] > 0.5:
                return t - e, k
    return None


def clip_steps(pair_tables: np.ndarray, episode: dict[str, np.ndarray], start: int, video_key: str,
               painter: Any) -> dict[str, np.ndarray]:
    """The clip {key: (L, ...)}: frames rendered from `pair_tables`, the other keys from the episode."""
    L = len(pair_tables)
    out = {k: v[start: start + L] for k, v in episode.items()}
    out[video_key] = np.stack([painter.paint(t) for t in pair_tables])
    out["gt.objects"] = pair_tables.astype(np.float32)
    return out


def teacher_forced_errors(session: Any, clips: list[dict[str, np.ndarray]], context: int, video_key: str,
                          batch: int = 32) -> np.ndarray:
    """(N, L - C) per-step frame MSE of a session that observes every real step of each clip.

    `clips` alternate possible, impossible (2 per pair), identical before the event: each pair's shared
    prefix is run once, then the session is expanded to two futures (`expand(2)`) at the event.
    """
    akey = session.spec.action.key
    own = getattr(session, "obs_keys", None) or [k for k in clips[0] if k != akey and not k.startswith("gt.")]
    obs_keys = [k for k in own if k in clips[0]]
    e = context + EVENT
    errs = []
    for b0 in range(0, len(clips), 2 * batch):
        cl = clips[b0: b0 + 2 * batch]
        stack = {k: np.stack([c[k] for c in cl]) for k in cl[0]}  # (2P, L, ...): rows 2j, 2j+1 = pair j
        first = {k: v[0::2] for k, v in stack.items()}
        session.reset({k: v[:, :context] for k, v in first.items()})
        L = stack[video_key].shape[1]
        rows = []
        for t in range(context, L):
            src = first if t < e else stack
            if t == e:
                session.expand(2)  # futures 2j, 2j+1 continue pair j's shared state
            pred = session.step(src[akey][:, t - 1])
            diff = (np.asarray(pred[video_key], np.float32) - src[video_key][:, t]) / 255.0
            err = (diff**2).mean((1, 2, 3))
            rows.append(np.repeat(err, 2) if t < e else err)
            session.observe({k: src[k][:, t] for k in obs_keys})
        errs.append(np.stack(rows, 1))
    return np.concatenate(errs)


def sim_errors(clips: list[dict[str, np.ndarray]], context: int, video_key: str, world: Any) -> np.ndarray:
    """(N, L - C) errors of the simulator itself: each step simulated from the clip's previous table."""
    from genworld.worlds.bounce import state_from_gt

    akey = world.spec.action.key
    out = []
    for c in clips:
        L = len(c[video_key])
        row = []
        for t in range(context, L):
            world.set_state(state_from_gt(c["gt.objects"][t - 1], world.k, world.synth.n_modes))
            obs, _, _ = world.step(c[akey][t - 1])
            row.append(float((((obs[video_key].astype(np.float32) - c[video_key][t]) / 255.0) ** 2).mean()))
        out.append(row)
    return np.asarray(out)


def accuracy(pairs: list[Pair], errors: np.ndarray) -> dict[str, Any]:
    """Per-kind and overall accuracy from errors (2N, steps): rows 2j (possible) and 2j+1 (impossible)."""
    s = errors[:, EVENT:].max(1)
    right = np.where(s[1::2] > s[0::2], 1.0, np.where(s[1::2] == s[0::2], 0.5, 0.0))
    per = {}
    for kind in KINDS:
        idx = [j for j, p in enumerate(pairs) if p.kind == kind]
        if idx:
            per[kind] = {"accuracy": float(right[idx].mean()), "pairs": len(idx)}
    return {"accuracy": float(right.mean()) if len(right) else None, "per_type": per, "pairs": len(pairs),
            "chance": 0.5}
