"""Checks of one whole job's settings (sampling, motion synthesis, simulation, extraction), made
before the job starts: the ComfyUI nodes call these with their input names, the CLI reaches the
same functions through gid_models.cli_checks. Each raises MotionError (a ValueError) naming the
input and the fix, or MemoryError with the estimate and the fix.
"""

from __future__ import annotations

import torch

from . import checks
from .flow import require_flow_memory
from .memory import require_memory, volume_bytes

# Full-size float32 volumes a sampling job holds at once: the volume resized to the picture,
# its normalized copy, and the resize's temporaries.
SAMPLING_VOLUME_COPIES = 3


def check_sampling_job(batch: int, height: int, width: int, num_frequencies: int, *, seed: object, steps: object,
                       num_frames: object, fps: object, output_device: torch.device | str) -> None:
    """A picture batch (batch, 3, height, width) about to be sampled into spectral volumes."""
    checks.check_picture_size(width, height, "image")
    checks.check_seed(seed, "seed")
    checks.check_steps(steps, "steps")
    checks.whole_number(num_frames, "num_frames", low=2 * num_frequencies - 1, high=checks.MAX_FRAMES)
    checks.check_fps(fps, "fps")
    need = SAMPLING_VOLUME_COPIES * volume_bytes(batch, num_frequencies, height, width)
    # counted twice: the volumes must leave as much again free for the nodes downstream and the host
    what = f"the spectral volumes of {batch} picture(s) of {width}x{height} (and as much kept free)"
    require_memory(2 * need, output_device, what,
                   "scale the image down first (e.g. Upscale Image to 1024 pixels on the long side): the motion is "
                   "sampled at the model's size anyway and only resized to the picture.")


def check_motion_job(frames: object, fps: object, gain: object, speed: object) -> None:
    """Settings of spectral volume -> motion texture."""
    checks.check_frames(frames, "frames")
    checks.check_fps(fps, "fps")
    checks.check_gain(gain, "gain")
    checks.finite_number(speed, "speed", low=0.0, low_open=True, high=100.0, fix="1 is real time, 0.5 slow motion.")


def check_simulation_job(*, damping: object, stiffness_scale: object, mass_scale: object, frames: object,
                         fps: object, hold_frames: object) -> None:
    """Settings of the modal simulation, with the node's input names."""
    checks.check_simulation_settings(damping=damping, hold_frames=hold_frames, prefix="",
                                     stiffness_scale=stiffness_scale, mass_scale=mass_scale)
    checks.check_frames(frames, "frames")
    checks.check_fps(fps, "fps")


def check_extraction_job(count: int, height: int, width: int, fps: object) -> None:
    """count frames of width x height about to go through optical flow (counted twice: the node
    also holds the frames as float32 while the flow runs)."""
    checks.check_picture_size(width, height, "frames")
    checks.check_fps(fps, "fps")
    require_flow_memory(2 * count, height, width, f"the motion of {count} frames of {width}x{height} (with the frames)",
                        "lower max_frames or scale the frames down first.")
