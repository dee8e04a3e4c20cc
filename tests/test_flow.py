"""Motion from video: optical-flow trajectories, camera motion, spectral volumes, video files."""

import math
import os
import stat

import numpy as np
import pytest
import torch

from gid_models.flow import (
    FLOW_METHODS,
    camera_displacement,
    camera_shift_px,
    estimate_camera_motion,
    estimate_trajectories,
    spectral_volume_from_video,
)
from gid_models.spectral import MotionError
from gid_models.video_io import read_video, write_video
from synthetic_clips import two_region_clip


@pytest.fixture(scope="module")
def clip():
    return two_region_clip()


@pytest.fixture(scope="module")
def drifting_clip():
    t = torch.arange(64, dtype=torch.float32)
    shift = torch.stack([4.0 * t / 63, 1.5 * torch.sin(2 * math.pi * 1.3 * t / 64)], dim=1)
    return two_region_clip(camera_shift=shift)


def region_amplitudes(volume, clip, region_index):
    """Peak amplitude (pixels) along the region's direction at its bin, over its interior."""
    region, interior = clip.regions[region_index], clip.region_masks[region_index]
    modes = volume.complex_modes()[0]  # (K, 2, H, W)
    along = (modes[region.frequency_bin] * region.unit_direction().to(torch.complex64).view(2, 1, 1)).sum(0)
    return 2.0 * along.abs()[interior]


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_recovers_amplitude_and_frequency_bin(clip, method):
    result = spectral_volume_from_video(clip.frames, fps=30.0, num_frequencies=16, method=method)
    volume = result.volume
    assert volume.coeffs.shape == (1, 16, 4, 64, 96)
    assert volume.num_frames == 64 and volume.fps == 30.0
    magnitude = volume.complex_modes()[0].abs().square().sum(1).sqrt()  # (K, H, W)
    for index, region in enumerate(clip.regions):
        interior = clip.region_masks[index]
        assert int(magnitude[1:, interior].mean(1).argmax()) + 1 == region.frequency_bin
        amplitude = region_amplitudes(volume, clip, index).median().item()
        assert amplitude == pytest.approx(region.amplitude, rel=0.10)
    static = magnitude[1:, clip.static_mask]
    assert 2.0 * static.max().item() < 0.1
    assert result.warnings == [] and result.max_camera_shift_px < 1.0


def test_trajectories_start_at_zero_and_report_progress(clip):
    steps = []
    trajectories = estimate_trajectories(clip.frames[:8], callback=lambda step, total: steps.append((step, total)))
    assert trajectories.shape == (1, 8, 2, 64, 96) and trajectories.dtype == torch.float32
    assert torch.count_nonzero(trajectories[0, 0]) == 0
    assert steps == [(index, 8) for index in range(8)]
    uint8 = (clip.frames[:8].numpy() * 255).round().astype(np.uint8)
    torch.testing.assert_close(estimate_trajectories(uint8), trajectories)


def test_camera_motion_is_reported_and_removed(drifting_clip):
    truth = (drifting_clip.camera_shift - drifting_clip.camera_shift[0]).view(-1, 2, 1, 1)
    kept = spectral_volume_from_video(drifting_clip.frames, fps=30.0)
    assert kept.max_camera_shift_px > 3.5 and "camera moves" in kept.warnings[0]
    assert "enable remove_camera_motion" in kept.warnings[0]
    fitted = camera_displacement(kept.camera_motion, 64, 96)
    assert (fitted - truth).norm(dim=1).mean().item() < 0.25
    static_before = kept.trajectories[0].norm(dim=1)[:, drifting_clip.static_mask].mean().item()
    assert static_before > 1.0

    removed = spectral_volume_from_video(drifting_clip.frames, fps=30.0, remove_camera_motion=True)
    assert "subtracted" in removed.warnings[0]
    static_after = removed.trajectories[0].norm(dim=1)[:, drifting_clip.static_mask]
    assert static_after.mean().item() < 0.2
    for index, region in enumerate(drifting_clip.regions):
        amplitude = region_amplitudes(removed.volume, drifting_clip, index).median().item()
        assert amplitude == pytest.approx(region.amplitude, rel=0.15)


def test_camera_fit_is_exact_for_a_pure_translation_and_zoom():
    height, width = 40, 60
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    trajectories = torch.zeros(1, 3, 2, height, width)
    trajectories[0, 1, 0], trajectories[0, 1, 1] = 2.5, -1.0
    zoom = 0.02
    trajectories[0, 2, 0] = zoom * (xs - 30)
    trajectories[0, 2, 1] = zoom * (ys - 20)
    motion = estimate_camera_motion(trajectories)
    assert motion.shape == (3, 2, 3)
    torch.testing.assert_close(camera_displacement(motion, height, width), trajectories[0], atol=1e-3, rtol=0)
    shifts = camera_shift_px(motion, height, width)
    assert shifts[0].item() == pytest.approx(0.0, abs=1e-5)
    assert shifts[1].item() == pytest.approx(math.hypot(2.5, 1.0), abs=1e-3)
    assert shifts[2].item() == pytest.approx(zoom * math.hypot(30, 20), abs=1e-3)


def test_short_clips_and_bad_frames_are_refused(clip):
    with pytest.raises(MotionError, match="at least 32 frames"):
        spectral_volume_from_video(clip.frames[:31], fps=30.0, num_frequencies=16)
    assert spectral_volume_from_video(clip.frames[:8], fps=30.0, num_frequencies=4).volume.num_frequencies == 4
    bad = clip.frames[:4].clone()
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(MotionError, match="NaN"):
        estimate_trajectories(bad)
    with pytest.raises(MotionError, match="unknown optical flow method"):
        estimate_trajectories(clip.frames[:4], method="raft")


@pytest.mark.parametrize("suffix", [".mp4", ".webp", ".gif"])
def test_video_round_trip(tmp_path, clip, suffix):
    frames = clip.frames[:12, :63, :95]  # odd size: mp4 crops to 94x62
    path = tmp_path / f"clip{suffix}"
    write_video(path, frames, fps=24.0)
    assert path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left behind
    if suffix == ".mp4":
        decoded, fps = read_video(path, max_frames=10)
        assert decoded.shape == (10, 62, 94, 3) and decoded.dtype == np.uint8 and fps == pytest.approx(24.0)
        original = (frames[:10, :62, :94].numpy() * 255).astype(np.float32)
        assert np.abs(decoded.astype(np.float32) - original).mean() < 12.0
    else:
        from PIL import Image

        with Image.open(path) as animation:
            assert animation.n_frames == 12 and animation.info.get("loop") == 0


def test_mp4_encoder_probing_leaves_opencv_logging_as_it_was(tmp_path):
    """OpenCV's log is silenced only while an encoder is probed (its missing-encoder '[ERROR]' is
    not an error for the user), then restored, whatever it was."""
    import cv2

    previous = cv2.utils.logging.getLogLevel()
    try:
        for level in (cv2.utils.logging.LOG_LEVEL_WARNING, cv2.utils.logging.LOG_LEVEL_DEBUG):
            cv2.utils.logging.setLogLevel(level)
            write_video(tmp_path / "quiet.mp4", np.full((3, 8, 8, 3), 128, np.uint8), 10.0)  # grey: black is refused
            assert cv2.utils.logging.getLogLevel() == level and (tmp_path / "quiet.mp4").stat().st_size > 0
    finally:
        cv2.utils.logging.setLogLevel(previous)


def test_written_videos_get_ordinary_file_permissions(tmp_path):
    frames = np.full((2, 8, 8, 3), 128, np.uint8)  # grey: the writer refuses all-black videos
    umask = os.umask(0o022)
    try:
        write_video(tmp_path / "new.gif", frames, 24.0)
        assert stat.S_IMODE((tmp_path / "new.gif").stat().st_mode) == 0o644  # not mkstemp's 0600
        os.chmod(tmp_path / "new.gif", 0o640)
        write_video(tmp_path / "new.gif", frames, 24.0)  # replacing a file keeps its mode
        assert stat.S_IMODE((tmp_path / "new.gif").stat().st_mode) == 0o640
    finally:
        os.umask(umask)


def test_video_errors_are_clear(tmp_path):
    with pytest.raises(MotionError, match="does not exist"):
        read_video(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MotionError, match="empty.mp4"):
        read_video(empty)
    with pytest.raises(MotionError, match=".mp4, .webp or .gif"):
        write_video(tmp_path / "out.avi", np.zeros((2, 8, 8, 3), np.uint8), 24.0)
    assert not (tmp_path / "out.avi").exists()


def test_remove_drift_brings_every_trajectory_back_to_its_start(drifting_clip):
    """A clip that drifts 4 px over its 64 frames: without remove_drift the last frame is 4 px from
    the first, so a loop jumps where it wraps; with it the wrap is one ordinary step, and the
    oscillation of the moving regions is kept."""
    kept = spectral_volume_from_video(drifting_clip.frames, fps=30.0)
    looped = spectral_volume_from_video(drifting_clip.frames, fps=30.0, remove_drift=True)
    static = drifting_clip.static_mask
    kept_t, looped_t = kept.trajectories[0], looped.trajectories[0]  # (T, 2, H, W) px
    wrap_kept = (kept_t[-1] - kept_t[0]).norm(dim=0)[static].mean().item()
    wrap_looped = (looped_t[-1] - looped_t[0]).norm(dim=0)[static].mean().item()
    steps = (looped_t[1:] - looped_t[:-1]).norm(dim=1)[:, static].mean().item()
    assert wrap_kept > 3.0 and wrap_looped < max(0.2, 2 * steps)
    for index, region in enumerate(drifting_clip.regions):
        amplitude = region_amplitudes(looped.volume, drifting_clip, index).median().item()
        assert amplitude == pytest.approx(region.amplitude, rel=0.25)
