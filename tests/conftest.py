"""Shared test set-up: markers that skip with a reason where a machine lacks GL, a GPU or a browser."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@functools.cache
def _gl_problem() -> str | None:
    code = "import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco/>'); r = mujoco.Renderer(m, 8, 8); r.render()"
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "MUJOCO_GL": "egl"})
    except Exception as e:  # pragma: no cover - depends on the machine
        return f"could not probe EGL: {e}"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return f"MuJoCo cannot render with MUJOCO_GL=egl ({last}); apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri"
    return None


@functools.cache
def _browser_problem() -> str | None:
    if shutil.which("chromium") is None and not os.path.exists("/usr/bin/chromium"):
        return "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does this)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (make setup installs it)"
    return None


@functools.cache
def _gpu_problem() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU on this machine"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    checks = {"gl": _gl_problem, "browser": _browser_problem, "gpu": _gpu_problem}
    for item in items:
        for marker, check in checks.items():
            if marker in item.keywords:
                reason = check()
                if reason:
                    item.add_marker(pytest.mark.skip(reason=reason))
