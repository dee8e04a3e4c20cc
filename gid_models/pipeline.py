"""The `gid` command line's jobs: files and option strings in, frames out.

A workflow does the same steps one node each, with the same gid_models calls underneath:
GIDMotionFromVideo and `volume_from_video` call flow.spectral_volume_from_video;
GIDSampleSpectralVolume and `volume_from_model` call sampling.sample_spectral_volume;
GIDSpectralToMotion and `loop_motion` call spectral.spectral_to_motion; GIDLoadRenderer + GIDRender
and `load_renderer` + `render` call rendering.render_motion. What only the command line needs lives
here: reading pictures, masks and clips from files, the fallbacks when shipped weights are missing,
the choice of a renderer by name (--renderer), and the loop guidance it asks for on each device
(`loop_guidance`; a workflow sets its own with GIDLoopGuidance).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from .rendering import NeuralRenderer, render_motion
from .spectral import MotionError, MotionTexture, SpectralVolume, spectral_to_motion

if TYPE_CHECKING:  # sampling imports diffusers (about 2 s), which the clip-only commands never need
    from .sampling import LoopGuidance

LOGGER = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"  # the example picture and clip (package data)
BUNDLED_PICTURE = ASSETS_DIR / "dandelion_meadow.jpg"
BUNDLED_CLIP = ASSETS_DIR / "grass_clip.mp4"

StepCallback = Callable[[int, int], None]


def load_picture(path: str | Path, max_side: int | None = None) -> torch.Tensor:
    """Read an image file as (1, 3, H, W) float32 RGB in 0..1 (alpha dropped), shrunk so its long
    side is at most max_side pixels (area interpolation) when it is larger."""
    return load_picture_scaled(path, max_side)[0]


def load_picture_scaled(path: str | Path, max_side: int | None = None) -> tuple[torch.Tensor, float]:
    """load_picture's picture and the factor (<= 1) its pixel coordinates were scaled by."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MotionError(f"cannot read picture '{path}': missing file or not an image.")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    scale = 1.0
    if max_side and max(image.shape[:2]) > max_side:
        scale = max_side / max(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0, scale


def load_mask(path: str | Path, height: int, width: int) -> torch.Tensor:
    """Read a grey mask image as (1, 1, H, W) in 0..1 at the picture's size (white = moves)."""
    import cv2

    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise MotionError(f"cannot read mask '{path}': missing file or not an image.")
    mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(mask)[None, None].float() / 255.0


@dataclass
class MotionSource:
    """Where a job's spectral volume came from, for the user's log."""

    volume: SpectralVolume
    description: str


def volume_from_video(
    path: str | Path,
    max_frames: int = 150,
    callback: StepCallback | None = None,
    remove_camera_motion: bool = False,
) -> MotionSource:
    """Spectral volume (pixels) of a clip's first max_frames frames, via optical flow; with
    remove_camera_motion the fitted global (camera) motion is subtracted first."""
    from .flow import spectral_volume_from_video
    from .video_io import read_video

    frames, fps = read_video(str(path), max_frames=max_frames)
    result = spectral_volume_from_video(frames, fps=fps, remove_camera_motion=remove_camera_motion, callback=callback)
    for warning in result.warnings:
        LOGGER.warning("%s: %s", path, warning)
    return MotionSource(result.volume, f"motion extracted from {Path(path).name} ({len(frames)} frames at {fps:g} fps)")


def loop_guidance(device: torch.device, exact: bool | None = None) -> LoopGuidance:
    """Loop guidance for sampling on device: the paper's (2 recurrences, gradient through the
    denoiser) on a GPU or when exact is True; on a CPU, unless exact, an approximation
    (1 recurrence, gradient past the denoiser) that costs about a quarter per step, which turns an
    8-minute job into a 2-minute one. Logs the approximation when it makes it."""
    from .sampling import LoopGuidance

    if exact is None:
        exact = device.type != "cpu"
    if exact:
        return LoopGuidance()
    LOGGER.info("loop guidance approximated on the CPU (1 self-recurrence, gradient past the denoiser: about 4x "
                "faster per step than the paper's 2 recurrences through the denoiser)")
    return LoopGuidance(recurrence=1, through_denoiser=False)


def volume_from_model(
    picture: torch.Tensor,
    *,
    seed: int,
    steps: int,
    loop: bool,
    mask: torch.Tensor | None,
    device: torch.device,
    callback: StepCallback | None = None,
    exact_loop: bool | None = None,
) -> MotionSource:
    """Spectral volume sampled by the bundled motion diffusion model for this picture, with
    loop_guidance(device, exact_loop) when loop is set."""
    from .networks import MotionModel
    from .sampling import sample_spectral_volume

    model = MotionModel.from_bundled().to(device)
    guidance = loop_guidance(device, exact_loop) if loop else None
    volume, _ = sample_spectral_volume(
        model, picture.to(device), seed=seed, steps=steps, guidance=guidance, mask=mask, callback=callback
    )
    note = "" if guidance is None else ", loop guidance" + ("" if guidance.through_denoiser else " (CPU approximation)")
    return MotionSource(volume, f"motion sampled by the bundled motion model in gid_models/weights/ "
                                f"(seed {seed}, {steps} steps{note})")


def bundled_model_available() -> bool:
    """True when the shipped motion-model files are in gid_models/weights/."""
    from .networks import MotionModel

    return MotionModel.bundled_available()


def motion_for_picture(
    picture: torch.Tensor,
    *,
    seed: int = 0,
    steps: int = 50,
    loop: bool = True,
    mask: torch.Tensor | None = None,
    motion_video: str | Path | None = None,
    device: torch.device | str = "cpu",
    callback: StepCallback | None = None,
    exact_loop: bool | None = None,
    remove_camera_motion: bool = False,
) -> MotionSource:
    """The picture's spectral volume: from a given clip (remove_camera_motion as volume_from_video),
    else the bundled model (exact_loop as loop_guidance), else the bundled clip."""
    device = torch.device(device)
    if motion_video is not None:
        return volume_from_video(motion_video, callback=callback, remove_camera_motion=remove_camera_motion)
    if bundled_model_available():
        return volume_from_model(
            picture, seed=seed, steps=steps, loop=loop, mask=mask, device=device, callback=callback,
            exact_loop=exact_loop,
        )
    LOGGER.warning(
        "the bundled motion model is missing from gid_models/weights/: using motion extracted from the "
        "bundled clip %s instead (reinstall the pack to restore the model)",
        BUNDLED_CLIP.name,
    )
    return volume_from_video(BUNDLED_CLIP, callback=callback)


RENDERER_CHOICES = ("neural", "pixel")


def check_renderer_choice(renderer: str) -> None:
    """MotionError unless renderer is 'neural', 'pixel' or an existing weights file."""
    if renderer not in RENDERER_CHOICES and not Path(renderer).is_file():
        raise MotionError(f"--renderer: '{renderer}' is neither 'neural', 'pixel' nor a renderer .safetensors file.")


def load_renderer(choice: str = "neural", device: torch.device | str = "cpu") -> NeuralRenderer | None:
    """The renderer a --renderer choice names, on device; None stands for the pixel renderer.

    choice: "neural" = the bundled neural renderer (the pixel renderer when its weights are
    missing), "pixel" = the pixel renderer (splat + pull-push fill, faster, sharper in
    disocclusions), or the path of a renderer*.safetensors file. Logs which renderer it is.
    """
    check_renderer_choice(choice)
    if choice == "pixel":
        LOGGER.info("rendering with the pixel renderer (splat + pull-push fill)")
        return None
    if choice != "neural":
        LOGGER.info("rendering with the neural renderer %s", choice)
        return NeuralRenderer.load(choice).to(device)
    if NeuralRenderer.bundled_available():
        LOGGER.info("rendering with the bundled neural renderer (gid_models/weights/renderer.safetensors)")
        return NeuralRenderer.from_bundled().to(device)
    LOGGER.info("no neural renderer in gid_models/weights/: rendering with the pixel renderer (splat + "
                "pull-push fill)")
    return None


def render(
    picture: torch.Tensor,
    motion: MotionTexture,
    *,
    device: torch.device | str = "cpu",
    freeze_mask: torch.Tensor | None = None,
    callback: StepCallback | None = None,
    renderer: NeuralRenderer | str | None = "neural",
) -> torch.Tensor:
    """Frames (T, 3, H, W) in 0..1 on the CPU of the picture (1, 3, H, W) moved by the motion
    (resized to the picture when it has another size of the same aspect ratio).

    renderer: a NeuralRenderer (computing on its device), None for the pixel renderer (computing
    on device), or a --renderer choice string, loaded with load_renderer.
    freeze_mask: (1, 1, H, W) in 0..1, 1 = held still.
    """
    if isinstance(renderer, str):
        renderer = load_renderer(renderer, device)
    if renderer is not None:
        device = next(renderer.parameters()).device
    mask = None if freeze_mask is None else freeze_mask.to(device)
    return render_motion(picture.to(device), motion, renderer=renderer, freeze_mask=mask, callback=callback,
                         output_device="cpu")


def loop_motion(volume: SpectralVolume, frames: int, fps: float, gain: float) -> MotionTexture:
    """Motion texture of `frames` output frames spanning exactly one period of the volume, so
    the video loops seamlessly (the last frame flows into the first)."""
    speed = volume.num_frames / frames * (fps / volume.fps)
    return spectral_to_motion(volume, num_output_frames=frames, output_fps=fps, speed=speed, gain=gain)
