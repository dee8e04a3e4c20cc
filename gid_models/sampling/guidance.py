"""Guidance terms for sampling: loop self-guidance (paper Eq. 5-6) and motion masks (ours).

Both are losses of the motion decoded from the current clean-latent estimate, differentiable all
the way back to the latent: latent -> MotionModel.decode -> normalized slices -> denormalize_tensor
(pixels) -> truncated Fourier series at the few frames the loss needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..normalization import denormalize_tensor
from ..spectral import MotionError, SpectralVolume, spectral_to_trajectories

MASK_GUIDANCE_WEIGHT = 200.0
"""Weight of the mask term (a mean over the pixels that must stay still). Unlike the loop term
it is not weighted by the latent's area: the sampler zeroes motion outside the mask afterwards
anyway, and this term only steers the sampling toward it."""

LOOP_REFERENCE_CELLS = 64
"""Latent positions (an 8x8 latent) at which the loop term's weight is u itself; see LoopGuidance."""


@dataclass(frozen=True)
class LoopGuidance:
    """Loop self-guidance settings (paper notes, section 4).

    u: guidance weight on grad L_g (paper: 200).
    recurrence: times each DDIM step is run, re-noising in between (paper: 2; 1 = none).
    through_denoiser: differentiate L_g through the denoiser (exact, as the paper); False is an
        approximation about 2x cheaper per step.

    Scale (ours): L_g is `loop_seam_loss`, a mean over pixels in pixel units, so its gradient on
    each latent element shrinks as 1 / (latent positions). The sampler therefore weights it by
    u * positions / LOOP_REFERENCE_CELLS (positions: latent cells of the picture's working area,
    margin excluded), which is u on an 8x8 latent (the tiny test model) and 40 u on the shipped
    model's 64x40 latent at 256x160: one u acts alike at every size (MODEL_CARD.md, "Loop guidance
    on motion model v2").
    """

    u: float = 200.0
    recurrence: int = 2
    through_denoiser: bool = True

    def __post_init__(self) -> None:
        if not self.u >= 0:
            raise ValueError(f"loop guidance weight u must be >= 0, got {self.u}.")
        if int(self.recurrence) < 1:
            raise ValueError(f"self-recurrence must be >= 1 (1 = no recurrence), got {self.recurrence}.")


FINITE_LIMIT_PX = 1e30
"""Stands in for an infinite (absent) amplitude limit: far above any motion, finite in float32."""


def loop_seam_loss(trajectories: torch.Tensor) -> torch.Tensor:
    """Loop seam error L_g of the paper's motion self-guidance (notes section 4), per batch item.

    trajectories: (B, T, 2, H, W) pixels, frames 0..T-1 of one loop (F_1 = frame 0, F_T = frame
    T-1). L_g = mean|F_T - F_1| + mean|v_T - v_1|, with velocities v_T = F_T - F_{T-1} and
    v_1 = F_2 - F_1 (pixels/frame): position and velocity must agree where the loop wraps.
    Returns (B,) in pixels; differentiable.
    """
    if trajectories.ndim != 5 or trajectories.shape[1] < 3:
        raise MotionError(f"loop seam loss needs (B, T>=3, 2, H, W) trajectories, got {tuple(trajectories.shape)}.")
    position = (trajectories[:, -1] - trajectories[:, 0]).abs().flatten(1).mean(1)
    velocity_last = trajectories[:, -1] - trajectories[:, -2]
    velocity_first = trajectories[:, 1] - trajectories[:, 0]
    velocity = (velocity_last - velocity_first).abs().flatten(1).mean(1)
    return position + velocity


def limit_amplitudes(pixels: torch.Tensor, limits: torch.Tensor) -> torch.Tensor:
    """Coefficients (B, K, 4, H, W) pixels with every pixel's bin-k coefficients (Re and Im of x and
    y) scaled down together, keeping their direction, so the largest is at most limits[k] pixels
    (limits (K,), inf = no limit); differentiable."""
    # L / max(peak, L) is 1 wherever the peak is within the limit, with a zero (not NaN) gradient
    # there; an infinite limit is made finite first, as inf / inf would be NaN.
    # Float32 throughout, as half precision cannot hold the stand-in.
    bound = limits.to(pixels.device, torch.float32).clamp(max=FINITE_LIMIT_PX).view(1, -1, 1, 1, 1)
    peak = pixels.abs().amax(dim=2, keepdim=True).float()
    return pixels * (bound / torch.maximum(peak, bound)).to(pixels.dtype)


def latents_to_pixels(model, latents: torch.Tensor) -> torch.Tensor:
    """Scaled latents (B, K, c, h, w) -> coefficients in pixels (B, K, 4, h * f, w * f): decoded,
    denormalized, multiplied by the model's per-bin output gains and held within its per-bin
    output limits (see train/calibrate.py); differentiable."""
    pixels = denormalize_tensor(model.decode(latents), model.normalization_scales)
    return limit_amplitudes(pixels * model.output_gains.to(pixels).view(1, -1, 1, 1, 1), model.output_limits)


def seam_frames(num_frames: int) -> torch.Tensor:
    """Frames 0, 1, T-2, T-1: all that L_g reads (positions and velocities at the loop seam)."""
    return torch.tensor([0.0, 1.0, num_frames - 2.0, num_frames - 1.0], dtype=torch.float64)


def loop_loss(pixels: torch.Tensor, num_frames: int, fps: float) -> torch.Tensor:
    """L_g (B,) in pixels of coefficients (B, K, 4, H, W) describing a T-frame loop."""
    volume = SpectralVolume(pixels, num_frames=num_frames, fps=fps)
    return loop_seam_loss(spectral_to_trajectories(volume, seam_frames(num_frames)))


def amplitude_bound(pixels: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bound on the displacement (pixels) any frame can reach: |c_0| + 2 sum_k>=1 |c_k|,
    over the x and y channels."""
    weight = torch.full((pixels.shape[1],), 2.0, dtype=pixels.dtype, device=pixels.device)
    weight[0] = 1.0
    return torch.einsum("bkchw,k->bhw", pixels.abs(), weight)


def mask_loss(pixels: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """(B,) mean motion amplitude (pixels) where outside (B, H, W) is 1 (must not move)."""
    area = outside.flatten(1).sum(1).clamp_min(1.0)
    return (amplitude_bound(pixels) * outside).flatten(1).sum(1) / area


def loop_weight(u: float, size: tuple[int, int], latent_factor: int) -> float:
    """Weight on L_g for motion of size (H, W) pixels decoded from latents latent_factor times
    smaller: u * (latent positions) / LOOP_REFERENCE_CELLS, as L_g is a mean over pixels."""
    height, width = size
    return u * (height / latent_factor) * (width / latent_factor) / LOOP_REFERENCE_CELLS


def make_guidance_loss(model, guidance: LoopGuidance | None, outside: torch.Tensor | None,
                       num_frames: int, fps: float, margin: int = 0,
                       place: Callable[[torch.Tensor], torch.Tensor] | None = None):
    """The sampler's guidance loss z0_hat -> (B,), weights included, or None without guidance.
    margin: pixels on every side of the decoded canvas that lie outside the picture (not guided).
    place: what the sampler does to the cropped coefficients (B, K, 4, H, W) before it returns
        them (the motion-amplitude network's per-cell amplitudes). The loop loss is taken on its
        result, the motion the user gets, as the network would otherwise undo what guidance did
        to the amplitudes; the mask loss on the decoded motion, whose amplitude it must lower
        (placing rescales every cell whatever its decoded amplitude). None: no placing."""
    if (guidance is None or guidance.u == 0) and outside is None:
        return None
    def loss(clean_latents: torch.Tensor) -> torch.Tensor:
        pixels = latents_to_pixels(model, clean_latents)
        if margin > 0:
            pixels = pixels[..., margin:-margin, margin:-margin]
        total = pixels.new_zeros(pixels.shape[0])
        if guidance is not None and guidance.u > 0:
            placed = pixels if place is None else place(pixels)
            weight = loop_weight(guidance.u, pixels.shape[-2:], model.latent_factor)
            total = total + weight * loop_loss(placed, num_frames, fps)
        if outside is not None:
            total = total + MASK_GUIDANCE_WEIGHT * mask_loss(pixels, outside)
        return total

    return loss


def feathered_mask(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Soft version of a 0/1 mask (B, 1, H, W): ramps from 1 inside to exactly 0 at the border,
    staying 0 outside (the mask times its own box blur of the given radius, pixels)."""
    if radius < 1:
        return mask
    size = 2 * radius + 1
    blurred = F.avg_pool2d(F.pad(mask, (radius,) * 4, mode="replicate"), size, stride=1)
    return mask * blurred


def masked_volume(pixels: torch.Tensor, mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Coefficients (B, K, 4, H, W) with motion outside mask (B, 1, H, W; 1 = may move) set to 0."""
    return pixels * feathered_mask(mask.to(pixels), radius).unsqueeze(1)
