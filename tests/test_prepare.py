"""Training data: cut detection, window selection, crops, shards and the dataset."""

import math

import cv2
import numpy as np
import pytest
import torch

from gid_models.spectral import SpectralVolume, spectral_to_trajectories, trajectories_to_spectral
from gid_models.train.clips import find_clips
from gid_models.train.prepare import PrepareConfig, crop_boxes, run
from gid_models.train.shards import ShardWriter, SpectralShardDataset, flip_horizontal, load_mean_power, reverse_time
from gid_models.train.shots import Shot, WindowThresholds, detect_cuts, judge_window, split_shots, window_starts


def textured_frames(seed, frames, height, width, amplitude=0.0, period=16, moving=None):
    """(T, H, W, 3) uint8: a smooth random texture; pixels in `moving` (y0, y1, x0, x1) sway in x."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(0, 255, (height // 4, width // 4, 3)).astype(np.float32), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for t in range(frames):
        shift = np.zeros((height, width), np.float32)
        if moving is not None:
            y0, y1, x0, x1 = moving
            shift[y0:y1, x0:x1] = amplitude * math.sin(2 * math.pi * t / period)
        out.append(cv2.remap(base, xs - shift, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def test_cut_detection_finds_the_cut_and_nothing_else():
    first = textured_frames(0, 20, 48, 64, amplitude=2.0, moving=(10, 40, 10, 50))
    second = textured_frames(1, 15, 48, 64, amplitude=2.0, moving=(5, 30, 20, 60))
    assert detect_cuts(np.concatenate([first, second])) == [20]
    assert detect_cuts(first) == []
    assert split_shots(35, [20]) == [Shot(0, 20), Shot(20, 35)]


def test_window_starts_every_stride_and_short_shots():
    assert window_starts(Shot(5, 60), 32, 10, 32) == ([5, 15, 25], 32)
    assert window_starts(Shot(0, 20), 32, 10, 16) == ([0], 20)  # short shot, shorter T allowed
    assert window_starts(Shot(0, 20), 32, 10, 32) == ([], 0)


def trajectories(kind, frames=64, height=20, width=32):
    """(1, T, 2, H, W) test trajectories of one kind of motion."""
    t = torch.arange(frames, dtype=torch.float32).view(-1, 1, 1)
    sway = 2.0 * torch.sin(2 * math.pi * 4 * t / frames)
    out = torch.zeros(1, frames, 2, height, width)
    if kind == "sway":
        out[0, :, 0, 5:15, 8:24] = sway
    elif kind == "walker":  # a small walker beside swaying plants: kept, walker masked out
        out[0, :, 0, 5:15, 2:12] = sway
        out[0, :, 0, 8:14, 22:28] = 0.3 * t  # 19 px over the window, one direction
    elif kind == "crowd":  # walkers everywhere
        out[0, :, 0, :, :] = 0.3 * t
        out[0, :, 0, 14:, 20:] = 0.0
        out[0, :, 0, 15:19, 22:30] = sway
    elif kind == "pan":
        out[0, :, 0] = 0.1 * t  # the whole picture drifts
        out[0, :, 0, 5:15, 8:24] += sway
    elif kind == "tiny":
        out[0, :, 0, 5:15, 8:24] = 0.01 * sway
    return out


@pytest.mark.parametrize(
    "kind, code",
    [("sway", "kept"), ("walker", "kept"), ("crowd", "drift"), ("pan", "camera"), ("tiny", "still")],
)
def test_window_judgement_and_reason(kind, code):
    from gid_models.flow import estimate_camera_motion

    motion = trajectories(kind)
    # a crowd moving everywhere looks like camera motion to any global fit; say the camera is still
    camera = torch.eye(2, 3).expand(64, 2, 3) if kind == "crowd" else estimate_camera_motion(motion)
    decision, stats, mask = judge_window("clip.mp4", 0, motion, camera, WindowThresholds())
    assert decision.code == code, decision.reason
    assert decision.kept == (code == "kept") and decision.reason and mask.shape == (20, 32)
    if kind == "walker":
        assert not mask[10, 25] and mask[10, 6]  # the walker is masked out, the swaying plant kept
        assert 0.05 < decision.drift_area < 0.3


def test_crop_boxes_keep_the_output_aspect_and_stay_inside():
    boxes = crop_boxes(288, 512, (256, 160), (1.0, 0.6), max_per_scale=4)
    assert len(boxes) == 1 + 4
    full = boxes[0]
    assert (full.width, full.height) == (461, 288)
    for box in boxes:
        assert abs(box.width / box.height - 1.6) < 0.02
        assert box.x0 >= 0 and box.y0 >= 0 and box.x0 + box.width <= 512 and box.y0 + box.height <= 288


def test_flip_and_time_reversal_are_exact_motion_transforms(generator):
    t = torch.arange(32, dtype=torch.float32).view(1, -1, 1, 1, 1)
    phase = torch.rand(1, 1, 2, 6, 8, generator=generator) * 6.28
    traj = 2.0 * torch.cos(2 * math.pi * 3 * t / 32 + phase)
    volume = trajectories_to_spectral(traj, fps=24.0, num_frequencies=4)
    image = torch.rand(3, 6, 8, generator=generator)
    flipped_image, flipped, _ = flip_horizontal(image, volume.coeffs[0], torch.ones(1, 6, 8))
    motion = spectral_to_trajectories(SpectralVolume(flipped[None], 32, 24.0))
    torch.testing.assert_close(flipped_image, image.flip(-1))
    torch.testing.assert_close(motion[:, :, 0], -traj[:, :, 0].flip(-1), atol=1e-4, rtol=0)
    torch.testing.assert_close(motion[:, :, 1], traj[:, :, 1].flip(-1), atol=1e-4, rtol=0)
    backwards = spectral_to_trajectories(SpectralVolume(reverse_time(volume.coeffs[0])[None], 32, 24.0))
    torch.testing.assert_close(backwards[:, 1:], traj[:, 1:].flip(1), atol=1e-4, rtol=0)


def test_shard_writer_round_trip_and_mean_power(tmp_path, generator):
    with ShardWriter(tmp_path, examples_per_shard=2) as writer:
        for i in range(3):
            coeffs = torch.randn(4, 4, 10, 12, generator=generator)
            writer.add(torch.rand(3, 10, 12, generator=generator), coeffs, num_frames=32 + i, fps=24.0,
                       source=f"clip{i}.mp4", start_frame=10 * i, augmentation="scale=1")
    assert [p.name for p in writer.paths] == ["shard-00000.safetensors", "shard-00001.safetensors"]
    dataset = SpectralShardDataset(tmp_path)
    assert len(dataset) == 3
    item = dataset[2]
    assert item["coeffs"].dtype == torch.float32 and item["coeffs"].shape == (4, 4, 10, 12)
    assert (item["num_frames"], item["fps"]) == (34, 24.0)
    assert dataset.records[2]["source"] == "clip2.mp4" and dataset.records[2]["start_frame"] == 20
    assert load_mean_power(tmp_path).shape == (4, 2)
    first = load_mean_power(tmp_path)
    with ShardWriter(tmp_path) as writer:  # more shards into the same folder: numbering and spectrum go on
        writer.add(torch.zeros(3, 10, 12), torch.zeros(4, 4, 10, 12), num_frames=32, fps=24.0, source="still.mp4",
                   start_frame=0)
    assert [p.name for p in writer.paths] == ["shard-00002.safetensors"] and len(SpectralShardDataset(tmp_path)) == 4
    torch.testing.assert_close(load_mean_power(tmp_path), first * 3 / 4)


def test_prepare_tiny_clip_to_shards_to_dataset(tmp_path):
    from gid_models.video_io import write_video

    frames = textured_frames(3, 40, 48, 64, amplitude=2.0, period=16, moving=(8, 40, 12, 52))
    clip = tmp_path / "clips" / "sway.mp4"
    write_video(clip, frames, 24.0)
    config = PrepareConfig(num_frames=32, stride=8, num_frequencies=4, size=(48, 32), scales=(1.0, 0.7),
                           max_crops_per_scale=2, flow_width=64)
    paths, decisions = run(find_clips([str(clip.parent)], "train"), tmp_path / "shards", config)
    windows = [d for d in decisions if not d.crop]
    assert [d.start for d in windows] == [0, 8]  # 40 frames, T=32, a start every 8 frames
    assert all(d.kept for d in windows), [d.reason for d in windows]
    dataset = SpectralShardDataset(paths)
    assert len(dataset) == 2 * 3  # one full crop + two at scale 0.7 per window
    item = dataset[0]
    assert item["image"].shape == (3, 32, 48) and 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["coeffs"].shape == (4, 4, 32, 48) and item["mask"].shape == (1, 32, 48)
    assert (item["num_frames"], item["fps"]) == (32, 24.0)
    # the patch sways 2 px at period 16 frames = bin 2 of T=32: |c_2| = 1 px, times the full crop's
    # resize factor 48/64; the static corner does not move
    x_bin2 = torch.complex(item["coeffs"][2, 0], item["coeffs"][2, 1]).abs()
    assert x_bin2[18, 24].item() == pytest.approx(0.75, abs=0.15)
    assert x_bin2[1, 1].item() < 0.1
    assert all(r["num_frames"] == 32 and r["augmentation"].startswith("scale=") for r in dataset.records)
    assert (tmp_path / "shards" / "prepare_log.jsonl").is_file()


def test_validation_clips_are_skipped_by_default(tmp_path):
    for name in ("bbb_02196_02392.mp4", "bbb_00380_00551.mp4"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in find_clips([str(tmp_path)], "train")] == ["bbb_00380_00551.mp4"]
    assert len(find_clips([str(tmp_path)], "all")) == 2


def test_tracking_mismatch_flags_pixels_something_walks_over():
    from gid_models.flow import estimate_trajectories
    from gid_models.train.shots import tracking_mismatch

    frames = textured_frames(4, 24, 48, 64, amplitude=1.5, period=8, moving=(8, 40, 8, 30))
    frames[8:, 10:30, 40:60] = (200, 30, 30)  # a red character steps in front of the background
    mismatch = tracking_mismatch(frames, estimate_trajectories(frames), tolerance=24.0)
    assert mismatch[20, 50].item() > 0.5  # covered from frame 8 of 24 on
    assert mismatch[24, 18].item() < 0.1  # the swaying patch is tracked
    assert mismatch[42, 50].item() < 0.1  # untouched background
