"""Per-frame quality of rendered frames against real ones: PSNR and SSIM, differentiable.

One definition for the renderer's training loss (gid_models.train.train_renderer) and the
evaluation's scores (gid_models.evaluation.metrics). Frames are (T, 3, H, W) float in 0..1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5


def frame_psnr(frames: torch.Tensor, reference: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """(T,) PSNR in dB of each frame against the reference, capped at max_db."""
    mse = (frames.float() - reference.float()).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse.clamp_min(10 ** (-max_db / 10)))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """(size, size) normalized Gaussian weights."""
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def frame_ssim(frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(T,) SSIM of each frame (Wang et al. 2004: Gaussian 11x11 window, sigma 1.5, K1 0.01,
    K2 0.03, data range 1, per channel, valid windows only: frames at least 11 pixels a side)."""
    c1, c2 = 0.01**2, 0.03**2
    x, y = frames.float(), reference.float()
    channels = x.shape[1]
    window = gaussian_window().to(x.device).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx.square(), blur(y * y) - my.square(), blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx.square() + my.square() + c1) * (vx + vy + c2))
    return value.flatten(1).mean(dim=1)
