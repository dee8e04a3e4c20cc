"""Modal simulation speed at 512x288: simulated frames per second, alone and with rendering.

A spectral volume of K = 16 smooth random bins (15 modes) at 512x288 is dragged at two points
and poked at a third; 150 frames at 30 fps. "simulation" times ModalBasis.from_volume +
simulate_modal_coordinates + synthesize_motion (the motion texture the renderer consumes);
"with rendering" adds the pixel renderer (softmax splat + hole fill) on a 512x288 picture.
CPU always (torch threads as set), CUDA too when available.

Run: python benchmarks/modal.py
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
# A script run as `python benchmarks/modal.py`: make the repository importable.
sys.path.insert(0, str(REPO_ROOT))

from gid_models.dynamics import (  # noqa: E402
    ModalBasis,
    drags_from_json,
    simulate_modal_coordinates,
    synthesize_motion,
)
from gid_models.spectral import SpectralVolume  # noqa: E402

LOGGER = logging.getLogger("benchmark.modal")
HEIGHT, WIDTH, FRAMES, FPS = 288, 512, 150, 30.0
DRAGS = (
    '{"version": 1, "drags": [{"x": 0.3, "y": 0.4, "dx": 0.03, "dy": 0.0, "hold": 15},'
    ' {"x": 0.7, "y": 0.6, "dx": 0.0, "dy": -0.04, "start": 20, "hold": 10},'
    ' {"x": 0.5, "y": 0.2, "dx": 0.02, "dy": 0.02, "start": 40, "kind": "poke"}]}'
)


def test_volume(device: torch.device) -> SpectralVolume:
    generator = torch.Generator().manual_seed(0)
    coarse = torch.randn(1, 16 * 4, 9, 16, generator=generator)
    coeffs = torch.nn.functional.interpolate(coarse, size=(HEIGHT, WIDTH), mode="bicubic", align_corners=False)
    decay = torch.exp(-0.2 * torch.arange(16.0)).repeat_interleave(4).view(1, 64, 1, 1)
    return SpectralVolume((coeffs * decay).view(1, 16, 4, HEIGHT, WIDTH).to(device), num_frames=150, fps=FPS)


def simulate_once(volume: SpectralVolume):
    basis = ModalBasis.from_volume(volume)
    drags = drags_from_json(DRAGS, volume.width, volume.height)
    q = simulate_modal_coordinates(basis, drags, FRAMES, FPS)
    return synthesize_motion(basis, q, FPS)


def timed(function, device: torch.device, repeats: int = 3) -> float:
    """Best wall-clock seconds of `repeats` calls (after one warm-up)."""
    function()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    LOGGER.info("torch %s, %d CPU threads; %dx%d, %d frames, 15 modes", torch.__version__,
                torch.get_num_threads(), WIDTH, HEIGHT, FRAMES)
    for device in devices:
        volume = test_volume(device)
        seconds = timed(lambda: simulate_once(volume), device)
        LOGGER.info("%-4s simulation alone:  %7.1f frames/s (%.3f s for %d frames)",
                    device.type, FRAMES / seconds, seconds, FRAMES)
        try:
            from gid_models.rendering import render_motion
        except ImportError as error:
            LOGGER.info("%-4s with rendering: skipped (%s)", device.type, error)
            continue
        picture = torch.rand(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1)).to(device)
        seconds = timed(lambda: render_motion(picture, simulate_once(volume)), device, repeats=1)
        LOGGER.info("%-4s with rendering:   %7.1f frames/s (%.3f s for %d frames, pixel renderer)",
                    device.type, FRAMES / seconds, seconds, FRAMES)


if __name__ == "__main__":
    main()
