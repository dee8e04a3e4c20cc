"""Synthetic clips with known sinusoidal motion, for testing and benchmarking motion-from-video.

A random multi-scale texture is backward-warped by a known displacement field: inside each
region the texture slides by A cos(2 pi k t / T + phase) along a direction (soft-edged masks, so
the field is smooth), optionally plus a global camera translation. The flow from frame 0 to frame
t in a region's interior is then d_t - d_0, whose bin-k Fourier coefficient has magnitude A / 2
along the region's direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class OscillatingRegion:
    """A rectangle (pixels, frame coordinates) whose content oscillates.

    amplitude: peak displacement in pixels; frequency_bin: cycles per clip (k); phase: radians;
    direction: (dx, dy), normalised internally.
    """

    left: int
    top: int
    right: int
    bottom: int
    amplitude: float
    frequency_bin: int
    phase: float = 0.0
    direction: tuple[float, float] = (1.0, 0.0)

    def unit_direction(self) -> torch.Tensor:
        d = torch.tensor(self.direction, dtype=torch.float64)
        return d / d.norm()


@dataclass
class SyntheticClip:
    """frames: (T, H, W, 3) float32 0..1; displacement: (T, 2, H, W) the true field d_t in pixels;
    region_masks: (R, H, W) bool interiors (margin from soft edges) of each region; static_mask:
    (H, W) bool pixels far from every region."""

    frames: torch.Tensor
    displacement: torch.Tensor
    regions: list[OscillatingRegion]
    region_masks: torch.Tensor
    static_mask: torch.Tensor
    camera_shift: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 2))


def random_texture(height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(3, H, W) float 0..1: sum of noise octaves (coarse to fine), so flow has structure at all scales."""
    texture = torch.zeros(3, height, width)
    for cell, weight in ((16, 1.0), (8, 0.7), (4, 0.5), (2, 0.3)):
        coarse = torch.rand(1, 3, height // cell + 2, width // cell + 2, generator=generator)
        texture += weight * F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0]
    texture -= texture.amin()
    return (texture / texture.amax()).clamp(0, 1)


def _soft_box(region: OscillatingRegion, height: int, width: int, softness: float) -> torch.Tensor:
    ys = torch.arange(height, dtype=torch.float64).view(-1, 1)
    xs = torch.arange(width, dtype=torch.float64).view(1, -1)

    def ramp(coord, low, high):
        return ((coord - low) / softness + 0.5).clamp(0, 1) * ((high - coord) / softness + 0.5).clamp(0, 1)

    return ramp(ys, region.top, region.bottom) * ramp(xs, region.left, region.right)


def render_clip(
    regions: list[OscillatingRegion],
    height: int = 64,
    width: int = 96,
    num_frames: int = 64,
    camera_shift: torch.Tensor | None = None,
    seed: int = 0,
    softness: float = 6.0,
) -> SyntheticClip:
    """Render the clip. camera_shift: optional (T, 2) global translation (dx, dy) in pixels per frame."""
    generator = torch.Generator().manual_seed(seed)
    margin = 16
    texture = random_texture(height + 2 * margin, width + 2 * margin, generator)
    t = torch.arange(num_frames, dtype=torch.float64)
    displacement = torch.zeros(num_frames, 2, height, width, dtype=torch.float64)
    interiors, support = [], torch.zeros(height, width, dtype=torch.float64)
    for region in regions:
        mask = _soft_box(region, height, width, softness)
        wave = region.amplitude * torch.cos(2 * math.pi * region.frequency_bin * t / num_frames + region.phase)
        direction = region.unit_direction()
        displacement += wave.view(-1, 1, 1, 1) * direction.view(1, 2, 1, 1) * mask
        interiors.append(mask >= 1.0)
        support = torch.maximum(support, mask)
    if camera_shift is not None:
        displacement += camera_shift.double().view(num_frames, 2, 1, 1)
    # Backward warp: frame_t(p) = texture(p - d_t(p)), texture offset by the margin.
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij")
    source_x = xs + margin - displacement[:, 0]
    source_y = ys + margin - displacement[:, 1]
    grid = torch.stack(
        [2 * (source_x + 0.5) / texture.shape[-1] - 1, 2 * (source_y + 0.5) / texture.shape[-2] - 1], dim=-1
    ).float()
    frames = F.grid_sample(
        texture.expand(num_frames, -1, -1, -1), grid, mode="bicubic", padding_mode="border", align_corners=False
    )
    far = F.max_pool2d((support > 0).float()[None, None], kernel_size=2 * int(softness) + 1, stride=1, padding=int(softness))
    return SyntheticClip(
        frames=frames.clamp(0, 1).permute(0, 2, 3, 1).contiguous(),
        displacement=displacement.float(),
        regions=list(regions),
        region_masks=torch.stack(interiors) if interiors else torch.zeros(0, height, width, dtype=torch.bool),
        static_mask=far[0, 0] == 0,
        camera_shift=camera_shift if camera_shift is not None else torch.zeros(num_frames, 2),
    )


def two_region_clip(num_frames: int = 64, camera_shift: torch.Tensor | None = None, seed: int = 0) -> SyntheticClip:
    """The standard test clip: 96x64 px, a region swaying 3 px in x at bin 3 and one moving
    2 px diagonally at bin 5, the rest static."""
    regions = [
        OscillatingRegion(left=6, top=8, right=42, bottom=56, amplitude=3.0, frequency_bin=3, phase=0.4),
        OscillatingRegion(
            left=56, top=6, right=90, bottom=36, amplitude=2.0, frequency_bin=5, phase=-1.0, direction=(1.0, 1.0)
        ),
    ]
    return render_clip(regions, num_frames=num_frames, camera_shift=camera_shift, seed=seed)


def write_sway_clip(path, seed: int = 0) -> None:
    """A short video file: 36 frames of 80x48 px at 24 fps, a random smooth texture whose middle
    (rows 10..39, columns 20..59) sways 2 sin(2 pi 2 t / 32) px in x; written with gid_models'
    video writer (format from the suffix)."""
    import cv2
    import numpy as np

    from gid_models.video_io import write_video

    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(0, 255, (12, 20, 3)).astype(np.float32), (80, 48), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:48, 0:80].astype(np.float32)
    frames = []
    for t in range(36):
        shift = np.zeros((48, 80), np.float32)
        shift[10:40, 20:60] = 2.0 * math.sin(2 * math.pi * 2 * t / 32)
        frames.append(cv2.remap(base, xs - shift, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    write_video(path, np.clip(np.stack(frames), 0, 255).astype(np.uint8), 24.0)
