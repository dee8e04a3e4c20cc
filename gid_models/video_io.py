"""Reading and writing video files: OpenCV reads every container; mp4 is written as H.264 with
PyAV when it is importable (ComfyUI installs it; `pip install av` otherwise), else with OpenCV
('avc1' where its FFmpeg has that encoder, else 'mp4v', which browsers do not play); webp and gif
are written with Pillow.

Frames travel as (T, H, W, 3) RGB arrays: uint8 when read, uint8 or float 0..1 (numpy or torch)
when written. Writers never leave a half-written file behind: they write to a temporary name in
the target folder and rename it into place once the file is complete and non-empty.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch

from .checks import check_fps, check_rendered_frames
from .spectral import MotionError

LOGGER = logging.getLogger(__name__)

PILLOW_FORMATS = {".webp": "WEBP", ".gif": "GIF"}
MP4_CODECS = ("avc1", "mp4v")  # OpenCV's, in order of preference, when PyAV is missing
H264_CRF = 18  # x264 quality: 18 is visually lossless for most footage (23 is x264's default)


def read_video(
    path: str | os.PathLike, max_frames: int | None = None, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, float]:
    """Decode a video file.

    max_frames: keep at most this many frames from the start (None or 0 = all).
    size: (width, height) in pixels to resize every frame to (area interpolation), or None.
    Returns (frames (T, H, W, 3) uint8 RGB, fps frames/s). A file that reports no frame rate gets
    30 fps with a logged warning.
    """
    path = Path(path)
    if not path.is_file():
        raise MotionError(f"video file '{path}' does not exist; check the path.")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise MotionError(f"cannot open '{path}' as a video; use an mp4/avi/mov/webm file OpenCV can decode.")
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        frames: list[np.ndarray] = []
        while not max_frames or len(frames) < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            if size is not None:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise MotionError(f"'{path}' holds no decodable frames; the file is empty or damaged.")
    if not (0.0 < fps < 1000.0):
        LOGGER.warning("%s reports no usable frame rate (%r); assuming 30 fps", path, fps)
        fps = 30.0
    return np.stack(frames), fps


def fit_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T, h, w, 3) uint8 -> (T, height, width, 3): centre crop to the output aspect ratio, then
    area resize (how `gid eval` and the renderer's window pairs bring clips to 256x160)."""
    src_h, src_w = frames.shape[1:3]
    if src_w / src_h > width / height:
        crop_w, crop_h = round(src_h * width / height), src_h
    else:
        crop_w, crop_h = src_w, round(src_w * height / width)
    x0, y0 = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    return np.stack([
        cv2.resize(np.ascontiguousarray(f[y0 : y0 + crop_h, x0 : x0 + crop_w]), (width, height), interpolation=cv2.INTER_AREA)
        for f in frames
    ])


def _to_uint8_frames(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """(T, H, W, 3) float 0..1 or uint8, numpy or torch -> (T, H, W, 3) uint8 numpy."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu()
        if frames.dtype != torch.uint8:
            frames = (frames.float().clamp(0, 1) * 255.0).round().to(torch.uint8)
        frames = frames.numpy()
    elif frames.dtype != np.uint8:
        frames = (np.clip(frames.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise MotionError(f"frames to write must be (T, H, W, 3) with T >= 1, got {tuple(frames.shape)}.")
    return np.ascontiguousarray(frames)


def _even_size(frames: np.ndarray) -> np.ndarray:
    """Crop a row and/or column so height and width are even (H.264 needs it)."""
    height, width = frames.shape[1:3]
    even_h, even_w = height - height % 2, width - width % 2
    if (even_h, even_w) == (height, width):
        return frames
    if even_h == 0 or even_w == 0:
        raise MotionError(f"frames of {width}x{height} pixels are too small for an mp4 file.")
    LOGGER.info("cropped frames from %dx%d to %dx%d: mp4 needs even sizes", width, height, even_w, even_h)
    return np.ascontiguousarray(frames[:, :even_h, :even_w])


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log (its '[ERROR] ... Failed to initialize VideoWriter' when probing an
    encoder it lacks) for the duration, then restore the previous level."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _write_h264_pyav(path: Path, frames: np.ndarray, fps: float) -> bool:
    """Write (T, H, W, 3) uint8 RGB frames of even size as an H.264 (yuv420p) mp4 with PyAV, the
    format browsers play; False when PyAV is not importable or has no H.264 encoder."""
    try:
        import av
    except ImportError:
        return False
    try:
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("h264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            stream.options = {"crf": str(H264_CRF)}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())  # flush the encoder's delayed frames
    except (av.FFmpegError, ValueError) as error:  # e.g. a PyAV build without an H.264 encoder
        LOGGER.info("PyAV could not write H.264 (%s); writing the mp4 with OpenCV", error)
        return False
    return True


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    frames = _even_size(frames)
    if _write_h264_pyav(path, frames, fps):
        return
    height, width = frames.shape[1:3]
    for codec in MP4_CODECS:
        with _quiet_opencv():  # a missing encoder is expected and logged below, not an error for the user
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
        if not writer.isOpened():
            writer.release()
            LOGGER.info("OpenCV has no '%s' encoder here; trying the next codec", codec)
            continue
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
        if path.is_file() and path.stat().st_size > 0:
            if codec == "mp4v":
                LOGGER.warning("wrote the mp4 as MPEG-4 part 2 ('mp4v'), which web browsers do not play; install PyAV "
                               "(`pip install av`) to write H.264")
            return
        LOGGER.info("codec '%s' produced an empty file; trying the next codec", codec)
    raise MotionError(f"OpenCV could not encode an mp4 with any of {MP4_CODECS}; write .webp or .gif instead.")


def _write_animated(path: Path, frames: np.ndarray, fps: float, pillow_format: str) -> None:
    from PIL import Image

    pictures = [Image.fromarray(frame) for frame in frames]
    duration_ms = max(1, int(round(1000.0 / fps)))
    options = {"lossless": False, "quality": 90} if pillow_format == "WEBP" else {"optimize": False}
    pictures[0].save(
        path, format=pillow_format, save_all=True, append_images=pictures[1:],
        duration=duration_ms, loop=0, **options,
    )


def write_video(path: str | os.PathLike, frames: np.ndarray | torch.Tensor, fps: float) -> None:
    """Write frames (T, H, W, 3), float 0..1 or uint8, numpy or torch, as a video at fps frames/s.

    .mp4 is H.264 through PyAV when it is importable, else OpenCV's 'avc1' or 'mp4v' (odd sizes
    are cropped by one pixel); .webp and .gif are animated with Pillow and loop forever.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != ".mp4" and suffix not in PILLOW_FORMATS:
        raise MotionError(f"cannot write '{path.name}': use a .mp4, .webp or .gif file name.")
    check_fps(fps, "fps")  # an infinite rate would spin in the encoder
    check_rendered_frames(frames, f"the video for '{path.name}'")  # no NaN or black video is ever written
    pixels = _to_uint8_frames(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=suffix, dir=path.parent)
    os.close(handle)
    temp_path = Path(temp_name)
    try:
        if suffix == ".mp4":
            _write_mp4(temp_path, pixels, fps)
        else:
            _write_animated(temp_path, pixels, fps, PILLOW_FORMATS[suffix])
        if temp_path.stat().st_size == 0:
            raise MotionError(f"writing '{path}' produced an empty file.")
        # mkstemp makes the file private (0600); give it the mode a plain open() would have, or
        # keep the mode of the file it replaces
        os.chmod(temp_path, path.stat().st_mode & 0o7777 if path.exists() else _new_file_mode())
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


def _new_file_mode() -> int:
    """0o666 less the process umask: the permissions open() gives a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
"""File endings read as videos wherever clips are listed (lower case)."""


def find_video_files(items: Sequence[str | Path]) -> list[Path]:
    """Video files among the given files and folders (a folder's videos, searched recursively, sorted by path)."""
    clips: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            clips.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()))
        elif item.is_file():
            clips.append(item)
        else:
            raise MotionError(f"'{item}' is neither a video file nor a folder.")
    return clips
