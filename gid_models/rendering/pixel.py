"""The pixel renderer: softmax-splat the picture itself, then fill the holes by pull-push."""

from __future__ import annotations

import torch

from .hole_fill import coverage_alpha, pull_push_fill
from .softsplat import softmax_splat


def render_pixel_frames(picture: torch.Tensor, flow: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """picture (1, 3, H, W) 0..1, flow (N, 2, H, W) pixels, importance (1, 1, H, W) -> (N, 3, H, W).

    All N frames are splatted in one batched pass (the picture and metric are broadcast, not
    copied per frame by the caller).
    """
    n, _, h, w = flow.shape
    warped, coverage = softmax_splat(
        picture.expand(n, -1, h, w), flow, importance.expand(n, 1, h, w)
    )
    return pull_push_fill(warped, coverage_alpha(coverage)).clamp_(0.0, 1.0)
