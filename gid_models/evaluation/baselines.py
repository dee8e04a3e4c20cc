"""Baselines for motion prediction that need no model.

- zero_motion: nothing moves (the paper's "repeat I_0").
- mean_spectrum_motion: every pixel gets the training set's mean spectrum: per bin j and axis,
  the RMS amplitude sqrt(mean |S_j|^2) as a real coefficient (one phase for the whole picture),
  with bin 0 set so the start frame is undisplaced. It has the right amount of motion per
  frequency on average but no idea where things move.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ..spectral import MotionError, SpectralVolume


def zero_motion(like: SpectralVolume) -> SpectralVolume:
    """A volume of zeros with the same shape, T and fps as `like`."""
    return SpectralVolume(torch.zeros_like(like.coeffs, dtype=torch.float32), num_frames=like.num_frames, fps=like.fps)


def mean_power(volumes: Iterable[SpectralVolume]) -> torch.Tensor:
    """(K, 2) mean over volumes and pixels of |S_j|^2 per bin j and axis (x, y), px^2."""
    total, count = None, 0
    for volume in volumes:
        volume.require_physical("mean_power")
        c = volume.coeffs.double()
        power = c.square().view(*c.shape[:2], 2, 2, -1).sum(dim=3).mean(dim=-1).sum(dim=0)  # (K, 2)
        total = power if total is None else total + power
        count += c.shape[0]
    if total is None:
        raise MotionError("mean_power needs at least one spectral volume.")
    return (total / count).float()


def mean_spectrum_motion(power: torch.Tensor, like: SpectralVolume) -> SpectralVolume:
    """The mean-spectrum baseline at the size, T and fps of `like`.

    power: (K', 2) mean |S_j|^2 per bin and axis in px^2 at the same resolution; bins beyond K'
    stay zero, extra bins are dropped.
    """
    k = like.num_frequencies
    amplitude = torch.zeros(k, 2, dtype=torch.float64)
    used = min(k, power.shape[0])
    amplitude[:used] = power[:used].double().clamp_min(0).sqrt()
    amplitude[0] = -2 * amplitude[1:].sum(dim=0)  # start-frame displacement is zero
    coeffs = torch.zeros(1, k, 4, 1, 1, dtype=torch.float64)
    coeffs[0, :, 0, 0, 0] = amplitude[:, 0]
    coeffs[0, :, 2, 0, 0] = amplitude[:, 1]
    coeffs = coeffs.expand(like.batch_size, k, 4, like.height, like.width).float().contiguous()
    return SpectralVolume(coeffs, num_frames=like.num_frames, fps=like.fps)
