"""Training examples with their VAE latents computed once, for the denoiser trainer.

The denoiser trains on the frozen VAE's posterior means, so encoding every slice of every batch
again repeats the same work each epoch; on a CPU it costs about as much as the denoiser step
itself. LatentCacheDataset encodes each example once per augmentation (horizontal flip x time
reversal: 4 variants) and then serves a random variant per item, exactly what
SpectralShardDataset(augment=True) followed by MotionModel.encode would give.

Memory: 4 variants x K x c x (H / f) x (W / f) float32 per example (about 2.6 MB at 256x160,
K = 16, c = 4, f = 4), so it suits the tens to hundreds of examples of a small data set; for
large ones leave it off (`train_denoiser --cache-latents` is opt-in).

A picture-conditioned denoiser (motion model v2) also gets the frozen image encoder's features of
each variant's picture computed here, once (about 0.2 MB per variant at 256x160), served as
"features" and handed to the network by the trainer instead of running the encoder every step.
"""

from __future__ import annotations

import logging

import torch
from torch.utils.data import Dataset

from .conditioned import picture_features
from .shards import flip_horizontal, reverse_time
from .volume_smoothing import training_slices

LOGGER = logging.getLogger(__name__)

VARIANTS = ((False, False), (True, False), (False, True), (True, True))  # (flip, reverse time)


class LatentCacheDataset(Dataset):
    """Items {"image": (3, H', W') 0..1, "latents": (K, c, H' / f, W' / f) scaled latents}, with
    H', W' the example size cropped to a multiple of the VAE factor f, plus "features" (the encoder's
    maps (C_s, H' / s, W' / s), s = 8, 16, 32) when model's denoiser is picture-conditioned. augment: a random variant
    (flip, time reversal, each with probability 1/2) per item, else the plain example."""

    def __init__(self, examples: Dataset, model, augment: bool = True, device: str | torch.device = "cpu"):
        self.augment = augment
        self.images: list[list[torch.Tensor]] = []
        self.latents: list[list[torch.Tensor]] = []
        self.features: list[list[tuple[torch.Tensor, ...]]] = []
        factor = model.downsample_factor
        with torch.no_grad():
            for index in range(len(examples)):
                item = examples[index]
                height, width = item["coeffs"].shape[-2:]
                rows, cols = slice(0, height - height % factor), slice(0, width - width % factor)
                images, latents, features = [], [], []
                for flip, reverse in VARIANTS if augment else VARIANTS[:1]:
                    image, coeffs = item["image"], item["coeffs"]
                    mask = item.get("mask", torch.ones(1, *coeffs.shape[-2:]))
                    if flip:
                        image, coeffs, mask = flip_horizontal(image, coeffs, mask)
                    if reverse:
                        coeffs = reverse_time(coeffs)
                    normalized = training_slices(model, coeffs[None, ..., rows, cols].float().to(device))
                    latents.append(model.encode(normalized)[0].cpu())
                    images.append(image[..., rows, cols].float().contiguous())
                    if model.denoiser.image_conditioning is not None:
                        features.append(picture_features(model.denoiser, images[-1]))
                self.images.append(images)
                self.latents.append(latents)
                self.features.append(features)
        LOGGER.info("cached the latents of %d examples x %d variants", len(self.latents), len(VARIANTS) if augment else 1)

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, i: int) -> dict:
        variant = int(torch.randint(len(self.latents[i]), ())) if self.augment else 0
        item = {"image": self.images[i][variant], "latents": self.latents[i][variant]}
        if self.features[i]:
            item["features"] = self.features[i][variant]
        return item
