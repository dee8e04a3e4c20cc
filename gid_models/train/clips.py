"""The clips a training run reads: one lister for the motion model (`gid prepare`) and the renderer.

`--clips` takes video files and folders; folders are searched recursively
(video_io.find_video_files), so one `--clips` folder gives both trainers the same clips. The four
validation clips of the shared data set (VALIDATION_CLIPS, by file stem) are held out of training
and are the renderer's validation split.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from ..spectral import MotionError
from ..video_io import VIDEO_SUFFIXES, find_video_files

LOGGER = logging.getLogger(__name__)

VALIDATION_CLIPS = frozenset({"bbb_02196_02392", "bbb_05133_05290", "bbb_09150_09377", "bbb_13944_14312"})
SPLITS = ("train", "val", "all")


def find_clips(items: str | Path | Sequence[str | Path], split: str = "train") -> list[Path]:
    """Video files among the given files and folders (recursive): split "train" leaves out the
    validation clips, "val" keeps only them, "all" keeps every clip."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    items = [items] if isinstance(items, (str, Path)) else list(items)
    try:
        clips = find_video_files(items)
    except MotionError as error:
        raise MotionError(f"--clips: {error}") from error
    if split == "all":
        return clips
    held_out = [p for p in clips if p.stem in VALIDATION_CLIPS]
    if split == "val":
        return held_out
    if held_out:
        LOGGER.info("leaving out the validation clips %s", ", ".join(p.name for p in held_out))
    return [p for p in clips if p.stem not in VALIDATION_CLIPS]


def require_clips(items: str | Path | Sequence[str | Path], split: str) -> list[Path]:
    """find_clips, refusing an empty result with what was searched for."""
    clips = find_clips(items, split)
    if not clips:
        where = items if isinstance(items, (str, Path)) else " ".join(map(str, items))
        raise ValueError(f"no {split} clips ({', '.join(sorted(VIDEO_SUFFIXES))}) found under '{where}'.")
    return clips
