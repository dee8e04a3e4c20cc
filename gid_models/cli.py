"""The `gid` command line: animate, poke, transfer and extract, plus the training tools.

    gid animate PICTURE -o out.mp4 [--loop] [--frames 150] [--fps 30] [--seed N] [--steps N]
                [--gain G] [--mask MASK.png]
    gid poke PICTURE --at X,Y --drag DX,DY -o out.mp4
    gid transfer VIDEO PICTURE -o out.mp4 [--mode auto|style|pixels] [--strength S]
    gid extract VIDEO -o volume.safetensors
    gid prepare | train | calibrate | eval ...   (training and evaluation tools)

`gid COMMAND --help` lists every option with its unit and default. Each command reads and checks
its arguments (start_job) before any slow step: sampling, optical flow or rendering.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from . import cli_checks, pipeline
from .heap import reuse_freed_memory
from .rendering import NeuralRenderer
from .spectral import MotionError, MotionTexture, SpectralVolume, spectral_to_motion
from .video_io import write_video
from .volume_io import save_volume

LOGGER = logging.getLogger("gid")

TOOL_MODULES = {
    "prepare": ("gid_models.train.prepare", "turn clips into training shards"),
    "train": ("gid_models.train.train_all", "train the motion model and renderer"),
    "calibrate": ("gid_models.train.calibrate", "fit a model's per-frequency output gains and limits on training shards"),
    "eval": ("gid_models.evaluation.run", "evaluate motion prediction on unseen clips"),
    "train-amplitude": ("gid_models.train.amplitude_cli", "train motion model v2's motion-amplitude network (where a picture moves)"),
    "merge-amplitude": ("gid_models.train.merge_amplitude", "merge motion-amplitude networks into one that predicts their mean"),
    "scenes": ("gid_models.train.scenes.cli", "render procedural plants-in-wind scenes with exact motion into training shards"),
}
USER_ERRORS = (MotionError, ValueError, FileNotFoundError, MemoryError)
"""What bad input, a missing file or too little memory raise: one logged line, not a traceback."""

BUNDLED_POKE = "--seed 13 --at 290,195 --drag 20,0"
"""A poke of the bundled picture (gid_models/assets/dandelion_meadow.jpg, 512x288) that moves: the seed
head in the middle pulled 20 px right (the interactive_poke example workflow uses the same seed and
drag). The shipped model holds the big backlit dandelion head almost still, so a pull there answers
only a few per cent of its arrow."""


def entry_point(name: str) -> Callable[[Callable[[Sequence[str] | None], int | None]], Callable[[Sequence[str] | None], int]]:
    """Decorator for the main(argv) of command `name` (e.g. "gid prepare"): a USER_ERRORS exception
    is logged as one line naming the command and gives exit code 2, Ctrl-C exit code 130; anything
    else (a bug) propagates with its traceback. None returns 0."""

    def decorate(main: Callable[[Sequence[str] | None], int | None]) -> Callable[[Sequence[str] | None], int]:
        @functools.wraps(main)
        def wrapped(argv: Sequence[str] | None = None) -> int:
            try:
                return int(main(argv) or 0)
            except USER_ERRORS as error:
                LOGGER.error("%s: %s", name, error)
                return 2
            except KeyboardInterrupt:
                LOGGER.error("%s: interrupted; no output was written.", name)
                return 130

        return wrapped

    return decorate


@contextlib.contextmanager
def progress(description: str, unit: str = "step") -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar driven by a gid_models loop's callback(index, total) (index counts from 0);
    closed when the block ends, also when it raises."""
    from tqdm import tqdm

    with tqdm(desc=description, unit=unit, leave=False) as bar:

        def callback(index: int, total: int | None = None, *_: object) -> None:
            if total is not None and bar.total != total:
                bar.total = total
            bar.n = index + 1
            bar.refresh()

        yield callback


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


@dataclass
class Job:
    """What a picture command works with, read and checked before any slow step.

    picture: (1, 3, H, W) float in 0..1; scale: its pixels per pixel of the file (< 1 when
    --max-side shrank it); renderer: a NeuralRenderer, or None for the pixel renderer.
    """

    device: torch.device
    picture: torch.Tensor
    scale: float
    renderer: NeuralRenderer | None


def start_job(args: argparse.Namespace) -> Job:
    """The device, renderer and picture of a picture command, with their arguments checked."""
    device = _device(args.device)
    renderer = pipeline.load_renderer(args.renderer, device)
    picture, scale = pipeline.load_picture_scaled(args.picture, max_side=args.max_side)
    return Job(device, picture, scale, renderer)


def _render_and_write(
    job: Job, motion: MotionTexture, args: argparse.Namespace, freeze_mask: torch.Tensor | None = None
) -> None:
    with progress("render", unit="frame") as callback:
        frames = pipeline.render(job.picture, motion, device=job.device, freeze_mask=freeze_mask,
                                 callback=callback, renderer=job.renderer)
    write_video(args.output, frames.permute(0, 2, 3, 1).clamp(0, 1), motion.fps)
    LOGGER.info("wrote %s (%d frames at %g fps)", args.output, frames.shape[0], motion.fps)


def _motion_for(
    job: Job, args: argparse.Namespace, loop: bool, mask: torch.Tensor | None = None, exact_loop: bool | None = None
) -> SpectralVolume:
    """The picture's spectral volume at its size (pipeline.motion_for_picture), with progress."""
    with progress("motion") as callback:
        source = pipeline.motion_for_picture(
            job.picture, seed=args.seed, steps=args.steps, loop=loop, mask=mask, motion_video=args.motion_from,
            device=job.device, callback=callback, exact_loop=exact_loop, remove_camera_motion=args.remove_camera_motion,
        )
    LOGGER.info("%s", source.description)
    return source.volume.resized(*job.picture.shape[-2:])


def command_animate(args: argparse.Namespace) -> None:
    cli_checks.check_animate_args(args)  # every argument, before the slow steps
    job = start_job(args)
    mask = pipeline.load_mask(args.mask, *job.picture.shape[-2:]) if args.mask else None
    volume = _motion_for(job, args, loop=args.loop, mask=mask, exact_loop=args.exact_loop_guidance or None)
    if args.loop:
        motion = pipeline.loop_motion(volume, args.frames, args.fps, args.gain)
    else:
        motion = spectral_to_motion(volume, args.frames, args.fps, gain=args.gain)
    _render_and_write(job, motion, args, freeze_mask=None if mask is None else 1 - mask)


def command_poke(args: argparse.Namespace) -> None:
    from .dynamics import simulate
    from .dynamics.drags import Drag

    _, (x, y), (dx, dy) = cli_checks.check_poke_args(args)  # in pixels of the resized picture
    job = start_job(args)
    volume = _motion_for(job, args, loop=False)
    drag = Drag(x=x, y=y, dx=dx, dy=dy, start=0, hold=args.hold_frames, kind="drag")
    motion = simulate(volume, [drag], num_frames=args.frames, fps=args.fps, damping=args.damping)
    _render_and_write(job, MotionTexture(motion.displacements * args.gain, fps=motion.fps), args)


TRANSFER_MODES = ("auto", "style", "pixels")
SAME_SCENE_DIFFERENCE = 0.1
"""Mean absolute difference (0..1 colour values, both pictures shrunk to 64 px wide) below which
`gid transfer --mode auto` takes the picture for a still of the clip's scene."""


def same_scene(picture: torch.Tensor, first_frame: torch.Tensor) -> bool:
    """Whether picture (1, 3, H, W) looks like first_frame (1, 3, H', W') (both 0..1): the same
    aspect ratio within 2% and, shrunk to 64 px wide, a mean difference under SAME_SCENE_DIFFERENCE."""
    (h, w), (fh, fw) = picture.shape[-2:], first_frame.shape[-2:]
    if abs(w / h - fw / fh) > 0.02 * fw / fh:
        return False
    size = (max(1, round(64 * fh / fw)), 64)
    small = [torch.nn.functional.interpolate(x.float(), size=size, mode="area") for x in (picture, first_frame)]
    return float((small[0] - small[1]).abs().mean()) < SAME_SCENE_DIFFERENCE


def _transfer_mode(args: argparse.Namespace, picture: torch.Tensor) -> str:
    """The mode asked for, or for auto: pixels for a still of the clip's scene, else style."""
    if args.mode != "auto":
        return args.mode
    from .video_io import read_video

    frame, _ = read_video(args.video, max_frames=1)
    first = torch.from_numpy(frame).permute(0, 3, 1, 2).float() / 255.0
    mode = "pixels" if same_scene(picture, first) else "style"
    LOGGER.info("--mode auto: the picture %s the clip's first frame, so --mode %s",
                "looks like" if mode == "pixels" else "is another scene than", mode)
    return mode


def command_transfer(args: argparse.Namespace) -> None:
    """pixels: the clip's per-pixel motion played on a still of its scene (a seamless loop of the
    clip). style: the motion model's volume for the picture, with the clip's per-frequency power and
    direction (motion_style.match_motion_statistics), so what the model leaves still stays still."""
    from . import checks
    from .motion_style import match_motion_statistics

    cli_checks.check_transfer_args(args)  # every argument, before the slow steps
    checks.check_seed(args.seed)
    checks.check_steps(args.steps)
    if not 0.0 <= args.strength <= 1.0:
        raise MotionError(f"--strength must be between 0 and 1, got {args.strength}; 1 gives the clip's statistics.")
    job = start_job(args)
    mode = _transfer_mode(args, job.picture)
    with progress("optical flow", unit="frame") as callback:
        source = pipeline.volume_from_video(args.video, max_frames=args.max_frames, callback=callback,
                                            remove_camera_motion=args.remove_camera_motion)
    if mode == "pixels":
        volume = source.volume.resized(*job.picture.shape[-2:])
    else:
        volume = match_motion_statistics(_motion_for(job, args, loop=False), source.volume, args.strength)
        LOGGER.info("the picture moves where the motion model puts motion, as %s moves (strength %g)",
                    os.path.basename(args.video), args.strength)
    motion = pipeline.loop_motion(volume, args.frames or volume.num_frames, args.fps or volume.fps, args.gain)
    _render_and_write(job, motion, args)


def command_extract(args: argparse.Namespace) -> None:
    cli_checks.check_extract_args(args)
    with progress("optical flow", unit="frame") as callback:
        source = pipeline.volume_from_video(args.video, max_frames=args.max_frames, callback=callback,
                                            remove_camera_motion=args.remove_camera_motion)
    save_volume(source.volume, args.output)
    LOGGER.info("wrote %s: %s, K=%d, %dx%d", args.output, source.description,
                source.volume.num_frequencies, source.volume.width, source.volume.height)


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    """Options of every command that renders a picture: output, device, size, gain, renderer."""
    parser.add_argument("-o", "--output", required=True, help="output video file: .mp4 (H.264 with PyAV installed), "
                        ".webp or .gif (both loop forever)")
    parser.add_argument("--device", default="auto", help="where to compute: cpu, cuda, cuda:1, or auto = cuda when "
                        "a GPU is available (default %(default)s)")
    parser.add_argument("--max-side", type=int, default=768, metavar="PX", help="shrink the picture so its long "
                        "side is at most this many pixels (default %(default)s)")
    parser.add_argument("--gain", type=float, default=1.0, help="motion magnification: >1 exaggerates, <1 calms "
                        "(default %(default)s = unchanged)")
    parser.add_argument("--renderer", default="neural", help="neural = the bundled neural renderer, pixel = splat + "
                        "pull-push fill (faster on CPU, sharper where the motion uncovers new content), or a "
                        "renderer .safetensors file (default %(default)s)")


def _add_clip_options(parser: argparse.ArgumentParser) -> None:
    """Options of every command that measures motion in a clip."""
    parser.add_argument("--max-frames", type=int, default=150, help="frames of the clip used, from its start "
                        "(default %(default)s = 5 s at 30 fps, the paper's window)")
    parser.add_argument("--remove-camera-motion", action="store_true", help="subtract the fitted global (camera) "
                        "motion from every pixel's trajectory, for a clip from a moving camera (default off)")


def _add_motion_options(parser: argparse.ArgumentParser, frames_help: str, seed_note: str = "") -> None:
    """Options animate and poke share: the video's length and rate, and where the motion comes from."""
    parser.add_argument("picture", help="the still picture to move (any image file OpenCV reads)")
    _add_job_options(parser)
    parser.add_argument("--frames", type=int, default=150, help=f"{frames_help} (default %(default)s)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the video, frames/s "
                        "(default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the motion model: the same seed gives "
                        f"the same motion on every device{seed_note} (default %(default)s)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM sampling steps: fewer is faster, 250 is the "
                        "paper's quality (default %(default)s)")
    parser.add_argument("--motion-from", metavar="VIDEO", help="measure the motion in this clip instead of sampling "
                        "it with the motion model (default: the model)")
    parser.add_argument("--remove-camera-motion", action="store_true", help="with --motion-from: subtract the "
                        "clip's fitted global (camera) motion (default off)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gid", description="Generative Image Dynamics: still picture -> motion.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    sub = parser.add_subparsers(dest="command", required=True)

    animate = sub.add_parser("animate", help="animate a picture into a (looping) video",
                             description="Sample the picture's motion with the bundled motion model (or measure it "
                             "in a clip) and render it as a video.")
    _add_motion_options(animate, "output frames; with --loop they span exactly one period of the motion")
    animate.add_argument("--loop", action="store_true", help="make a seamless loop: loop guidance while sampling (on "
                         "a CPU an approximation about 4x faster, logged) and one full period (default off)")
    animate.add_argument("--exact-loop-guidance", action="store_true", help="with --loop on a CPU: the paper's loop "
                         "guidance (2 recurrences, gradient through the denoiser), about 4x slower (default off)")
    animate.add_argument("--mask", metavar="IMAGE", help="grey image: white regions may move, black stay still "
                         "(default: everything may move)")
    animate.set_defaults(run=command_animate)

    poke = sub.add_parser("poke", help="pull a point of the picture and let it spring back",
                          description="Pull one point of the picture by an arrow, hold it, let go, and render how "
                          "the scene's vibration modes swing back (paper Sec. 6). Coordinates are pixels of the "
                          "picture file. With the bundled picture, `gid poke gid_models/assets/dandelion_meadow.jpg "
                          f"{BUNDLED_POKE} -o poke.mp4` pulls the seed head in the middle; pull where the motion is (the "
                          "shipped model holds the big dandelion head almost still).")
    _add_motion_options(poke, "frames simulated and rendered", seed_note="; 13 for the bundled picture's poke above")
    poke.add_argument("--at", type=_pair, required=True, metavar="X,Y", help="pixel to pull, from the picture's "
                      "top-left corner")
    poke.add_argument("--drag", type=_pair, required=True, metavar="DX,DY", help="pull vector in pixels (+x right, "
                      "+y down): the pulled point moves about this far before it is let go")
    poke.add_argument("--hold-frames", type=int, default=15, metavar="FRAMES", help="frames the pull lasts before "
                      "release, at --fps (default %(default)s = 0.5 s at 30 fps)")
    poke.add_argument("--damping", type=float, default=0.05, help="damping ratio of every mode: 0 swings forever, "
                      "0.03-0.1 looks natural, 1 stops without swinging (default %(default)s)")
    poke.set_defaults(run=command_poke)

    transfer = sub.add_parser("transfer", help="move a picture like a clip moves",
                              description="Two kinds of motion transfer. --mode pixels (loop a video): the "
                              "clip's per-pixel motion (optical flow) played on a still of the same scene, its "
                              "first frame or a sharper still at any size, as a seamless loop. --mode style (move "
                              "like this clip): the motion model decides where the picture moves and the clip "
                              "how, each temporal frequency given the clip's power and direction; what the model "
                              "leaves still stays still. --mode auto (default) picks pixels when the picture looks "
                              "like the clip's first frame (same aspect ratio, mean difference under 0.1 at 64 px "
                              "wide), else style.")
    transfer.add_argument("video", help="clip whose motion is measured (fixed camera, 150 frames ideally)")
    transfer.add_argument("picture", help="the still picture to move")
    _add_job_options(transfer)
    _add_clip_options(transfer)
    transfer.add_argument("--frames", type=int, default=0, help="output frames, one period of the loop "
                          "(default %(default)s = the clip's window with pixels, the model's 150 with style)")
    transfer.add_argument("--fps", type=float, default=0.0, help="output frame rate, frames/s "
                          "(default %(default)s = the clip's with pixels, 30 with style)")
    transfer.add_argument("--mode", choices=TRANSFER_MODES, default="auto", help="pixels = loop the clip on a "
                          "still of its scene, style = move another scene like the clip, auto = pixels when the "
                          "picture looks like the clip's first frame, else style (default %(default)s)")
    transfer.add_argument("--strength", type=float, default=1.0, help="with style: 0 = the model's own motion, "
                          "1 = the clip's power and direction per frequency (default %(default)s)")
    transfer.add_argument("--seed", type=int, default=0, help="with style: noise seed of the motion model "
                          "(default %(default)s)")
    transfer.add_argument("--steps", type=int, default=50, help="with style: DDIM sampling steps, fewer is "
                          "faster (default %(default)s)")
    transfer.set_defaults(motion_from=None)  # style samples the picture's motion with the model
    transfer.set_defaults(run=command_transfer)

    extract = sub.add_parser("extract", help="save a video's spectral volume as safetensors")
    extract.add_argument("video", help="clip whose motion is measured")
    extract.add_argument("-o", "--output", required=True, help="output .safetensors file")
    _add_clip_options(extract)
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
        return int(module.main(argv[1:]) or 0)  # each tool's main is an entry_point
    return _run_command(argv)


@entry_point("gid")
def _run_command(argv: Sequence[str] | None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    with reuse_freed_memory():  # the CLI owns its process: keep freed memory for the next step
        args.run(args)


if __name__ == "__main__":
    sys.exit(main())
