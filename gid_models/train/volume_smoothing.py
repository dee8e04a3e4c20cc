"""Spatial Gaussian smoothing of spectral volumes for VAE and denoiser training.

The scene engine's volumes are exact per pixel: every blade and leaf has its own phase, so much
of their power lies at spatial frequencies a latent at 1/4 resolution cannot hold. Flow-measured
volumes (the paper's data, the film shots) are smooth. Blurring each coefficient slice by a
Gaussian of a few pixels makes the two alike before the VAE sees them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..normalization import normalize_tensor


def gaussian_kernel_1d(sigma_px: float) -> torch.Tensor:
    """(2r + 1,) normalized Gaussian weights, r = ceil(3 sigma_px)."""
    radius = max(1, math.ceil(3 * sigma_px))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    weights = torch.exp(-x.square() / (2 * sigma_px**2))
    return weights / weights.sum()


def smooth_volume(coeffs: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """(..., H, W) pixels -> the same shape, every (H, W) slice blurred by a Gaussian of sigma_px
    pixels (separable, edges replicated). sigma_px 0 returns coeffs unchanged."""
    if sigma_px < 0 or not math.isfinite(sigma_px):
        raise ValueError(f"smoothing sigma must be a finite number of pixels >= 0, got {sigma_px}.")
    if sigma_px == 0:
        return coeffs
    kernel = gaussian_kernel_1d(sigma_px).to(coeffs)
    radius = kernel.numel() // 2
    height, width = coeffs.shape[-2:]
    flat = coeffs.reshape(-1, 1, height, width)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.reshape(coeffs.shape)


def training_slices(model, coeffs: torch.Tensor) -> torch.Tensor:
    """(B, K, 4, H, W) pixels -> normalized slices as the model's VAE was trained on them: blurred
    by its training_smoothing_px (0 for VAEs trained on raw volumes), then normalized (Eq. 4).
    model: a MotionModel."""
    return normalize_tensor(smooth_volume(coeffs, float(model.vae.config.training_smoothing_px)),
                            model.normalization_scales)
