"""Real-photo score: does a motion-magnitude map put motion where a photograph should move?

Masks (one grey PNG per picture, same file stem; see shared/data/photo_masks/README.md):
255 = should move (foliage, grass, flowers, twigs, rippled water), 0 = should stay still (sky,
rock, mountains, buildings, paths, trunks), 128 = unlabelled. Any map (B = 1, H x W, larger =
more motion) is resized to the mask (bilinear) and scored by its ROC AUC separating the two
labelled classes: 1 = every should-move pixel above every still one, 0.5 = no idea, 0 = inverted.

Methods scored (`score_photos`):
- model: metrics.magnitude_map of the motion sampled for the picture (no guidance), one AUC per
  seed, averaged over the seeds;
- greenness: the plain rule 2G - R - B on the picture (no model).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..spectral import MotionError
from .metrics import average_ranks, magnitude_map

LOGGER = logging.getLogger(__name__)

MOVES_MIN, STILL_MAX = 192, 63  # grey levels: 255 and 0 are the labels, anything between is unlabelled
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
PHOTO_METHODS = ("model", "greenness (2G-R-B)")


def roc_auc(scores: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> float:
    """ROC AUC of scores (any shape) separating positive from negative elements (bool masks of
    the same shape; elements in neither are ignored), ties counted half (Mann-Whitney U).
    NaN when either class is empty."""
    scores = scores.flatten().double()
    positive, negative = positive.flatten().bool(), negative.flatten().bool()
    if (positive & negative).any():
        raise ValueError("roc_auc: a pixel cannot be both positive and negative.")
    n_pos, n_neg = int(positive.sum()), int(negative.sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = average_ranks(scores[positive | negative])  # 0-based, ties share their mean rank
    positive_ranks = ranks[positive[positive | negative]]
    u = float(positive_ranks.sum()) - n_pos * (n_pos - 1) / 2
    return u / (n_pos * n_neg)


def mask_classes(mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(moves, still) bool (H, W) of a grey uint8 mask (H, W): 255 = moves, 0 = still, 128 = neither."""
    mask = torch.from_numpy(np.asarray(mask))
    if mask.ndim != 2:
        raise MotionError(f"a photo mask must be a grey image (H, W), got shape {tuple(mask.shape)}.")
    return mask >= MOVES_MIN, mask <= STILL_MAX


def map_auc(score_map: torch.Tensor, mask: np.ndarray) -> float:
    """ROC AUC of a map (H', W') (larger = more motion) against a grey mask (H, W), the map
    resized to the mask bilinearly."""
    moves, still = mask_classes(mask)
    resized = F.interpolate(score_map.double()[None, None], size=tuple(moves.shape), mode="bilinear", align_corners=False)
    return roc_auc(resized[0, 0], moves, still)


def greenness(picture: torch.Tensor) -> torch.Tensor:
    """(H, W) 2G - R - B of a (3, H, W) RGB picture in 0..1: the no-model baseline map."""
    red, green, blue = picture.double()
    return 2 * green - red - blue


def load_mask(path: Path) -> np.ndarray:
    """(H, W) uint8 grey levels of a mask image."""
    import cv2

    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise MotionError(f"cannot read photo mask '{path}': missing file or not an image.")
    return mask


def find_photo_pairs(photos: str | Path, masks: str | Path) -> list[tuple[Path, Path]]:
    """(picture, mask) for every picture in photos with a mask of the same stem in masks, by name."""
    photos, masks = Path(photos), Path(masks)
    for option, folder in (("--photos", photos), ("--masks", masks)):
        if not folder.is_dir():
            raise MotionError(f"{option}: '{folder}' is not a folder.")
    mask_files = {p.stem: p for p in masks.iterdir() if p.suffix.lower() == ".png"}
    pairs = [(p, mask_files[p.stem]) for p in sorted(photos.iterdir())
             if p.suffix.lower() in PICTURE_SUFFIXES and p.stem in mask_files]
    if not pairs:
        raise MotionError(f"no picture in {photos} has a mask of the same name (.png) in {masks}.")
    return pairs


@dataclass
class PhotoResult:
    """AUCs of one photo: per_seed (model, one per seed), rows[method] -> AUC (NaN: one class only)."""

    photo: str
    moves_fraction: float
    still_fraction: float
    per_seed: list[float] = field(default_factory=list)
    rows: dict[str, float] = field(default_factory=dict)

    @property
    def both_classes(self) -> bool:
        return self.moves_fraction > 0 and self.still_fraction > 0


def model_magnitude_maps(model, picture: torch.Tensor, seeds: Sequence[int], steps: int) -> list[torch.Tensor]:
    """One (H, W) motion-magnitude map (pixels) per seed for a (1, 3, H, W) picture, unguided."""
    from ..sampling import sample_spectral_volume

    device = model.compute_device()
    maps = []
    for seed in seeds:
        volume, _ = sample_spectral_volume(model, picture.to(device), seed=seed, steps=steps)
        maps.append(magnitude_map(volume.to("cpu"))[0])
    return maps


def score_photo(picture_path: Path, mask_path: Path, model, seeds: Sequence[int], steps: int) -> PhotoResult:
    """AUCs of the model (if any) and of greenness on one photo. The picture is read at the
    mask's longer side (512 px for the shared masks) and every map resized to the mask. A photo
    whose mask has one class only is not sampled (its AUC is undefined)."""
    from ..pipeline import load_picture

    mask = load_mask(mask_path)
    moves, still = mask_classes(mask)
    result = PhotoResult(picture_path.stem, float(moves.float().mean()), float(still.float().mean()))
    picture = load_picture(picture_path, max_side=max(mask.shape))
    picture_aspect, mask_aspect = picture.shape[-1] / picture.shape[-2], mask.shape[1] / mask.shape[0]
    if abs(picture_aspect / mask_aspect - 1) > 0.02:
        raise MotionError(f"{mask_path.name} is {mask.shape[1]}x{mask.shape[0]} but {picture_path.name} has another "
                          "aspect ratio; the mask must be the picture resized.")
    result.rows["greenness (2G-R-B)"] = map_auc(greenness(picture[0]), mask)
    if model is not None and result.both_classes:
        with torch.no_grad():
            result.per_seed = [map_auc(m, mask) for m in model_magnitude_maps(model, picture, seeds, steps)]
        result.rows["model"] = float(np.mean(result.per_seed))
    return result


def score_photos(pairs: Sequence[tuple[Path, Path]], model, seeds: Sequence[int], steps: int) -> list[PhotoResult]:
    """Every photo's AUCs (model rows only when model is not None)."""
    return [score_photo(picture, mask, model, seeds, steps) for picture, mask in pairs]


def mean_auc(results: Sequence[PhotoResult], method: str) -> float:
    """Mean AUC of a method over the photos that have both classes (NaN if none)."""
    values = [r.rows[method] for r in results if r.both_classes and method in r.rows]
    return float(np.mean(values)) if values else math.nan


def format_photo_table(results: Sequence[PhotoResult], seeds: Sequence[int], steps: int, model_note: str = "") -> str:
    """Per-photo AUC table and the mean over photos with both classes, as text."""
    methods = [m for m in PHOTO_METHODS if any(m in r.rows for r in results)]
    header = f"{'photo':<26}{'moves %':>8}{'still %':>8}" + "".join(f"{m:>22}" for m in methods) + f"{'model per seed':>34}"
    lines = [
        f"real-photo score: ROC AUC of the motion-magnitude map, should-move (255) vs should-stay-still (0); "
        f"model: mean over {len(seeds)} seed(s), {steps} DDIM steps, no guidance",
        "", header, "-" * len(header),
    ]
    for r in results:
        cells = "".join(f"{r.rows.get(m, math.nan):>22.3f}" for m in methods)
        seeds_text = " ".join(f"{v:.3f}" for v in r.per_seed) or "-"
        note = "" if r.both_classes else "  (one class only: not scored)"
        lines.append(f"{r.photo:<26}{100 * r.moves_fraction:>8.1f}{100 * r.still_fraction:>8.1f}{cells}{seeds_text:>34}{note}")
    count = sum(r.both_classes for r in results)
    lines.append(f"{f'mean ({count} photos, both classes)':<42}" + "".join(f"{mean_auc(results, m):>22.3f}" for m in methods))
    if model_note:
        lines += ["", f"note: {model_note}"]
    return "\n".join(lines)
