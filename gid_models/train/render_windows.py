"""Training pairs for the neural renderer drawn the way the renderer is used: from motion windows.

At run time the renderer draws frame t of a T-frame loop from the first frame I_0 with the
displacement D_t(p) of frame t (up to T - 1 = 149 frames away) and the importance W = mean over t
of ||D_t|| (paper notes, section 5). Pairs from nearby frames with their own flow and
W = ||flow|| (render_pairs.RenderPairDataset) teach it a different job: small gaps, few
disocclusions, no pixels whose W says "moves a lot" while D_t is small.

Here each training clip is cut into windows of up to `window` frames at width x height (centre
crop + area resize, as `gid eval` loads clips), and each window gets D_t for every t from the
same optical flow as gid_models.flow.estimate_trajectories and its W. A pair is (I_0, I_t, D_t,
W) for a random window and t in 1..T-1, with a random horizontal flip (dx negated). Windows are
computed once into cache_dir (uint8 frames, fp16 displacements) and memory-mapped by workers.

Clips are listed by train/clips.py: the validation clips of the shared data set are never used
for training (split="train").
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..flow import estimate_trajectories
from ..rendering.importance import motion_importance
from ..video_io import fit_frames, read_video
from .clips import require_clips

LOGGER = logging.getLogger(__name__)


def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """First frames of the windows of a clip (one window of all frames when the clip is shorter)."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] != num_frames - window:
        starts.append(num_frames - window)
    return starts


class WindowPairDataset(torch.utils.data.Dataset):
    """num_pairs virtual (I_0, I_t, D_t, W) pairs; item i is the same pair every time (seeded by i).

    Items: dict with picture and target (3, height, width) float32 in 0..1, flow (2, height, width)
    displacement D_t in pixels, importance (1, height, width) W of the whole window in pixels.
    """

    def __init__(
        self,
        clips: str | Path | Sequence[str | Path],
        cache_dir: str | Path,
        split: str = "train",
        width: int = 256,
        height: int = 160,
        window: int = 150,
        stride: int = 75,
        num_pairs: int = 100_000,
        seed: int = 0,
    ) -> None:
        if window < 2 or stride < 1:
            raise ValueError(f"window needs at least 2 frames and stride at least 1, got {window} and {stride}.")
        clips = require_clips(clips, split)
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.size, self.window, self.stride = (int(width), int(height)), int(window), int(stride)
        self.windows = [name for clip in clips for name in self._cache_clip(clip)]
        self.num_pairs, self.seed = int(num_pairs), int(seed)
        self._open: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _cache_clip(self, clip: Path) -> list[Path]:
        """Compute (once) the windows of one clip; returns their cache stems."""
        width, height = self.size
        key = hashlib.sha1(f"{clip.resolve()}:{clip.stat().st_size}:{width}x{height}:{self.window}:{self.stride}".encode())
        stem = self.cache_dir / f"{clip.stem}-{key.hexdigest()[:12]}"
        done = stem.with_suffix(".windows")
        if done.is_file():
            return [Path(line) for line in done.read_text().split()]
        frames, _ = read_video(clip)
        if len(frames) < 2:
            LOGGER.warning("skipping %s: %d frame(s)", clip.name, len(frames))
            return []
        frames = fit_frames(frames, width, height)
        names = []
        for start in window_starts(len(frames), self.window, self.stride):
            part = np.ascontiguousarray(frames[start : start + self.window])
            trajectories = estimate_trajectories(part)  # (1, T, 2, H, W)
            name = Path(f"{stem}-{start:05d}")
            np.save(f"{name}.frames.npy", part)
            np.save(f"{name}.flow.npy", trajectories[0].half().numpy())
            np.save(f"{name}.importance.npy", motion_importance(trajectories)[0].numpy())
            names.append(name)
        done.write_text("\n".join(str(n) for n in names) + "\n")
        LOGGER.info("cached %d window(s) of %s", len(names), clip.name)
        return names

    def __len__(self) -> int:
        return self.num_pairs

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames (T, H, W, 3) uint8, displacements (T, 2, H, W) fp16, W (1, H, W)) of a window."""
        if index not in self._open:
            name = self.windows[index]
            self._open[index] = tuple(
                np.load(f"{name}.{part}.npy", mmap_mode="r") for part in ("frames", "flow", "importance")
            )
        return self._open[index]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(index)])
        frames, flows, importance = self.arrays(int(rng.integers(len(self.windows))))
        t = int(rng.integers(1, len(frames)))
        picture = torch.from_numpy(np.array(frames[0])).permute(2, 0, 1).float() / 255.0
        target = torch.from_numpy(np.array(frames[t])).permute(2, 0, 1).float() / 255.0
        flow = torch.from_numpy(np.array(flows[t])).float()
        weight = torch.from_numpy(np.array(importance)).float()
        if rng.random() < 0.5:
            picture, target, flow, weight = picture.flip(-1), target.flip(-1), flow.flip(-1), weight.flip(-1)
            flow[0] = -flow[0]
        return {"picture": picture, "target": target, "flow": flow, "importance": weight}
