"""Softmax splatting (forward warping) in pure PyTorch, after Niklaus & Liu (CVPR 2020).

Every source pixel p of a [N, C, H, W] tensor is pushed to p + flow(p) with a bilinear footprint
onto the four pixels around that point. Where contributions collide they are blended with
softmax weights exp(Z(p)) taken from an importance metric Z, so the pixel with the larger Z wins
(paper notes, section 5):

    out(q) = sum_p exp(Z(p)) b(p, q) I(p) / sum_p exp(Z(p)) b(p, q)

with b(p, q) the bilinear footprint weight of p at q. Pixels nothing lands on are holes; they are
reported through the coverage map sum_p b(p, q) (0 = hole, >= 1 = fully covered) and set to 0.

Implementation: one `index_add_` per bilinear corner over flattened output indices, for all N
items at once, on a (C + 2, N * (H+3) * (W+3)) buffer holding the weighted values, the softmax
weights and the plain footprint. The output frames carry a border ring that catches every
target outside the frame (and non-finite flow), so no bounds checks, masks or compaction are
needed; the ring is cropped at the end. Works the same on CPU and GPU, and autograd
differentiates it with respect to the source, the flow (through the bilinear weights) and the
metric.
"""

from __future__ import annotations

import torch

# Largest Z spread (max - min within one item) for which one shift per item is numerically safe:
# exp(-80) ~ 1.8e-35 keeps every contribution with a bilinear footprint >= 1e-3 a normal float32
# (smallest normal 1.2e-38); smaller ones can only be lost where the total coverage is < 1e-3,
# which the renderers treat as a hole anyway. Beyond it we subtract the max per output pixel.
_SAFE_SPREAD = {torch.float32: 80.0, torch.float64: 600.0}


def _check_shapes(source: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor) -> None:
    if source.ndim != 4:
        raise ValueError(f"softmax_splat source must be (N, C, H, W), got {tuple(source.shape)}.")
    n, _, h, w = source.shape
    if tuple(flow.shape) != (n, 2, h, w):
        raise ValueError(f"softmax_splat flow must be {(n, 2, h, w)} to match the source, got {tuple(flow.shape)}.")
    if tuple(metric.shape) != (n, 1, h, w):
        raise ValueError(
            f"softmax_splat metric must be {(n, 1, h, w)} to match the source, got {tuple(metric.shape)}."
        )


Footprint = tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]


def _bilinear_footprint(flow: torch.Tensor, factor: int = 1) -> Footprint:
    """(index (M,), [(offset, weight (M,)) per corner]) with M = N*H*W source pixels.

    flow: (N, 2, H, W) pixels. index is each pixel's top-left target corner, flattened over N
    frames padded to PH x PW = (H + 3) x (W + 3) pixels (rows and columns -1 .. H+1, W+1); the
    four corners are index + offset for offsets 0, 1, PW, PW + 1. Targets outside the frame are
    clamped to the border ring (x in [-1, W]), where their whole weight lands in padding that is
    cropped away, so no bounds checks are needed. Non-finite flow goes to the ring as well.
    factor > 1: the source is a factor-times finer grid (H = factor * h output rows) whose sample
    i sits at output coordinate (i + 0.5) / factor - 0.5, its flow in output pixels; the padded
    output is then (h + 3) x (w + 3).
    """
    n, _, h, w = flow.shape
    def grid(size: int) -> torch.Tensor:
        return (torch.arange(size, device=flow.device, dtype=flow.dtype) + 0.5) / factor + 0.5  # +1 - 0.5
    h, w = h // factor, w // factor
    padded_h, padded_w = h + 3, w + 3
    # Positions in padded coordinates (+1), so they are >= 0 and truncation is floor.
    x = flow[:, 0] + grid(flow.shape[-1])
    y = flow[:, 1] + grid(flow.shape[-2]).view(-1, 1)
    # In place on fresh tensors; casting NaN to int is platform dependent, so clean it first.
    x = x.nan_to_num_(nan=0.0, posinf=w + 1.0, neginf=0.0).clamp_(0.0, w + 1.0)
    y = y.nan_to_num_(nan=0.0, posinf=h + 1.0, neginf=0.0).clamp_(0.0, h + 1.0)
    x0, y0 = x.detach().long(), y.detach().long()
    fx, fy = x.frac(), y.frac()
    gx, gy = 1.0 - fx, 1.0 - fy
    item_offset = (torch.arange(n, device=flow.device) * (padded_h * padded_w)).view(n, 1, 1)
    index = y0.mul_(padded_w).add_(x0).add_(item_offset).reshape(-1)
    return index, [
        (0, (gx * gy).reshape(-1)),
        (1, (fx * gy).reshape(-1)),
        (padded_w, (gx * fy).reshape(-1)),
        (padded_w + 1, (fx * fy).reshape(-1)),
    ]


def _needs_per_output_shift(metric: torch.Tensor) -> bool:
    spread = metric.flatten(1).amax(1) - metric.flatten(1).amin(1)
    return bool((spread > _SAFE_SPREAD[metric.dtype]).any())


def softmax_splat(
    source: torch.Tensor,
    flow: torch.Tensor,
    metric: torch.Tensor,
    *,
    pixel_major: bool | None = None,
    supersample: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward-warp source by flow, blending collisions with softmax weights exp(metric).

    source: (N, C, H, W) any values; flow: (N, 2, H, W) displacement (dx, dy) in pixels, mapping
    source pixel p to p + flow(p); metric: (N, 1, H, W) importance Z (larger wins).
    Returns (warped (N, C, H, W), coverage (N, 1, H, W)): coverage is the summed bilinear
    footprint at each output pixel (0 = hole, where warped is 0). Non-finite flow drops the
    pixel. Computes in float32 (float64 if any input is float64) and returns source's dtype.
    Expanded (stride-0) inputs are fine, e.g. one picture splatted by N flows.
    pixel_major: accumulate in a (pixels, channels) buffer (coalesced atomics, the fast layout on
    GPUs) instead of (channels, pixels) (the fast layout on CPUs); None picks by device. Both
    give the same sums up to float rounding order.
    supersample: the inputs are that many times finer than the output ((N, C, s h, s w) -> (N, C, h,
    w)), their flow in output pixels; each output pixel then gathers s^2 samples, so a warp that
    stretches by up to s leaves no gaps. Coverage counts output-pixel footprints (s^2 where
    unstretched).
    """
    _check_shapes(source, flow, metric)
    n, c, sh, sw = source.shape
    if supersample < 1 or sh % supersample or sw % supersample:
        raise ValueError(f"softmax_splat supersample {supersample} must be >= 1 and divide the input size {sh}x{sw}.")
    h, w = sh // supersample, sw // supersample
    dtype = torch.float64 if torch.float64 in (source.dtype, flow.dtype, metric.dtype) else torch.float32
    values = source.to(dtype)
    z = metric.to(dtype)
    footprint = _bilinear_footprint(flow.to(dtype), supersample)

    # Softmax weights exp(Z - shift). Any shift that is constant over the contributors of one
    # output pixel cancels exactly in the normalization, so it is detached (its gradient is 0).
    # We use one shift per item (its max Z): a single exp per source pixel shared by all four
    # corners, and safe whenever the item's Z spread is below _SAFE_SPREAD (then no weight
    # underflows). Wider spreads switch to the max over the contributors of each output pixel
    # (exact and underflow-free for any spread, at the cost of a scatter-max and a gather).
    if _needs_per_output_shift(z.detach()):
        return _splat_per_output_shift(values, z, footprint, source.dtype, supersample)
    # One picture splatted by N flows arrives expanded (stride 0 over N): weight it once and
    # let the per-corner product broadcast it, instead of repeating the work N times.
    shared = n > 1 and values.stride(0) == 0 and z.stride(0) == 0
    items = 1 if shared else n
    values, z = values[:items], z[:items]
    shift = z.detach().flatten(1).amax(1).view(items, 1, 1, 1)
    softmax_weight = torch.exp(z - shift)
    stacked = torch.cat([values * softmax_weight, softmax_weight, torch.ones_like(softmax_weight)], dim=1)
    index, corners = footprint
    if pixel_major is None:
        pixel_major = source.device.type != "cpu"
    pixel_count = n * (h + 3) * (w + 3)
    if pixel_major:
        rows = stacked.permute(0, 2, 3, 1).reshape(items, sh * sw, c + 2).contiguous()
        sums = torch.zeros(pixel_count, c + 2, device=source.device, dtype=dtype)
        for offset, weight in corners:
            # Adding into the view shifted by the corner's offset saves an index tensor per corner.
            sums[offset:].index_add_(0, index, (rows * weight.view(n, sh * sw, 1)).view(n * sh * sw, c + 2))
        sums = sums.view(n, h + 3, w + 3, c + 2).permute(3, 0, 1, 2)
    else:
        rows = stacked.transpose(0, 1).reshape(c + 2, items, sh * sw).contiguous()
        sums = torch.zeros(c + 2, pixel_count, device=source.device, dtype=dtype)
        for offset, weight in corners:
            sums[:, offset:].index_add_(1, index, (rows * weight.view(1, n, sh * sw)).view(c + 2, n * sh * sw))
    return _normalize(sums, n, c, h, w, source.dtype)


def _splat_per_output_shift(
    values: torch.Tensor, z: torch.Tensor, footprint: Footprint, out_dtype: torch.dtype, supersample: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax_splat with exp(Z(p) - max Z over the contributors of each output pixel).

    Channel-major on every device: this path only runs for extreme metric spreads.
    """
    n, c, sh, sw = values.shape
    h, w = sh // supersample, sw // supersample
    flat_z = z.reshape(-1)
    column_count = n * (h + 3) * (w + 3)
    first_corner, offsets_and_weights = footprint
    corners = [(first_corner + offset, weight) for offset, weight in offsets_and_weights]
    # Only corners with a non-zero footprint contribute, so only they may set the maximum.
    peak = torch.full((column_count,), float("-inf"), device=z.device, dtype=z.dtype)
    for index, bilinear in corners:
        candidate = torch.where(bilinear > 0, flat_z.detach(), float("-inf"))
        peak.scatter_reduce_(0, index, candidate, reduce="amax")
    rows = values.transpose(0, 1).reshape(c, n * sh * sw)
    sums = torch.zeros(c + 2, column_count, device=z.device, dtype=z.dtype)
    for index, bilinear in corners:
        # Where the footprint is 0 the peak may be -inf; use Z itself there (weight 0 anyway).
        shift = torch.where(bilinear > 0, peak[index], flat_z.detach())
        weight = torch.exp(flat_z - shift) * bilinear
        sums.index_add_(1, index, torch.cat([rows * weight, weight[None], bilinear[None]]))
    return _normalize(sums, n, c, h, w, out_dtype)


def _normalize(
    sums: torch.Tensor, n: int, c: int, h: int, w: int, out_dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """sums: (C + 2, ...) channel-first sums viewable as (C + 2, N, H + 3, W + 3)."""
    sums = sums.reshape(c + 2, n, h + 3, w + 3)[:, :, 1 : h + 1, 1 : w + 1].transpose(0, 1)
    numerator, denominator, coverage = sums[:, :c], sums[:, c : c + 1], sums[:, c + 1 :]
    # Where nothing landed the numerator is 0 too; dividing by 1 there keeps it 0 (and finite).
    warped = numerator / torch.where(denominator > 0, denominator, 1.0)
    return warped.to(out_dtype), coverage.to(out_dtype)
