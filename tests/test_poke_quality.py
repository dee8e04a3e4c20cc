"""Physically plausible pokes (issue 21): fold-free warps, settling after release, no stretch holes."""

from __future__ import annotations

import math

import torch

from gid_models.dynamics import Drag, WarpLimit, limit_warp, simulate
from gid_models.rendering import render_motion, softmax_splat
from gid_models.rendering.pixel import splat_pixel_frames
from gid_models.rendering.stretch import warp_jacobian
from gid_models.spectral import MotionTexture, SpectralVolume

FPS = 30.0


def swirl(height: int = 24, width: int = 32, amplitude: float = 6.0) -> torch.Tensor:
    """(1, 2, H, W) a rotating bump whose warp folds near its centre at this amplitude."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing="ij")
    bump = amplitude * torch.exp(-((x - width / 2) ** 2 + (y - height / 2) ** 2) / 18.0)
    return torch.stack([-(y - height / 2), x - width / 2])[None] * bump / 3.0


def test_limited_warp_never_folds_where_the_raw_one_does():
    raw = torch.cat([swirl(amplitude=a) for a in (0.5, 3.0, 6.0, 12.0)])
    det, _ = warp_jacobian(raw)
    assert bool((det[1:] < 0).any())  # the raw swirl folds at the larger amplitudes
    limited = limit_warp(raw, WarpLimit(min_area=0.25, max_stretch=2.0))
    det, stretch = warp_jacobian(limited)
    assert float(det.min()) > 0.2
    assert float(stretch.max()) <= 2.0 + 1e-4
    torch.testing.assert_close(limited[0], raw[0])  # a gentle frame is left alone
    assert float(limited[3].abs().max()) > 0.5  # the strong ones still move


def one_slow_mode_volume(height: int = 12, width: int = 16) -> SpectralVolume:
    """A volume whose only mode is bin 1 (0.2 Hz at 150 frames, 30 fps), moving every pixel along x."""
    coeffs = torch.zeros(1, 4, 4, height, width)
    coeffs[0, 1, 0] = 1.0  # Re x of bin 1
    return SpectralVolume(coeffs, num_frames=150, fps=FPS)


def test_response_settles_within_two_and_a_half_seconds_by_default():
    volume = one_slow_mode_volume()
    drag = Drag(x=8, y=6, dx=4.0, dy=0.0, start=0, hold=15)
    release, after = 15, 15 + round(2.5 * FPS)
    motion = simulate(volume, [drag], after + 1, FPS).displacements[0]
    assert math.isclose(float(motion[release - 1, 0].mean()), 4.0 * (1 - (1 / 15) ** 2 * (3 - 2 / 15)), rel_tol=0.05)
    assert float(motion[after].norm(dim=0).max()) < 0.1  # px; it was pulled 4 px
    free = simulate(volume, [drag], after + 1, FPS, settle_seconds=None).displacements[0]
    assert float(free[after].norm(dim=0).max()) > 2.0  # the raw 0.2 Hz mode is still far out


def uniform_stretch(height: int, width: int, factor: float) -> torch.Tensor:
    """(1, 2, H, W) flow mapping the central 1/factor of the picture onto the whole frame."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing="ij")
    cy, cx = (height - 1) / 2, (width - 1) / 2
    return torch.stack([(x - cx) * (factor - 1), (y - cy) * (factor - 1)])[None]


def test_renderer_leaves_no_holes_under_a_uniform_2x_stretch(generator):
    picture = torch.rand(1, 3, 20, 28, generator=generator)
    flow = uniform_stretch(20, 28, 2.0)
    importance = torch.zeros(1, 1, 20, 28)
    _, plain = softmax_splat(picture, flow, importance)
    assert float((plain < 0.5).float().mean()) > 0.3  # one sample per pixel leaves dotted gaps
    _, coverage = splat_pixel_frames(picture, flow, importance)
    assert float(coverage[..., 1:-1, 1:-1].min()) >= 0.5
    frames = render_motion(picture, MotionTexture(flow[None], fps=FPS))
    assert frames.shape == (1, 3, 20, 28) and bool(torch.isfinite(frames).all())


def test_mode_shapes_are_smoothed_at_picture_scale_and_kept_at_tiny_scale(generator):
    from gid_models.dynamics import ModalBasis

    coeffs = torch.randn(1, 3, 4, 40, 256, generator=generator)
    coeffs[0, 2] = 1.5  # a uniform mode stays as it is
    volume = SpectralVolume(coeffs, num_frames=150, fps=FPS)
    raw, smooth = ModalBasis.from_volume(volume, smoothing=0), ModalBasis.from_volume(volume)
    roughness = [float((b.shapes[0, :, :, 1:] - b.shapes[0, :, :, :-1]).abs().mean()) for b in (raw, smooth)]
    assert roughness[1] < 0.25 * roughness[0]
    torch.testing.assert_close(smooth.shapes[1], raw.shapes[1])
    assert math.isclose(float(smooth.masses[1]), float(raw.masses[1]), rel_tol=1e-5)
    tiny = SpectralVolume(coeffs[..., :12, :16].contiguous(), num_frames=150, fps=FPS)
    torch.testing.assert_close(ModalBasis.from_volume(tiny).shapes, ModalBasis.from_volume(tiny, smoothing=0).shapes)


def test_supersampled_splat_is_the_same_in_both_accumulation_layouts(generator):
    source = torch.rand(2, 3, 20, 28, generator=generator)
    flow = torch.randn(2, 2, 20, 28, generator=generator) * 2.0
    metric = torch.rand(2, 1, 20, 28, generator=generator)
    pixel_major = softmax_splat(source, flow, metric, pixel_major=True, supersample=2)
    channel_major = softmax_splat(source, flow, metric, pixel_major=False, supersample=2)
    assert pixel_major[0].shape == (2, 3, 10, 14)
    torch.testing.assert_close(pixel_major, channel_major)
    _, still = softmax_splat(source, torch.zeros_like(flow), metric, supersample=2)
    torch.testing.assert_close(still[..., 1:-1, 1:-1], torch.full_like(still[..., 1:-1, 1:-1], 4.0))
