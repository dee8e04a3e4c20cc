"""Training examples with their VAE latents computed once, for the denoiser trainer.

The denoiser trains on the frozen VAE's posterior means, so encoding every slice of every batch
again repeats the same work each epoch; on a CPU it costs about as much as the denoiser step
itself. LatentCacheDataset encodes each example once per augmentation (horizontal flip x time
reversal: 4 variants) and then serves a random variant per item, exactly what
SpectralShardDataset(augment=True) followed by MotionModel.encode would give.

Memory: 4 variants x K x c x (H / f) x (W / f) float32 per example (about 2.6 MB at 256x160,
K = 16, c = 4, f = 4), so it suits the tens to hundreds of examples of a small data set; for
large ones give it a `store` folder (`train_denoiser --latent-store DIR`), which keeps the
latents on disk and reuses them across stages and restarts (latent_store.py).

A picture-conditioned denoiser (motion model v2) also gets the frozen image encoder's features of
each variant's picture computed here, once (about 0.2 MB per variant at 256x160), served as
"features" and handed to the network by the trainer instead of running the encoder every step.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .conditioned import picture_features
from .latent_store import LatentStore, model_fingerprint
from .shards import flip_horizontal, reverse_time
from .volume_smoothing import training_slices

LOGGER = logging.getLogger(__name__)

VARIANTS = ((False, False), (True, False), (False, True), (True, True))  # (flip, reverse time)


class LatentCacheDataset(Dataset):
    """Items {"image": (3, H', W') 0..1, "latents": (K, c, H' / f, W' / f) scaled latents}, with
    H', W' the example size cropped to a multiple of the VAE factor f, plus "features" (the encoder's
    maps (C_s, H' / s, W' / s), s = 8, 16, 32) when model's denoiser is picture-conditioned. augment: a random variant
    (flip, time reversal, each with probability 1/2) per item, else the plain example.

    store: a folder for a LatentStore (latent_store.py): each example is encoded only if the store
    does not hold it yet for this model, written there, and read back lazily per item, so nothing
    stays in memory and a restarted run skips the encoding. Needs examples that name their files
    (SpectralShardDataset.example_key)."""

    def __init__(self, examples: Dataset, model, augment: bool = True, device: str | torch.device = "cpu",
                 store: str | Path | None = None, progress: bool = False):
        self.augment = augment
        self.images: list[list[torch.Tensor]] = []
        self.latents: list[list[torch.Tensor]] = []
        self.features: list[list[tuple[torch.Tensor, ...]]] = []
        self.paths: list[Path] = []
        variants = VARIANTS if augment else VARIANTS[:1]
        disk = None
        if store is not None:
            if not hasattr(examples, "example_key"):
                raise ValueError("a latent store needs examples read from shard files or scene folders "
                                 "(SpectralShardDataset); use the in-memory cache for others.")
            disk = LatentStore(store, model_fingerprint(model, len(variants)))
        encoded = 0
        indices = range(len(examples))
        if progress:
            from tqdm import tqdm

            indices = tqdm(indices, desc="latent cache", unit="example")
        with torch.no_grad():
            for index in indices:
                if disk is not None:
                    key = examples.example_key(index)
                    if not disk.has(key):
                        disk.write(key, _encode_variants(examples[index], model, variants, device))
                        encoded += 1
                    self.paths.append(disk.path(key))
                    continue
                entries = _encode_variants(examples[index], model, variants, device)
                encoded += 1
                self.images.append([entry["image"] for entry in entries])
                self.latents.append([entry["latents"] for entry in entries])
                self.features.append([entry["features"] for entry in entries if entry["features"]])
        LOGGER.info("cached the latents of %d examples x %d variants (%d encoded now%s)", len(examples),
                    len(variants), encoded, f", store {disk.folder}" if disk is not None else "")

    def __len__(self) -> int:
        return len(self.paths) if self.paths else len(self.latents)

    def __getitem__(self, i: int) -> dict:
        if self.paths:
            variant = int(torch.randint(len(VARIANTS), ())) if self.augment else 0
            return LatentStore.read(self.paths[i], variant)
        variant = int(torch.randint(len(self.latents[i]), ())) if self.augment else 0
        item = {"image": self.images[i][variant], "latents": self.latents[i][variant]}
        if self.features[i]:
            item["features"] = self.features[i][variant]
        return item


def _encode_variants(item: dict, model, variants, device) -> list[dict]:
    """Per (flip, reverse) variant: {"image", "latents", "features" (a tuple, empty when the
    denoiser is not picture-conditioned)} of one example, cropped to the VAE factor after the flip,
    as the trainer crops an augmented example.

    The smoothing and normalization (training_slices) run once per crop: both commute with the
    mirror and the sign changes of the variants (a symmetric Gaussian, per-bin scales)."""
    factor = model.downsample_factor
    height, width = item["coeffs"].shape[-2:]
    rows = slice(0, height - height % factor)
    kept = width - width % factor
    crops = {False: slice(0, kept), True: slice(width - kept, width)}  # columns a flip brings to the left
    smoothed: dict[bool, torch.Tensor] = {}
    no_mask = torch.ones(1, 1, 1)
    entries = []
    features_of_flip: dict[bool, tuple] = {}  # time reversal leaves the picture, so its features, as they are
    for flip, reverse in variants:
        if flip not in smoothed:
            coeffs = item["coeffs"][None, ..., rows, crops[flip]].float().to(device)
            smoothed[flip] = training_slices(model, coeffs)[0]  # (K, 4, H', W')
        image, normalized = item["image"][..., rows, crops[flip]].float(), smoothed[flip]
        if flip:
            image, normalized, _ = flip_horizontal(image, normalized, no_mask)
        if reverse:
            normalized = reverse_time(normalized)
        image = image.contiguous()
        if flip not in features_of_flip:
            conditioned = model.denoiser.image_conditioning is not None
            features_of_flip[flip] = picture_features(model.denoiser, image) if conditioned else ()
        entries.append({"image": image, "latents": model.encode(normalized[None])[0].cpu(),
                        "features": features_of_flip[flip]})
    return entries
