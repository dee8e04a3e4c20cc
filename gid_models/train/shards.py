"""Training examples on disk: compact safetensors shards and the torch Dataset that reads them.

One shard file `shard-NNNNN.safetensors` holds up to `examples_per_shard` examples of one size:
  images     (N, 3, H, W) uint8 RGB, the start frame
  coeffs     (N, K, 4, H, W) float16, spectral volume in pixels at H x W (Re x, Im x, Re y, Im y)
  masks      (N, H, W) uint8, 1 where the motion is oscillation (0: drift, e.g. a walking character)
  num_frames (N,) int32, the T of each volume;  fps (N,) float32, its frame rate
and, in the file's metadata, a JSON list with each example's source clip, start frame and
augmentation. Disk cost: a 256x160 K=16 example is 16*4*160*256*2 bytes = 5.2 MB of coefficients
plus 0.12 MB of image; lower K or a smaller crop size scales it linearly.

A `gid scenes` folder can stand wherever shards are read: SpectralShardDataset reads its compact
records directly (scenes/records.py), leaving out every tenth seed unless asked for them.

`spectrum.safetensors` next to the shards holds the mean power per frequency bin and axis over
all examples (the mean-spectrum baseline of the evaluation).

Augmentations that need no resampling run on the fly in the Dataset, so they cost no disk:
horizontal flip (mirror the pixels and negate x motion) and time reversal (F_t -> F_{-t}, which
conjugates every coefficient: a stationary sway in wind is statistically the same played back).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..spectral import MotionError, SpectralVolume

LOGGER = logging.getLogger(__name__)

SHARD_FORMAT = "gid-spectral-shards"
SPECTRUM_FILE = "spectrum.safetensors"


def _as_uint8_image(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(3, H, W) uint8 from uint8 or float 0..1, numpy or torch."""
    image = torch.as_tensor(image)
    if image.dtype != torch.uint8:
        image = (image.float().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return image.contiguous()


class ShardWriter:
    """Collects examples and writes them as shards of examples_per_shard; use as a context manager."""

    def __init__(self, out_dir: str | Path, examples_per_shard: int = 32):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.examples_per_shard = examples_per_shard
        self.paths: list[Path] = []
        self.num_examples = 0
        self._pending: list[dict] = []
        self._power_sum: torch.Tensor | None = None  # (K, 2) sum over pixels of |S|^2, px^2
        self._pixel_count = 0
        self._shape: tuple[int, ...] | None = None
        self._next_index = len(list(self.out_dir.glob("shard-*.safetensors")))

    def add(
        self,
        image: torch.Tensor | np.ndarray,
        coeffs: torch.Tensor,
        *,
        num_frames: int,
        fps: float,
        source: str,
        start_frame: int,
        augmentation: str = "",
        mask: torch.Tensor | None = None,
    ) -> None:
        """image: (3, H, W) uint8 or float 0..1; coeffs: (K, 4, H, W) pixels; mask: (H, W) bool/0..1."""
        image = _as_uint8_image(image)
        if coeffs.ndim != 4 or coeffs.shape[1] != 4 or coeffs.shape[-2:] != image.shape[-2:]:
            raise MotionError(f"coeffs must be (K, 4, H, W) matching the image {tuple(image.shape)}, got {tuple(coeffs.shape)}.")
        if self._shape is not None and tuple(coeffs.shape) != self._shape:
            raise MotionError(f"all examples of one ShardWriter share a shape {self._shape}, got {tuple(coeffs.shape)}.")
        if not torch.isfinite(coeffs).all():
            raise MotionError(f"spectral volume of {source} at frame {start_frame} has NaN or infinite values.")
        self._shape = tuple(coeffs.shape)
        coeffs = coeffs.detach().float().cpu()
        mask = torch.ones(image.shape[-2:], dtype=torch.uint8) if mask is None else (mask > 0.5).to(torch.uint8).cpu()
        self._pending.append({
            "image": image.cpu(), "coeffs": coeffs.half(), "mask": mask,
            "record": {"num_frames": int(num_frames), "fps": float(fps), "source": source,
                       "start_frame": int(start_frame), "augmentation": augmentation},
        })
        power = coeffs.square().view(coeffs.shape[0], 2, 2, -1).sum(dim=2).sum(dim=-1).double()  # (K, 2)
        self._power_sum = power if self._power_sum is None else self._power_sum + power
        self._pixel_count += coeffs.shape[-1] * coeffs.shape[-2]
        self.num_examples += 1
        if len(self._pending) >= self.examples_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        from safetensors.torch import save_file

        path = self.out_dir / f"shard-{self._next_index:05d}.safetensors"
        records = [p["record"] for p in self._pending]
        tensors = {
            "images": torch.stack([p["image"] for p in self._pending]),
            "coeffs": torch.stack([p["coeffs"] for p in self._pending]),
            "masks": torch.stack([p["mask"] for p in self._pending]),
            "num_frames": torch.tensor([r["num_frames"] for r in records], dtype=torch.int32),
            "fps": torch.tensor([r["fps"] for r in records], dtype=torch.float32),
        }
        save_file(tensors, str(path), metadata={"format": SHARD_FORMAT, "version": "1", "examples": json.dumps(records)})
        LOGGER.info("wrote %s (%d examples, %.1f MB)", path, len(records), path.stat().st_size / 1e6)
        self.paths.append(path)
        self._next_index += 1
        self._pending = []

    def close(self) -> list[Path]:
        """Write the last partial shard and the spectrum statistics; returns the shard paths."""
        self.flush()
        if self._power_sum is not None:
            from safetensors import safe_open
            from safetensors.torch import save_file

            path = self.out_dir / SPECTRUM_FILE
            power_sum, pixels, examples = self._power_sum, self._pixel_count, self.num_examples
            if path.is_file():  # shards added to an existing folder: pool with the earlier ones
                with safe_open(str(path), framework="pt") as handle:
                    earlier = handle.metadata() or {}
                    if "pixel_count" in earlier and handle.get_tensor("mean_power").shape == power_sum.shape:
                        earlier_pixels = int(earlier["pixel_count"])
                        power_sum = power_sum + handle.get_tensor("mean_power").double() * earlier_pixels
                        pixels += earlier_pixels
                        examples += int(earlier.get("num_examples", 0))
            save_file({"mean_power": (power_sum / pixels).float()}, str(path),
                      metadata={"format": "gid-spectrum", "num_examples": str(examples), "pixel_count": str(pixels)})
        return self.paths

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_mean_power(path: str | Path) -> torch.Tensor:
    """(K, 2) mean |S_j|^2 per bin j and axis (x, y) in px^2, from spectrum.safetensors or its folder."""
    from safetensors import safe_open

    path = Path(path)
    path = path / SPECTRUM_FILE if path.is_dir() else path
    if not path.is_file():
        raise MotionError(f"no {SPECTRUM_FILE} at {path}; run `gid prepare` to write shards and their spectrum.")
    with safe_open(str(path), framework="pt") as handle:
        return handle.get_tensor("mean_power").float()


def shard_paths(paths: str | Path | list) -> list[Path]:
    """Shard files from files and/or folders (folders are searched for shard-*.safetensors)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    found: list[Path] = []
    for item in map(Path, items):
        found.extend(sorted(item.glob("shard-*.safetensors")) if item.is_dir() else [item])
    if not found:
        raise MotionError(f"no shard files found in {items}; run `gid prepare` first.")
    return found


def read_records(path: Path) -> list[dict]:
    """The per-example metadata list of one shard."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != SHARD_FORMAT:
        raise MotionError(f"{path} is not a GID training shard (written by `gid prepare`).")
    return json.loads(metadata["examples"])


def flip_horizontal(image: torch.Tensor, coeffs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Mirror left-right: pixels flip along W and x motion (channels Re x, Im x) changes sign."""
    sign = torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=coeffs.dtype, device=coeffs.device).view(1, 4, 1, 1)
    return image.flip(-1), coeffs.flip(-1) * sign, mask.flip(-1)


def reverse_time(coeffs: torch.Tensor) -> torch.Tensor:
    """Play the motion backwards (F_t -> F_{-t mod T}): conjugate, i.e. negate Im x and Im y."""
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=coeffs.dtype, device=coeffs.device).view(1, 4, 1, 1)
    return coeffs * sign


class SpectralShardDataset(Dataset):
    """Examples from shard files or folders, and from `gid scenes` folders (their compact records,
    scenes/scene-*.npz, read directly: scenes/records.py).

    Each item is {"image": (3, H, W) float32 0..1, "coeffs": (K, 4, H, W) float32 pixels,
    "mask": (1, H, W) float32 (1 = oscillation), "num_frames": int, "fps": float}.
    augment: draw a horizontal flip and a time reversal with probability 1/2 each (torch's RNG).
    split: which seeds of a scenes folder to take: "train" (all but every tenth, the default),
    "held_out" (every tenth: 9, 19, ...) or "all". Shards have no seeds and are always taken whole.
    """

    def __init__(self, paths: str | Path | list, augment: bool = False, split: str = "train"):
        from .scenes.records import is_scenes_folder

        items = [paths] if isinstance(paths, (str, Path)) else list(paths)
        scene_folders = [Path(item) for item in items if is_scenes_folder(Path(item))]
        shard_items = [item for item in items if not is_scenes_folder(Path(item))]
        self.paths = shard_paths(shard_items) if shard_items else []
        self.augment = augment
        self.records: list[dict] = []
        self.index: list[tuple[Path, int | None]] = []  # (shard, row) or (scene record, None)
        for path in self.paths:
            records = read_records(path)
            self.records.extend(records)
            self.index.extend((path, row) for row in range(len(records)))
        for folder in scene_folders:
            self._add_scenes(folder, split)
        if not self.index:
            raise MotionError(f"no training examples in {items} (split {split!r}); make them with `gid prepare` "
                              "or `gid scenes`.")

    def _add_scenes(self, folder: Path, split: str) -> None:
        from .scenes.records import list_records, read_timing, seed_of

        paths = list_records(folder, split)
        if not paths:
            raise MotionError(f"the scenes folder {folder} holds no {split} records (scenes/scene-*.npz); "
                              "make them with `gid scenes`.")
        num_frames, fps = read_timing(paths[0])  # one configuration per folder (gid scenes checks it)
        for path in paths:
            self.records.append({"num_frames": num_frames, "fps": fps, "source": f"scene-{seed_of(path)}",
                                 "start_frame": 0, "augmentation": ""})
            self.index.append((path, None))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        path, row = self.index[i]
        if row is None:
            image, coeffs, mask = self._read_scene(path)
        else:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                image = handle.get_slice("images")[row : row + 1][0].float() / 255.0
                coeffs = handle.get_slice("coeffs")[row : row + 1][0].float()
                mask = handle.get_slice("masks")[row : row + 1][0].float()[None]
        if self.augment:
            if torch.rand(()) < 0.5:
                image, coeffs, mask = flip_horizontal(image, coeffs, mask)
            if torch.rand(()) < 0.5:
                coeffs = reverse_time(coeffs)
        record = self.records[i]
        return {"image": image, "coeffs": coeffs, "mask": mask,
                "num_frames": int(record["num_frames"]), "fps": float(record["fps"])}

    def example_key(self, i: int) -> str:
        """A name of example i that changes when its file does (latent_store.example_key)."""
        from .latent_store import example_key

        path, row = self.index[i]
        return example_key(path, row)

    @staticmethod
    def _read_scene(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from .scenes.records import read_record

        image, coeffs, mask, _ = read_record(path)
        return (torch.from_numpy(image).permute(2, 0, 1).float() / 255.0, coeffs,
                torch.from_numpy(mask).float()[None])

    def volume(self, i: int) -> SpectralVolume:
        """Example i (never augmented) as a (1, K, 4, H, W) SpectralVolume in pixels with its T and fps."""
        augment, self.augment = self.augment, False
        try:
            item = self[i]
        finally:
            self.augment = augment
        return SpectralVolume(item["coeffs"][None], num_frames=item["num_frames"], fps=item["fps"])
