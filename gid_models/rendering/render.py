"""Rendering a motion texture on a picture: frames I_t(p + F_t(p)) = I_0(p), chunked over frames.

`render_motion` checks its inputs, resizes the motion to the picture chunk by chunk (so a
150-frame 1080p render never holds more than one chunk of full-resolution flow), splats every
chunk in one batched pass with the pixel renderer or a NeuralRenderer, and writes the frames into
one (T, H, W, 3) buffer on the output device. The chunk size follows the free memory and is
halved whenever a chunk runs out of memory.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..heap import reuse_freed_memory
from ..interrupt import checks_inside
from ..memory import free_memory_bytes, require_memory
from ..spectral import MotionTexture
from .importance import importance_at
from .pixel import render_pixel_frames
from .render_net import NeuralRenderer

LOGGER = logging.getLogger(__name__)

# Relative aspect-ratio difference accepted between picture and motion (rounding of sizes).
ASPECT_TOLERANCE = 0.02
# Working memory per output pixel and frame, in bytes (measured peak, rounded up).
PIXEL_RENDERER_BYTES_PER_PIXEL = 320
# Pixels (frames x H x W) per chunk on CPU: one 512x288 frame. Larger chunks only cost: their
# temporaries fall out of cache, and above 32 MiB glibc maps each one afresh (zeroed pages) instead
# of reusing the heap (gid_models/heap.py). 512x288 on 2 cores, s/frame in chunks of 1 and 4: neural
# renderer 0.36 and 0.54, pixel renderer 0.061 and 0.073 (with heap reuse, as the CLI runs).
CPU_CHUNK_PIXELS = 150_000
# Pixels per chunk on GPUs: chunks of 6 to 15 M pixels ran at the same ~120 M pixels/s through
# the neural renderer on an H200; larger ones only take more memory from other models.
GPU_CHUNK_PIXELS = 16_000_000


BLACK_LEVEL = 0.5 / 255.0  # rounds to 0 in an 8-bit video


def _fail(message: str) -> ValueError:
    return ValueError(f"render_motion: {message}")


def check_render_inputs(picture: torch.Tensor, motion: MotionTexture, freeze_mask: torch.Tensor | None) -> None:
    """Raise ValueError (what came in, what is expected, how to fix it) for unusable inputs."""
    if not isinstance(picture, torch.Tensor) or picture.ndim != 4 or picture.shape[:2] != (1, 3):
        shape = tuple(picture.shape) if isinstance(picture, torch.Tensor) else type(picture).__name__
        raise _fail(
            f"picture must be (1, 3, H, W) RGB in 0..1, got {shape}; drop alpha and render one picture at a time."
        )
    if not isinstance(motion, MotionTexture):
        raise _fail(f"motion must be a MotionTexture, got {type(motion).__name__}.")
    if motion.batch_size != 1:
        raise _fail(f"motion holds {motion.batch_size} clips; render them one at a time (select one batch item).")
    if motion.height < 1 or motion.width < 1 or motion.num_frames < 1:
        raise _fail(f"motion is empty: {tuple(motion.displacements.shape)}.")
    if not torch.isfinite(motion.displacements).all():
        raise _fail("motion contains NaN or infinite displacements; check the node that produced it.")
    if not torch.isfinite(picture).all():
        raise _fail("picture contains NaN or infinite values.")
    height, width = picture.shape[-2:]
    picture_aspect, motion_aspect = width / height, motion.width / motion.height
    if abs(picture_aspect / motion_aspect - 1.0) > ASPECT_TOLERANCE:
        raise _fail(
            f"picture is {width}x{height} (aspect {picture_aspect:.3f}) but the motion was made at "
            f"{motion.width}x{motion.height} (aspect {motion_aspect:.3f}); crop or resize the picture to the "
            "motion's aspect ratio, or make the motion from this picture."
        )
    if freeze_mask is not None and (freeze_mask.ndim != 4 or freeze_mask.shape[:2] != (1, 1)):
        raise _fail(f"freeze_mask must be (1, 1, H, W) in 0..1, got {tuple(freeze_mask.shape)}.")


def check_rendered_chunk(rendered: torch.Tensor, start: int, picture: torch.Tensor, neural: bool) -> None:
    """Refuse a chunk of rendered frames (n, 3, H, W) holding NaN/infinite values, or a frame
    that came out black although the picture is not: the motion pushed the picture out of the
    frame, or the renderer's weights are damaged. Never hand such frames on as a video."""
    finite = torch.isfinite(rendered).flatten(1).all(1)
    if not bool(finite.all()):
        index = start + int((~finite).nonzero()[0])
        culprit = "the renderer's weights are damaged (use the pixel renderer)" if neural else "the motion is too large"
        raise _fail(f"frame {index} came out with NaN or infinite values: {culprit}, or lower the gain / drag.")
    if float(picture.max()) > BLACK_LEVEL:
        black = rendered.flatten(1).amax(1) <= BLACK_LEVEL
        if bool(black.any()):
            index = start + int(black.nonzero()[0])
            raise _fail(f"frame {index} came out black: the motion moves the picture out of the frame; lower the "
                        "gain or the drag, or check the motion's source.")


def require_frames_memory(num_frames: int, height: int, width: int, device: torch.device | str, copies: int = 1) -> None:
    """MemoryError (naming the fix) when `copies` float32 (num_frames, H, W, 3) frame buffers would
    exceed all of the output device's memory."""
    frame_bytes = 4 * 3 * num_frames * height * width
    require_memory(copies * frame_bytes, device, f"{num_frames} rendered frames at {width}x{height}",
                   "render fewer frames or a smaller picture.")


def bytes_per_frame(height: int, width: int, renderer: NeuralRenderer | None) -> int:
    """Estimated working memory of one frame in a chunk, in bytes."""
    per_pixel = PIXEL_RENDERER_BYTES_PER_PIXEL
    if renderer is not None:
        # Per level: splat buffers (~10 copies of the features) + decoder activations (~8).
        for level, channels in enumerate(renderer.config.channels):
            per_pixel += 4 * (10 * (channels + 5) + 8 * channels) // (4**level)
    return height * width * per_pixel


def pick_chunk_size(
    height: int, width: int, num_frames: int, device: torch.device, renderer: NeuralRenderer | None = None
) -> int:
    """Frames per chunk: what fits in half the free memory, at most CPU_CHUNK_PIXELS on CPU and
    GPU_CHUNK_PIXELS on GPUs, then evened out so that the chunks of one render are all (nearly)
    the same size."""
    budget = free_memory_bytes(device) // 2
    chunk = max(1, budget // bytes_per_frame(height, width, renderer))
    limit = GPU_CHUNK_PIXELS if device.type == "cuda" else CPU_CHUNK_PIXELS
    chunk = min(chunk, max(1, limit // (height * width)), num_frames)
    chunks = math.ceil(num_frames / chunk)
    return math.ceil(num_frames / chunks)


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in message or "can't allocate memory" in message)


def _chunk_flow(
    motion: MotionTexture, start: int, stop: int, height: int, width: int, device: torch.device
) -> torch.Tensor:
    """Frames start..stop-1 of the motion at height x width on device: (n, 2, height, width) pixels."""
    part = MotionTexture(motion.displacements[:, start:stop].to(device).float(), fps=motion.fps)
    return part.resized(height, width).displacements[0]


def render_motion(
    picture: torch.Tensor,
    motion: MotionTexture,
    renderer: NeuralRenderer | None = None,
    freeze_mask: torch.Tensor | None = None,
    chunk_size: int | None = None,
    callback: Callable[[int, int], None] | None = None,
    output_device: torch.device | str | None = None,
    check_interrupt: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Render the T frames of one motion texture on a picture.

    picture: (1, 3, H, W) float in 0..1. motion: MotionTexture with batch 1, any resolution of
    the same aspect ratio (resized to H x W, displacements rescaled). renderer: None for the
    pixel renderer (splat + pull-push fill), or a NeuralRenderer (computing on its device).
    freeze_mask: (1, 1, h, w) in 0..1, 1 = region held still (resized to H x W if needed).
    chunk_size: frames per batch (default: from free memory; halved on out-of-memory).
    callback(last_frame_index, T) after each chunk (may raise to interrupt).
    check_interrupt(): cheap, raises to stop; called inside the neural renderer's blocks, as one
        chunk of it can take most of a minute on a CPU (gid_models/interrupt.py).
    Returns frames (T, 3, H, W) float32 in 0..1 on output_device (default: the compute device),
    a channels-last view of a (T, H, W, 3) buffer, so `.movedim(1, -1)` is free.
    """
    check_render_inputs(picture, motion, freeze_mask)
    device = next(renderer.parameters()).device if renderer is not None else picture.device
    output_device = torch.device(output_device) if output_device is not None else device
    height, width = picture.shape[-2:]
    total = motion.num_frames
    picture = picture.to(device).float()
    importance = importance_at(motion.to(device), height, width)
    keep = None
    if freeze_mask is not None:
        mask = freeze_mask.to(device).float().clamp(0.0, 1.0)
        if tuple(mask.shape[-2:]) != (height, width):
            mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
        keep = 1.0 - mask
        importance = importance * keep
    require_frames_memory(total, height, width, output_device)
    chunk = chunk_size or pick_chunk_size(height, width, total, device, renderer)
    frames = torch.empty(total, height, width, 3, device=output_device)
    features = None
    start = 0
    heap = reuse_freed_memory() if device.type == "cpu" else contextlib.nullcontext()
    with torch.no_grad(), heap, checks_inside(renderer, check_interrupt):
        while start < total:
            stop = min(total, start + chunk)
            try:
                flow = _chunk_flow(motion, start, stop, height, width, device)
                if keep is not None:
                    flow = flow * keep
                if renderer is None:
                    rendered = render_pixel_frames(picture, flow, importance)
                else:
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                        features = renderer.encode(picture) if features is None else features
                        rendered = renderer.render(features, flow, importance)
            except (torch.cuda.OutOfMemoryError, RuntimeError) as error:
                if not _is_out_of_memory(error) or chunk == 1:
                    raise
                chunk = max(1, chunk // 2)
                LOGGER.warning("rendering ran out of memory; retrying with %d frames per chunk", chunk)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            check_rendered_chunk(rendered, start, picture, renderer is not None)
            frames[start:stop] = rendered.movedim(1, -1).to(output_device, torch.float32)
            start = stop
            if callback is not None:
                callback(stop - 1, total)
    return frames.movedim(-1, 1)
