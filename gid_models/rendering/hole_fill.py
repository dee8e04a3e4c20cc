"""Filling splatting holes by pull-push (Gortler et al. 1996), cheap and batch-parallel.

Pull: build a pyramid of premultiplied colour and alpha by 2x2 sums, capping alpha at 1 (and
rescaling the colour with it) so that a coarse pixel is "full" as soon as its children hold one
pixel's worth of data. Push: from the coarsest level down, every level keeps its own colour
where it has data and takes the upsampled coarser result for the missing part:
    filled_l = c_l + (1 - a_l) * up(filled_{l+1}).
Fully covered pixels (alpha 1) are returned exactly; holes get a smooth blend of their
surroundings; partially covered edge pixels are blended in proportion to their coverage.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _sum_pool(tensor: torch.Tensor) -> torch.Tensor:
    """2x2 sums, zero-padding odd sizes: (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2))."""
    h, w = tensor.shape[-2:]
    if h % 2 or w % 2:
        tensor = F.pad(tensor, (0, w % 2, 0, h % 2))
    return F.avg_pool2d(tensor, 2) * 4.0


def pull_push_fill(image: torch.Tensor, alpha: torch.Tensor, min_size: int = 1) -> torch.Tensor:
    """Fill where alpha < 1 from the surroundings.

    image: (N, C, H, W) colours (not premultiplied); alpha: (N, 1, H, W) confidence in 0..1
    (e.g. splatting coverage clamped to 1). Returns (N, C, H, W). An item with no data at all
    (alpha 0 everywhere) comes back as zeros.
    """
    alpha = alpha.clamp(0.0, 1.0).to(image.dtype)
    if bool((alpha >= 1).all()):
        return image
    colours = [image * alpha]
    alphas = [alpha]
    while min(colours[-1].shape[-2:]) > min_size:
        colour, weight = _sum_pool(colours[-1]), _sum_pool(alphas[-1])
        cap = 1.0 / weight.clamp_min(1.0)
        colours.append(colour * cap)
        alphas.append(weight * cap)
    # Coarsest level: pixels still without data take the item's mean colour.
    colour, weight = colours[-1], alphas[-1]
    mean = colour.sum((2, 3), keepdim=True) / weight.sum((2, 3), keepdim=True).clamp_min(1e-12)
    filled = colour + (1.0 - weight) * mean
    for colour, weight in zip(reversed(colours[:-1]), reversed(alphas[:-1])):
        upsampled = F.interpolate(filled, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        filled = colour + (1.0 - weight) * upsampled
    return filled
