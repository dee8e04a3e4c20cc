"""Argument checks shared by the `gid` command line and the ComfyUI nodes.

Everything the arguments alone decide is checked here, before any slow step (sampling, optical
flow, rendering): numbers that must be finite and in range, output paths that must be writable,
of a supported kind and not one of the inputs, pictures too small to animate, points outside the
picture. Every error is a MotionError whose message names the option (or node input) that is
wrong, what it got and how to fix it; callers put the node's name or nothing in front.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from .spectral import MotionError

VIDEO_OUTPUT_SUFFIXES = (".mp4", ".webp", ".gif")
VOLUME_OUTPUT_SUFFIXES = (".safetensors",)
# Smallest picture side (pixels) that is animated: below it optical flow (OpenCV needs ~12 px per
# pyramid level) and the motion model's 8x latent grid have nothing left to work on.
MIN_PICTURE_SIDE = 16
MAX_FPS = 1000.0  # what read_video accepts from a file; the nodes stop at 240
MIN_FPS = 0.1  # one frame every 10 s; below it a GIF's frame time overflows its 16-bit field
MAX_FRAMES = 10_000  # the nodes' widget limit (5.5 minutes at 30 fps)
MAX_GAIN = 1_000.0
MAX_SEED = 2**64 - 1  # what a torch.Generator accepts
PROBE_FRAMES = 64  # frames counted by decoding when a video's header does not say
# A drag longer than this many picture sizes pulls every point off the picture.
MAX_DRAG_PICTURES = 4.0


def finite_number(value: object, option: str, *, low: float | None = None, high: float | None = None,
                  low_open: bool = False, fix: str = "") -> float:
    """value as a float, or MotionError naming option when it is not a finite number in range."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise MotionError(f"{option} must be a finite number, got {value!r}. {fix}".strip())
    too_low = low is not None and (number <= low if low_open else number < low)
    if too_low or (high is not None and number > high):
        bound = f"{'above' if low_open else 'at least'} {low:g}" if low is not None else ""
        bound += (" and " if bound and high is not None else "") + (f"at most {high:g}" if high is not None else "")
        raise MotionError(f"{option} must be {bound}, got {value!r}. {fix}".strip())
    return number


def whole_number(value: object, option: str, *, low: int | None = None, high: int | None = None,
                 fix: str = "") -> int:
    """value as an int, or MotionError naming option when it is not a whole number in range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise MotionError(f"{option} must be a whole number, got {value!r}. {fix}".strip())
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        span = f"between {low} and {high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        raise MotionError(f"{option} must be {span}, got {number}. {fix}".strip())
    return number


def check_fps(fps: object, option: str = "--fps") -> float:
    return finite_number(fps, option, low=MIN_FPS, high=MAX_FPS, fix="Use a frame rate such as 24 or 30 (frames/s).")


def check_frames(frames: object, option: str = "--frames", low: int = 1) -> int:
    return whole_number(frames, option, low=low, high=MAX_FRAMES,
                        fix="Give the number of output frames, e.g. 150 (5 s at 30 fps).")


def check_gain(gain: object, option: str = "--gain") -> float:
    return finite_number(gain, option, low=0.0, high=MAX_GAIN, fix="1 keeps the motion as predicted, 2 doubles it.")


def check_seed(seed: object, option: str = "--seed") -> int:
    return whole_number(seed, option, low=0, high=MAX_SEED, fix="Use a seed between 0 and 2**64 - 1.")


def check_steps(steps: object, option: str = "--steps") -> int:
    return whole_number(steps, option, low=1, high=1000, fix="50 is the default, 250 the paper's quality.")


def check_max_side(max_side: object, option: str = "--max-side") -> int:
    if max_side == 0:
        return 0  # keep the picture's size (the memory checks still apply)
    return whole_number(max_side, option, low=MIN_PICTURE_SIDE, high=8192,
                        fix="768 is the default; lower it for a faster, smaller video.")


def check_device(name: str, option: str = "--device") -> torch.device:
    """The torch device named by a CLI option ('auto', 'cpu', 'cuda', 'cuda:1', ...)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise MotionError(f"{option}: '{name}' is not a device; use cpu, cuda, cuda:1 or auto.") from error
    if device.type not in ("cpu", "cuda"):
        raise MotionError(f"{option}: '{name}' is not supported; use cpu, cuda, cuda:1 or auto.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MotionError(f"{option} {name} was asked for but no CUDA GPU is available; use {option} cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MotionError(f"{option} {name}: there are only {torch.cuda.device_count()} CUDA GPU(s); use cuda:0.")
    return device


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output_path(path: str | os.PathLike, option: str = "-o", suffixes: tuple[str, ...] = VIDEO_OUTPUT_SUFFIXES,
                      inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """The output file path, checked before any work: a supported suffix, not a folder, not one of
    the inputs, and in a folder that exists (or can be made) and is writable."""
    text = os.fspath(path)
    out = Path(text)
    if text.endswith(("/", os.sep)) or out.is_dir():
        raise MotionError(f"{option} '{text}' is a folder; give a file name in it, e.g. {out / ('out' + suffixes[0])}.")
    if out.suffix.lower() not in suffixes:
        raise MotionError(f"{option} '{text}': cannot write a '{out.suffix or 'suffix-less'}' file; "
                          f"use a file name ending in {', '.join(suffixes)}.")
    for source in inputs:
        if source is not None and _same_file(out, Path(source)):
            raise MotionError(f"{option} '{text}' is also an input; writing it would destroy that input. "
                              "Choose another output file name.")
    folder = out.parent if str(out.parent) else Path(".")
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:  # the writer makes the missing folders
        existing = existing.parent
    try:  # a probe file is the only test that root's access() cannot fool; nothing is left behind
        if not existing.is_dir():
            raise NotADirectoryError(20, "a file is in the way", str(existing))
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".gid-probe-"):
            pass
    except OSError as error:
        raise MotionError(f"{option} '{text}': the folder '{folder}' cannot be written to ({error.strerror}); "
                          "choose a folder you may write in.") from error
    if out.exists() and not os.access(out, os.W_OK):
        raise MotionError(f"{option} '{text}' exists and is read-only; choose another file name.")
    return out


def check_picture_size(width: int, height: int, what: str = "picture") -> None:
    """MotionError when a picture is too small to animate."""
    if min(width, height) < MIN_PICTURE_SIDE:
        raise MotionError(f"{what} is {width}x{height} pixels; animating needs at least {MIN_PICTURE_SIDE} pixels "
                          "on each side. Use a larger picture.")


def picture_file_size(path: str | os.PathLike, option: str = "picture") -> tuple[int, int]:
    """(width, height) in pixels of an image file, read from its header (no decoding)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return int(image.width), int(image.height)
    except (FileNotFoundError, IsADirectoryError) as error:
        raise MotionError(f"cannot read {option} '{path}': missing file; check the path.") from error
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise MotionError(f"cannot read {option} '{path}': not an image file (use a PNG, JPEG or WEBP).") from error


def video_file_size(path: str | os.PathLike, option: str = "video") -> tuple[int, int, int]:
    """(width, height, frame count or 0 when unknown) of a video file, from its header."""
    import cv2

    if not Path(path).is_file():
        raise MotionError(f"{option} '{path}' does not exist; check the path.")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise MotionError(f"{option} '{path}' cannot be opened as a video; use an mp4/avi/mov/webm file.")
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        if count == 0:  # not in the header (a still image read as a video, some streams): count a few
            while count < PROBE_FRAMES and capture.grab():
                count += 1
            count = 0 if count == PROBE_FRAMES else count
    finally:
        capture.release()
    if width < 1 or height < 1:
        raise MotionError(f"{option} '{path}' has no video stream with a size; the file is empty or damaged.")
    return width, height, count


def fitted_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) of a picture after pipeline.load_picture's resize to max_side."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return round(width * scale), round(height * scale)


def check_point(x: float, y: float, width: int, height: int, option: str = "--at") -> tuple[float, float]:
    """A point in pixels of a width x height picture (pixel centres at integers), refused outside it."""
    x = finite_number(x, f"{option} x")
    y = finite_number(y, f"{option} y")
    if not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
        raise MotionError(f"{option} {x:g},{y:g} is outside the {width}x{height} picture; give a pixel with "
                          f"0 <= X <= {width - 1} and 0 <= Y <= {height - 1} (pixels of the picture as given).")
    return x, y


def check_drag_vector(dx: float, dy: float, width: int, height: int, option: str = "--drag") -> tuple[float, float]:
    """A drag vector in pixels: finite, not zero, at most MAX_DRAG_PICTURES picture sizes long."""
    dx = finite_number(dx, f"{option} dx")
    dy = finite_number(dy, f"{option} dy")
    if dx == 0.0 and dy == 0.0:
        raise MotionError(f"{option} 0,0 has zero length; give the pull a direction, e.g. {option} 20,0.")
    if abs(dx) > MAX_DRAG_PICTURES * width or abs(dy) > MAX_DRAG_PICTURES * height:
        raise MotionError(f"{option} {dx:g},{dy:g} is longer than {MAX_DRAG_PICTURES:g} times the {width}x{height} "
                          "picture; use a pull of a few to a few dozen pixels.")
    return dx, dy


def check_simulation_settings(*, damping: float, hold_frames: float, prefix: str = "--",
                              stiffness_scale: float = 1.0, mass_scale: float = 1.0) -> None:
    """The modal simulation's settings (CLI options with prefix '--', node inputs with prefix '')."""
    name = (lambda option: prefix + (option.replace("_", "-") if prefix else option))
    finite_number(damping, name("damping"), low=0.0, high=1.0,
                  fix="0 swings forever, 0.03-0.1 looks natural, 1 stops without swinging.")
    finite_number(hold_frames, name("hold_frames"), low=0.0, high=MAX_FRAMES,
                  fix="Give the frames a drag is held before release, e.g. 15.")
    finite_number(stiffness_scale, name("stiffness_scale"), low=0.0, low_open=True, fix="1 keeps the predicted stiffness.")
    finite_number(mass_scale, name("mass_scale"), low=0.0, low_open=True, fix="1 keeps the predicted masses.")


def check_rendered_frames(frames: torch.Tensor | np.ndarray, what: str = "the rendered video") -> None:
    """MotionError when frames hold NaN/infinite values or are black everywhere: such a video is
    never what the user asked for, and written out it looks like a success."""
    tensor = torch.as_tensor(frames) if isinstance(frames, np.ndarray) else frames
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise MotionError(f"{what} holds NaN or infinite values: the motion is too large to render (lower the gain "
                          "or the drag) or the renderer's weights are damaged (try the pixel renderer).")
    if tensor.numel() and not bool((tensor > (0.5 if not tensor.is_floating_point() else 0.5 / 255)).any()):
        raise MotionError(f"{what} is black in every frame: the motion moved the picture away (lower the gain or "
                          "the drag) or the picture itself is black; nothing was written.")
