"""Held-out generated scenes: does the sampled motion move where, and as much as, the scene does?

    gid eval --scenes SCENES_DIR [--scene-count 40] [--seeds 4] [--steps 10]

A `gid scenes` folder holds exact motion (no optical-flow error) for every seed; every tenth seed
(9, 19, ...) is held out of every training command (train/scenes/records.py). For the first
`count` held-out records in seed order, the model samples a spectral volume of the record's
picture with the record's T and fps (no guidance), and each seed's sample is scored against the
record's volume with the clip metrics (metrics.py): magnitude-map Spearman at 64x40 and log10
power error per bin. The mean-spectrum baseline (the mean power per bin of the scored records at
every pixel, which ranks nothing) shows what the power error is without seeing the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..spectral import MotionError, SpectralVolume
from ..train.scenes.records import is_scenes_folder, list_records, read_record, read_timing
from . import metrics


@dataclass
class SceneResult:
    """One held-out scene's scores: per_seed[metric] -> one value per seed."""
    scene: str
    per_seed: dict[str, list[float]] = field(default_factory=dict)

    def mean(self, metric: str) -> float:
        values = self.per_seed.get(metric, [])
        return float(np.mean(values)) if values else math.nan


def held_out_records(folder: str | Path, count: int) -> list[Path]:
    """The first `count` held-out records (seed order) of a `gid scenes` folder; MotionError if none."""
    folder = Path(folder)
    if not is_scenes_folder(folder):
        raise MotionError(f"--scenes {folder} is not a `gid scenes` output folder (no scenes/ inside).")
    records = list_records(folder, "held_out")
    if not records:
        raise MotionError(f"--scenes {folder} holds no held-out records (seeds 9, 19, ...); make at least 10 scenes.")
    if count < 1:
        raise MotionError(f"--scene-count must be at least 1, not {count}.")
    return records[:count]


def _truth(path: Path) -> tuple[torch.Tensor, SpectralVolume]:
    image, coeffs, _, _ = read_record(path)
    num_frames, fps = read_timing(path)
    picture = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    return picture, SpectralVolume(coeffs[None], num_frames=num_frames, fps=fps)


def score_scenes(records: Sequence[Path], model, seeds: Sequence[int], steps: int, device: str = "cpu",
                 progress=None) -> tuple[list[SceneResult], SceneResult]:
    """(per-scene model scores, the mean-spectrum baseline's scores as one pseudo-scene)."""
    from ..sampling import sample_spectral_volume

    results, truths = [], []
    for path in records:
        picture, truth = _truth(path)
        truths.append(truth)
        result = SceneResult(path.stem)
        for seed in seeds:
            with torch.no_grad():
                volume, _ = sample_spectral_volume(model, picture.to(device), seed=seed, steps=steps,
                                                   num_frames=truth.num_frames, fps=truth.fps)
            volume = volume.to("cpu").resized(truth.height, truth.width)
            result.per_seed.setdefault("magnitude_spearman", []).append(metrics.magnitude_spearman(volume, truth)[0])
            result.per_seed.setdefault("log_power_error", []).append(float(metrics.log_power_error(volume, truth)[0]))
        results.append(result)
        if progress is not None:
            progress(len(results), len(records))
    return results, _mean_spectrum_scores(truths)


def _mean_spectrum_scores(truths: Sequence[SpectralVolume]) -> SceneResult:
    """A volume of the scored scenes' mean power per bin at every pixel, scored on each scene."""
    from ..spectral import power_spectrum

    power = torch.stack([power_spectrum(t)[0] for t in truths]).mean(dim=0)  # (K,) px^2
    baseline = SceneResult("mean spectrum")
    for truth in truths:
        coeffs = torch.zeros_like(truth.coeffs)
        coeffs[:, :, 0] = power.sqrt().view(1, -1, 1, 1)  # all power in Re x: the spectrum is what counts
        flat = SpectralVolume(coeffs, num_frames=truth.num_frames, fps=truth.fps)
        baseline.per_seed.setdefault("magnitude_spearman", []).append(metrics.magnitude_spearman(flat, truth)[0])
        baseline.per_seed.setdefault("log_power_error", []).append(float(metrics.log_power_error(flat, truth)[0]))
    return baseline


def format_scene_table(folder: Path, results: Sequence[SceneResult], baseline: SceneResult, seeds: Sequence[int],
                       steps: int, note: str = "", per_scene: bool = False) -> str:
    rows = [("model", results), ("mean spectrum", [baseline])]
    header = f"{'method':<16}{'magnitude Spearman (higher better)':>38}{'log10 power error (lower better)':>36}"
    lines = [f"held-out generated scenes: {len(results)} from {folder} (every tenth seed, never trained on); "
             f"model: {len(seeds)} seed(s) each, {steps} DDIM steps, no guidance", "", header, "-" * len(header)]
    for name, group in rows:
        spearman = np.mean([value for r in group for value in r.per_seed["magnitude_spearman"]])
        error = np.mean([value for r in group for value in r.per_seed["log_power_error"]])
        lines.append(f"{name:<16}{spearman:>38.4f}{error:>36.4f}")
    if per_scene:
        lines += ["", f"{'scene':<20}{'Spearman':>12}{'power error':>14}"]
        lines += [f"{r.scene:<20}{r.mean('magnitude_spearman'):>12.3f}{r.mean('log_power_error'):>14.3f}" for r in results]
    if note:
        lines += ["", f"note: {note}"]
    return "\n".join(lines)
