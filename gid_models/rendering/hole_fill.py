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

# Splatting coverage at which a pixel counts as fully known. A locally stretched region keeps a
# coverage of about 1/stretch^2 yet its normalized splat is a proper weighted mean, so anything
# from half coverage up (stretch up to ~1.4x) is trusted; below it the fill takes over gradually.
FULL_COVERAGE = 0.5


def coverage_alpha(coverage: torch.Tensor) -> torch.Tensor:
    """Splatting coverage (N, 1, H, W) -> confidence alpha in 0..1 for pull_push_fill."""
    return (coverage * (1.0 / FULL_COVERAGE)).clamp_(0.0, 1.0)


def _sum_pool(tensor: torch.Tensor) -> torch.Tensor:
    """2x2 sums, zero-padding odd sizes: (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2))."""
    h, w = tensor.shape[-2:]
    if h % 2 or w % 2:
        tensor = F.pad(tensor, (0, w % 2, 0, h % 2))
    return F.avg_pool2d(tensor, 2) * 4.0


def pull_push_fill(image: torch.Tensor, alpha: torch.Tensor, min_size: int = 1) -> torch.Tensor:
    """Fill where alpha < 1 from the surroundings.

    image: (N, C, H, W) colours (not premultiplied); alpha: (N, 1, H, W) confidence in 0..1
    (see coverage_alpha). Returns (N, C, H, W); items without any alpha < 1 are returned as they
    are (and skipped). An item with no data at all (alpha 0 everywhere) comes back as zeros.
    """
    alpha = alpha.clamp(0.0, 1.0).to(image.dtype)
    incomplete = (alpha < 1).flatten(1).any(1)
    if not bool(incomplete.any()):
        return image
    if bool(incomplete.all()):
        return _pull_push(image, alpha, min_size)
    items = incomplete.nonzero().squeeze(1)
    filled = image.clone()
    filled[items] = _pull_push(image[items], alpha[items], min_size)
    return filled


def _pull_push(image: torch.Tensor, alpha: torch.Tensor, min_size: int) -> torch.Tensor:
    channels = image.shape[1]
    levels = [torch.cat([image * alpha, alpha], dim=1)]  # premultiplied colour, then alpha
    while min(levels[-1].shape[-2:]) > min_size:
        pooled = _sum_pool(levels[-1])
        levels.append(pooled / pooled[:, channels:].clamp_min(1.0))  # cap alpha at 1
    # Coarsest level: pixels still without data take the item's mean colour.
    coarsest = levels[-1]
    totals = coarsest.sum((2, 3), keepdim=True)
    mean = totals[:, :channels] / totals[:, channels:].clamp_min(1e-12)
    filled = torch.addcmul(coarsest[:, :channels], 1.0 - coarsest[:, channels:], mean)
    for level in reversed(levels[:-1]):
        upsampled = F.interpolate(filled, size=level.shape[-2:], mode="bilinear", align_corners=False)
        filled = torch.addcmul(level[:, :channels], 1.0 - level[:, channels:], upsampled)
    return filled
