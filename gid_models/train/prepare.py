"""`gid prepare`: clips -> shots -> static windows -> 256x160 training shards.

    python -m gid_models.train.prepare --clips DIR_OR_FILES... --out DIR [--frames 150]
        [--stride 10] [--frequencies 16] [--min-frames N] [--scales 1.0,0.6] [--max-windows-per-clip N]
    python -m gid_models.train.prepare --synthetic 200 --out DIR_SYNTHETIC

For every window (start frame every `stride` frames, T frames: the start frame and the T-1 after
it) the optical flow from the start frame to every later frame gives trajectories and their
spectral volume (gid_models.flow), measured once at the clip's resolution (at most --flow-width
wide). Windows where the camera moves, nothing sways, or drift dominates are rejected with a
logged reason (shots.py); in kept ones the motion of drifting pixels (characters, clouds) is
zeroed unless --keep-drift, and the oscillation mask is stored with every example. Each kept window gives several examples: crops at each of --scales
(a fraction of the largest crop with the output's aspect ratio, at up to --max-crops-per-scale
positions), resized to --size with the motion scaled by the same factors. Flips and time
reversal happen on the fly in SpectralShardDataset, costing no disk. Every volume keeps its T
and fps. Decisions go to DIR/prepare_log.jsonl and a summary to the log.

Disk: about 5.3 MB per 256x160 K=16 example (fp16); --frequencies 8 halves it, a smaller --size
shrinks it with the pixel count.

Folders given to --clips are searched recursively (train/clips.py, the lister the renderer's
training uses too); the four validation clips of the shared data set are skipped unless
--include-validation.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..cli import entry_point
from ..spectral import MotionError, SpectralVolume
from .clips import find_clips
from .shards import ShardWriter
from .shots import (
    MotionStats,
    WindowDecision,
    WindowThresholds,
    detect_cuts,
    judge_motion,
    judge_window,
    split_shots,
    window_starts,
)

LOGGER = logging.getLogger(__name__)

@dataclass
class PrepareConfig:
    """Settings of one prepare run; sizes in pixels, T in frames."""

    num_frames: int = 150
    stride: int = 10
    num_frequencies: int = 16
    min_frames: int | None = None  # shortest T a short shot may give (default: num_frames)
    size: tuple[int, int] = (256, 160)  # output (width, height)
    scales: tuple[float, ...] = (1.0, 0.6)
    max_crops_per_scale: int = 4
    max_windows_per_clip: int | None = None
    flow_width: int = 512
    flow_method: str = "dis"
    remove_camera_motion: bool = False
    zero_drift: bool = True  # zero the motion of non-oscillating pixels (else keep it; the mask is stored either way)
    thresholds: WindowThresholds = field(default_factory=WindowThresholds)
    include_validation: bool = False  # also prepare the validation clips (train/clips.py)
    synthetic: int = 0  # procedural scenes added (synthetic.py), seeds synthetic_seed.. at synthetic_fps
    synthetic_seed: int = 0
    synthetic_fps: float = 24.0
    examples_per_shard: int = 32


@dataclass(frozen=True)
class CropBox:
    """A crop of the source frame: x0, y0, width, height in source pixels, and its label."""

    x0: int
    y0: int
    width: int
    height: int
    label: str


def crop_boxes(height: int, width: int, out_size: tuple[int, int], scales: Sequence[float], max_per_scale: int) -> list[CropBox]:
    """Crops with the output's aspect ratio: per scale s, s times the largest such crop, at evenly
    spaced positions (a new position every half crop of slack, at most max_per_scale)."""
    out_w, out_h = out_size
    if width / height >= out_w / out_h:
        full_h, full_w = height, height * out_w / out_h
    else:
        full_h, full_w = width * out_h / out_w, width
    boxes = []
    for scale in scales:
        ch, cw = max(1, round(full_h * scale)), max(1, round(full_w * scale))
        nx = 1 + int((width - cw) // max(cw / 2, 1))
        ny = 1 + int((height - ch) // max(ch / 2, 1))
        grid = [(x, y) for y in np.linspace(0, height - ch, ny) for x in np.linspace(0, width - cw, nx)]
        if len(grid) > max_per_scale:
            grid = [grid[i] for i in np.linspace(0, len(grid) - 1, max_per_scale).round().astype(int)]
        for x, y in grid:
            boxes.append(CropBox(int(round(x)), int(round(y)), cw, ch, f"scale={scale:g} crop={int(round(x))},{int(round(y))},{cw}x{ch}"))
    return boxes


def crop_example(
    frame: np.ndarray, volume: SpectralVolume, mask: torch.Tensor, box: CropBox, out_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop and resize one example: (image (3, h, w) uint8, coeffs (K, 4, h, w) px at h x w, mask (h, w))."""
    out_w, out_h = out_size
    y, x = slice(box.y0, box.y0 + box.height), slice(box.x0, box.x0 + box.width)
    picture = cv2.resize(np.ascontiguousarray(frame[y, x]), (out_w, out_h), interpolation=cv2.INTER_AREA)
    cropped = SpectralVolume(volume.coeffs[..., y, x], num_frames=volume.num_frames, fps=volume.fps)
    coeffs = cropped.resized(out_h, out_w).coeffs[0]
    small_mask = cv2.resize(mask[y, x].float().numpy(), (out_w, out_h), interpolation=cv2.INTER_AREA) > 0.5
    return torch.from_numpy(picture).permute(2, 0, 1).contiguous(), coeffs, torch.from_numpy(small_mask)


def _flow_size(height: int, width: int, flow_width: int) -> tuple[int, int] | None:
    """(width, height) to read frames at so optical flow runs at most flow_width wide, or None."""
    if width <= flow_width:
        return None
    return flow_width, max(2, round(height * flow_width / width))


def prepare_clip(path: Path, writer: ShardWriter, config: PrepareConfig) -> list[WindowDecision]:
    """Windows of one clip into the writer; returns every window and crop decision."""
    from ..flow import spectral_volume_from_video
    from ..video_io import read_video

    capture = cv2.VideoCapture(str(path))
    native = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
    capture.release()
    frames, fps = read_video(path, size=_flow_size(*native, config.flow_width) if min(native) > 0 else None)
    min_frames = max(config.min_frames or config.num_frames, 2 * config.num_frequencies)
    shots = split_shots(len(frames), detect_cuts(frames))
    LOGGER.info("%s: %d frames at %g fps, %d shot(s)", path.name, len(frames), fps, len(shots))
    decisions: list[WindowDecision] = []
    boxes = crop_boxes(frames.shape[1], frames.shape[2], config.size, config.scales, config.max_crops_per_scale)
    windows_done = 0
    for shot in shots:
        starts, steps = window_starts(shot, config.num_frames, config.stride, min_frames)
        if not starts:
            reason = f"shot of {shot.length} frames is shorter than T={min_frames} (allow shorter windows with --min-frames)"
            decisions.append(WindowDecision(path.name, shot.start, shot.length, False, reason, code="short"))
            LOGGER.info("%s frames %d-%d: %s", path.name, shot.start, shot.end, reason)
            continue
        for start in starts:
            if config.max_windows_per_clip is not None and windows_done >= config.max_windows_per_clip:
                break
            windows_done += 1
            motion = spectral_volume_from_video(
                frames[start : start + steps], fps, num_frequencies=config.num_frequencies,
                method=config.flow_method, remove_camera_motion=config.remove_camera_motion,
            )
            # after removing camera motion, judge what is left of it (median displacement) instead
            camera = None if config.remove_camera_motion else motion.camera_motion
            decision, stats, mask = judge_window(path.name, start, motion.trajectories, camera, config.thresholds,
                                                 frames[start : start + steps])
            decisions.append(decision)
            LOGGER.info("%s start %d (T=%d): %s", path.name, start, steps, decision.reason)
            if not decision.kept:
                continue
            volume = motion.volume
            if config.zero_drift:
                volume = SpectralVolume(volume.coeffs * mask.to(volume.coeffs), volume.num_frames, volume.fps)
            for box in boxes:
                rows, cols = slice(box.y0, box.y0 + box.height), slice(box.x0, box.x0 + box.width)
                verdict = judge_motion(_crop_stats(stats, rows, cols), mask[rows, cols], config.thresholds, box.width,
                                       config.thresholds.max_drift_area)
                decisions.append(WindowDecision(
                    path.name, start, steps, verdict.code == "kept", verdict.reason, decision.camera_shift_px,
                    verdict.motion_px, verdict.drift_area, verdict.oscillating_area, crop=box.label, code=verdict.code,
                ))
                if verdict.code != "kept":
                    continue
                image, coeffs, small_mask = crop_example(frames[start], volume, mask, box, config.size)
                writer.add(image, coeffs, num_frames=steps, fps=fps, source=path.name, start_frame=start,
                           augmentation=box.label, mask=small_mask)
    return decisions


def _crop_stats(stats: MotionStats, rows: slice, cols: slice) -> MotionStats:
    return MotionStats(*(getattr(stats, name)[rows, cols] for name in ("rms", "trend_share", "trend_span", "peak")))


def write_synthetic(writer: ShardWriter, count: int, seed: int, config: PrepareConfig, fps: float = 24.0) -> None:
    """count procedural scenes (seeds seed..seed+count-1, T = config.num_frames at fps) into the writer."""
    from .synthetic import make_scene

    width, height = config.size
    for index in range(count):
        scene = make_scene(seed + index, height=height, width=width, num_frequencies=config.num_frequencies,
                           num_frames=config.num_frames, fps=fps)
        writer.add(scene.image, scene.volume.coeffs[0], num_frames=scene.volume.num_frames, fps=scene.volume.fps,
                   source=f"synthetic:{scene.seed}", start_frame=0, augmentation="none")


def summarize(decisions: list[WindowDecision]) -> str:
    """One line per decision kind: windows (whole) and crops (of kept windows)."""
    windows = Counter(d.code for d in decisions if not d.crop)
    crops = Counter(d.code for d in decisions if d.crop)
    return f"windows: {dict(windows)}; crops of kept windows: {dict(crops)}"


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line flags of PrepareConfig."""
    parser.add_argument("--frames", type=int, default=150, help="T: frames per window incl. the start frame")
    parser.add_argument("--stride", type=int, default=10, help="a start frame every N frames")
    parser.add_argument("--frequencies", type=int, default=16, help="K: frequency bins kept")
    parser.add_argument("--min-frames", type=int, default=None, help="let shots shorter than T give one window of this many frames or more")
    parser.add_argument("--size", default="256x160", help="output WIDTHxHEIGHT (pixels)")
    parser.add_argument("--scales", default="1.0,0.6", help="crop scales, fractions of the largest crop")
    parser.add_argument("--max-crops-per-scale", type=int, default=4)
    parser.add_argument("--max-windows-per-clip", type=int, default=None)
    parser.add_argument("--flow-width", type=int, default=512, help="measure flow at most this wide (pixels)")
    parser.add_argument("--flow-method", default="dis", help="optical flow: dis or farneback")
    parser.add_argument("--remove-camera-motion", action="store_true", help="subtract residual camera motion of kept windows")
    parser.add_argument("--max-camera-shift", type=float, default=1.0, help="pixels at 256 wide, start frame to any frame")
    parser.add_argument("--max-drift-area", type=float, default=0.5, help="largest share of an example that may drift")
    parser.add_argument("--keep-drift", action="store_true", help="keep the motion of drifting pixels instead of zeroing it")
    parser.add_argument("--include-validation", action="store_true", help="also use the four validation clips")
    parser.add_argument("--synthetic", type=int, default=0, help="add this many procedural scenes")
    parser.add_argument("--synthetic-seed", type=int, default=0)
    parser.add_argument("--synthetic-fps", type=float, default=24.0, help="frame rate the procedural volumes describe")
    parser.add_argument("--examples-per-shard", type=int, default=32)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gid prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="*", default=[], help="video files and/or folders of clips (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder for shard-*.safetensors")
    add_config_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def config_from_text(text: str, prog: str = "gid train --prepare-args") -> PrepareConfig:
    """PrepareConfig from a string of `gid prepare` settings flags (`gid train --prepare-args`)."""
    parser = argparse.ArgumentParser(prog=prog, description="gid prepare settings")
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(shlex.split(text)))


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
        scales = tuple(float(v) for v in args.scales.split(","))
    except ValueError as error:
        raise MotionError(f"--size must be WIDTHxHEIGHT and --scales numbers separated by commas: {error}") from error
    if not all(0 < s <= 1 for s in scales):
        raise MotionError(f"--scales must lie in (0, 1], got {scales}.")
    thresholds = WindowThresholds(max_camera_shift=args.max_camera_shift, max_drift_area=args.max_drift_area)
    return PrepareConfig(
        num_frames=args.frames, stride=args.stride, num_frequencies=args.frequencies, min_frames=args.min_frames,
        size=(width, height), scales=scales, max_crops_per_scale=args.max_crops_per_scale,
        max_windows_per_clip=args.max_windows_per_clip, flow_width=args.flow_width, flow_method=args.flow_method,
        remove_camera_motion=args.remove_camera_motion, zero_drift=not args.keep_drift, thresholds=thresholds,
        include_validation=args.include_validation, synthetic=args.synthetic, synthetic_seed=args.synthetic_seed,
        synthetic_fps=args.synthetic_fps, examples_per_shard=args.examples_per_shard,
    )


def run(clips: Sequence[Path], out: str | Path, config: PrepareConfig) -> tuple[list[Path], list[WindowDecision]]:
    """Prepare the clips (and config.synthetic procedural scenes) into out; returns (shard paths,
    decisions). Also writes prepare_log.jsonl."""
    out = Path(out)
    decisions: list[WindowDecision] = []
    with ShardWriter(out, config.examples_per_shard) as writer:
        for clip in clips:
            began = time.perf_counter()
            decisions.extend(prepare_clip(clip, writer, config))
            LOGGER.info("%s done in %.1f s (%d examples so far)", clip.name, time.perf_counter() - began, writer.num_examples)
        if config.synthetic:
            write_synthetic(writer, config.synthetic, config.synthetic_seed, config, config.synthetic_fps)
    with open(out / "prepare_log.jsonl", "a", encoding="utf-8") as log:
        for decision in decisions:
            log.write(json.dumps(decision.as_dict()) + "\n")
    LOGGER.info("%s; %d examples in %d shard(s) under %s", summarize(decisions), writer.num_examples, len(writer.paths), out)
    return writer.paths, decisions


def clips_of(items: Sequence[str | Path], config: PrepareConfig) -> list[Path]:
    """The clips of --clips that config prepares (the validation clips only with include_validation)."""
    clips = find_clips(items, "all" if config.include_validation else "train")
    if not clips and not config.synthetic:
        given = " ".join(map(str, items)) or "(none given)"
        raise MotionError(f"--clips {given}: no video files found there; give video files or folders of them, "
                          "or --synthetic N.")
    return clips


@entry_point("gid prepare")
def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    config = config_from_args(args)
    clips = clips_of(args.clips, config)
    began = time.perf_counter()
    paths, _ = run(clips, args.out, config)
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    LOGGER.info("prepared in %.1f s: %.1f MB on disk", time.perf_counter() - began, size_mb)


if __name__ == "__main__":
    raise SystemExit(main())
