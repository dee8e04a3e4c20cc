"""Video files: mp4 is H.264 (what browsers play) when PyAV is importable, OpenCV's codec otherwise."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from gid_models.video_io import read_video, write_video


def ramp_frames(count: int = 12, height: int = 32, width: int = 48) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a grey ramp brightening over time."""
    ramp = np.linspace(30, 200, width, dtype=np.float32)[None, None, :, None]
    levels = np.arange(count, dtype=np.float32)[:, None, None, None] * 3
    return np.broadcast_to(ramp + levels, (count, height, width, 3)).round().astype(np.uint8)


def test_mp4_is_h264_when_pyav_is_installed(tmp_path):
    av = pytest.importorskip("av")
    frames = ramp_frames()
    path = tmp_path / "clip.mp4"
    write_video(path, frames, 24.0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 24
    decoded, fps = read_video(path)  # OpenCV reads it back, as the CLI tests and the nodes do
    assert decoded.shape == frames.shape and fps == pytest.approx(24.0)
    assert np.abs(decoded.astype(np.float32) - frames).mean() < 2.0


def test_mp4_falls_back_to_opencv_without_pyav(tmp_path, monkeypatch, caplog):
    import cv2

    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    frames = ramp_frames()
    path = tmp_path / "clip.mp4"
    with caplog.at_level("WARNING"):
        write_video(path, frames, 30.0)
    fourcc = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    # OpenCV's H.264 where its FFmpeg has the encoder; else MPEG-4 part 2 (read back as FMP4),
    # with the advice to install PyAV
    assert fourcc == "avc1" or (fourcc in ("mp4v", "FMP4") and "install PyAV" in caplog.text)
    decoded, fps = read_video(path)
    assert decoded.shape == frames.shape and fps == pytest.approx(30.0)
    assert np.abs(decoded.astype(np.float32) - frames).mean() < 4.0
