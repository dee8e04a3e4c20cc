"""A fold-free warp: scale simulated displacements down where they would fold or over-stretch.

A drag on a noisy or rough mode basis bends neighbouring pixels in different directions; beyond a
few pixels the warp x -> x + d(x) folds (Jacobian determinant < 0: swirls, holes, doubled
texture) or stretches the picture far apart. limit_warp keeps every frame's Jacobian
J = I + grad d within det J >= min_area and largest singular value <= max_stretch, by multiplying
d with a smooth per-pixel factor s(p) in [0, 1]:

1. per pixel, the largest s on a grid of SCALE_STEPS steps such that J(s') = I + s' grad d meets
   both bounds for every grid value s' <= s (a pixel already outside them keeps its motion at s = 1
   only if it was within them; otherwise it gets the largest passing s, 0 at worst);
2. s is eroded (min over a (2r+1)^2 window) and then box-blurred over the same window, so that it
   varies slowly and never exceeds the pointwise limit near a bad pixel;
3. d <- s d, and the check repeats (the product rule adds d grad s) up to PASSES times; whatever
   still breaks a bound after that gets one uniform factor for the frame (no gradient term, so
   the bounds then hold on the finite-difference grid).
Frames that meet the bounds are returned unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..rendering.stretch import displacement_gradient, jacobian_stats
from ..spectral import MotionError

SCALE_STEPS = 32
PASSES = 4
FRAME_CHUNK = 16
SLACK = 1e-6


@dataclass(frozen=True)
class WarpLimit:
    """Bounds of limit_warp. min_area: smallest det J (local area ratio), in (0, 1); max_stretch:
    largest singular value of J (> 1); radius: smoothing window half-size of the factor, pixels."""

    min_area: float = 0.25
    max_stretch: float = 2.0
    radius: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.min_area < 1.0:
            raise MotionError(f"warp limit min_area must be in (0, 1), got {self.min_area}.")
        if not self.max_stretch > 1.0:
            raise MotionError(f"warp limit max_stretch must be > 1, got {self.max_stretch}.")
        if self.radius < 0:
            raise MotionError(f"warp limit radius must be >= 0, got {self.radius}.")


DEFAULT_WARP_LIMIT = WarpLimit()


def _within(gradient: tuple[torch.Tensor, ...], scale: float | torch.Tensor, limit: WarpLimit) -> torch.Tensor:
    det, stretch = jacobian_stats(gradient, scale)
    return (det >= limit.min_area - SLACK) & (stretch <= limit.max_stretch + SLACK)


def allowed_scale(gradient: tuple[torch.Tensor, ...], limit: WarpLimit) -> torch.Tensor:
    """(N, H, W) largest grid factor s in [0, 1] that keeps I + s' grad d within the limit for all s' <= s."""
    allowed = torch.ones_like(gradient[0])
    passing = torch.ones_like(gradient[0], dtype=torch.bool)
    for step in range(1, SCALE_STEPS + 1):
        s = step / SCALE_STEPS
        passing &= _within(gradient, s, limit)
        below = torch.full_like(allowed, (step - 1) / SCALE_STEPS)
        allowed = torch.where(passing, allowed, torch.minimum(allowed, below))
    return allowed


def _smooth_minimum(scale: torch.Tensor, radius: int) -> torch.Tensor:
    """Erode then box-blur (N, H, W) over a (2 radius + 1)^2 window, replicating the border."""
    if radius == 0:
        return scale
    size = 2 * radius + 1
    padded = F.pad(scale[:, None], (radius,) * 4, mode="replicate")
    eroded = -F.max_pool2d(-padded, size, stride=1)
    return F.avg_pool2d(F.pad(eroded, (radius,) * 4, mode="replicate"), size, stride=1)[:, 0]


def _limit_chunk(displacements: torch.Tensor, limit: WarpLimit) -> torch.Tensor:
    for _ in range(PASSES):
        gradient = displacement_gradient(displacements)
        bad = ~_within(gradient, 1.0, limit)
        frames = bad.flatten(1).any(1)
        if not bool(frames.any()):
            return displacements
        scale = _smooth_minimum(allowed_scale(gradient, limit), limit.radius)
        scale = torch.where(frames.view(-1, 1, 1), scale, torch.ones_like(scale))
        displacements = displacements * scale[:, None]
    gradient = displacement_gradient(displacements)
    uniform = allowed_scale(gradient, limit).flatten(1).amin(1)
    return displacements * uniform.view(-1, 1, 1, 1)


def limit_warp(displacements: torch.Tensor, limit: WarpLimit = DEFAULT_WARP_LIMIT) -> torch.Tensor:
    """(N, 2, H, W) pixels -> the same, scaled down per pixel so every frame's warp stays fold-free
    (det J >= limit.min_area) and stretches at most limit.max_stretch (module docstring)."""
    if displacements.ndim != 4 or displacements.shape[1] != 2:
        raise MotionError(f"limit_warp needs (N, 2, H, W) displacements, got {tuple(displacements.shape)}.")
    chunks = [_limit_chunk(chunk.float(), limit) for chunk in displacements.split(FRAME_CHUNK)]
    return torch.cat(chunks).to(displacements.dtype)
