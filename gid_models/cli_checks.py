"""Every argument of `gid animate / poke / transfer / extract`, checked before any slow step.

Each check_* function takes the parsed arguments, raises MotionError naming the option and the
fix, and returns what the command needs that the checks computed (the device; for poke the
point and pull in pixels of the picture as it is rendered).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from . import checks
from .memory import frames_bytes, require_memory, volume_bytes
from .spectral import MotionError

# Float32 copies of the output video held at once: the render buffer, its clamped and permuted
# copy for the writer, and the writer's own (uint8, counted as one for margin).
VIDEO_COPIES = 3
VOLUME_COPIES = 3  # the sampled volume, its resized copy and the interpolation's temporaries
NUM_FREQUENCIES = 16
MOTION_FROM_FRAMES = 150  # what pipeline.volume_from_video reads of a --motion-from clip


def _check_renderer(renderer: str) -> None:
    if renderer in ("neural", "pixel"):
        return
    from .rendering.render_net import check_renderer_file

    check_renderer_file(Path(renderer), "--renderer")


Size = tuple[int, int]


def _check_common(args: argparse.Namespace, inputs: list[str | None]) -> tuple[torch.device, Size, Size]:
    """Device, the picture's (width, height) as given and as rendered; the shared options checked."""
    checks.check_output_path(args.output, "-o", checks.VIDEO_OUTPUT_SUFFIXES, inputs)
    checks.check_max_side(args.max_side)
    checks.check_gain(args.gain)
    original = checks.picture_file_size(args.picture, "picture")
    checks.check_picture_size(*original, what=f"picture '{args.picture}'")
    fitted = checks.fitted_size(*original, args.max_side)
    checks.check_picture_size(*fitted, what=f"picture '{args.picture}' resized to --max-side {args.max_side}")
    device = checks.check_device(args.device)
    _check_renderer(args.renderer)
    return device, original, fitted


def _check_video_memory(frames: int, size: tuple[int, int], device: torch.device) -> None:
    width, height = size
    require_memory(VIDEO_COPIES * frames_bytes(frames, height, width), "cpu",
                   f"a video of {frames} frames at {width}x{height}", "lower --frames or --max-side.")
    require_memory(VOLUME_COPIES * volume_bytes(1, NUM_FREQUENCIES, height, width), device,
                   f"the motion of a {width}x{height} picture", "lower --max-side.")


def check_animate_args(args: argparse.Namespace) -> torch.device:
    device, _, fitted = _check_common(args, [args.picture, args.mask, args.motion_from])
    checks.check_frames(args.frames)
    checks.check_fps(args.fps)
    checks.check_seed(args.seed)
    checks.check_steps(args.steps)
    if args.mask:
        checks.picture_file_size(args.mask, "--mask")
    if args.motion_from:
        check_video_input(args.motion_from, MOTION_FROM_FRAMES, "--motion-from")
    _check_video_memory(args.frames, fitted, device)
    return device


def check_poke_args(args: argparse.Namespace) -> tuple[torch.device, tuple[float, float], tuple[float, float]]:
    """Device, and --at / --drag converted from pixels of the picture as given to pixels of the
    picture as rendered (resized to --max-side)."""
    device, (width, height), (fitted_w, fitted_h) = _check_common(args, [args.picture, args.motion_from])
    checks.check_frames(args.frames)
    checks.check_fps(args.fps)
    checks.check_seed(args.seed)
    checks.check_steps(args.steps)
    checks.check_simulation_settings(damping=args.damping, hold_frames=args.hold_frames)
    x, y = checks.check_point(*args.at, width, height, "--at")
    dx, dy = checks.check_drag_vector(*args.drag, width, height, "--drag")
    if args.motion_from:
        check_video_input(args.motion_from, MOTION_FROM_FRAMES, "--motion-from")
    _check_video_memory(args.frames, (fitted_w, fitted_h), device)
    scale_x, scale_y = fitted_w / width, fitted_h / height
    # pixel centres sit at integers: the centre of the picture maps to the centre of the resized one
    at = ((x + 0.5) * scale_x - 0.5, (y + 0.5) * scale_y - 0.5)
    return device, at, (dx * scale_x, dy * scale_y)


def check_transfer_args(args: argparse.Namespace) -> torch.device:
    device, _, fitted = _check_common(args, [args.picture, args.video])
    checks.check_frames(args.frames, low=0)
    if args.fps != 0:
        checks.check_fps(args.fps)
    frames = check_video_input(args.video, args.max_frames, "video")
    _check_video_memory(args.frames or frames, fitted, device)
    return device


def check_extract_args(args: argparse.Namespace) -> None:
    checks.check_output_path(args.output, "-o", checks.VOLUME_OUTPUT_SUFFIXES, [args.video])
    check_video_input(args.video, args.max_frames, "video")


def check_video_input(path: str, max_frames: int, option: str) -> int:
    """Frames that will be read from the clip; MotionError for a bad --max-frames, an unreadable
    clip or one whose motion extraction would not fit in the memory free now."""
    from .flow import require_flow_memory

    checks.whole_number(max_frames, "--max-frames", low=0, high=checks.MAX_FRAMES,
                        fix="0 reads the whole clip; 150 is the paper's window.")
    width, height, count = checks.video_file_size(path, option)
    checks.check_picture_size(width, height, what=f"{option} '{path}' (frames of {width}x{height})")
    frames = min(count, max_frames) if max_frames and count else (count or max_frames or checks.MAX_FRAMES)
    if frames < 2 * NUM_FREQUENCIES:
        raise MotionError(f"{option} '{path}' gives {frames} frame(s); motion of K={NUM_FREQUENCIES} frequencies needs "
                          f"at least {2 * NUM_FREQUENCIES} (use a longer clip or raise --max-frames; 150 is the "
                          "paper's window).")
    if frames > checks.MAX_FRAMES:
        raise MotionError(f"{option} '{path}' has {frames} frames; give --max-frames {checks.MAX_FRAMES} or less "
                          "(150 is the paper's window).")
    require_flow_memory(frames, height, width, f"the motion of {frames} frames of {option} '{path}'",
                        "lower --max-frames or use a smaller clip.")
    return frames
