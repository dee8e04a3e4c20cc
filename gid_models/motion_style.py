"""Move like this clip: impose a clip's per-frequency motion statistics on another scene's volume.

The motion model (or any source) decides *where* a picture moves: its spectral volume. A clip of a
different scene says *how* things move there: for every temporal frequency, how strongly and in
which direction its moving pixels oscillate. Both are summed up per bin k by the 2 x 2 covariance of
the complex (x, y) coefficients over moving pixels,

    C_k = mean_p Re(c_k(p) c_k(p)^H),   c_k(p) = (x coefficient, y coefficient) in pixels,

whose trace is the bin's mean power (pixels^2) and whose eigenvectors are its dominant directions.
Matching maps every pixel's coefficients of bin k through one real 2 x 2 matrix

    A_k = C_clip^(1/2) C_volume^(-1/2),   so that   A_k C_volume A_k^T = C_clip,

a linear map, so pixels the volume leaves still (c = 0) stay still, and each bin's mean power and
direction covariance over the volume's moving pixels become the clip's. Pixels below the moving
level get the map in proportion to moving_weight, so the model's almost still regions (a sky it
stirs by a fraction of a pixel) are not magnified with the moving ones. Bins are matched by
frequency in Hz (the clip's statistics are interpolated to the volume's bins), and the clip's
displacements are scaled by the size ratio of the two scenes. Bin 0 keeps the displacement
at t = 0 as it was, so a sampled volume's frame 0 stays the picture.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .spectral import MotionError, SpectralVolume

MOVING_FRACTION = 0.1
"""A pixel moves when its oscillation amplitude is at least this fraction of the volume's 99th
percentile amplitude (and above MIN_AMPLITUDE): the still background does not dilute the means."""
MIN_AMPLITUDE = 1e-3
"""Amplitudes (pixels) below this count as still, whatever the percentile."""
_RELATIVE_RIDGE = 1e-4  # added to C_volume's diagonal (times its trace) so a one-direction bin inverts


@dataclass(frozen=True)
class MotionStatistics:
    """Per-frequency motion statistics of a spectral volume over its moving pixels.

    frequencies_hz: (K,) frequency of each bin in Hz.
    covariance: (K, 2, 2) float64, mean over moving pixels of Re(c c^H), c = (x, y) coefficients
        in pixels; its trace is the bin's mean power (pixels^2).
    width, height: the volume's size in pixels (the statistics are in its pixels).
    moving_pixels: how many pixels (over the batch) counted as moving.
    """

    frequencies_hz: torch.Tensor
    covariance: torch.Tensor
    width: int
    height: int
    moving_pixels: int

    def mean_power(self) -> torch.Tensor:
        """(K,) mean power |x|^2 + |y|^2 per bin over moving pixels, in pixels^2."""
        return self.covariance.diagonal(dim1=-2, dim2=-1).sum(-1)

    def dominant_direction_deg(self) -> torch.Tensor:
        """(K,) direction of the strongest oscillation per bin, degrees from +x towards +y (0..180)."""
        _, vectors = torch.linalg.eigh(self.covariance)
        major = vectors[..., :, -1]
        return torch.rad2deg(torch.atan2(major[..., 1], major[..., 0])) % 180.0

    def at_frequencies(self, frequencies_hz: torch.Tensor) -> torch.Tensor:
        """(K', 2, 2) covariance interpolated linearly in Hz to other bins (held at the ends)."""
        source = self.frequencies_hz.double().numpy()
        target = frequencies_hz.double().numpy()
        flat = self.covariance.reshape(-1, 4).numpy()
        columns = [np.interp(target, source, flat[:, i]) for i in range(4)]
        return torch.from_numpy(np.stack(columns, axis=-1)).reshape(-1, 2, 2)

    def scaled_to(self, width: int, height: int) -> torch.Tensor:
        """(K, 2, 2) covariance with displacements rescaled from this volume's size to width x height."""
        scale = torch.diag(torch.tensor([width / self.width, height / self.height], dtype=torch.float64))
        return scale @ self.covariance @ scale


def moving_weight(volume: SpectralVolume) -> torch.Tensor:
    """(B, H, W) in 0..1: 1 on moving pixels, whose oscillation (bins k >= 1) has an amplitude, in
    pixels, of at least MOVING_FRACTION of the 99th percentile and at least MIN_AMPLITUDE; below that
    level (amplitude / level)^2, so almost still pixels keep almost their own motion."""
    amplitude = volume.complex_modes()[:, 1:].abs().square().sum(dim=(1, 2)).sqrt()  # (B, H, W) pixels
    if amplitude.numel() == 0:
        return torch.zeros_like(amplitude)
    sample = amplitude.flatten()[:: max(1, amplitude.numel() // 1_000_000)]  # quantile has a size limit
    level = max(MOVING_FRACTION * float(torch.quantile(sample.float(), 0.99)), MIN_AMPLITUDE)
    return (amplitude / level).clamp(max=1.0).square()


def moving_mask(volume: SpectralVolume) -> torch.Tensor:
    """(B, H, W) bool: the moving pixels of moving_weight (weight 1)."""
    return moving_weight(volume) >= 1.0


def motion_statistics(volume: SpectralVolume, mask: torch.Tensor | None = None) -> MotionStatistics:
    """Per-bin statistics of a volume in pixels over `mask` (B, H, W) bool, default moving_mask.

    Raises MotionError when nothing moves, since there is then no motion to describe."""
    volume.require_physical("motion statistics")
    mask = moving_mask(volume) if mask is None else mask.to(torch.bool)
    count = int(mask.sum())
    if count == 0:
        raise MotionError(
            "the spectral volume has no moving pixels (every oscillation is below "
            f"{MIN_AMPLITUDE} px), so it has no motion statistics; use a clip or volume where something moves."
        )
    modes = volume.complex_modes().movedim(1, -1).movedim(1, -1)  # (B, H, W, K, 2)
    chosen = modes[mask].to(torch.complex128)  # (N, K, 2)
    covariance = torch.einsum("nki,nkj->kij", chosen, chosen.conj()).real / count
    return MotionStatistics(volume.frequencies_hz().double(), covariance.cpu(), volume.width, volume.height, count)


def _spd_power(matrix: torch.Tensor, exponent: float) -> torch.Tensor:
    """matrix^exponent for (..., 2, 2) symmetric positive semi-definite matrices (eigenvalues >= 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag_embed(values.clamp_min(0.0) ** exponent) @ vectors.transpose(-1, -2)


def matching_maps(volume_cov: torch.Tensor, target_cov: torch.Tensor, strength: float) -> torch.Tensor:
    """(K, 2, 2) maps A_k with A C_volume A^T = C_target (strength 1), blended with the identity:
    (1 - strength) I + strength A. Bins where the volume does not oscillate keep the identity."""
    trace = volume_cov.diagonal(dim1=-2, dim2=-1).sum(-1)  # (K,)
    ridge = (_RELATIVE_RIDGE * trace).clamp_min(1e-30)[:, None, None] * torch.eye(2, dtype=volume_cov.dtype)
    maps = _spd_power(target_cov, 0.5) @ _spd_power(volume_cov + ridge, -0.5)
    silent = trace <= 1e-20  # nothing to rescale: leave the (numerically zero) bin as it is
    maps[silent] = torch.eye(2, dtype=maps.dtype)
    return (1.0 - strength) * torch.eye(2, dtype=maps.dtype) + strength * maps


def match_motion_statistics(
    volume: SpectralVolume, reference: SpectralVolume, strength: float = 1.0
) -> SpectralVolume:
    """The volume with each bin's power and direction statistics over its moving pixels made the
    reference's (interpolated to its bins in Hz, displacements scaled by the size ratio).

    volume: (B, K, 4, H, W) in pixels, e.g. sampled for the picture; each batch item is matched
        on its own. reference: (B', K', 4, H', W') in pixels, e.g. measured in a clip; its batch
        items are pooled. strength: 0 returns the volume, 1 gives the reference's statistics.
    Returns a volume of the same shape, T and fps as `volume`.
    """
    if not 0.0 <= strength <= 1.0:
        raise MotionError(f"strength must be between 0 and 1, got {strength}.")
    volume.require_physical("match_motion_statistics (volume)")
    reference.require_physical("match_motion_statistics (reference)")
    clip = motion_statistics(reference)
    target_all = clip.scaled_to(volume.width, volume.height)
    clip_scaled = replace(clip, covariance=target_all)
    target = clip_scaled.at_frequencies(volume.frequencies_hz())  # (K, 2, 2)
    coeffs = volume.coeffs.clone()
    weights = moving_weight(volume)
    for item in range(volume.batch_size):
        mask = weights[item : item + 1] >= 1.0
        if not mask.any():
            continue  # nothing moves in this item: it stays as it is
        own = motion_statistics(volume.select(item), mask)
        maps = matching_maps(own.covariance, target, strength)[1:]  # bin 0 follows below
        modes = volume.select(item).complex_modes()[0, 1:]  # (K-1, 2, H, W)
        real = torch.einsum("kij,kjhw->kihw", maps.to(modes.real), modes.real)
        imag = torch.einsum("kij,kjhw->kihw", maps.to(modes.imag), modes.imag)
        mapped = torch.stack([real[:, 0], imag[:, 0], real[:, 1], imag[:, 1]], dim=1).to(coeffs)
        # moving pixels get the map, almost still ones a little of it: the clip's power lands on what moves
        weight = weights[item].to(coeffs)
        coeffs[item, 1:] = coeffs[item, 1:] + weight * (mapped - coeffs[item, 1:])
    # bin 0 takes up the change of the oscillation at t = 0, so frame 0 stays where it was (at rest
    # for every sampled volume)
    coeffs[:, 0, 0::2] -= 2.0 * (coeffs[:, 1:, 0::2] - volume.coeffs[:, 1:, 0::2]).sum(dim=1)
    return replace(volume, coeffs=coeffs)
