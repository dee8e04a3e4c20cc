"""A folder of cached denoiser-training latents on disk, reused across runs, stages and sessions.

Encoding 1,800 scene examples (4 flip x time-reversal variants each) through the motion VAE and
the frozen image encoder takes about 70 minutes on 2 CPU cores; kept in memory, that work is lost
with every restart of a resumable run, and the cache (about 5 MB per example at 256x160) no longer
fits in memory. On disk an example takes about 4 MB. A LatentStore writes each example's variants once, as one safetensors file, and
serves them back lazily:

    STORE/<model fingerprint>/<example key>.safetensors
        latents.<v>    (K, c, H' / f, W' / f) float32 scaled latents
        image.<p>      (3, H', W') float32 0..1, H', W' cropped to a multiple of the VAE factor
        features.<p>.<i>  (C_s, H' / s, W' / s) float32, the encoder's maps (conditioned denoisers)
    for variant v = 0..3 (or only 0 without augmentation) and p = picture_of[v] (metadata): the
    time-reversed variants share their picture with the forward ones, so it is stored once.

The fingerprint hashes everything the latents depend on (the VAE's weights and config, the
normalization scales, the image encoder's weights), so a retrained VAE gets a folder of its own
instead of stale latents. The example key hashes the example's file, row, size and modification
time, so a re-rendered scene is encoded again. Files are written to a temporary name and renamed,
so a run killed mid-write leaves no truncated entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

STORE_VERSION = 1


def _hash_tensors(digest: "hashlib._Hash", state: dict[str, torch.Tensor]) -> None:
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


def model_fingerprint(model, variants: int) -> str:
    """16 hex digits naming what a cached latent depends on: model's (a MotionModel) VAE weights
    and config, normalization scales, picture encoder weights (if any), and the variant count."""
    digest = hashlib.sha256()
    digest.update(f"gid-latent-store {STORE_VERSION} variants {variants}".encode())
    digest.update(json.dumps(dict(model.vae.config), sort_keys=True, default=str).encode())
    _hash_tensors(digest, model.vae.state_dict())
    _hash_tensors(digest, {"normalization_scales": model.normalization_scales})
    conditioning = model.denoiser.image_conditioning
    if conditioning is not None:
        digest.update(str(model.denoiser.config.get("image_features")).encode())
        _hash_tensors(digest, conditioning.encoder.state_dict())
    return digest.hexdigest()[:16]


def example_key(path: str | Path, row: int | None) -> str:
    """24 hex digits naming one training example: its file (resolved path, size, modification
    time in ns) and its row in a shard (None for a one-example scene record)."""
    path = Path(path).resolve()
    stat = path.stat()
    text = f"{path}|{row}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def check_store_folder(root: str | Path) -> Path:
    """root made if missing and shown to be writable, else a ValueError that names --latent-store;
    call it before any slow step."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"--latent-store {root}: cannot write there ({error.strerror or error}); "
                         "give a writable folder (about 4 MB per 256x160 example).") from error
    return root


class LatentStore:
    """Entries (one example's cached variants) under root/<fingerprint>/."""

    def __init__(self, root: str | Path, fingerprint: str):
        self.folder = check_store_folder(root) / fingerprint
        self.folder.mkdir(exist_ok=True)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def write(self, key: str, variants: list[dict]) -> Path:
        """variants: per variant {"image": tensor, "latents": tensor, "features": tuple of tensors or ()}.
        A picture (and its features) equal to an earlier variant's, as time reversal leaves it, is
        stored once and referred to."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        picture_of: list[int] = []  # variant -> the variant whose picture and features it shares
        for v, entry in enumerate(variants):
            tensors[f"latents.{v}"] = entry["latents"].float().contiguous()
            same = [u for u in range(v) if picture_of[u] == u and torch.equal(variants[u]["image"], entry["image"])]
            picture_of.append(same[0] if same else v)
            if same:
                continue
            tensors[f"image.{v}"] = entry["image"].float().contiguous()
            for i, feature in enumerate(entry["features"]):
                tensors[f"features.{v}.{i}"] = feature.float().contiguous()
        metadata = {"format": "gid-latent-store", "version": str(STORE_VERSION), "variants": str(len(variants)),
                    "features": str(len(variants[0]["features"])), "picture_of": json.dumps(picture_of)}
        target = self.path(key)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        save_file(tensors, str(partial), metadata=metadata)
        os.replace(partial, target)
        return target

    @staticmethod
    def read(path: Path, variant: int) -> dict:
        """{"image", "latents"} and "features" (a tuple) when the entry holds them, of one variant."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != "gid-latent-store":
                raise ValueError(f"{path} is not a GID latent-store entry; delete it and run again.")
            picture = json.loads(metadata["picture_of"])[variant]
            item = {"image": handle.get_tensor(f"image.{picture}"), "latents": handle.get_tensor(f"latents.{variant}")}
            count = int(metadata.get("features", "0"))
            if count:
                item["features"] = tuple(handle.get_tensor(f"features.{picture}.{i}") for i in range(count))
        return item
