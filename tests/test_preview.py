"""Motion pictures: flow colours, spectral-volume grids, X-t slices, and the preview nodes."""

import importlib
import math

import pytest
import torch

from gid_models.preview import flow_to_color, hsv_to_rgb, spectral_volume_grids, xt_slice
from gid_models.spectral import MotionError, SpectralVolume, trajectories_to_spectral


def test_hsv_matches_known_colours():
    hue = torch.tensor([0.0, 1 / 3, 2 / 3, 0.5])
    rgb = hsv_to_rgb(hue, torch.ones(4), torch.ones(4))
    expected = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 1.0]])
    torch.testing.assert_close(rgb, expected, atol=1e-6, rtol=0)


def test_flow_colours_encode_direction_and_magnitude():
    flow = torch.zeros(2, 2, 4)
    flow[0, 0, 1], flow[0, 0, 2], flow[1, 0, 3] = 2.0, -2.0, 1.0  # right, left, down (half length)
    rgb = flow_to_color(flow, max_magnitude=2.0)
    assert rgb.shape == (2, 4, 3) and rgb.min() >= 0 and rgb.max() <= 1
    torch.testing.assert_close(rgb[0, 0], torch.ones(3))  # still = white
    right, left = rgb[0, 1], rgb[0, 2]
    torch.testing.assert_close(right, torch.tensor([1.0, 0.0, 0.0]))  # right = red
    torch.testing.assert_close(right + left, torch.ones(3))  # opposite directions, complementary hues
    assert right.min() < 0.05 and left.min() < 0.05  # fully saturated at max magnitude
    assert 0.45 < rgb[0, 3].min() < 0.55  # half magnitude = half saturation
    with pytest.raises(MotionError, match=r"\(\.\.\., 2, H, W\)"):
        flow_to_color(torch.zeros(3, 4, 4))


def test_spectral_grids_show_where_and_at_which_bin_motion_is():
    t = torch.arange(40, dtype=torch.float32)
    trajectories = torch.zeros(1, 40, 2, 12, 16)
    trajectories[0, :, 0, :, :8] = (2.0 * torch.cos(2 * math.pi * 3 * t / 40)).view(-1, 1, 1)
    volume = trajectories_to_spectral(trajectories, num_frequencies=8)
    amplitude, phase = spectral_volume_grids(volume)
    # 8 tiles in 3 columns x 3 rows of 12x16 px with 2 px gaps
    assert amplitude.shape == phase.shape == (1, 3 * 12 + 4, 3 * 16 + 4, 3)
    assert amplitude.min() >= 0 and amplitude.max() <= 1 and phase.min() >= 0 and phase.max() <= 1
    tile3 = phase[0, 12 + 2 : 24 + 2, 0:16]  # bin 3 = row 1, column 0
    assert tile3[:, :8].max(dim=-1).values.mean() > 0.9  # moving half is bright
    assert tile3[:, 8:].max(dim=-1).values.mean() < 0.05  # still half is dark


def test_xt_slice_moves_the_picture_row():
    frames, height, width = 6, 8, 20
    displacements = torch.zeros(frames, 2, height, width)
    displacements[:, 0] = torch.arange(frames, dtype=torch.float32).view(-1, 1, 1)  # drift right 1 px/frame
    picture = torch.zeros(height, width, 3)
    picture[:, 5] = 1.0  # a bright column at x = 5
    colours = xt_slice(displacements, 0.5)
    assert colours.shape == (frames, width, 3)
    both = xt_slice(displacements, 0.5, picture=picture)
    assert both.shape == (2 * frames + 2, width, 3)
    for t in range(frames):
        assert int(both[t, :, 0].argmax()) == 5 + t
    with pytest.raises(MotionError, match="row"):
        xt_slice(displacements, 1.5)
    with pytest.raises(MotionError, match="picture is"):
        xt_slice(displacements, 0.5, picture=torch.zeros(4, 4, 3))


def test_preview_nodes_return_comfy_images(pack, generator):
    spectral = importlib.import_module("comfyui_gid.gid_models.spectral")
    coeffs = torch.randn(2, 16, 4, 24, 40, generator=generator)  # tiles tall enough for labels
    volume = spectral.SpectralVolume(coeffs, num_frames=150, fps=30.0)
    amplitude, phase = pack.NODE_CLASS_MAPPINGS["GIDPreviewSpectralVolume"]().preview(volume)
    assert amplitude.shape == phase.shape == (2, 4 * 24 + 6, 4 * 40 + 6, 3)
    assert amplitude[0, 2:8, 2:30].max() == 1.0  # white label text
    assert amplitude.dtype == torch.float32 and 0 <= amplitude.min() and amplitude.max() <= 1

    motion = spectral.spectral_to_motion(volume, num_output_frames=10)
    picture = torch.rand(1, 48, 80, 3, generator=generator)  # twice the motion's size, same aspect
    flow_frames, xt = pack.NODE_CLASS_MAPPINGS["GIDPreviewMotion"]().preview(motion, 0.3, picture)
    assert flow_frames.shape == (20, 48, 80, 3) and xt.shape == (2, 22, 80, 3)
    assert 0 <= flow_frames.min() and flow_frames.max() <= 1 and torch.isfinite(xt).all()
    flow_frames, xt = pack.NODE_CLASS_MAPPINGS["GIDPreviewMotion"]().preview(motion, 0.3)
    assert flow_frames.shape == (20, 24, 40, 3) and xt.shape == (2, 10, 40, 3)


def test_preview_nodes_name_themselves_on_bad_input(pack, generator):
    spectral = importlib.import_module("comfyui_gid.gid_models.spectral")
    motion = spectral.MotionTexture(torch.zeros(1, 4, 2, 18, 32))
    node = pack.NODE_CLASS_MAPPINGS["GIDPreviewMotion"]()
    with pytest.raises(ValueError, match=r"\[GIDPreviewMotion\].*different aspect ratio"):
        node.preview(motion, 0.5, torch.rand(1, 32, 32, 3, generator=generator))
    broken = spectral.MotionTexture(torch.full((1, 4, 2, 18, 32), float("nan")))
    with pytest.raises(ValueError, match=r"\[GIDPreviewMotion\].*NaN"):
        node.preview(broken, 0.5)
    with pytest.raises(ValueError, match=r"\[GIDPreviewSpectralVolume\].*GID_SPECTRAL_VOLUME"):
        pack.NODE_CLASS_MAPPINGS["GIDPreviewSpectralVolume"]().preview(torch.zeros(1, 16, 4, 8, 8))
    assert SpectralVolume is not spectral.SpectralVolume  # the pack has its own module objects
