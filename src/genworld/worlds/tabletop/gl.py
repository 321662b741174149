"""MuJoCo import and offscreen rendering for tabletop, with errors that say what to install or set."""

from __future__ import annotations

import os
import sys
from typing import Any

from genworld.worlds.base import MissingExtraError

EGL_HELP = ("set MUJOCO_GL=egl (headless) and install EGL: apt-get install libegl1 libegl-mesa0 "
            "libgl1-mesa-dri (or MUJOCO_GL=osmesa with libosmesa6, slower)")
_gl_note = ""  # set when mujoco was imported before MUJOCO_GL was


def import_mujoco() -> Any:
    """`import mujoco` with MUJOCO_GL defaulting to egl; a missing package names the extra to install."""
    global _gl_note
    if "mujoco" in sys.modules and "MUJOCO_GL" not in os.environ:
        _gl_note = ("mujoco was imported before MUJOCO_GL was set, so it chose its default backend (glfw, "
                    "which needs a display): export MUJOCO_GL=egl before starting Python; ")
    os.environ.setdefault("MUJOCO_GL", "egl")  # read by mujoco when it is first imported
    try:
        import mujoco
    except ImportError as e:
        if e.name == "mujoco":
            raise MissingExtraError("the tabletop world needs MuJoCo: pip install 'genworld[mujoco]'") from e
        raise RuntimeError(f"tabletop: MuJoCo could not load its GL backend MUJOCO_GL="
                           f"{os.environ.get('MUJOCO_GL')!r} ({e}); {EGL_HELP}") from e
    except Exception as e:  # mujoco checks MUJOCO_GL and loads the GL library at import
        raise RuntimeError(f"tabletop: MuJoCo could not load its GL backend MUJOCO_GL="
                           f"{os.environ.get('MUJOCO_GL')!r} ({type(e).__name__}: {e}); {EGL_HELP}") from e
    return mujoco


def make_renderer(mujoco: Any, model: Any, size: int) -> Any:
    """An offscreen `size` x `size` renderer, or a RuntimeError naming MUJOCO_GL and the EGL packages."""
    try:
        return mujoco.Renderer(model, size, size)
    except Exception as e:
        raise RuntimeError(f"tabletop: MuJoCo could not create an offscreen GL context with "
                           f"MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} ({type(e).__name__}: {e}); "
                           f"{_gl_note}{EGL_HELP}") from e
