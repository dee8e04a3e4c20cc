"""The compact record of one generated scene, and which seeds training keeps out.

A `gid scenes` folder holds one record per seed, `DIR/scenes/scene-{seed:07d}.npz` (numpy, zlib):
  image       (H, W, 3) uint8 RGB, frame 0
  coeffs      (K, 4, H, W) int16, the spectral volume in steps of STEP_PX pixels (Re x, Im x, Re y, Im y)
  mask        (H, W) bool, False where the motion was dropped (motion.py)
  num_frames  T of the volume;  fps  its frame rate;  record  the scene's log line (JSON)
About 1 MB at 256x160 and K = 16, against 5.4 MB as a shard example, because still pixels
compress to almost nothing. The training data loader (shards.SpectralShardDataset) reads these
records directly, so a folder of 2,000 scenes takes about 2 GB.

Every HELD_OUT_EVERY-th seed (`is_held_out`) is kept out of training by every command that
trains on scenes (`gid train`, `gid train-amplitude`) and serves as their held-out slice.
Nothing here needs Blender.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

STEP_PX = 1.0 / 256.0  # quantization step of the stored coefficients (error <= 0.002 px)
HELD_OUT_EVERY = 10
"""Every HELD_OUT_EVERY-th seed is held out of training (seeds 9, 19, 29, ... by default)."""
SPLITS = ("train", "held_out", "all")
"""Which seeds of a scenes folder a reader takes: the training ones, the held-out ones, or all."""


def is_held_out(seed: int, every: int = HELD_OUT_EVERY) -> bool:
    """True for the seeds every training command keeps out (seed % every == every - 1); none when every is 0."""
    return every > 0 and seed % every == every - 1


def record_path(out: Path, seed: int) -> Path:
    return Path(out) / "scenes" / f"scene-{seed:07d}.npz"


def seed_of(path: Path) -> int:
    """The seed in a record's file name (scene-0002019.npz -> 2019)."""
    return int(Path(path).stem.split("-")[-1])


def is_scenes_folder(path: Path) -> bool:
    """True for a folder `gid scenes` wrote (it holds scenes/scene-*.npz records)."""
    return (Path(path) / "scenes").is_dir()


def list_records(folder: Path, split: str = "train") -> list[Path]:
    """The record files of a scenes folder in seed order: the training seeds, the held-out ones or all."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    paths = sorted((Path(folder) / "scenes").glob("scene-*.npz"))
    if split == "all":
        return paths
    return [path for path in paths if is_held_out(seed_of(path)) == (split == "held_out")]


def read_record(path: Path) -> tuple[np.ndarray, torch.Tensor, np.ndarray, dict]:
    """(image (H, W, 3) uint8, coeffs (K, 4, H, W) float32 px, mask (H, W) bool, log line) of one record."""
    with np.load(path) as data:
        coeffs = torch.from_numpy(data["coeffs"].astype(np.float32) * STEP_PX)
        return data["image"], coeffs, data["mask"], json.loads(str(data["record"]))


def read_log_line(path: Path) -> dict:
    """The log line a record stores (what the scene holds, CPU seconds, motion size), read without its volume."""
    with np.load(path) as data:
        return json.loads(str(data["record"]))


def read_timing(path: Path) -> tuple[int, float]:
    """(T frames, fps) of one record, without decompressing its volume."""
    with np.load(path) as data:
        return int(data["num_frames"]), float(data["fps"])
