"""Pictures of motion for people: flow colours, spectral-volume tiles, X-t slices.

Every function returns channels-last float32 RGB in 0..1, ready for a ComfyUI IMAGE batch.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .spectral import MotionError, SpectralVolume

TILE_GAP_PX = 2


def robust_max(magnitude: torch.Tensor, quantile: float = 0.99) -> float:
    """The quantile of a magnitude tensor (pixels), at least 1e-6; sub-sampled when huge."""
    values = magnitude.detach().float().flatten()
    if values.numel() > 2_000_000:
        values = values[:: values.numel() // 1_000_000 + 1]
    return max(float(torch.quantile(values, quantile)), 1e-6)


def hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """hue in turns (0..1), saturation and value in 0..1, same shapes -> (..., 3) RGB 0..1."""
    sector = (hue % 1.0) * 6.0
    channel_offsets = torch.tensor([5.0, 3.0, 1.0], dtype=hue.dtype, device=hue.device)
    k = (sector[..., None] + channel_offsets) % 6.0
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    return value[..., None] * (1.0 - saturation[..., None] * ramp)


def flow_to_color(flow: torch.Tensor, max_magnitude: float | None = None) -> torch.Tensor:
    """Colour-wheel picture of displacements: hue = direction, saturation = magnitude / max.

    flow: (..., 2, H, W) pixels (dx, dy). max_magnitude: pixels mapped to full saturation
    (default: the 99th percentile of the magnitudes given). Zero motion is white.
    Returns (..., H, W, 3) float32 in 0..1.
    """
    if flow.ndim < 3 or flow.shape[-3] != 2:
        raise MotionError(f"flow must be (..., 2, H, W), got {tuple(flow.shape)}.")
    dx, dy = flow[..., 0, :, :].float(), flow[..., 1, :, :].float()
    magnitude = torch.sqrt(dx.square() + dy.square())
    scale = robust_max(magnitude) if max_magnitude is None else float(max_magnitude)
    if not scale > 0:
        raise MotionError(f"max_magnitude must be positive, got {max_magnitude}.")
    hue = torch.atan2(-dy, -dx) / (2.0 * math.pi) + 0.5
    saturation = (magnitude / scale).clamp(0.0, 1.0)
    return hsv_to_rgb(hue, saturation, torch.ones_like(hue)).clamp(0.0, 1.0)


def diverging_color(values: torch.Tensor, max_magnitude: float | None = None) -> torch.Tensor:
    """Signed values -> blue (negative) / white (0) / red (positive). Returns (..., 3) 0..1."""
    scale = robust_max(values.abs()) if max_magnitude is None else float(max_magnitude)
    v = (values.float() / scale).clamp(-1.0, 1.0)[..., None]
    white = torch.ones(3, dtype=v.dtype, device=v.device)
    red = torch.tensor([0.8, 0.1, 0.1], dtype=v.dtype, device=v.device)
    blue = torch.tensor([0.1, 0.2, 0.8], dtype=v.dtype, device=v.device)
    return torch.where(v >= 0, white + v * (red - white), white - v * (blue - white))


def _to_uint8(values: torch.Tensor | np.ndarray) -> np.ndarray:
    values = values.numpy() if isinstance(values, torch.Tensor) else values
    return (np.clip(values, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _colormap(values: torch.Tensor) -> np.ndarray:
    """(H, W) float 0..1 -> (H, W, 3) uint8 RGB through OpenCV's viridis map."""
    return cv2.cvtColor(cv2.applyColorMap(_to_uint8(values), cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def _label(tile: np.ndarray, text: str) -> None:
    """Write a small white label with a dark outline in the top-left corner of a uint8 tile (in place)."""
    height = tile.shape[0]
    if height < 24:
        return
    scale = max(0.3, min(0.6, height / 300.0))
    origin = (3, int(14 * scale / 0.4))
    cv2.putText(tile, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    height, width = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / columns)
    canvas = np.zeros((rows * (height + TILE_GAP_PX) - TILE_GAP_PX, columns * (width + TILE_GAP_PX) - TILE_GAP_PX, 3), np.uint8)
    for index, tile in enumerate(tiles):
        top, left = (index // columns) * (height + TILE_GAP_PX), (index % columns) * (width + TILE_GAP_PX)
        canvas[top : top + height, left : left + width] = tile
    return canvas


def _grid_image(tiles: list[np.ndarray], columns: int) -> torch.Tensor:
    """uint8 tiles -> (H', W', 3) float32 0..1 grid."""
    return torch.from_numpy(_grid(tiles, columns)).float() / 255.0


def spectral_volume_grids(volume: SpectralVolume, columns: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frequency amplitude and phase pictures of each batch item, K tiles in a grid.

    Amplitude tile k: sqrt(|S_x|^2 + |S_y|^2) through viridis, each tile scaled to its own 99th
    percentile (high frequencies are much weaker; the label gives bin, Hz and that scale in px, or
    in normalized units for a normalized volume). Phase tile k: hue = phase of the stronger of the
    x / y coefficients, brightness = relative amplitude, so still pixels are dark.
    Returns (amplitude, phase), each (B, H', W', 3) float32 0..1.
    """
    coeffs = volume.coeffs.detach().float().cpu()
    real_x, imag_x, real_y, imag_y = coeffs.unbind(dim=2)  # each (B, K, H, W)
    power_x, power_y = real_x.square() + imag_x.square(), real_y.square() + imag_y.square()
    amplitude = torch.sqrt(power_x + power_y)
    phase = torch.where(power_x >= power_y, torch.atan2(imag_x, real_x), torch.atan2(imag_y, real_y))
    columns = columns or math.ceil(math.sqrt(volume.num_frequencies))
    hertz = volume.frequencies_hz()
    unit = "" if volume.normalized else "px"
    amplitude_grids, phase_grids = [], []
    for item in range(volume.batch_size):
        amplitude_tiles, phase_tiles = [], []
        for k in range(volume.num_frequencies):
            scale = robust_max(amplitude[item, k])
            relative = (amplitude[item, k] / scale).clamp(0, 1)
            tile = _colormap(relative)
            _label(tile, f"k{k} {hertz[k]:.2f}Hz {scale:.2g}{unit}")
            amplitude_tiles.append(tile)
            hue = phase[item, k] / (2.0 * math.pi) + 0.5
            colored = _to_uint8(hsv_to_rgb(hue, torch.ones_like(hue), relative))
            _label(colored, f"k{k} phase")
            phase_tiles.append(colored)
        amplitude_grids.append(_grid_image(amplitude_tiles, columns))
        phase_grids.append(_grid_image(phase_tiles, columns))
    return torch.stack(amplitude_grids), torch.stack(phase_grids)


def xt_slice(
    displacements: torch.Tensor,
    row: float,
    picture: torch.Tensor | None = None,
    max_magnitude: float | None = None,
) -> torch.Tensor:
    """X-t slice along one picture row: time runs down, x runs across.

    displacements: (T, 2, H, W) pixels. row: 0 (top) .. 1 (bottom). picture: optional (H, W, 3)
    0..1 of the same size. Returns (T, W, 3) 0..1: the row's x-displacement in blue/white/red;
    with a picture, (2T + gap, W, 3) with the picture row moved by the motion on top (approximate
    backward warp I_t(p) = I_0(p - F_t(p)), exact for smooth motion) and the colours below.
    """
    if displacements.ndim != 4 or displacements.shape[1] != 2:
        raise MotionError(f"displacements must be (T, 2, H, W), got {tuple(displacements.shape)}.")
    if not 0.0 <= row <= 1.0:
        raise MotionError(f"row must be between 0 (top) and 1 (bottom), got {row}.")
    num_frames, _, height, width = displacements.shape
    y = min(height - 1, int(round(row * (height - 1))))
    flow_row = displacements[:, :, y, :].float()  # (T, 2, W)
    colors = diverging_color(flow_row[:, 0], max_magnitude)
    if picture is None:
        return colors
    if picture.shape[:2] != (height, width):
        raise MotionError(f"picture is {tuple(picture.shape[:2])} but the motion is {(height, width)} (H, W).")
    xs = torch.arange(width, dtype=torch.float32)
    source_x = xs - flow_row[:, 0]
    source_y = y - flow_row[:, 1]
    grid = torch.stack([(2 * source_x + 1) / width - 1, (2 * source_y + 1) / height - 1], dim=-1)  # (T, W, 2)
    image = picture.float().permute(2, 0, 1)[None].expand(num_frames, -1, -1, -1)
    moved = F.grid_sample(image, grid[:, None], mode="bilinear", padding_mode="border", align_corners=False)
    moved = moved[:, :, 0].permute(0, 2, 1)  # (T, W, 3)
    gap = torch.zeros(TILE_GAP_PX, width, 3)
    return torch.cat([moved.clamp(0, 1), gap, colors], dim=0)
