"""The `gid` command line: animate, poke, transfer and extract, plus the training tools.

    gid animate PICTURE -o out.mp4 [--loop] [--frames 150] [--fps 30] [--seed N] [--steps N]
                [--gain G] [--mask MASK.png]
    gid poke PICTURE --at X,Y --drag DX,DY -o out.mp4
    gid transfer VIDEO PICTURE -o out.mp4
    gid extract VIDEO -o volume.safetensors
    gid prepare | train | calibrate | eval ...   (training and evaluation tools)

Coordinates of --at and --drag are pixels of the picture as given.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Callable, Sequence

import torch

from .spectral import MotionError, spectral_to_motion
from .volume_io import save_volume

LOGGER = logging.getLogger("gid")

TOOL_MODULES = {
    "prepare": ("gid_models.train.prepare", "turn clips into training shards"),
    "train": ("gid_models.train.train_all", "train the motion model and renderer"),
    "calibrate": ("gid_models.train.calibrate", "fit a model's per-frequency output gains and limits on training shards"),
    "eval": ("gid_models.evaluation.run", "evaluate motion prediction on unseen clips"),
    "scenes": ("gid_models.train.scenes.cli", "render procedural plants-in-wind scenes with exact motion into training shards"),
}


def _progress(description: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm-backed step callback and its closer."""
    from tqdm import tqdm

    bar = tqdm(desc=description, unit="step", leave=False)

    def callback(step: int, total: int | None = None, *_: object) -> None:
        if total is not None and bar.total != total:
            bar.total = total
            bar.refresh()
        bar.n = step + 1
        bar.refresh()

    return callback, bar.close


def _pair(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected two numbers as X,Y, got '{text}'") from error
    return x, y


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MotionError("--device cuda was asked for but no CUDA GPU is available; use --device cpu.")
    return device


def _write(frames: torch.Tensor, path: str, fps: float) -> None:
    from .video_io import write_video

    write_video(path, frames.permute(0, 2, 3, 1).clamp(0, 1), fps)
    LOGGER.info("wrote %s (%d frames at %g fps)", path, frames.shape[0], fps)


def command_animate(args: argparse.Namespace) -> None:
    from . import pipeline

    pipeline.check_renderer_choice(args.renderer)  # before the slow steps
    device = _device(args.device)
    picture = pipeline.load_picture(args.picture, max_side=args.max_side)
    mask = pipeline.load_mask(args.mask, *picture.shape[-2:]) if args.mask else None
    callback, close = _progress("motion")
    source = pipeline.motion_for_picture(
        picture, seed=args.seed, steps=args.steps, loop=args.loop, mask=mask,
        motion_video=args.motion_from, device=device, callback=callback,
    )
    close()
    LOGGER.info("%s", source.description)
    volume = source.volume.resized(*picture.shape[-2:])
    if args.loop:
        motion = pipeline.loop_motion(volume, args.frames, args.fps, args.gain)
    else:
        motion = spectral_to_motion(volume, args.frames, args.fps, gain=args.gain)
    callback, close = _progress("render")
    frames = pipeline.render(picture, motion, device=device, freeze_mask=None if mask is None else 1 - mask, callback=callback,
                             renderer=args.renderer)
    close()
    _write(frames, args.output, args.fps)


def command_poke(args: argparse.Namespace) -> None:
    from . import pipeline
    from .dynamics import simulate
    from .dynamics.drags import Drag

    pipeline.check_renderer_choice(args.renderer)  # before the slow steps
    device = _device(args.device)
    picture = pipeline.load_picture(args.picture, max_side=args.max_side)
    height, width = picture.shape[-2:]
    source = pipeline.motion_for_picture(picture, seed=args.seed, steps=args.steps, loop=False,
                                         motion_video=args.motion_from, device=device)
    volume = source.volume.resized(height, width)
    (x, y), (dx, dy) = args.at, args.drag
    drag = Drag(x=x, y=y, dx=dx, dy=dy, start=0, hold=args.hold_frames, kind="drag")
    motion = simulate(volume, [drag], num_frames=args.frames, fps=args.fps, damping=args.damping)
    callback, close = _progress("render")
    frames = pipeline.render(picture, motion, device=device, callback=callback, renderer=args.renderer)
    close()
    _write(frames, args.output, args.fps)


def command_transfer(args: argparse.Namespace) -> None:
    from . import pipeline

    pipeline.check_renderer_choice(args.renderer)  # before the slow steps
    device = _device(args.device)
    picture = pipeline.load_picture(args.picture, max_side=args.max_side)
    callback, close = _progress("optical flow")
    source = pipeline.volume_from_video(args.video, max_frames=args.max_frames, callback=callback)
    close()
    volume = source.volume.resized(*picture.shape[-2:])
    motion = pipeline.loop_motion(volume, args.frames or volume.num_frames, args.fps or volume.fps, args.gain)
    callback, close = _progress("render")
    frames = pipeline.render(picture, motion, device=device, callback=callback, renderer=args.renderer)
    close()
    _write(frames, args.output, motion.fps)


def command_extract(args: argparse.Namespace) -> None:
    from . import pipeline

    callback, close = _progress("optical flow")
    source = pipeline.volume_from_video(args.video, max_frames=args.max_frames, callback=callback)
    close()
    save_volume(source.volume, args.output)
    LOGGER.info("wrote %s: %s, K=%d, %dx%d", args.output, source.description,
                source.volume.num_frequencies, source.volume.width, source.volume.height)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="output file (.mp4, .webp or .gif)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    parser.add_argument("--max-side", type=int, default=768, help="resize the picture so its long side is at most this (pixels)")
    parser.add_argument("--gain", type=float, default=1.0, help="motion magnification (1 = as predicted)")
    parser.add_argument("--renderer", default="neural", help="neural (the bundled neural renderer, default), pixel "
                        "(splat + pull-push fill: faster on CPU, sharper where the motion uncovers new content) "
                        "or a renderer .safetensors file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gid", description="Generative Image Dynamics: still picture -> motion.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    animate = sub.add_parser("animate", help="animate a picture into a (looping) video")
    animate.add_argument("picture")
    _common(animate)
    animate.add_argument("--loop", action="store_true", help="make a seamless loop (loop guidance + one full period)")
    animate.add_argument("--frames", type=int, default=150)
    animate.add_argument("--fps", type=float, default=30.0)
    animate.add_argument("--seed", type=int, default=0)
    animate.add_argument("--steps", type=int, default=50, help="DDIM steps (250 = paper quality)")
    animate.add_argument("--mask", help="grey image: white regions may move, black stay still")
    animate.add_argument("--motion-from", help="take the motion from this clip instead of the model")
    animate.set_defaults(run=command_animate)

    poke = sub.add_parser("poke", help="pull a point of the picture and let it spring back")
    poke.add_argument("picture")
    _common(poke)
    poke.add_argument("--at", type=_pair, required=True, help="X,Y pixel to pull")
    poke.add_argument("--drag", type=_pair, required=True, help="DX,DY pull vector in pixels")
    poke.add_argument("--frames", type=int, default=150)
    poke.add_argument("--fps", type=float, default=30.0)
    poke.add_argument("--hold-frames", type=int, default=15)
    poke.add_argument("--damping", type=float, default=0.05)
    poke.add_argument("--seed", type=int, default=0)
    poke.add_argument("--steps", type=int, default=50)
    poke.add_argument("--motion-from", help="take the modal basis from this clip instead of the model")
    poke.set_defaults(run=command_poke)

    transfer = sub.add_parser("transfer", help="move a picture with the motion of a video")
    transfer.add_argument("video")
    transfer.add_argument("picture")
    _common(transfer)
    transfer.add_argument("--max-frames", type=int, default=150)
    transfer.add_argument("--frames", type=int, default=0, help="output frames (0 = the clip's window)")
    transfer.add_argument("--fps", type=float, default=0.0, help="output fps (0 = the clip's)")
    transfer.set_defaults(run=command_transfer)

    extract = sub.add_parser("extract", help="save a video's spectral volume as safetensors")
    extract.add_argument("video")
    extract.add_argument("-o", "--output", required=True)
    extract.add_argument("--max-frames", type=int, default=150)
    extract.set_defaults(run=command_extract)

    for name, (_, help_text) in TOOL_MODULES.items():
        tool = sub.add_parser(name, help=help_text, add_help=False)
        tool.set_defaults(tool=name)
    return parser


# FFmpeg's own messages while OpenCV probes an mp4 encoder it lacks ("Could not find a valid
# device"); the fallback is logged by video_io. Read by OpenCV at its first FFmpeg use; a value
# the user set is kept.
FFMPEG_QUIET = ("OPENCV_FFMPEG_LOGLEVEL", "-8")


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault(*FFMPEG_QUIET)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOL_MODULES:
        module = importlib.import_module(TOOL_MODULES[argv[0]][0])
        return int(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        args.run(args)
    except (MotionError, ValueError, FileNotFoundError, MemoryError) as error:
        LOGGER.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
