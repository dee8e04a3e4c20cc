"""Training pairs for the neural renderer: (I_0, I_t, forward flow I_0 -> I_t) from real clips.

Paper notes, section 5: the renderer learns to produce I_t from I_0 warped by the flow that
carries I_0 to I_t. Each clip is decoded once into a uint8 .npy cache (memory-mapped by every
data-loader worker, so random access costs nothing); a pair picks a clip, a start frame and a
gap of 1..max_gap frames, both orders (I_0 -> I_t and I_t -> I_0), estimates the flow with
OpenCV DIS at full frame size (medium preset refined to full resolution, the settings of
gid_models.flow), then takes the same random crop of picture, target and flow, with a random
horizontal flip (which negates dx). The importance metric of a pair is ||flow|| (W with T = 1).

Clips are files and folders (searched recursively) as train/clips.py lists them: the validation
clips of the shared data set are never used for training (split="train") and are the only ones
used for split="val".
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..video_io import read_video
from .clips import require_clips

LOGGER = logging.getLogger(__name__)

def cached_frames(path: Path, cache_dir: Path, max_side: int | None = None) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames of a clip, decoded once into cache_dir and memory-mapped."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(f"{path.resolve()}:{path.stat().st_size}:{max_side}".encode()).hexdigest()[:12]
    cache = cache_dir / f"{path.stem}-{key}.npy"
    if not cache.is_file():
        size = None
        if max_side:
            capture = cv2.VideoCapture(str(path))
            width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
            capture.release()
            scale = min(1.0, max_side / max(width, height, 1.0))
            size = (max(1, round(width * scale)), max(1, round(height * scale))) if scale < 1.0 else None
        frames, _ = read_video(path, size=size)
        partial = cache.with_suffix(f".{os.getpid()}.partial.npy")
        np.save(partial, frames)
        partial.replace(cache)
        LOGGER.info("cached %s: %s", path.name, frames.shape)
    return np.load(cache, mmap_mode="r")


class RenderPairDataset(torch.utils.data.Dataset):
    """num_pairs virtual (I_0, I_t, flow) pairs; item i is the same pair every time (seeded by i).

    Items: dict with picture and target (3, crop, crop) float32 in 0..1, flow (2, crop, crop)
    pixels from picture to target, importance (1, crop, crop) = ||flow|| in pixels.
    """

    def __init__(
        self,
        clips: str | Path | Sequence[str | Path],
        cache_dir: str | Path,
        split: str = "train",
        crop: int = 256,
        max_gap: int = 24,
        num_pairs: int = 100_000,
        max_side: int | None = 512,
        seed: int = 0,
    ) -> None:
        self.clips = require_clips(clips, split)
        self.cache_dir = Path(cache_dir)
        self.max_side = max_side
        for clip in self.clips:  # decode now, in the main process, so workers only memory-map
            cached_frames(clip, self.cache_dir, max_side)
        self.crop, self.max_gap, self.num_pairs, self.seed = int(crop), int(max_gap), int(num_pairs), int(seed)
        self._frames: dict[int, np.ndarray] = {}
        self._dis = None

    def __len__(self) -> int:
        return self.num_pairs

    def frames(self, clip_index: int) -> np.ndarray:
        if clip_index not in self._frames:
            self._frames[clip_index] = cached_frames(self.clips[clip_index], self.cache_dir, self.max_side)
        return self._frames[clip_index]

    def flow(self, start: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32 forward flow in pixels: start(p) ~ target(p + flow(p))."""
        if self._dis is None:  # created lazily: OpenCV objects do not pickle into workers
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            self._dis.setFinestScale(0)
        grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in (start, target)]
        return self._dis.calc(grey[0], grey[1], None)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(index)])
        clip_index = int(rng.integers(len(self.clips)))
        frames = self.frames(clip_index)
        total, height, width = frames.shape[:3]
        gap = int(rng.integers(1, max(1, min(self.max_gap, total - 1)) + 1)) if total > 1 else 0
        first = int(rng.integers(0, total - gap))
        start, target = np.asarray(frames[first]), np.asarray(frames[first + gap])
        if rng.random() < 0.5:
            start, target = target, start
        flow = self.flow(start, target)
        crop_h, crop_w = min(self.crop, height), min(self.crop, width)
        top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
        window = (slice(top, top + crop_h), slice(left, left + crop_w))
        picture = torch.from_numpy(np.ascontiguousarray(start[window])).permute(2, 0, 1).float() / 255.0
        goal = torch.from_numpy(np.ascontiguousarray(target[window])).permute(2, 0, 1).float() / 255.0
        motion = torch.from_numpy(np.ascontiguousarray(flow[window])).permute(2, 0, 1).float()
        if rng.random() < 0.5:
            picture, goal, motion = picture.flip(-1), goal.flip(-1), motion.flip(-1)
            motion[0] = -motion[0]
        return {
            "picture": picture,
            "target": goal,
            "flow": motion,
            "importance": torch.linalg.vector_norm(motion, dim=0, keepdim=True),
        }
