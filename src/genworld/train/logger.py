"""Training logs: metrics.jsonl always, a tqdm bar, TensorBoard when installed; only rank 0 writes."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kw: Any) -> None: ...
    def close(self) -> None: ...


class _ClockBar:
    """A bar over a stage's clock (seconds of training, as the trainer counts them) when a time budget
    decides the stage's end; the step count goes in the postfix."""

    def __init__(self, bar: Any, elapsed: Callable[[], float], start: int) -> None:
        self.bar, self.elapsed, self.steps = bar, elapsed, start

    def update(self, n: int = 1) -> None:
        self.steps += n
        target = min(int(self.elapsed()), self.bar.total)
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)

    def set_postfix(self, **kw: Any) -> None:
        self.bar.set_postfix(step=self.steps, **kw)

    def close(self) -> None:
        self.update(0)
        self.bar.close()


class Logger:
    """Appends metric records to RUN/metrics.jsonl and mirrors scalars to TensorBoard if available."""

    def __init__(self, run_dir: Path, enabled: bool = True, progress: bool = True) -> None:
        self.enabled, self.progress = enabled, progress and enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tb"))
            except ImportError:
                self.tb = None

    def metrics(self, rec: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for k, v in rec.items():
                if isinstance(v, int | float) and math.isfinite(v) and k not in ("global_step", "stage", "step"):
                    self.tb.add_scalar(f"stage{rec.get('stage', 0)}/{k}", v, rec.get("global_step", 0))

    def info(self, msg: str) -> None:
        if self.enabled:
            print(msg, file=sys.stderr, flush=True)

    def bar(self, stage: int, steps: int, seconds: float, start: int = 0,
            elapsed: Callable[[], float] | None = None) -> Any:
        """A progress bar over steps, or over seconds when there is a time budget and `elapsed()` gives the
        stage's training seconds so far (the step cap of a timed run is only a cap)."""
        if not self.progress:
            return _NoBar()
        from tqdm import tqdm

        name = "tokenizers" if stage == 1 else "dynamics"
        if math.isfinite(seconds) and elapsed is not None:
            bar = tqdm(total=max(int(seconds), 1), initial=min(int(elapsed()), max(int(seconds), 1)), unit="s",
                       desc=f"stage {stage}: {name}, {seconds / 60:.1f} min", dynamic_ncols=True, mininterval=1.0,
                       file=sys.stderr)
            return _ClockBar(bar, elapsed, start)
        return tqdm(total=steps, initial=start, desc=f"stage {stage}: {name}", dynamic_ncols=True,
                    mininterval=1.0, file=sys.stderr)

    def counter(self, total: int, desc: str, unit: str) -> Any:
        """A plain progress bar over `total` items (e.g. episodes to tokenize), or a silent one."""
        if not self.progress:
            return _NoBar()
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=1.0, file=sys.stderr)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
