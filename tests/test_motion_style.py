"""Loop a video and move like this clip: the maths of gid_models.motion_style and the nodes.

Loop a video (same scene): GIDMotionFromVideo -> GIDSpectralToMotion -> GIDRender on the clip's
first frame, or on a larger still of it, loops without a seam. Move like this clip (another scene):
GIDMatchMotionStatistics keeps still what the volume leaves still and gives its moving pixels the
reference's per-bin power and direction.
"""

import importlib

import pytest
import torch

from synthetic_clips import two_region_clip

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def style(pack):
    return importlib.import_module("comfyui_gid.gid_models.motion_style")


@pytest.fixture(scope="module")
def spectral(pack):
    return importlib.import_module("comfyui_gid.gid_models.spectral")


def node(pack, name):
    return pack.NODE_CLASS_MAPPINGS[name]()


def _volume(spectral, coeffs, num_frames=48, fps=24.0):
    return spectral.SpectralVolume(coeffs.float(), num_frames=num_frames, fps=fps)


def _sampled_like(spectral, generator, height=24, width=32, k=6):
    """A volume that moves only in its left half (the 'picture's moving region')."""
    coeffs = torch.randn(1, k, 4, height, width, generator=generator)
    coeffs[..., width // 2 :] = 0.0
    return _volume(spectral, coeffs)


def _reference(spectral, generator, height=24, width=32, k=6):
    """A clip's volume: bin power falling as 1/k^2, bin 2 purely horizontal, bin 3 purely vertical."""
    coeffs = torch.randn(1, k, 4, height, width, generator=generator) * 0.3
    coeffs = coeffs / torch.arange(1, k + 1).view(1, k, 1, 1, 1)
    coeffs[:, 2, 2:] = 0.0
    coeffs[:, 3, :2] = 0.0
    return _volume(spectral, coeffs)


def test_matching_keeps_still_regions_still_and_gives_the_clip_power(style, spectral, generator):
    volume = _sampled_like(spectral, generator)
    reference = _reference(spectral, generator)
    matched = style.match_motion_statistics(volume, reference)
    assert matched.coeffs.shape == volume.coeffs.shape
    assert (matched.num_frames, matched.fps) == (volume.num_frames, volume.fps)
    # where the sampled volume is still, the matched one is exactly still
    assert torch.count_nonzero(matched.coeffs[..., 16:]) == 0
    # on the moving pixels, each bin k >= 1 has the clip's mean power and direction covariance
    mask = style.moving_mask(volume)
    assert mask[0, :, :16].all() and not mask[0, :, 16:].any()
    got = style.motion_statistics(matched, mask)
    want = style.motion_statistics(reference)
    torch.testing.assert_close(got.mean_power()[1:], want.mean_power()[1:], rtol=2e-3, atol=1e-6)
    torch.testing.assert_close(got.covariance[1:], want.covariance[1:], rtol=2e-3, atol=2e-5)
    power = got.mean_power()
    assert (power[2] / power[1]).item() == pytest.approx((want.mean_power()[2] / want.mean_power()[1]).item(), rel=1e-2)
    # bin 2 of the clip moves only in x, bin 3 only in y: so do the matched bins
    y_share_bin2 = got.covariance[2, 1, 1] / power[2]
    x_share_bin3 = got.covariance[3, 0, 0] / power[3]
    assert y_share_bin2 < 1e-3 and x_share_bin3 < 1e-3
    assert got.dominant_direction_deg()[3].item() == pytest.approx(90.0, abs=1.0)
    # bin 0 keeps the displacement at t = 0: a volume that starts at rest still does
    start = spectral.spectral_to_trajectories(matched, torch.zeros(1))
    torch.testing.assert_close(start, spectral.spectral_to_trajectories(volume, torch.zeros(1)), atol=1e-4, rtol=1e-4)
    anchored = _volume(spectral, spectral.anchor_start_frame(volume.coeffs))
    rested = spectral.spectral_to_trajectories(style.match_motion_statistics(anchored, reference), torch.zeros(1))
    assert rested.abs().max() < 1e-4


def test_almost_still_pixels_are_not_magnified_with_the_moving_ones(style, spectral, generator):
    """A sky the model stirs by 1% of the moving region's motion keeps about its own motion, while
    the moving region gets the clip's (here about 100x the power)."""
    coeffs = torch.randn(1, 6, 4, 24, 32, generator=generator)
    coeffs[..., 16:] *= 0.01
    volume = _volume(spectral, coeffs)
    reference = _volume(spectral, 10 * torch.randn(1, 6, 4, 24, 32, generator=generator))
    matched = style.match_motion_statistics(volume, reference)
    moving_gain = matched.coeffs[:, 1:, :, :, :16].norm() / volume.coeffs[:, 1:, :, :, :16].norm()
    still_change = (matched.coeffs[:, 1:, :, :, 16:] - volume.coeffs[:, 1:, :, :, 16:]).norm()
    assert moving_gain > 5.0
    assert still_change < 0.1 * volume.coeffs[:, 1:, :, :, 16:].norm()  # weight (0.01 a / level)^2 ~ 0.006


def test_strength_blends_and_sizes_and_frequencies_are_matched(style, spectral, generator):
    volume = _sampled_like(spectral, generator)
    reference = _reference(spectral, generator)
    unchanged = style.match_motion_statistics(volume, reference, strength=0.0)
    torch.testing.assert_close(unchanged.coeffs, volume.coeffs)
    # a clip at half the picture's size: its displacements count twice, its power four times
    small = reference.resized(12, 16)
    mask = style.moving_mask(volume)
    got = style.motion_statistics(style.match_motion_statistics(volume, small), mask).mean_power()
    want = style.motion_statistics(small).mean_power() * 4
    torch.testing.assert_close(got[1:], want[1:], rtol=2e-3, atol=1e-6)
    # a clip of twice the length at the same fps: its bin 2k has the volume's bin k frequency
    long = _volume(spectral, torch.randn(1, 11, 4, 24, 32, generator=generator), num_frames=96)
    got = style.motion_statistics(style.match_motion_statistics(volume, long), mask).mean_power()
    want = style.motion_statistics(long).mean_power()[0::2]
    torch.testing.assert_close(got[1:], want[1:], rtol=2e-3, atol=1e-6)


def test_matching_refuses_what_it_cannot_use(style, spectral, generator):
    volume = _sampled_like(spectral, generator)
    still = _volume(spectral, torch.zeros(1, 6, 4, 24, 32))
    with pytest.raises(spectral.MotionError, match="no moving pixels"):
        style.match_motion_statistics(volume, still)
    with pytest.raises(spectral.MotionError, match="strength"):
        style.match_motion_statistics(volume, volume, strength=1.5)
    # a volume that does not move stays still whatever the clip
    assert torch.count_nonzero(style.match_motion_statistics(still, volume).coeffs) == 0


def test_match_motion_statistics_node(pack, spectral, style, generator, comfy_shim):
    cls = pack.NODE_CLASS_MAPPINGS["GIDMatchMotionStatistics"]
    assert cls.CATEGORY == "GID/motion" and cls.DESCRIPTION
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["GIDMatchMotionStatistics"].startswith("GID ")
    assert all(spec[1]["tooltip"] for spec in cls.INPUT_TYPES()["required"].values())
    volume = _sampled_like(spectral, generator)
    before = volume.coeffs.clone()
    clip = two_region_clip(num_frames=40)
    (reference,) = node(pack, "GIDMotionFromVideo").extract(clip.frames, 24.0, 8, "dis", False, 0)
    (matched,) = node(pack, "GIDMatchMotionStatistics").match(volume, reference, 1.0)
    torch.testing.assert_close(volume.coeffs, before, atol=0, rtol=0)  # the input is not mutated
    assert torch.count_nonzero(matched.coeffs[..., 16:]) == 0
    # the clip's strongest bin (its 3 px sway at bin 3 = 1.8 Hz) is the matched volume's strongest
    mask = style.moving_mask(volume)
    power = style.motion_statistics(matched, mask).mean_power()
    clip_power = style.motion_statistics(reference).mean_power()
    assert int(clip_power[1:].argmax()) + 1 == 3
    assert volume.frequencies_hz()[int(power[1:].argmax()) + 1].item() == pytest.approx(1.8, abs=0.3)
    normalization = importlib.import_module("comfyui_gid.gid_models.normalization")
    normalized = normalization.normalize(reference, normalization.fit_normalization([reference]))
    with pytest.raises(ValueError, match="GIDMatchMotionStatistics.*Denormalize"):
        node(pack, "GIDMatchMotionStatistics").match(volume, normalized, 1.0)
    with pytest.raises(ValueError, match="GIDMatchMotionStatistics.*GID_SPECTRAL_VOLUME"):
        node(pack, "GIDMatchMotionStatistics").match(volume, "clip.mp4", 1.0)


@pytest.mark.parametrize("scale", [1, 2])
def test_a_looped_video_flows_from_its_last_frame_into_its_first(pack, scale, comfy_shim):
    """Loop a video: the clip's motion on its first frame (scale 1) or on a sharper still of the
    same scene at twice the size (scale 2; GIDRender resizes the motion to it)."""
    clip = two_region_clip(num_frames=40)
    (volume,) = node(pack, "GIDMotionFromVideo").extract(clip.frames, 24.0, 8, "dis", False, 0)
    period = volume.num_frames
    (motion, fps) = node(pack, "GIDSpectralToMotion").synthesize(volume, period + 1, 24.0, 1.5, 1.0)
    # one period of the motion: the displacement at t = T is the one at t = 0
    torch.testing.assert_close(motion.displacements[:, period], motion.displacements[:, 0], atol=1e-3, rtol=0)
    assert motion.displacements.abs().amax() > 1.0  # and it does move
    first = clip.frames[:1]
    still = torch.nn.functional.interpolate(first.movedim(-1, 1), scale_factor=scale, mode="bicubic").movedim(1, -1)
    (loop, _) = node(pack, "GIDSpectralToMotion").synthesize(volume, period, 24.0, 1.5, 1.0)
    frames, out_fps, _ = node(pack, "GIDRender").render(still.clamp(0, 1), loop)
    assert frames.shape == (period, 64 * scale, 96 * scale, 3) and out_fps == 24.0
    steps = (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))
    seam = (frames[0] - frames[-1]).abs().mean()
    assert seam <= 1.5 * steps.median()
    # a freeze mask holds its region still through the loop
    freeze = torch.zeros(1, 64 * scale, 96 * scale)
    freeze[:, : 32 * scale] = 1.0
    frozen, _, _ = node(pack, "GIDRender").render(still.clamp(0, 1), loop, freeze_mask=freeze)
    top = frozen[:, 4 * scale : 28 * scale, 8 * scale : 40 * scale]
    assert (top - top[:1]).abs().amax() < 0.02


def test_gid_transfer_picks_pixels_for_the_clips_scene_and_style_for_another(tmp_path, caplog):
    """`gid transfer --mode auto`: the clip's own first frame is looped pixel for pixel; another
    picture gets the motion model's volume with the clip's statistics (2 sampling steps here)."""
    import logging

    import cv2
    import numpy as np

    from gid_models.cli import main, same_scene
    from gid_models.video_io import read_video, write_video

    clip = two_region_clip(num_frames=40)
    clip_path = tmp_path / "clip.mp4"
    write_video(str(clip_path), clip.frames, 24.0)
    first = (clip.frames[0].numpy() * 255).round().astype(np.uint8)
    own = tmp_path / "own.png"
    cv2.imwrite(str(own), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), np.ascontiguousarray(255 - first[::-1]))  # another scene, same size
    frame = clip.frames[:1].movedim(-1, 1)
    assert same_scene(torch.nn.functional.interpolate(frame, scale_factor=3, mode="bicubic"), frame)
    assert not same_scene(1 - frame.flip(-2), frame)
    assert not same_scene(frame[..., :48], frame)  # another aspect ratio

    caplog.set_level(logging.INFO)
    looped = tmp_path / "loop.mp4"
    assert main(["transfer", str(clip_path), str(own), "--renderer", "pixel", "-o", str(looped)]) == 0
    assert "--mode pixels" in caplog.text
    frames, fps = read_video(str(looped))
    assert frames.shape == (40, 64, 96, 3) and fps == pytest.approx(24.0)

    caplog.clear()
    styled = tmp_path / "style.webp"
    code = main(["transfer", str(clip_path), str(other), "--renderer", "pixel", "--steps", "2", "--frames", "12",
                 "-o", str(styled)])
    assert code == 0 and styled.stat().st_size > 0
    assert "--mode style" in caplog.text and "as clip.mp4 moves" in caplog.text
    assert main(["transfer", str(clip_path), str(other), "--strength", "2", "-o", str(tmp_path / "x.mp4")]) == 2
    assert "--strength" in caplog.text
