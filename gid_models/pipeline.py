"""End-to-end jobs shared by the `gid` command line: picture in, frames out.

Each job is the same chain of gid_models calls that the ComfyUI nodes make, so the CLI and a
workflow give the same result for the same settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .spectral import MotionError, MotionTexture, SpectralVolume, spectral_to_motion

LOGGER = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"  # the example picture and clip (package data)
BUNDLED_PICTURE = ASSETS_DIR / "dandelion_meadow.jpg"
BUNDLED_CLIP = ASSETS_DIR / "grass_clip.mp4"

StepCallback = Callable[[int, int], None]


def load_picture(path: str | Path, max_side: int | None = None) -> torch.Tensor:
    """Read an image file as (1, 3, H, W) float32 RGB in 0..1 (alpha dropped)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MotionError(f"cannot read picture '{path}': missing file or not an image.")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if max_side and max(image.shape[:2]) > max_side:
        scale = max_side / max(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0


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


def volume_from_video(path: str | Path, max_frames: int = 150, callback: StepCallback | None = None) -> MotionSource:
    """Spectral volume (pixels) of a clip's first max_frames frames, via optical flow."""
    from .flow import spectral_volume_from_video
    from .video_io import read_video

    frames, fps = read_video(str(path), max_frames=max_frames)
    result = spectral_volume_from_video(frames, fps=fps, callback=callback)
    for warning in result.warnings:
        LOGGER.warning("%s: %s", path, warning)
    return MotionSource(result.volume, f"motion extracted from {Path(path).name} ({len(frames)} frames at {fps:g} fps)")


def volume_from_model(
    picture: torch.Tensor,
    *,
    seed: int,
    steps: int,
    loop: bool,
    mask: torch.Tensor | None,
    device: torch.device,
    callback: StepCallback | None = None,
) -> MotionSource:
    """Spectral volume sampled by the bundled motion diffusion model for this picture."""
    from .networks import MotionModel
    from .sampling import LoopGuidance, sample_spectral_volume

    model = MotionModel.from_bundled().to(device)
    guidance = None
    if loop:
        # the paper's guidance (2 recurrences, gradient through the denoiser) costs about 4x the
        # approximation per step; on a CPU that turns a 2-minute job into an 8-minute one
        exact = device.type != "cpu"
        guidance = LoopGuidance() if exact else LoopGuidance(recurrence=1, through_denoiser=False)
    volume, _ = sample_spectral_volume(
        model, picture.to(device), seed=seed, steps=steps, guidance=guidance, mask=mask, callback=callback
    )
    return MotionSource(volume, f"motion sampled by the bundled motion model in gid_models/weights/ "
                                f"(seed {seed}, {steps} steps{_guidance_note(guidance)})")


def _guidance_note(guidance) -> str:
    if guidance is None:
        return ""
    if guidance.through_denoiser:
        return ", loop guidance"
    return ", loop guidance approximated for the CPU (1 recurrence, gradient past the denoiser)"


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
) -> MotionSource:
    """The picture's spectral volume: from a given clip, else the bundled model, else the bundled clip."""
    device = torch.device(device)
    if motion_video is not None:
        return volume_from_video(motion_video, callback=callback)
    if bundled_model_available():
        return volume_from_model(
            picture, seed=seed, steps=steps, loop=loop, mask=mask, device=device, callback=callback
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


def render(
    picture: torch.Tensor,
    motion: MotionTexture,
    *,
    device: torch.device | str = "cpu",
    freeze_mask: torch.Tensor | None = None,
    callback: StepCallback | None = None,
    renderer: str = "neural",
) -> torch.Tensor:
    """Frames (T, 3, H, W) in 0..1 of the picture moved by the motion.

    renderer: "neural" = the bundled neural renderer (the pixel renderer when its weights are
    missing), "pixel" = the pixel renderer (splat + pull-push fill, faster, sharper in
    disocclusions), or the path of a renderer*.safetensors file.
    """
    from .rendering import NeuralRenderer, render_motion

    check_renderer_choice(renderer)
    device = torch.device(device)
    network = None
    if renderer == "pixel":
        LOGGER.info("rendering with the pixel renderer (splat + pull-push fill)")
    elif renderer != "neural":
        network = NeuralRenderer.load(renderer).to(device)
        LOGGER.info("rendering with the neural renderer %s", renderer)
    elif NeuralRenderer.bundled_available():
        network = NeuralRenderer.from_bundled().to(device)
        LOGGER.info("rendering with the bundled neural renderer (gid_models/weights/renderer.safetensors)")
    else:
        LOGGER.info("no neural renderer in gid_models/weights/: rendering with the pixel renderer (splat + "
                    "pull-push fill)")
    motion = motion.resized(picture.shape[-2], picture.shape[-1]).to(device)
    mask = None if freeze_mask is None else freeze_mask.to(device)
    frames = render_motion(picture.to(device), motion, renderer=network, freeze_mask=mask, callback=callback)
    return frames.cpu()


def loop_motion(volume: SpectralVolume, frames: int, fps: float, gain: float) -> MotionTexture:
    """Motion texture of `frames` output frames spanning exactly one period of the volume, so
    the video loops seamlessly (the last frame flows into the first)."""
    speed = volume.num_frames / frames * (fps / volume.fps)
    return spectral_to_motion(volume, num_output_frames=frames, output_fps=fps, speed=speed, gain=gain)
