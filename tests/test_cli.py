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
    av = pytest.importorskip("av")
    with av.open(str(out)) as container:  # what web browsers play
        assert container.streams.video[0].codec_context.name == "h264"


def test_extract_and_transfer(clip_and_picture, tmp_path):
    clip_path, picture_path = clip_and_picture
    volume_path = tmp_path / "volume.safetensors"
    assert main(["extract", str(clip_path), "-o", str(volume_path)]) == 0
    volume = load_volume(str(volume_path))
    assert volume.coeffs.shape == (1, 16, 4, 64, 96) and volume.num_frames == 48 and volume.fps == 24.0
    # the fixed-camera clip has next to no camera motion to remove: about the same volume
    assert main(["extract", str(clip_path), "--remove-camera-motion", "-o", str(volume_path)]) == 0
    steadied = load_volume(str(volume_path)).coeffs
    assert (steadied - volume.coeffs).abs().mean() < 0.1 * volume.coeffs.abs().mean()
    out = tmp_path / "transfer.webp"
    assert main(["transfer", str(clip_path), str(picture_path), "-o", str(out)]) == 0
    assert out.stat().st_size > 0


@pytest.mark.parametrize("max_side", [96, 48])
def test_poke_moves_the_poked_region(clip_and_picture, tmp_path, max_side):
    """--at and --drag are pixels of the picture file, also when --max-side shrinks the picture."""
    clip_path, picture_path = clip_and_picture
    out = tmp_path / "poke.mp4"
    code = main(["poke", str(picture_path), "--at", "24,32", "--drag", "4,0", "--frames", "30",
                 "--max-side", str(max_side), "--motion-from", str(clip_path), "-o", str(out)])
    assert code == 0
    frames, _ = read_video(str(out))
    scale = max_side / 96  # output pixels per file pixel
    assert frames.shape[1:3] == (round(64 * scale), round(96 * scale))
    change = np.abs(frames.astype(np.float32) - frames[:1].astype(np.float32)).mean(axis=(0, 3))
    rows, columns = (round(v * scale) for v in (20, 44)), (round(v * scale) for v in (10, 38))
    poked = change[slice(*rows), slice(*columns)]
    far = change[round(44 * scale) :, round(50 * scale) :]
    assert poked.mean() > 3 * far.mean()


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


def test_progress_bars_are_closed_when_a_step_fails():
    from tqdm import tqdm

    from gid_models.cli import progress

    with pytest.raises(RuntimeError, match="boom"):
        with progress("render", unit="frame") as callback:
            callback(0, 3)
            raise RuntimeError("boom")
    assert not list(tqdm._instances)  # no bar left open (tqdm's own registry of open bars)


def test_help_gives_every_option_a_unit_or_meaning_and_its_default():
    from gid_models.cli import BUNDLED_POKE, build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("animate", "poke", "transfer", "extract"):
        for action in commands[name]._actions:
            if action.dest == "help":
                continue
            assert action.help, f"gid {name} {action.option_strings or action.dest} has no help"
            if action.option_strings and not action.required and action.dest != "output":
                assert "default" in action.help, f"gid {name} {action.option_strings} does not give its default"
    poke_help = commands["poke"].format_help()
    assert " ".join(BUNDLED_POKE.split()) in " ".join(poke_help.split()) and "13" in poke_help
