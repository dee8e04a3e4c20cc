"""The pixel renderer: softmax-splat the picture itself, then fill the holes by pull-push.

Where a frame's warp stretches the picture (largest singular value of its Jacobian above
STRETCH_TOLERANCE), single samples per pixel land further apart than their bilinear footprints
reach and leave dotted gaps. Such frames are splatted from a finer copy of the picture and flow
(bilinear, factor ceil(stretch) up to MAX_SUPERSAMPLE), so every output pixel still gathers
samples. The finer splat is softer (two bilinear steps), so it only fills in: each output pixel
keeps the plain splat in proportion to its coverage (coverage_alpha) and takes the finer one for
the rest. Only stretch beyond MAX_SUPERSAMPLE is left to the pull-push fill.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .hole_fill import coverage_alpha, pull_push_fill
from .softsplat import softmax_splat
from .stretch import warp_jacobian

MAX_SUPERSAMPLE = 3
STRETCH_TOLERANCE = 1.05


def supersample_factors(flow: torch.Tensor) -> list[int]:
    """Per frame of flow (N, 2, H, W) pixels, the splat supersampling factor (1..MAX_SUPERSAMPLE)."""
    stretch = warp_jacobian(flow.float())[1].flatten(1).amax(1).tolist()
    return [1 if s <= STRETCH_TOLERANCE else min(MAX_SUPERSAMPLE, math.ceil(s - 1e-6)) for s in stretch]


def _finer(tensor: torch.Tensor, factor: int) -> torch.Tensor:
    if factor == 1:
        return tensor
    return F.interpolate(tensor, scale_factor=factor, mode="bilinear", align_corners=False)


def splat_pixel_frames(
    picture: torch.Tensor, flow: torch.Tensor, importance: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(warped (N, C, H, W), coverage (N, 1, H, W) in output-pixel footprints) before the fill;
    inputs as render_pixel_frames (picture (1 or N, C, H, W), importance (1 or N, 1, H, W)).
    Frames with the same supersampling factor splat together."""
    n, _, h, w = flow.shape
    factors = supersample_factors(flow)
    warped = torch.empty(n, picture.shape[1], h, w, dtype=picture.dtype, device=picture.device)
    coverage = torch.empty(n, 1, h, w, dtype=picture.dtype, device=picture.device)
    for factor in sorted(set(factors)):
        frames = [i for i, f in enumerate(factors) if f == factor]
        index = torch.tensor(frames, device=flow.device)
        chosen = (lambda t: t if t.shape[0] == 1 else t[index])  # batch 1 (broadcast) or N
        fine_picture, fine_importance = _finer(chosen(picture), factor), _finer(chosen(importance), factor)
        fine_flow = _finer(flow[index], factor)
        m, fh, fw = len(frames), fine_flow.shape[-2], fine_flow.shape[-1]
        part, part_coverage = softmax_splat(
            fine_picture.expand(m, -1, fh, fw), fine_flow, fine_importance.expand(m, 1, fh, fw), supersample=factor
        )
        if factor > 1:
            plain, plain_coverage = softmax_splat(
                chosen(picture).expand(m, -1, h, w), flow[index], chosen(importance).expand(m, 1, h, w)
            )
            keep = coverage_alpha(plain_coverage)
            part = torch.lerp(part, plain, keep)
            part_coverage = torch.maximum(part_coverage, plain_coverage)
        warped[index], coverage[index] = part, part_coverage
    return warped, coverage


def render_pixel_frames(picture: torch.Tensor, flow: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """picture (1, 3, H, W) 0..1, flow (N, 2, H, W) pixels, importance (1, 1, H, W) -> (N, 3, H, W).

    All frames with the same supersampling factor are splatted in one batched pass (the picture
    and metric are broadcast, not copied per frame by the caller).
    """
    warped, coverage = splat_pixel_frames(picture, flow, importance)
    return pull_push_fill(warped, coverage_alpha(coverage)).clamp_(0.0, 1.0)
