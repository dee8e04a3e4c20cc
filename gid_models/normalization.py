"""Frequency-adaptive normalization of spectral volumes (paper Eq. 4) and its exact inverse.

Spectral coefficients fall off roughly as 1/f: the low bins hold tens of pixels, the top bins a
fraction of one. Each bin k is divided by s_k, the 95th percentile of |coefficient| over the
training volumes, and square-rooted with its sign kept, S' = sign(S) sqrt(|S| / s_k), so every
bin reaches the diffusion model in about the same range. The inverse, S = sign(S') S'^2 s_k, is
exact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

import torch

from .spectral import MotionError, SpectralVolume

@dataclass(frozen=True)
class FrequencyNormalization:
    """Frequency-adaptive normalization statistics (paper Eq. 4).

    scales: (K,) float32, the 95th percentile of |coefficient| per frequency, in pixels.
    quantile: the percentile used when fitting (0.95 in the paper).
    """

    scales: torch.Tensor
    quantile: float = 0.95

    @property
    def num_frequencies(self) -> int:
        return int(self.scales.shape[0])

    def save(self, path: str) -> None:
        from safetensors.torch import save_file

        save_file(
            {"scales": self.scales.detach().float().cpu().contiguous()},
            path,
            metadata={"format": "gid-normalization", "quantile": str(self.quantile)},
        )

    @classmethod
    def load(cls, path: str) -> "FrequencyNormalization":
        from safetensors import safe_open

        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != "gid-normalization" or "scales" not in handle.keys():
                raise MotionError(
                    f"{path} is not a GID normalization file (expected a safetensors file with a "
                    "'scales' tensor and format=gid-normalization metadata)."
                )
            scales = handle.get_tensor("scales").float()
        if scales.ndim != 1 or not torch.isfinite(scales).all() or (scales <= 0).any():
            raise MotionError(f"{path} holds invalid normalization scales {tuple(scales.shape)}.")
        return cls(scales=scales, quantile=float(metadata.get("quantile", 0.95)))


def fit_normalization(
    volumes: Iterable[SpectralVolume], quantile: float = 0.95, max_samples_per_frequency: int = 4_000_000
) -> FrequencyNormalization:
    """Per-frequency quantile of |coefficient| over all channels and pixels of all volumes.

    Beyond max_samples_per_frequency values per bin, the quantile is taken over a uniform random
    sample of that size, kept as the volumes stream in, so memory stays bounded (thousands of
    256x160 volumes hold tens of GB of coefficients)."""
    sample: torch.Tensor | None = None  # (K, <= max_samples_per_frequency) |coefficient| values
    seen = 0
    generator = torch.Generator().manual_seed(0)
    for volume in volumes:
        volume.require_physical("fit_normalization")
        values = volume.coeffs.detach().float().abs().transpose(0, 1).reshape(volume.num_frequencies, -1).cpu()
        if sample is not None and sample.shape[0] != volume.num_frequencies:
            raise MotionError("all volumes given to fit_normalization must have the same K.")
        sample, seen = _merge_uniform_sample(sample, seen, values, max_samples_per_frequency, generator)
    if sample is None:
        raise MotionError("fit_normalization needs at least one spectral volume.")
    scales = torch.stack([torch.quantile(row.double(), quantile).float() for row in sample]).clamp_min(1e-6)
    return FrequencyNormalization(scales=scales, quantile=quantile)


def _merge_uniform_sample(sample: torch.Tensor | None, seen: int, values: torch.Tensor, limit: int,
                          generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """Reservoir sampling (Vitter's algorithm R) of columns: (sample, seen) is a uniform sample of
    at most `limit` of the `seen` columns so far; returns it updated with values (K, n) and the new
    count. Column i (0-based, over everything seen) replaces a random slot with probability
    limit / (i + 1), which costs O(n), not O(limit), per call."""
    fill = 0 if sample is not None and sample.shape[1] >= limit else min(values.shape[1], limit - seen)
    if fill:
        sample = values[:, :fill] if sample is None else torch.cat([sample, values[:, :fill]], dim=1)
    rest = values[:, fill:]
    if rest.shape[1]:
        index = torch.arange(seen + fill, seen + values.shape[1], dtype=torch.float64)
        slots = (torch.rand(rest.shape[1], generator=generator, dtype=torch.float64) * (index + 1)).long()
        chosen = slots < limit
        sample[:, slots[chosen]] = rest[:, chosen]
    return sample, seen + values.shape[1]


def normalize(volume: SpectralVolume, stats: FrequencyNormalization) -> SpectralVolume:
    """S' = sign(S) * sqrt(|S| / s_k) per frequency k (paper Eq. 4)."""
    volume.require_physical("normalize")
    if stats.num_frequencies != volume.num_frequencies:
        raise MotionError(
            f"normalization has K={stats.num_frequencies} but the volume has K={volume.num_frequencies}."
        )
    return replace(volume, coeffs=normalize_tensor(volume.coeffs.float(), stats.scales), normalization=stats)


def denormalize(volume: SpectralVolume, stats: FrequencyNormalization | None = None) -> SpectralVolume:
    """Exact inverse of normalize: S = sign(S') * S'^2 * s_k. Uses the volume's own stats by default."""
    stats = volume.normalization if stats is None else stats
    if stats is None:
        raise MotionError("this spectral volume is already in pixels; there is nothing to denormalize.")
    if stats.num_frequencies != volume.num_frequencies:
        raise MotionError(
            f"normalization has K={stats.num_frequencies} but the volume has K={volume.num_frequencies}."
        )
    scales = stats.scales.to(volume.coeffs).view(1, -1, 1, 1, 1)
    coeffs = volume.coeffs.float()
    return replace(volume, coeffs=torch.sign(coeffs) * coeffs.square() * scales, normalization=None)


def normalize_tensor(coeffs: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Paper Eq. 4 on raw coefficients: (..., K, 4, H, W) pixels -> sign(S) sqrt(|S| / s_k), scales (K,)."""
    return torch.sign(coeffs) * torch.sqrt(coeffs.abs() / scales.to(coeffs).view(-1, 1, 1, 1))


def denormalize_tensor(normalized: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Differentiable inverse normalization of raw coefficients.

    normalized: (..., K, 4, H, W); scales: (K,). Returns pixels, same shape. Used inside sampling,
    where gradients must flow back to the latent (sign * x^2 == x * |x| is smooth at 0).
    """
    return normalized * normalized.abs() * scales.to(normalized).view(-1, 1, 1, 1)
