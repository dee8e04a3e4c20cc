"""Metrics of predicted motion against motion measured from the real clip, and of rendered frames.

Motion metrics take SpectralVolumes in pixels of the same size and K:
- magnitude_spearman: Spearman rank correlation over pixels of the motion-magnitude maps
  M(p) = sqrt(sum over j >= 1 of |S_j(p)|^2), compared at 64x40 (area-averaged): does the
  prediction move the right places, whatever the overall amount.
- log_power_error: mean over j >= 1 of |log10 P_pred(j) - log10 P_gt(j)|, P(j) = mean over
  pixels of |S_j|^2 (x and y together, px^2): is the amount of motion per frequency right
  (1.0 = a factor of 10 in power). Bin 0, the mean offset, is no oscillation and is left out.
  Powers are floored at POWER_FLOOR_PX2 = 1e-6 px^2 (1/1000 px amplitude, invisible), so zero
  motion scores a finite error.
- seam_error: the loop seam error L_g (gid_models.spectral.loop_seam_loss) of the motion
  rendered from the volume over its T frames, in pixels.
Frame metrics take (T, 3, H, W) float 0..1: psnr (dB) and ssim (Gaussian 11x11, sigma 1.5,
per channel), each the mean over frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..spectral import SpectralVolume, loop_seam_loss, spectral_to_motion

POWER_FLOOR_PX2 = 1e-6
MAGNITUDE_SIZE = (40, 64)  # (height, width) the magnitude maps are compared at


def magnitude_map(volume: SpectralVolume) -> torch.Tensor:
    """(B, H, W) M(p) = sqrt(sum over j >= 1 and the 4 channels of S_j(p)^2), pixels."""
    volume.require_physical("magnitude_map")
    return volume.coeffs[:, 1:].double().square().sum(dim=(1, 2)).sqrt().float()


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """(N,) ranks 0..N-1 of a 1-D tensor, tied values sharing their mean rank."""
    order = torch.argsort(values)
    sorted_values = values[order]
    _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    group_rank = ends - (counts.double() + 1) / 2  # mean of positions end-count .. end-1
    ranks = torch.empty_like(values, dtype=torch.float64)
    ranks[order] = group_rank[inverse]
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two same-shaped tensors (all elements); 0.0 when either is
    constant (a constant map ranks nothing)."""
    ra, rb = average_ranks(a.flatten().double()), average_ranks(b.flatten().double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float(ra.square().sum()) * float(rb.square().sum()))
    return 0.0 if denominator == 0 else float((ra * rb).sum()) / denominator


def magnitude_spearman(prediction: SpectralVolume, truth: SpectralVolume, size: tuple[int, int] = MAGNITUDE_SIZE) -> list[float]:
    """Per batch item: Spearman correlation of the magnitude maps, area-averaged to size (H, W)."""
    maps = [F.adaptive_avg_pool2d(magnitude_map(v)[:, None], size)[:, 0] for v in (prediction, truth)]
    return [spearman(p, t) for p, t in zip(*maps)]


def power_spectrum(volume: SpectralVolume) -> torch.Tensor:
    """(B, K) P(j) = mean over pixels of |S_j|^2 (x and y together), px^2."""
    volume.require_physical("power_spectrum")
    return volume.coeffs.double().square().sum(dim=2).mean(dim=(-2, -1)).float()


def log_power_error(prediction: SpectralVolume, truth: SpectralVolume, floor: float = POWER_FLOOR_PX2) -> torch.Tensor:
    """(B,) mean over j >= 1 of |log10 P_pred(j) - log10 P_gt(j)| (decades of power)."""
    if prediction.num_frequencies != truth.num_frequencies:
        raise ValueError(f"prediction has K={prediction.num_frequencies}, truth K={truth.num_frequencies}; they must match.")
    logs = [power_spectrum(v)[:, 1:].double().clamp_min(floor).log10() for v in (prediction, truth)]
    return (logs[0] - logs[1]).abs().mean(dim=1).float()


def seam_error(volume: SpectralVolume) -> torch.Tensor:
    """(B,) loop seam error L_g (pixels) of the volume's motion over its T frames."""
    return loop_seam_loss(spectral_to_motion(volume).displacements)


def frame_psnr(frames: torch.Tensor, reference: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """(T,) PSNR in dB of each of (T, 3, H, W) 0..1 frames against the reference, capped at max_db
    (differentiable: the renderer trains on it)."""
    mse = (frames.float() - reference.float()).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse.clamp_min(10 ** (-max_db / 10)))


def psnr(frames: torch.Tensor, reference: torch.Tensor, max_db: float = 100.0) -> float:
    """Mean over frames of the PSNR (dB) of (T, 3, H, W) 0..1 frames against the reference."""
    return float(frame_psnr(frames, reference, max_db).mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(frames: torch.Tensor, reference: torch.Tensor, chunk: int = 16) -> float:
    """Mean over frames of SSIM (Wang et al. 2004: Gaussian 11x11 window, sigma 1.5, K1 0.01,
    K2 0.03, data range 1, per channel, valid windows only) of (T, 3, H, W) frames."""
    c1, c2 = 0.01**2, 0.03**2
    channels = frames.shape[1]
    window = _gaussian_window().to(frames.device).expand(channels, 1, 11, 11)
    scores = []
    for start in range(0, frames.shape[0], chunk):
        x = frames[start : start + chunk].float()
        y = reference[start : start + chunk].float()

        def blur(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(t, window, groups=channels)

        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx.square(), blur(y * y) - my.square(), blur(x * y) - mx * my
        value = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx.square() + my.square() + c1) * (vx + vy + c2))
        scores.append(value.flatten(1).mean(dim=1))
    return float(torch.cat(scores).mean())
