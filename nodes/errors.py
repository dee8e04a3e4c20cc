"""Turning model-package errors into messages that name the node and the fix."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


class NodeInputError(ValueError):
    """A node got input it cannot use; the message names the node and how to fix it."""


def fail(node: str, message: str) -> NodeInputError:
    return NodeInputError(f"[{node}] {message}")


@contextlib.contextmanager
def node_errors(node: str) -> Iterator[None]:
    """Re-raise ValueError / memory errors from gid_models with the node's name in front."""
    try:
        yield
    except NodeInputError:
        raise
    except torch.cuda.OutOfMemoryError as error:
        raise RuntimeError(
            f"[{node}] ran out of GPU memory ({error}); lower the resolution or frame count, "
            "or free VRAM (unload other models)."
        ) from error
    except MemoryError as error:
        detail = f" ({error})" if str(error) else ""
        raise RuntimeError(
            f"[{node}] ran out of memory{detail}; lower the resolution or frame count."
        ) from error
    except ValueError as error:
        raise NodeInputError(f"[{node}] {error}") from error


def image_batch_to_nchw(image: torch.Tensor, node: str, what: str = "image") -> torch.Tensor:
    """ComfyUI IMAGE (B, H, W, C) in 0..1 -> (B, 3, H, W) float32; drops alpha, rejects the rest."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise fail(node, f"{what} must be an IMAGE batch (B, H, W, C), got {shape}.")
    if image.shape[0] == 0:
        raise fail(node, f"{what} is an empty batch; connect a loaded image or video.")
    if image.dtype == torch.uint8:  # 0..255 from a node that skipped the float conversion
        image = image.float() / 255.0
    elif not image.is_floating_point():
        raise fail(node, f"{what} is a {image.dtype} tensor; an IMAGE holds float values in 0..1.")
    channels = image.shape[-1]
    if channels == 4:
        image = image[..., :3]  # alpha is ignored: motion is predicted and rendered on RGB
    elif channels == 1:
        image = image.expand(*image.shape[:-1], 3)
    elif channels != 3:
        raise fail(node, f"{what} has {channels} channels; expected RGB (3) or RGBA (4).")
    if not torch.isfinite(image).all():
        raise fail(node, f"{what} contains NaN or infinite values; check the node that produced it.")
    return image.movedim(-1, 1).float().contiguous()
