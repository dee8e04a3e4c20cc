"""The `gid` command line end to end on small inputs (same code paths as the nodes)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from gid_models.cli import main
from gid_models.video_io import read_video, write_video
from gid_models.volume_io import load_volume
from synthetic_clips import two_region_clip


@pytest.fixture(scope="module")
def clip_and_picture(tmp_path_factory):
    """A 96x64 synthetic clip with two oscillating regions, and its first frame as a picture."""
    import cv2

    folder = tmp_path_factory.mktemp("cli")
    clip = two_region_clip(num_frames=48)
    clip_path = folder / "clip.mp4"
    write_video(str(clip_path), clip.frames, 24.0)
    picture_path = folder / "picture.png"
    first = (clip.frames[0].numpy() * 255).round().astype(np.uint8)
    cv2.imwrite(str(picture_path), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
    return clip_path, picture_path


def test_animate_loop_writes_a_video_whose_last_frame_flows_into_the_first(clip_and_picture, tmp_path):
    clip_path, picture_path = clip_and_picture
    out = tmp_path / "loop.mp4"
    code = main(["animate", str(picture_path), "--loop", "--frames", "24", "--fps", "24",
                 "--motion-from", str(clip_path), "--gain", "2", "-o", str(out)])
    assert code == 0 and out.stat().st_size > 0
    frames, fps = read_video(str(out))
    assert frames.shape == (24, 64, 96, 3) and fps == pytest.approx(24.0)
    frames = frames.astype(np.float32)
    seam = np.abs(frames[-1] - frames[0]).mean()
    steps = [np.abs(frames[i + 1] - frames[i]).mean() for i in range(len(frames) - 1)]
    # one period: the wrap from the last frame to the first is an ordinary step, not a jump
    assert seam <= 2.0 * max(steps)
    assert max(steps) > 0.3  # and it actually moves


def test_extract_and_transfer(clip_and_picture, tmp_path):
    clip_path, picture_path = clip_and_picture
    volume_path = tmp_path / "volume.safetensors"
    assert main(["extract", str(clip_path), "-o", str(volume_path)]) == 0
    volume = load_volume(str(volume_path))
    assert volume.coeffs.shape == (1, 16, 4, 64, 96) and volume.num_frames == 48 and volume.fps == 24.0
    out = tmp_path / "transfer.webp"
    assert main(["transfer", str(clip_path), str(picture_path), "-o", str(out)]) == 0
    assert out.stat().st_size > 0


def test_poke_moves_the_poked_region(clip_and_picture, tmp_path):
    clip_path, picture_path = clip_and_picture
    out = tmp_path / "poke.mp4"
    code = main(["poke", str(picture_path), "--at", "24,32", "--drag", "4,0", "--frames", "30",
                 "--motion-from", str(clip_path), "-o", str(out)])
    assert code == 0
    frames, _ = read_video(str(out))
    change = np.abs(frames.astype(np.float32) - frames[:1].astype(np.float32)).mean(axis=(0, 3))
    assert change[20:44, 10:38].mean() > 3 * change[44:, 50:].mean()


def test_cli_quiets_ffmpeg_encoder_probing_unless_the_user_set_a_level(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    main(["animate", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "x.mp4")])
    assert os.environ["OPENCV_FFMPEG_LOGLEVEL"] == "-8"
    monkeypatch.setenv("OPENCV_FFMPEG_LOGLEVEL", "32")
    main(["animate", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "x.mp4")])
    assert os.environ["OPENCV_FFMPEG_LOGLEVEL"] == "32"


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path, caplog):
    assert main(["animate", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "x.mp4")]) == 2
    assert "cannot read picture" in caplog.text
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(SystemExit):
        main(["poke", "p.jpg", "--at", "nonsense", "--drag", "1,1", "-o", "x.mp4"])


def test_renderer_option_picks_the_pixel_renderer_or_a_weights_file(clip_and_picture, tmp_path, caplog):
    import torch

    from gid_models.rendering import NeuralRenderer

    clip_path, picture_path = clip_and_picture
    network = NeuralRenderer(channels=(8, 12))
    torch.nn.init.constant_(network.head.bias, 0.2)  # a visible brightening over the pixel renderer
    weights = tmp_path / "renderer_mine.safetensors"
    network.save(weights)
    videos = {}
    for choice in ("pixel", str(weights)):
        out = tmp_path / f"{len(videos)}.mp4"
        assert main(["transfer", str(clip_path), str(picture_path), "--renderer", choice, "-o", str(out)]) == 0
        videos[choice] = read_video(str(out))[0].astype(np.float32)
    brightening = (videos[str(weights)] - videos["pixel"]).mean()
    assert 0.15 * 255 < brightening < 0.25 * 255

    missing = tmp_path / "nope.safetensors"
    assert main(["animate", str(picture_path), "--renderer", str(missing), "-o", str(tmp_path / "x.mp4")]) == 2
    assert "--renderer" in caplog.text and "nope.safetensors" in caplog.text
    assert not (tmp_path / "x.mp4").exists()
