"""`arcade:<Game>`: an Atari 2600 game through ale-py, with its own sound.

One world step is `frameskip` emulated frames (default 4, so 60 / 4 = 15 steps per second) with the
same action held. The screen after the last frame (max-pooled with the frame before it, as DQN does,
so sprites that flicker between frames stay visible) is area-resized to `image_size`.

How ALE's sound maps to steps: with `sound_obs=True`, every emulated frame leaves exactly 512 unsigned
8-bit samples (centre 128) in ALE's audio buffer. The TIA makes them at 31,400 Hz, but a frame lasts
1/60 s, so we lay the frames' buffers end to end as a stream of 60 * 512 = 30,720 samples per second
(the pitch is about 2 % lower than the console's; timing is exact). One step therefore owns
`frameskip * 512` raw samples, and a windowed-sinc filter maps them to `audio_rate / fps` samples
(`audio_rate` default 15,360 Hz = 1,024 samples per step, a whole multiple of fps). The filter reads
a few raw samples of the previous step (its history is carried across steps, so there are no clicks at
step boundaries) and delays the sound by `RESAMPLE_TAPS` raw samples (about 1 ms). Samples are
(raw - 128) / 128 with no DC blocker: a silent console is exactly 0, so sound onsets stay sharp (a tone
may carry the DC offset the TIA gives it).

Reset draws 0..`noop_max` no-op frames from the seed (the usual "no-op starts"), so episodes differ
while staying deterministic for a fixed seed; ALE's own sticky actions are off (the `sticky` policy
does that on purpose instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genworld.spec import Modality, WorldSpec
from genworld.worlds.base import MissingExtraError, Policy, register_world
from genworld.worlds.gym import RandomPolicy, StickyPolicy, config_from_overrides, resize_frame

ALE_FPS = 60
ALE_SAMPLES_PER_FRAME = 512
RESAMPLE_TAPS = 32  # raw samples each side of an output sample in the windowed-sinc kernel


@dataclass
class ArcadeConfig:
    """An Atari game and how it is sampled."""

    game: str = "Breakout"
    image_size: int = 64
    frameskip: int = 4  # emulated frames per step; fps = 60 / frameskip must be whole
    audio_rate: int = 15360  # Hz; a whole multiple of fps
    sound: bool = True  # False drops the audio modality (a little faster)
    max_pool: bool = True  # max of the last two frames, against sprite flicker
    noop_max: int = 30  # reset plays 0..noop_max no-op frames drawn from the seed
    mode: int | None = None
    difficulty: int | None = None
    sticky_repeat: float = 0.8  # the `sticky` policy keeps its last action with this probability


def rom_id(game: str) -> str:
    """ALE's ROM id for a game name: `Breakout` -> `breakout`, `SpaceInvaders` -> `space_invaders`."""
    out = []
    for i, ch in enumerate(game.replace("-", "_")):
        if ch.isupper() and i and game[i - 1].islower():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def resample_kernel(n_in: int, n_out: int, taps: int = RESAMPLE_TAPS) -> tuple[np.ndarray, np.ndarray]:
    """A windowed-sinc resampler from a step's `n_in` raw samples to its `n_out` output samples, as
    gather indices and weights, both (n_out, 2 * taps + 1), into a buffer of `2 * taps` history
    samples followed by the step's raw samples. Output j sits at raw time j * n_in / n_out - taps."""
    ratio = n_out / n_in
    cutoff = min(1.0, ratio) * 0.95  # of the raw Nyquist frequency; a little below, against aliasing
    t = np.arange(n_out) * (n_in / n_out) + taps  # (n_out,) output times in buffer coordinates
    idx = np.floor(t).astype(np.int64)[:, None] + np.arange(-taps, taps + 1)[None, :]  # (n_out, 2 taps + 1)
    idx = np.clip(idx, 0, n_in + 2 * taps - 1)
    d = idx - t[:, None]
    w = np.where(np.abs(d) <= taps, 0.5 + 0.5 * np.cos(np.pi * d / taps), 0.0)  # Hann window
    k = cutoff * np.sinc(cutoff * d) * w
    return idx, (k / k.sum(axis=1, keepdims=True)).astype(np.float32)


class ArcadeWorld:
    """An ALE game behind the World protocol: screen, game sound, discrete action, reward, done."""

    def __init__(self, cfg: ArcadeConfig) -> None:
        try:
            import ale_py
        except ImportError as e:
            raise MissingExtraError("the arcade worlds need ale-py: pip install 'genworld[atari]'") from e
        if ALE_FPS % cfg.frameskip:
            raise ValueError(f"arcade: frameskip {cfg.frameskip} must divide 60 so that fps is whole")
        fps = ALE_FPS // cfg.frameskip
        if cfg.sound and cfg.audio_rate % fps:
            raise ValueError(f"arcade: audio_rate {cfg.audio_rate} must be a whole multiple of fps {fps}")
        self.cfg, self.fps = cfg, fps
        rid = rom_id(cfg.game)
        known = ale_py.roms.get_all_rom_ids()
        if rid not in known:
            import difflib

            close = difflib.get_close_matches(rid, known, n=5, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"arcade:{cfg.game}: ALE knows no ROM {rid!r}. {hint} Known games include "
                             "Breakout, Pong, SpaceInvaders, Seaquest, MsPacman, Freeway, Boxing "
                             f"({len(known)} in all: python -c 'import ale_py; print(ale_py.roms.get_all_rom_ids())')")
        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
        self.ale = ale_py.ALEInterface()
        self.ale.setBool("sound_obs", cfg.sound)
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.setInt("random_seed", 0)
        self._rom_path = ale_py.roms.get_rom_path(rid)
        self._load()
        self.actions = list(self.ale.getMinimalActionSet())
        names = tuple(a.name.lower() for a in self.actions)
        S, self.spp = cfg.image_size, cfg.audio_rate // fps
        mods = [Modality("observation.images.screen", "video", (S, S, 3), fps, dtype="uint8",
                         description=f"{cfg.game} screen, area-resized from 210x160")]
        if cfg.sound:
            mods.append(Modality("observation.audio.game", "audio", (self.spp,), cfg.audio_rate, units="pcm",
                                 low=-1.0, high=1.0, description="the game's own TIA sound"))
            self._idx, self._weights = resample_kernel(cfg.frameskip * ALE_SAMPLES_PER_FRAME, self.spp)
        mods += [
            Modality("action", "action", (), fps, dtype="int64", discrete=True, names=names),
            Modality("next.reward", "reward", (), fps),
            Modality("next.done", "done", (), fps, dtype="bool"),
            Modality("gt.ram", "gt", (128,), fps, dtype="uint8", description="the console's 128 bytes of RAM"),
            Modality("gt.lives", "gt", (), fps, description="lives left"),
        ]
        config = {"game": cfg.game, "rom": rid, "frameskip": cfg.frameskip, "image_size": S,
                  "raw_audio": {"samples_per_frame": ALE_SAMPLES_PER_FRAME, "rate": ALE_FPS * ALE_SAMPLES_PER_FRAME}}
        self.spec = WorldSpec(f"arcade:{cfg.game}", fps, tuple(mods), f"Atari {cfg.game} (ale-py)", config)
        self.last_raw_audio = np.zeros(0, np.uint8)  # the raw ALE samples of the last step, for tests
        self._done, self._stepped = False, False
        self._reset_audio()

    def _load(self) -> None:
        # A fresh load is the only reset that also clears the TIA's sound oscillators (reset_game and
        # restoreState keep them), so the same seed gives the same sound; it costs about 0.1 s.
        self.ale.loadROM(self._rom_path)
        if self.cfg.mode is not None:
            self.ale.setMode(self.cfg.mode)
        if self.cfg.difficulty is not None:
            self.ale.setDifficulty(self.cfg.difficulty)

    # -- audio ------------------------------------------------------------------------------------
    def _reset_audio(self) -> None:
        self._hist = np.zeros(2 * RESAMPLE_TAPS, np.float32)

    def _audio(self, raw: np.ndarray) -> np.ndarray:
        x = (raw.astype(np.float32) - 128.0) / 128.0
        buf = np.concatenate([self._hist, x])
        self._hist = buf[-2 * RESAMPLE_TAPS:]
        if not buf.any():  # a silent console: exactly zero, and no work
            return np.zeros(self.spp, np.float32)
        return np.clip((buf[self._idx] * self._weights).sum(axis=1), -1.0, 1.0)  # (spp,)

    # -- protocol ---------------------------------------------------------------------------------
    def _obs(self, frames: list[np.ndarray], raw: list[np.ndarray]) -> dict[str, np.ndarray]:
        screen = np.maximum(frames[-2], frames[-1]) if self.cfg.max_pool and len(frames) > 1 else frames[-1]
        obs = {"observation.images.screen": resize_frame(screen, self.cfg.image_size),
               "gt.ram": self.ale.getRAM().copy(), "gt.lives": np.float32(self.ale.lives())}
        if self.cfg.sound:
            self.last_raw_audio = np.concatenate(raw) if raw else np.full(
                self.cfg.frameskip * ALE_SAMPLES_PER_FRAME, 128, np.uint8)
            obs["observation.audio.game"] = self._audio(self.last_raw_audio)
        return obs

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start a game; 0..noop_max no-op frames (drawn from `seed`) vary the start. Returns o_0."""
        if self._stepped:
            self._load()
        self._stepped, self._done = False, False
        self._reset_audio()
        n_noop = int(np.random.default_rng(seed).integers(self.cfg.noop_max + 1)) if self.cfg.noop_max else 0
        noop = self.actions[0]
        for _ in range(n_noop):
            self.ale.act(noop)
        # o_0's sound is silence: nothing has happened in this episode yet.
        obs = self._obs([self.ale.getScreenRGB()], [])
        return obs

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        """Hold the action for `frameskip` frames; returns (o_{t+1}, summed reward, game over)."""
        a = int(np.asarray(action).reshape(()))
        self._stepped = True
        if not 0 <= a < len(self.actions):
            raise ValueError(f"arcade:{self.cfg.game}: action {a} outside 0..{len(self.actions) - 1}")
        frames, raw, reward = [], [], 0.0
        for i in range(self.cfg.frameskip):
            if self._done:  # the game is over: the screen stays, the console is silent
                raw.append(np.full(ALE_SAMPLES_PER_FRAME, 128, np.uint8))
            else:
                reward += self.ale.act(self.actions[a])
                if self.cfg.sound:
                    raw.append(self.ale.getAudio().copy())
                self._done = self.ale.game_over()
            if i >= self.cfg.frameskip - 2:
                frames.append(self.ale.getScreenRGB())
        return self._obs(frames, raw), float(reward), self._done

    def get_state(self) -> Any:
        """An opaque copy of the emulator (for planning with the true game).

        Screen, RAM, reward and done replay exactly after `set_state`; the sound may differ in the
        phase of its oscillators, because ALE saves the TIA's sound registers but not its counters."""
        return (self.ale.cloneState(), self._done, self._hist.copy())

    def set_state(self, state: Any) -> None:
        """Return to a state from `get_state`."""
        ale_state, self._done, hist = state
        self._hist, self._stepped = hist.copy(), True
        self.ale.restoreState(ale_state)

    def policy(self, name: str, rng: np.random.Generator) -> Policy:
        """`random` (uniform over the minimal action set), `sticky` (sticky-random) or `mixed` (either)."""
        if name == "mixed":  # one of the two per episode
            name = "random" if rng.random() < 0.5 else "sticky"
        if name == "random":
            return RandomPolicy(rng, n=len(self.actions))
        if name == "sticky":
            return StickyPolicy(rng, repeat=self.cfg.sticky_repeat, n=len(self.actions))
        raise ValueError(f"arcade:{self.cfg.game}: unknown policy {name!r}; choose random, sticky or mixed")

    def close(self) -> None:
        self.ale = None

    def __deepcopy__(self, memo: dict) -> ArcadeWorld:
        # The emulator cannot be copied: load the game afresh and move it to this one's state.
        other = ArcadeWorld(self.cfg)
        other.set_state(self.get_state())
        return other


def make_arcade_world(arg: str | None, **overrides: Any) -> ArcadeWorld:
    """Factory for `arcade:<Game>`: `make_world("arcade:Pong", frameskip=4)`."""
    game = arg or ArcadeConfig.game
    return ArcadeWorld(config_from_overrides(ArcadeConfig, {**overrides, "game": game}, f"arcade:{game}"))


register_world("arcade", make_arcade_world, "Atari 2600 games via ale-py with their own sound (arcade:<Game>)",
               extra="atari", policies=("random", "sticky", "mixed"))
