"""Sampling spectral volumes from the motion diffusion model (paper notes, sections 3-4).

`sample_spectral_volume` is the one entry point: picture in, spectral volume out, with DDIM,
classifier-free guidance, optional loop self-guidance and an optional motion mask.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..heap import reuse_freed_memory
from ..networks.motion_amplitude import CELL
from ..normalization import normalize
from ..spectral import MotionError, SpectralVolume, anchor_start_frame
from .amplitude import impose_amplitude
from .cuda_graph import GraphedNoise, cuda_graphs_enabled
from .ddim import make_scheduler, randn, sample_ddim
from ..interrupt import checks_inside
from .guidance import LoopGuidance, latents_to_pixels, make_guidance_loss, masked_volume

LOGGER = logging.getLogger(__name__)

DEFAULT_CFG = 1.75
DEFAULT_STEPS = 50
SAMPLE_MARGIN = 0.1
"""Reflected picture added around the working size before sampling, as a fraction of its shorter
side (rounded to the model's factor) and cropped away after decoding. The denoiser's zero padding
made samples move most along the canvas edge (edge power about 5x the interior's in the shipped
model, 0.9x in its training data); with the margin that band lies outside the picture."""
MASK_FEATHER = 0.02
"""Soft edge of the motion mask, as a fraction of the picture's shorter side."""

__all__ = [
    "DEFAULT_CFG", "DEFAULT_STEPS", "LoopGuidance", "make_scheduler", "sample_ddim", "sample_spectral_volume", "sampling_margin",
    "working_size",
]


def sampling_margin(model, height: int, width: int) -> int:
    """Pixels of reflected picture added on every side of the working size before sampling."""
    factor = model.downsample_factor
    margin = factor * max(1, round(SAMPLE_MARGIN * min(height, width) / factor))
    while margin >= min(height, width):  # reflection needs a margin smaller than the picture
        margin -= factor
    return margin


def working_size(height: int, width: int, factor: int, max_pixels: int) -> tuple[int, int]:
    """Size the model samples at: at most max_pixels (its training area), multiples of factor,
    aspect ratio kept as closely as the rounding allows."""
    scale = min(1.0, math.sqrt(max_pixels / float(height * width)))
    return (
        max(factor, round(height * scale / factor) * factor),
        max(factor, round(width * scale / factor) * factor),
    )


def _mask_nchw(mask: torch.Tensor, batch: int, height: int, width: int) -> torch.Tensor:
    """Any of (H, W), (B, H, W), (B, 1, H, W) -> (batch, 1, height, width) float in 0..1."""
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None]
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] not in (1, batch):
        raise MotionError(f"mask must be (H, W), (B, H, W) or (B, 1, H, W), got {tuple(mask.shape)}.")
    mask = mask.float().clamp(0, 1)
    if mask.shape[-2:] != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    return mask.expand(batch, 1, height, width)


def _autocast(device: torch.device):
    if device.type == "cuda":
        # no weight-cast cache: each weight is cast once per forward anyway, and a CUDA graph
        # capture (cuda_graph.py) must not keep casts made outside it
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


def _require_autograd(model) -> None:
    """Guidance and masks differentiate through the model: refuse, with the fix, where autograd cannot."""
    if torch.is_inference_mode_enabled():
        raise MotionError(
            "loop guidance and motion masks need gradients, which torch.inference_mode() forbids (ComfyUI runs "
            "nodes under it); call sample_spectral_volume inside `with torch.inference_mode(False):`."
        )
    if any(tensor.is_inference() for tensor in (*model.parameters(), *model.buffers())):
        raise MotionError(
            "the motion model's weights were created or moved under torch.inference_mode(), so autograd "
            "cannot use them for loop guidance or a motion mask; load and move the model inside "
            "`with torch.inference_mode(False):` (as GIDLoadMotionModel does)."
        )


def motion_placer(model, picture: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The model's motion-amplitude network applied to picture (B, 3, h, w) 0..1, as a function that
    sets each bin's amplitude per 8 x 8 cell of coefficients (B, K, 4, h, w) (sampling/amplitude.py;
    differentiable in the coefficients); None when the model has no such network (v1). The network
    runs once, here, so loop guidance can call the function at every step for free."""
    if getattr(model, "amplitude", None) is None:
        return None
    h, w = picture.shape[-2:]
    size = (max(CELL, round(h / CELL) * CELL), max(CELL, round(w / CELL) * CELL))
    if size != (h, w):
        picture = F.interpolate(picture, size=size, mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        log_amplitude = model.amplitude(picture.float())
    return lambda pixels: impose_amplitude(pixels, log_amplitude)


def sample_spectral_volume(
    model,
    picture: torch.Tensor,
    *,
    seed: int,
    steps: int = DEFAULT_STEPS,
    cfg: float = DEFAULT_CFG,
    guidance: LoopGuidance | None = None,
    mask: torch.Tensor | None = None,
    num_frames: int = 150,
    fps: float = 30.0,
    callback: Callable[[int, int], None] | None = None,
    pass_callback: Callable[[int, int], None] | None = None,
    check_interrupt: Callable[[], None] | None = None,
) -> tuple[SpectralVolume, SpectralVolume]:
    """Sample the motion of a picture.

    model: a MotionModel on the device to compute on.
    picture: (B, 3, H, W) float 0..1; any size (it is resized to the model's working size and the
        result back to H x W, with a log note).
    seed: noise comes from torch.Generator("cpu").manual_seed(seed): same motion on every device.
    steps: DDIM steps (50 default; 250 is paper quality). cfg: w of eps = (1 + w) eps(c) - w eps(0).
    guidance: loop self-guidance (None: off). mask: 1 = may move; (H, W), (B, H, W) or (B, 1, H, W).
    num_frames, fps: the T and frame rate the volume describes (the model's training T and fps).
    callback(step, steps) after every DDIM step; pass_callback(done, total) after every pass (a
        guided step is `guidance.recurrence` passes): finer progress for slow guided steps.
    check_interrupt(): cheap, raises to stop; called between passes, around the guidance gradient
        and inside the networks' forward and backward, so a stop is seen within one network block
        (gid_models/interrupt.py). Without it only the callbacks (and Ctrl-C) can stop a run.
    The model's motion-amplitude network (when it has one) sets where and how much each bin
    moves, and frame 0 of the motion is always the picture (bin 0 anchors it).
    Returns (volume in pixels, the same volume normalized), each (B, K, 4, H, W).
    Guidance and masks take gradients: call outside torch.inference_mode(), with a model loaded there.
    """
    if (guidance is not None and guidance.u > 0) or mask is not None:
        _require_autograd(model)
    if picture.ndim != 4 or picture.shape[1] != 3:
        raise MotionError(f"picture must be (B, 3, H, W), got {tuple(picture.shape)}.")
    if not torch.isfinite(picture).all():
        raise MotionError("picture contains NaN or infinite values.")
    if steps < 1:
        raise MotionError(f"steps must be at least 1, got {steps}.")
    if num_frames < 2 * model.num_frequencies - 1:
        raise MotionError(f"num_frames must be at least {2 * model.num_frequencies - 1} for K={model.num_frequencies}.")
    device = model.compute_device()
    batch, _, height, width = picture.shape
    sample_h, sample_w = model.sample_size
    work_h, work_w = working_size(height, width, model.downsample_factor, sample_h * sample_w)
    if (work_h, work_w) != (height, width):
        LOGGER.info(
            "motion is sampled at %dx%d (model factor %d, trained at %dx%d) and resized to the picture's %dx%d",
            work_w, work_h, model.downsample_factor, sample_w, sample_h, width, height,
        )
    image = picture.to(device=device, dtype=torch.float32).clamp(0, 1)
    image = F.interpolate(image, size=(work_h, work_w), mode="bilinear", align_corners=False, antialias=True)
    working_picture = image
    margin = sampling_margin(model, work_h, work_w)
    image = F.pad(image, (margin,) * 4, mode="reflect")
    condition = image * 2 - 1
    if cfg != 0:
        condition = torch.cat([condition, torch.zeros_like(condition)])  # conditional, then empty
    outside = None
    if mask is not None:
        mask = mask.to(device)
        outside = (_mask_nchw(mask, batch, work_h, work_w)[:, 0] < 0.5).float()

    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    factor = model.latent_factor
    canvas_h, canvas_w = work_h + 2 * margin, work_w + 2 * margin
    shape = (batch, model.num_frequencies, model.vae.config.latent_channels, canvas_h // factor, canvas_w // factor)
    latents = randn(shape, generator, device)
    frequency_index = torch.arange(model.num_frequencies, device=device)

    def noise_fn(z: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        with _autocast(device):
            eps = model.denoiser(torch.cat([z, z]) if cfg != 0 else z, timestep, condition, frequency_index).float()
        if cfg == 0:
            return eps
        eps_conditional, eps_empty = eps.chunk(2)
        return (1 + cfg) * eps_conditional - cfg * eps_empty

    place = motion_placer(model, working_picture)
    loss = make_guidance_loss(model, guidance, outside, num_frames, fps, margin, place)
    graphed = loss is None and cuda_graphs_enabled(device)
    step_noise = GraphedNoise(noise_fn) if graphed else noise_fn
    # A replayed CUDA graph runs no Python (and a step takes milliseconds): checks between passes do.
    heap = reuse_freed_memory() if device.type == "cpu" else contextlib.nullcontext()
    with heap, checks_inside(model, None if graphed else check_interrupt):
        latents = sample_ddim(
            step_noise, latents, steps=steps, generator=generator, guidance_loss=loss,
            recurrence=guidance.recurrence if guidance is not None else 1,
            through_denoiser=guidance.through_denoiser if guidance is not None else True,
            callback=callback, pass_callback=pass_callback, check_interrupt=check_interrupt,
        )
        with torch.no_grad():
            pixels = latents_to_pixels(model, latents)[..., margin : margin + work_h, margin : margin + work_w]
            pixels = anchor_start_frame(pixels if place is None else place(pixels))
    volume = SpectralVolume(pixels.float(), num_frames=num_frames, fps=float(fps)).resized(height, width)
    if mask is not None:
        binary = (_mask_nchw(mask, batch, height, width) >= 0.5).float()
        radius = max(1, round(MASK_FEATHER * min(height, width)))
        volume = SpectralVolume(masked_volume(volume.coeffs, binary, radius), num_frames, float(fps))
    if not torch.isfinite(volume.coeffs).all():
        raise MotionError("sampling produced NaN or infinite motion; lower the guidance weight u or cfg.")
    return volume, normalize(volume, model.normalization)
