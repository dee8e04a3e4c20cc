"""Motion from video: accuracy and speed of each optical-flow method (CPU).

Accuracy: synthetic clips with known sinusoidal motion (tests/synthetic_clips.py) at 96x64 and at
the benchmark sizes; the recovered peak amplitude at the true bin over each region's interior,
as a ratio to the truth, and the mean |F| of static pixels.
Speed: frames per second of flow from frame 0 to each frame (estimate_trajectories), at 256x160
and 512x288, with torch / OpenCV thread counts as they are.

Run: python benchmarks/motion_from_video.py
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import cv2
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
# A script run as `python benchmarks/motion_from_video.py`: make the repository and tests importable.
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from gid_models.flow import FLOW_METHODS, estimate_trajectories, spectral_volume_from_video  # noqa: E402
from synthetic_clips import OscillatingRegion, render_clip  # noqa: E402

LOGGER = logging.getLogger("benchmark.motion_from_video")


def proportional_regions(height: int, width: int) -> list[OscillatingRegion]:
    """The two regions of tests/synthetic_clips.two_region_clip, scaled to any size."""
    return [
        OscillatingRegion(int(0.06 * width), int(0.12 * height), int(0.44 * width), int(0.88 * height), 3.0, 3, 0.4),
        OscillatingRegion(
            int(0.58 * width), int(0.1 * height), int(0.94 * width), int(0.56 * height), 2.0, 5, -1.0, (1.0, 1.0)
        ),
    ]


def accuracy(method: str, height: int, width: int, num_frames: int = 64) -> tuple[list[float], float]:
    clip = render_clip(proportional_regions(height, width), height=height, width=width, num_frames=num_frames)
    result = spectral_volume_from_video(clip.frames, fps=30.0, method=method)
    modes = result.volume.complex_modes()[0]
    ratios = []
    for region, interior in zip(clip.regions, clip.region_masks):
        direction = region.unit_direction().to(torch.complex64).view(2, 1, 1)
        amplitude = 2.0 * (modes[region.frequency_bin] * direction).sum(0).abs()[interior]
        ratios.append(amplitude.median().item() / region.amplitude)
    static = result.trajectories[0].norm(dim=1)[:, clip.static_mask].mean().item()
    return ratios, static


def frames_per_second(method: str, height: int, width: int, num_frames: int = 24) -> float:
    clip = render_clip(proportional_regions(height, width), height=height, width=width, num_frames=num_frames)
    estimate_trajectories(clip.frames[:2], method=method)  # warm-up
    start = time.perf_counter()
    estimate_trajectories(clip.frames, method=method)
    return (num_frames - 1) / (time.perf_counter() - start)


def full_pipeline_seconds(height: int, width: int, num_frames: int = 48) -> float:
    """Seconds per frame of spectral_volume_from_video (flow + camera fit + FFT), DIS."""
    clip = render_clip(proportional_regions(height, width), height=height, width=width, num_frames=num_frames)
    start = time.perf_counter()
    spectral_volume_from_video(clip.frames, fps=30.0, remove_camera_motion=True)
    return (time.perf_counter() - start) / num_frames


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    LOGGER.info("torch threads %d, OpenCV threads %d", torch.get_num_threads(), cv2.getNumThreads())
    for method in FLOW_METHODS:
        for height, width in ((64, 96), (160, 256)):
            ratios, static = accuracy(method, height, width)
            LOGGER.info(
                "%-9s %4dx%-4d amplitude ratio region1 %.3f region2 %.3f  static mean |F| %.4f px",
                method, width, height, ratios[0], ratios[1], static,
            )
    for method in FLOW_METHODS:
        for height, width in ((160, 256), (288, 512)):
            LOGGER.info("%-9s %4dx%-4d %.1f frames/s (CPU)", method, width, height, frames_per_second(method, height, width))
    for height, width in ((160, 256), (288, 512)):
        LOGGER.info(
            "full pipeline (dis, camera fit and removal, FFT) %4dx%-4d %.1f frames/s (CPU)",
            width, height, 1.0 / full_pipeline_seconds(height, width),
        )


if __name__ == "__main__":
    main()
