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
- seam_error: the loop seam error L_g (gid_models.sampling.guidance.loop_seam_loss) of the motion
  rendered from the volume over its T frames, in pixels.
Frame metrics take (T, 3, H, W) float 0..1: psnr (dB) and ssim (Gaussian 11x11, sigma 1.5,
per channel), each the mean over frames of gid_models.frame_metrics' per-frame values (shared with
the renderer's training loss). power_spectrum lives with the spectral volume (gid_models.spectral).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..frame_metrics import frame_psnr, frame_ssim
from ..sampling.guidance import loop_seam_loss
from ..spectral import SpectralVolume, power_spectrum, spectral_to_motion

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


def log_power_error(prediction: SpectralVolume, truth: SpectralVolume, floor: float = POWER_FLOOR_PX2) -> torch.Tensor:
    """(B,) mean over j >= 1 of |log10 P_pred(j) - log10 P_gt(j)| (decades of power)."""
    if prediction.num_frequencies != truth.num_frequencies:
        raise ValueError(f"prediction has K={prediction.num_frequencies}, truth K={truth.num_frequencies}; they must match.")
    logs = [power_spectrum(v)[:, 1:].double().clamp_min(floor).log10() for v in (prediction, truth)]
    return (logs[0] - logs[1]).abs().mean(dim=1).float()


def seam_error(volume: SpectralVolume) -> torch.Tensor:
    """(B,) loop seam error L_g (pixels) of the volume's motion over its T frames."""
    return loop_seam_loss(spectral_to_motion(volume).displacements)


def psnr(frames: torch.Tensor, reference: torch.Tensor, max_db: float = 100.0) -> float:
    """Mean over frames of the PSNR (dB) of (T, 3, H, W) 0..1 frames against the reference."""
    return float(frame_psnr(frames, reference, max_db).mean())


def ssim(frames: torch.Tensor, reference: torch.Tensor, chunk: int = 16) -> float:
    """Mean over frames of SSIM (frame_metrics.frame_ssim) of (T, 3, H, W) frames, chunk frames at a time."""
    scores = [frame_ssim(frames[start : start + chunk], reference[start : start + chunk])
              for start in range(0, frames.shape[0], chunk)]
    return float(torch.cat(scores).mean())
