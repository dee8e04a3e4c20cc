"""Image-space modes of a spectral volume: shapes, frequencies and masses (modal.py, "Modes")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F

from ..spectral import MotionError, SpectralVolume

MIN_RELATIVE_MASS = 1e-6
# Mode shapes are blurred with a Gaussian of sigma = longer side / SMOOTHING_DIVISOR pixels (2 px at
# 256 wide): a sampled volume's shapes carry pixel-scale noise whose gradients fold the warp of a
# drag long before the motion itself is large. Below MIN_SMOOTHING_SIGMA px nothing is blurred.
SMOOTHING_DIVISOR = 128.0
MIN_SMOOTHING_SIGMA = 0.5


def smoothing_sigma(height: int, width: int) -> float:
    """Default Gaussian sigma (pixels) for mode shapes of a height x width volume; 0 = none."""
    sigma = max(height, width) / SMOOTHING_DIVISOR
    return sigma if sigma >= MIN_SMOOTHING_SIGMA else 0.0


def smooth_shapes(shapes: torch.Tensor, sigma: float) -> torch.Tensor:
    """(J, 2, H, W) complex mode shapes blurred by a separable Gaussian of sigma pixels (border
    replicated; radius ceil(3 sigma), at most the side - 1). sigma 0 returns them unchanged."""
    if sigma <= 0:
        return shapes
    j, _, h, w = shapes.shape
    planes = torch.view_as_real(shapes).permute(0, 1, 4, 2, 3).reshape(-1, 1, h, w)  # (J*2*2, 1, H, W)
    for axis, size in ((3, w), (2, h)):
        radius = min(math.ceil(3.0 * sigma), size - 1)
        if radius < 1:
            continue
        offsets = torch.arange(-radius, radius + 1, dtype=planes.dtype, device=planes.device)
        kernel = torch.exp(-0.5 * (offsets / sigma).square())
        kernel = kernel / kernel.sum()
        padding = (radius, radius, 0, 0) if axis == 3 else (0, 0, radius, radius)
        shape = (1, 1, 1, -1) if axis == 3 else (1, 1, -1, 1)
        planes = F.conv2d(F.pad(planes, padding, mode="replicate"), kernel.view(shape))
    return torch.view_as_complex(planes.reshape(j, 2, 2, h, w).permute(0, 1, 3, 4, 2).contiguous())


@dataclass(frozen=True)
class ModalBasis:
    """Image-space modes taken from one spectral volume.

    shapes: (J, 2, H, W) complex64 mode shapes phi_j (x, y), pixels (on the volume's device).
    omegas: (J,) float64 natural angular frequencies, rad/s.
    masses: (J,) float64 modal masses, mean over pixels of |phi_j|^2 (pixels^2).
    frequency_indices: (J,) int64 volume bin k of each mode (k >= 1).
    """

    shapes: torch.Tensor
    omegas: torch.Tensor
    masses: torch.Tensor
    frequency_indices: torch.Tensor

    @property
    def num_modes(self) -> int:
        return int(self.shapes.shape[0])

    @property
    def height(self) -> int:
        return int(self.shapes.shape[-2])

    @cached_property
    def pixel_power(self) -> torch.Tensor:
        """(J, H*W) float64 |phi_j(p)|^2 (x and y summed) per mode and pixel, pixels^2."""
        return self.shapes.abs().square().sum(1).double().flatten(1)

    @property
    def width(self) -> int:
        return int(self.shapes.shape[-1])

    @classmethod
    def from_volume(
        cls,
        volume: SpectralVolume,
        max_modes: int | None = None,
        batch_index: int = 0,
        min_relative_mass: float = MIN_RELATIVE_MASS,
        smoothing: float | None = None,
    ) -> "ModalBasis":
        """Modes of item batch_index of a volume in pixels; bins lighter than min_relative_mass times
        the heaviest are dropped; max_modes keeps the heaviest modes (largest modal mass), listed in
        order of frequency. The kept shapes are blurred by smooth_shapes with sigma = smoothing
        pixels (None: smoothing_sigma of the volume's size; 0: raw) and their masses taken after it."""
        volume.require_physical("the modal simulation")
        if not 0 <= batch_index < volume.batch_size:
            raise MotionError(f"batch index {batch_index} is outside the volume's batch of {volume.batch_size}.")
        coeffs = volume.coeffs[batch_index, 1:].float()  # (K-1, 4, H, W) on the volume's device; bin 0 is no mode
        modes = torch.complex(coeffs[:, 0::2], coeffs[:, 1::2])  # (K-1, 2, H, W): as volume.complex_modes()
        masses = modes.abs().square().sum(1).double().mean((-2, -1)).cpu()
        if not torch.isfinite(masses).all():  # any NaN or infinite coefficient shows here
            raise MotionError("the spectral volume contains NaN or infinite values; re-create it.")
        keep = torch.nonzero((masses > 0) & (masses >= masses.max() * min_relative_mass)).flatten()
        if keep.numel() == 0:
            raise MotionError(
                f"the spectral volume has no motion above f_0 (its {volume.num_frequencies} bins carry "
                "no oscillation), so there is nothing to simulate; use a volume from a moving clip or "
                "a motion model."
            )
        if max_modes is not None:
            if max_modes < 1:
                raise MotionError(f"max_modes must be at least 1, got {max_modes}.")
            heaviest = torch.argsort(masses[keep], descending=True, stable=True)[:max_modes]
            keep = torch.sort(keep[heaviest]).values
        bins = keep + 1
        hz = volume.frequencies_hz().double()[bins]
        sigma = smoothing_sigma(volume.height, volume.width) if smoothing is None else float(smoothing)
        if not (math.isfinite(sigma) and sigma >= 0):
            raise MotionError(f"mode smoothing must be a number of pixels >= 0, got {smoothing}.")
        shapes = modes[keep.to(modes.device)].contiguous()
        if sigma > 0:
            shapes = smooth_shapes(shapes, sigma)
            masses = shapes.abs().square().sum(1).double().mean((-2, -1)).cpu()
            keep = torch.arange(len(keep))
        return cls(
            shapes=shapes,
            omegas=2.0 * math.pi * hz,
            masses=masses[keep],
            frequency_indices=bins.long(),
        )

    def sample(self, u: float, v: float) -> torch.Tensor:
        """(J, 2) complex128 mode shapes at pixel (u, v), bilinear, pixel centres at integers."""
        u = min(max(float(u), 0.0), self.width - 1.0)
        v = min(max(float(v), 0.0), self.height - 1.0)
        u0, v0 = min(int(math.floor(u)), self.width - 2), min(int(math.floor(v)), self.height - 2)
        u0, v0 = max(u0, 0), max(v0, 0)
        patch = self.shapes[:, :, v0 : v0 + 2, u0 : u0 + 2].cpu().to(torch.complex128)
        if patch.shape[-1] == 1:
            patch = torch.cat([patch, patch], dim=-1)
        if patch.shape[-2] == 1:
            patch = torch.cat([patch, patch], dim=-2)
        fu, fv = u - u0, v - v0
        top = patch[..., 0, 0] * (1 - fu) + patch[..., 0, 1] * fu
        bottom = patch[..., 1, 0] * (1 - fu) + patch[..., 1, 1] * fu
        return top * (1 - fv) + bottom * fv
