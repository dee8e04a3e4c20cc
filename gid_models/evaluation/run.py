"""`gid eval`: score motion prediction and rendering on clips the model never saw; print a table.

    python -m gid_models.evaluation.run CLIPS... [--train-shards DIR] [--seeds 4] [--steps N]
    gid eval [CLIPS...] --photos DIR --masks DIR   (also the real-photo score, photo_score.py)
    gid eval --scenes SCENES_DIR [--scene-count 40]  (held-out generated scenes, scene_score.py)
    python benchmarks/eval_motion.py CLIPS...   (the same)

For each clip: its first T frames, centre-cropped to 1.6:1 and resized to 256x160, give the
ground truth (optical flow from the first frame, gid_models.flow), with the motion of drifting
pixels zeroed as in the training shards (train/shots.py; --keep-drift keeps it). Each method predicts a
spectral volume for the first frame with the clip's T and fps:
- model: the trained motion model (bundled, or --model), averaged over --seeds seeds, without
  and with loop guidance;
- zero motion, and the training set's mean spectrum at every pixel (from --train-shards, or,
  without it, the mean over the *other* evaluated clips, or the clip's own with one clip).
Motion metrics (metrics.py): magnitude-map Spearman at 64x40, log-power spectrum error, loop seam
error L_g. Rendering: frames 1..T-1 rendered from the first frame with the ground-truth
trajectories against the real frames, PSNR and SSIM, pixel renderer and neural renderer.
Rows that cannot run (no trained model, no neural renderer) say why instead of numbers.

Cost: flow, baselines and rendering take seconds per clip on CPU. The model does not: an
untrained default-size model took ~26 s per DDIM step and ~140 s per exact loop-guided step at
256x160 on 2 busy CPU cores, so on CPU the defaults are 10 steps and an approximate loop
guidance (1 recurrence, gradient past the denoiser); --exact-loop-guidance, --steps and a GPU
(--device cuda) give the paper's settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..cli import entry_point
from ..pipeline import loop_guidance
from ..spectral import MotionError, MotionTexture, SpectralVolume
from ..video_io import find_video_files
from . import baselines, metrics

LOGGER = logging.getLogger(__name__)

MOTION_METRICS = ("magnitude_spearman", "log_power_error", "seam_error")
RENDER_METRICS = ("psnr", "ssim")
METRIC_TITLES = {
    "magnitude_spearman": "magnitude Spearman (higher better)",
    "log_power_error": "log10 power error (lower better)",
    "seam_error": "seam L_g px (lower better)",
    "psnr": "PSNR dB (higher better)",
    "ssim": "SSIM (higher better)",
}
MOTION_ROWS = ("ground truth", "model", "model + loop guidance", "zero motion", "mean spectrum")
RENDER_ROWS = ("pixel renderer", "neural renderer")


@dataclass
class EvalConfig:
    """Evaluation settings: size in pixels, T in frames, seeds for the model's samples."""

    width: int = 256
    height: int = 160
    num_frames: int = 150
    num_frequencies: int = 16
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    steps: int = 50
    flow_method: str = "dis"
    device: str = "cpu"
    zero_drift: bool = True  # ground truth without drifting motion, as in the training shards
    loop_recurrence: int = 2  # loop guidance as in the paper; the CLI lowers it on CPU
    loop_through_denoiser: bool = True


@dataclass
class ClipResult:
    """Scores of one clip: rows[method][metric] -> value; missing[method] -> why it has none."""

    clip: str
    num_frames: int
    fps: float
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    truth: SpectralVolume | None = None  # the ground-truth volume, for the mean-spectrum row


def load_clip_frames(path: Path, width: int, height: int, max_frames: int) -> tuple[np.ndarray, float]:
    """(T, height, width, 3) uint8 RGB: the clip's first max_frames frames, centre-cropped to the
    output aspect ratio and area-resized; and the clip's fps."""
    from ..video_io import fit_frames, read_video

    frames, fps = read_video(path, max_frames=max_frames)
    return fit_frames(frames, width, height), fps


def motion_scores(prediction: SpectralVolume, truth: SpectralVolume) -> dict[str, float]:
    """The three motion metrics of one (batch 1) prediction against the truth."""
    return {
        "magnitude_spearman": metrics.magnitude_spearman(prediction, truth)[0],
        "log_power_error": float(metrics.log_power_error(prediction, truth)[0]),
        "seam_error": float(metrics.seam_error(prediction)[0]),
    }


def mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}


def load_motion_model(path: str | None, device: str) -> tuple[object | None, str]:
    """(model, "") or (None, why not): the model at path, else the bundled one."""
    try:
        from ..networks import MotionModel
    except ImportError as error:
        return None, f"the motion model code is not available ({error})"
    try:
        model = MotionModel.load(path) if path else MotionModel.from_bundled()
    except (FileNotFoundError, OSError, ValueError, AttributeError, RuntimeError) as error:
        return None, f"no trained motion model ({error})"
    return model.to(device).eval(), ""


def load_neural_renderer(path: str | None, device: str) -> tuple[object | None, str]:
    """(renderer, "") or (None, why not): the renderer at path, else the bundled one."""
    from ..rendering import NeuralRenderer

    try:
        renderer = NeuralRenderer.load(path) if path else NeuralRenderer.from_bundled()
    except (FileNotFoundError, OSError, ValueError) as error:
        return None, f"no trained neural renderer ({error})"
    return renderer.to(device), ""


def sample_volumes(model: object, picture: torch.Tensor, truth: SpectralVolume, config: EvalConfig, loop: bool) -> list[SpectralVolume]:
    """One predicted volume (pixels, at the truth's size) per seed."""
    from ..sampling import LoopGuidance, sample_spectral_volume

    volumes = []
    for seed in config.seeds:
        volume, _ = sample_spectral_volume(
            model, picture.to(config.device), seed=seed, steps=config.steps,
            guidance=LoopGuidance(recurrence=config.loop_recurrence, through_denoiser=config.loop_through_denoiser)
            if loop else None,
            num_frames=truth.num_frames, fps=truth.fps,
        )
        volumes.append(volume.to("cpu").resized(truth.height, truth.width))
    return volumes


def evaluate_clip(path: Path, config: EvalConfig, model: object | None, renderers: dict[str, object | None],
                  missing: dict[str, str]) -> ClipResult:
    """Ground truth, model and zero-motion rows, and the renderer rows, for one clip. The mean
    spectrum row is added by evaluate() once every clip's spectrum is known."""
    from ..flow import spectral_volume_from_video
    from ..rendering import render_motion

    frames, fps = load_clip_frames(path, config.width, config.height, config.num_frames)
    if len(frames) < 2 * config.num_frequencies:
        raise MotionError(f"{path.name} has {len(frames)} frames; K={config.num_frequencies} needs at least {2 * config.num_frequencies}.")
    result = ClipResult(path.name, len(frames), fps, missing=dict(missing))
    if len(frames) < config.num_frames:
        result.notes.append(f"{path.name}: only {len(frames)} frames, so T={len(frames)} instead of {config.num_frames}")
    motion = spectral_volume_from_video(frames, fps, num_frequencies=config.num_frequencies, method=config.flow_method)
    result.notes.extend(f"{path.name}: {w}" for w in motion.warnings)
    truth = motion.volume
    if config.zero_drift:
        from ..train.shots import WindowThresholds, motion_stats, oscillation_mask, tracking_mismatch

        thresholds = WindowThresholds()
        mismatch = tracking_mismatch(frames, motion.trajectories, thresholds.mismatch_tolerance)
        mask = oscillation_mask(motion_stats(motion.trajectories), thresholds, config.width, mismatch)
        truth = SpectralVolume(truth.coeffs * mask.to(truth.coeffs), truth.num_frames, truth.fps)
        result.notes.append(f"{path.name}: drifting motion zeroed in the ground truth on {100 * (1 - mask.float().mean()):.0f}% of the picture")
    result.truth = truth
    result.rows["ground truth"] = motion_scores(truth, truth)
    result.rows["zero motion"] = motion_scores(baselines.zero_motion(truth), truth)
    picture = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float() / 255.0
    if model is not None:
        for row, loop in (("model", False), ("model + loop guidance", True)):
            scores = [motion_scores(v, truth) for v in sample_volumes(model, picture, truth, config, loop)]
            result.rows[row] = mean_scores(scores)
    real = torch.from_numpy(frames[1:]).permute(0, 3, 1, 2).float() / 255.0
    texture = MotionTexture(motion.trajectories, fps=fps)
    for row, renderer in renderers.items():
        if row in result.missing:
            continue
        rendered = render_motion(picture, texture, renderer=renderer, output_device="cpu")[1:]
        result.rows[row] = {"psnr": metrics.psnr(rendered, real), "ssim": metrics.ssim(rendered, real)}
    return result


def add_mean_spectrum_rows(results: list[ClipResult], train_power: torch.Tensor | None) -> str:
    """Score the mean-spectrum baseline on every clip; returns where its spectrum came from."""
    for result in results:
        if train_power is not None:
            power = train_power
        elif len(results) > 1:
            power = baselines.mean_power([r.truth for r in results if r is not result])
        else:
            power = baselines.mean_power([result.truth])
        truth = result.truth
        result.rows["mean spectrum"] = motion_scores(baselines.mean_spectrum_motion(power, truth), truth)
    if train_power is not None:
        return "mean spectrum: the training shards' spectrum.safetensors"
    if len(results) > 1:
        return "mean spectrum: no --train-shards given, so the mean over the other evaluated clips (leave one out)"
    return "mean spectrum: no --train-shards given and one clip, so the clip's own spectrum (optimistic)"


def format_table(results: list[ClipResult], config: EvalConfig, notes: Sequence[str] = ()) -> str:
    """The clip-averaged table (motion and rendering) as text."""
    lines = [
        f"GID evaluation: {len(results)} clip(s) at {config.width}x{config.height}, T<={config.num_frames}, "
        f"K={config.num_frequencies}, model averaged over {len(config.seeds)} seed(s)",
    ]
    reasons: list[str] = []
    for title, rows, keys in (("motion", MOTION_ROWS, MOTION_METRICS), ("rendering (ground-truth motion, frames 1..T-1)", RENDER_ROWS, RENDER_METRICS)):
        header = f"{title:<24}" + "".join(f"{METRIC_TITLES[k]:>36}" for k in keys)
        lines += ["", header, "-" * len(header)]
        for row in rows:
            scored = [r.rows[row] for r in results if row in r.rows]
            if not scored:
                why = next((r.missing[row] for r in results if row in r.missing), "not run")
                if why not in reasons:
                    reasons.append(why)
                lines.append(f"{row:<24}  missing: see note {reasons.index(why) + 1}")
                continue
            means = mean_scores(scored)
            lines.append(f"{row:<24}" + "".join(f"{means[k]:>36.4f}" for k in keys))
    if reasons:
        lines += ["", "missing rows:"] + [f"{i + 1}. {why}" for i, why in enumerate(reasons)]
    if notes:
        lines += ["", "notes:"] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def find_clips(items: Sequence[str]) -> list[Path]:
    clips = find_video_files(items)
    if not clips:
        raise MotionError(f"no video files in {list(items)}.")
    return clips


def evaluate(clips: Sequence[Path], config: EvalConfig, model_path: str | None = None, renderer_path: str | None = None,
             train_shards: str | None = None) -> tuple[list[ClipResult], list[str]]:
    """Every clip's scores and the table's notes."""
    missing: dict[str, str] = {}
    model, why = load_motion_model(model_path, config.device)
    if model is None:
        missing["model"] = missing["model + loop guidance"] = why
    neural, why = load_neural_renderer(renderer_path, config.device)
    if neural is None:
        missing["neural renderer"] = why
    renderers = {"pixel renderer": None, "neural renderer": neural}
    train_power = None
    if train_shards:
        from ..train.shards import load_mean_power

        train_power = load_mean_power(train_shards)
    results = []
    for clip in clips:
        began = time.perf_counter()
        results.append(evaluate_clip(clip, config, model, renderers, missing))
        LOGGER.info("%s: evaluated in %.1f s", clip.name, time.perf_counter() - began)
    notes = [add_mean_spectrum_rows(results, train_power)]
    for result in results:
        notes.extend(result.notes)
    return results, notes


def format_per_clip(results: list[ClipResult]) -> str:
    """One line per clip and scored row, every metric."""
    lines = ["", "per clip:"]
    for result in results:
        for row, scores in result.rows.items():
            values = "  ".join(f"{k}={v:.4f}" for k, v in scores.items())
            lines.append(f"{result.clip:<24} T={result.num_frames:<4} {row:<24} {values}")
    return "\n".join(lines)


def evaluate_photos(photos: str, masks: str, config: EvalConfig, model_path: str | None) -> str:
    """The real-photo score table (photo_score.py) of the model and the greenness baseline."""
    from .photo_score import find_photo_pairs, format_photo_table, score_photos

    pairs = find_photo_pairs(photos, masks)
    model, why = load_motion_model(model_path, config.device)
    began = time.perf_counter()
    results = score_photos(pairs, model, config.seeds, config.steps)
    note = f"scored in {time.perf_counter() - began:.1f} s on {config.device}" if model is not None else f"model row missing: {why}"
    return format_photo_table(results, config.seeds, config.steps, note)


def evaluate_scenes(folder: str, count: int, config: EvalConfig, model_path: str | None, per_scene: bool) -> str:
    """The held-out generated-scene table (scene_score.py) of the model and the mean spectrum."""
    from .scene_score import format_scene_table, held_out_records, score_scenes

    records = held_out_records(folder, count)
    model, why = load_motion_model(model_path, config.device)
    if model is None:
        raise MotionError(f"--scenes needs a motion model: {why}.")
    began = time.perf_counter()
    results, baseline = score_scenes(records, model, config.seeds, config.steps, config.device,
                                     progress=lambda done, total: LOGGER.info("scene %d of %d scored", done, total))
    note = f"scored in {time.perf_counter() - began:.1f} s on {config.device}; the mean spectrum is that of the scored scenes"
    return format_scene_table(Path(folder), results, baseline, config.seeds, config.steps, note, per_scene)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gid eval", description="Score motion prediction and rendering on unseen clips.")
    parser.add_argument("clips", nargs="*", help="video files and/or folders of clips the model never saw")
    parser.add_argument("--photos", help="folder of photographs to score where the model puts motion (needs --masks)")
    parser.add_argument("--masks", help="folder of should-move (255) / still (0) / unlabelled (128) PNG masks, "
                        "named as the --photos pictures")
    parser.add_argument("--scenes", help="a `gid scenes` folder: score the model on its held-out seeds (9, 19, ...)")
    parser.add_argument("--scene-count", type=int, default=40, help="held-out scenes to score, in seed order (default 40)")
    parser.add_argument("--train-shards", help="folder of training shards (its spectrum.safetensors feeds the mean-spectrum baseline)")
    parser.add_argument("--model", help="motion model to evaluate (default: the bundled one)")
    parser.add_argument("--renderer", help="neural renderer weights (default: the bundled one)")
    parser.add_argument("--frames", type=int, default=150, help="T: frames per clip (fewer if the clip is shorter)")
    parser.add_argument("--frequencies", type=int, default=16, help="K")
    parser.add_argument("--seeds", type=int, default=4, help="model samples per clip (seeds 0..N-1)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps per model sample (default 10 on CPU, 50 on CUDA)")
    parser.add_argument("--exact-loop-guidance", action="store_true",
                        help="paper loop guidance on CPU too (2 recurrences, gradient through the denoiser; slow)")
    parser.add_argument("--size", default="256x160", help="WIDTHxHEIGHT")
    parser.add_argument("--flow-method", default="dis")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep-drift", action="store_true", help="keep drifting motion (characters, clouds) in the ground truth")
    parser.add_argument("--per-clip", action="store_true", help="also print every clip's (and scene's) scores")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


@entry_point("gid eval")
def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    width, height = (int(v) for v in args.size.lower().split("x"))
    on_cpu = torch.device(args.device).type == "cpu"
    guidance = loop_guidance(torch.device(args.device), exact=args.exact_loop_guidance or None)
    config = EvalConfig(width=width, height=height, num_frames=args.frames, num_frequencies=args.frequencies,
                        seeds=tuple(range(args.seeds)), steps=args.steps or (10 if on_cpu else 50),
                        flow_method=args.flow_method, device=args.device, zero_drift=not args.keep_drift,
                        loop_recurrence=guidance.recurrence, loop_through_denoiser=guidance.through_denoiser)
    if not args.clips and not args.photos and not args.scenes:
        raise ValueError("gid eval: give clips to evaluate, --photos DIR --masks DIR, --scenes DIR, or several.")
    if bool(args.photos) != bool(args.masks):
        raise ValueError("gid eval: --photos and --masks go together (pictures and their masks of the same name).")
    tables = []
    if args.scenes:
        from .scene_score import held_out_records

        held_out_records(args.scenes, args.scene_count)  # a bad folder fails before any slow step
    if args.photos:
        tables.append(evaluate_photos(args.photos, args.masks, config, args.model))
    if args.scenes:
        tables.append(evaluate_scenes(args.scenes, args.scene_count, config, args.model, args.per_clip))
    if args.clips:
        began = time.perf_counter()
        results, notes = evaluate(find_clips(args.clips), config, args.model, args.renderer, args.train_shards)
        loop = "2 recurrences, gradient through the denoiser" if guidance.through_denoiser else "1 recurrence, gradient past the denoiser (CPU approximation)"
        notes.append(f"model: {config.steps} DDIM steps per sample; loop guidance u={guidance.u:g}, {loop}")
        notes.append(f"evaluated in {time.perf_counter() - began:.1f} s on {config.device}")
        tables.append(format_table(results, config, notes))
        if args.per_clip:
            tables.append(format_per_clip(results))
    table = "\n\n".join(tables)
    sys.stdout.write(table + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
