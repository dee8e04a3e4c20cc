"""Image-space modes of a spectral volume: shapes, frequencies and masses (modal.py, "Modes")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

from ..spectral import MotionError, SpectralVolume

MIN_RELATIVE_MASS = 1e-6


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
    ) -> "ModalBasis":
        """Modes of item batch_index of a volume in pixels; bins lighter than min_relative_mass times
        the heaviest are dropped; max_modes keeps the heaviest modes (largest modal mass), listed in
        order of frequency."""
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
        return cls(
            shapes=modes[keep.to(modes.device)].contiguous(),
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
