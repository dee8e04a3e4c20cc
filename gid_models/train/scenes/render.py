"""Render one composed scene with Blender (a subprocess) and read back picture and attribute pass.

Blender comes from the `scenes` extra (PyPI `bpy`, Blender as a Python module) installed in a
Python of its own, because its wheel pins its own numpy: `GID_BLENDER_PYTHON`, else
`~/.cache/comfyui-gid/scenes-venv/bin/python`, else the current interpreter if it imports bpy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...spectral import MotionError
from .compose import Scene

# a folder without __init__.py: the script needs bpy, so it must stay out of the importable package
SCRIPT = Path(__file__).parent / "blender" / "render_scene.py"
DEFAULT_VENV_PYTHON = Path.home() / ".cache" / "comfyui-gid" / "scenes-venv" / "bin" / "python"
RENDER_TIMEOUT_S = 900.0  # a 256x160 scene takes 20-120 s of one core; 900 s means Blender is stuck


class RenderFailed(RuntimeError):
    """Blender exited with an error, wrote no picture or ran past its time limit, for one scene seed."""


def blender_python() -> str | None:
    """The Python that can `import bpy`, or None when Blender is not installed."""
    candidates = [os.environ.get("GID_BLENDER_PYTHON"), str(DEFAULT_VENV_PYTHON), sys.executable]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file():
            probe = subprocess.run([candidate, "-c", "import bpy"], capture_output=True, timeout=120)
            if probe.returncode == 0:
                return candidate
    return None


def require_blender_python() -> str:
    python = blender_python()
    if python is None:
        raise MotionError("gid scenes needs Blender's Python module: install the `scenes` extra into its own "
                          f"virtualenv ({DEFAULT_VENV_PYTHON.parent.parent}: `python3.11 -m venv ... && pip install "
                          "'bpy>=4.5,<4.6'`) or point GID_BLENDER_PYTHON at a Python that imports bpy.")
    return python


@dataclass
class Rendered:
    image: np.ndarray        # (H, W, 3) uint8 sRGB
    attributes: dict         # part (H, W) int32, s (H, W) float32, position (H, W, 3) float32
    cpu_seconds: float       # of the Blender subprocess (user + system)
    moved: dict | None = None  # with offsets: part, s, rest (H, W, 3) of the moved scene at pixel centres


def render(scene: Scene, width: int, height: int, samples: int = 16, python: str | None = None,
           threads: int = 1, offsets: dict[str, np.ndarray] | None = None,
           timeout_s: float = RENDER_TIMEOUT_S) -> Rendered:
    """Render frame 0 at production quality plus the one-sample attribute pass; with offsets
    (material -> (V, 3) m vertex displacements) also the moved scene's attribute pass.
    Raises RenderFailed when Blender fails or runs past timeout_s seconds (it is killed)."""
    import cv2

    python = python or require_blender_python()
    settings = {
        "seed": scene.seed, "recipe": scene.recipe, "width": width, "height": height, "samples": samples, "threads": threads,
        "camera": {"location": list(scene.camera.location), "euler": list(scene.camera.euler()),
                   "focal_mm": scene.camera.focal_mm, "sensor_mm": scene.camera.sensor_mm,
                   "fstop": scene.camera.fstop, "focus_m": scene.camera.focus_m},
        "sun": scene.sun, "sky": scene.sky, "looks": scene.looks,
    }
    arrays = {f"{name}/{key}": value for name, mesh in scene.meshes.items() for key, value in mesh.items()}
    with tempfile.TemporaryDirectory(prefix="gid-scene-") as work:
        work = Path(work)
        np.savez(work / "scene.npz", **arrays)
        (work / "scene.json").write_text(json.dumps(settings))
        extra = []
        if offsets is not None:
            np.savez(work / "offsets.npz", **{f"{name}/offset": value for name, value in offsets.items()})
            extra = [str(work / "offsets.npz")]
        before = os.times()
        command = [python, str(SCRIPT), str(work / "scene.npz"), str(work / "scene.json"), str(work / "out"), *extra]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RenderFailed(f"Blender ran past {timeout_s:.0f} s on scene seed {scene.seed} and was stopped") from None
        after = os.times()
        if result.returncode != 0:
            raise RenderFailed(f"Blender failed on scene seed {scene.seed} (exit {result.returncode}):\n{result.stderr[-3000:]}")
        image = cv2.imread(str(work / "out" / "beauty.png"), cv2.IMREAD_COLOR)
        if image is None:
            raise RenderFailed(f"Blender wrote no picture for scene seed {scene.seed}:\n{result.stdout[-2000:]}")
        with np.load(work / "out" / "attributes.npz") as data:
            attributes = {key: data[key] for key in data.files}
        moved = None
        if offsets is not None:
            with np.load(work / "out" / "moved.npz") as data:
                moved = {key: data[key] for key in data.files}
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Rendered(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), attributes, cpu, moved)
