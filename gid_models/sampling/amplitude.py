"""Where and how much a sampled spectral volume moves: the picture's amplitudes, frame 0 at rest.

`impose_amplitude`: the motion-amplitude network (networks/motion_amplitude.py) predicts, from
the picture, the rms amplitude of every bin's x and y motion on an 8 x 8 pixel grid. The sampled
volume keeps its phases, directions and fine texture, and each bin and axis is rescaled so that
its rms over every cell matches the prediction. The factor is interpolated in log space between
cell centres (no seams at cell borders) and held within 1 / MAX_RATIO .. MAX_RATIO, so a cell where
the sample is almost still cannot blow up its numerical noise.

The sampler then anchors frame 0 at rest (spectral.anchor_start_frame).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from ..spectral import MotionError

MAX_RATIO = 30.0
FLOOR_PX = 1e-3
"""Smallest rms amplitude (pixels) a cell of the sample is taken to have when dividing by it."""


def sample_log_amplitude(coeffs: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, K, 4, H, W) px -> (B, K, 2, gh, gw) log of the rms amplitude per axis over each cell of
    a gh x gw grid (adaptive cells when H, W are not multiples of the grid)."""
    power = rearrange(coeffs.float().square(), "b k (a c) h w -> (b k a) c h w", a=2).sum(dim=1, keepdim=True)
    pooled = F.adaptive_avg_pool2d(power, grid)
    b, k = coeffs.shape[:2]
    return pooled.clamp_min(FLOOR_PX * FLOOR_PX).sqrt().log().reshape(b, k, 2, *grid)


def impose_amplitude(coeffs: torch.Tensor, log_amplitude: torch.Tensor) -> torch.Tensor:
    """coeffs (B, K, 4, H, W) px rescaled per bin and axis to the predicted log amplitudes
    (B, K, 2, gh, gw) (log px, any grid covering the same picture); bin 0 is left as it is."""
    if coeffs.ndim != 5 or coeffs.shape[2] != 4:
        raise MotionError(f"coefficients must be (B, K, 4, H, W), got {tuple(coeffs.shape)}.")
    b, k, _, height, width = coeffs.shape
    if log_amplitude.shape[:3] != (b, k, 2):
        raise MotionError(f"amplitudes {tuple(log_amplitude.shape)} do not match coefficients {tuple(coeffs.shape)}: "
                          "the amplitude network and the motion model must have the same K.")
    grid = tuple(log_amplitude.shape[-2:])
    log_ratio = (log_amplitude.float() - sample_log_amplitude(coeffs, grid)).clamp(-torch.tensor(MAX_RATIO).log(),
                                                                                    torch.tensor(MAX_RATIO).log())
    log_ratio[:, 0] = 0.0
    log_ratio = F.interpolate(log_ratio.reshape(b, k * 2, *grid), size=(height, width), mode="bilinear",
                              align_corners=False)
    ratio = log_ratio.exp().reshape(b, k, 2, 1, height, width).expand(b, k, 2, 2, height, width)
    return coeffs * ratio.reshape(b, k, 4, height, width).to(coeffs.dtype)
