"""Motion nodes: video -> spectral volume, spectral volume -> motion texture, normalization."""

from __future__ import annotations

import logging

import torch

from ..gid_models.job_checks import check_extraction_job, check_motion_job
from ..gid_models.motion_style import match_motion_statistics
from ..gid_models.flow import DEFAULT_METHOD, FLOW_METHODS, spectral_volume_from_video
from ..gid_models.normalization import FrequencyNormalization, denormalize, fit_normalization, normalize
from ..gid_models.spectral import (
    DEFAULT_FPS,
    DEFAULT_NUM_FRAMES,
    DEFAULT_NUM_FREQUENCIES,
    SpectralVolume,
    spectral_to_motion,
)
from . import _comfy, types
from .errors import fail, image_batch_to_nchw, node_errors

LOGGER = logging.getLogger("ComfyUI-GID")

FIT_TO_VOLUME = "fit to this volume"
NORMALIZATION_PREFIX = "normalization"


def _require_volume(node: str, volume: object) -> SpectralVolume:
    if not isinstance(volume, SpectralVolume):
        raise fail(node, f"expected a GID_SPECTRAL_VOLUME, got {type(volume).__name__}; connect a GID motion node.")
    return volume


class GIDMotionFromVideo:
    """Optical flow from the first frame to every frame -> spectral volume (the paper's ground truth)."""

    DESCRIPTION = (
        "Measures how every pixel of the first frame moves through the clip (optical flow from frame 0 "
        "directly to each frame) and keeps the first K temporal frequencies: a spectral volume you can "
        "apply to any picture (motion transfer), preview, or use as training data. Use a clip from a fixed "
        "camera, ideally 150 frames (5 s at 30 fps); bin k is k * fps / frames Hz. Connect Load Video "
        "(VideoHelperSuite), Get Video Components or an image batch, and its frame rate. Camera motion is "
        "measured and logged as a warning; turn on remove_camera_motion to subtract it."
    )
    CATEGORY = "GID/motion"
    FUNCTION = "extract"
    RETURN_TYPES = (types.SPECTRAL_VOLUME,)
    RETURN_NAMES = ("spectral_volume",)
    OUTPUT_TOOLTIPS = ("Spectral volume (1, K, 4, H, W) in pixels at the video's resolution, with its T and fps.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": (types.IMAGE, {"tooltip": "Video frames as an IMAGE batch (T, H, W, 3), first frame first."}),
                "fps": (
                    "FLOAT",
                    {"default": DEFAULT_FPS, "min": 0.1, "max": 1000.0, "step": 0.01,
                     "tooltip": "Frame rate of the video (frames/s); sets the frequency of each bin."},
                ),
                "num_frequencies": (
                    "INT",
                    {"default": DEFAULT_NUM_FREQUENCIES, "min": 1, "max": 64,
                     "tooltip": "K, how many temporal frequencies to keep (16 in the paper); needs at least 2K frames."},
                ),
                "method": (
                    list(FLOW_METHODS),
                    {"default": DEFAULT_METHOD,
                     "tooltip": "Optical flow: dis (more accurate, faster at 512 px) or farneback (a second opinion)."},
                ),
                "remove_camera_motion": (
                    "BOOLEAN",
                    {"default": False,
                     "tooltip": "Subtract the fitted global (camera) motion from every pixel's trajectory."},
                ),
                "max_frames": (
                    "INT",
                    {"default": DEFAULT_NUM_FRAMES, "min": 0, "max": 100000,
                     "tooltip": "Use at most this many frames from the start (0 = all). 150 matches the paper."},
                ),
            },
            "optional": {
                "remove_drift": (
                    "BOOLEAN",
                    {"default": False,
                     "tooltip": "Subtract each pixel's steady drift (grass leaning further, a passing cloud) so the "
                                "motion comes back to where it started: turn on to loop a video seamlessly."},
                ),
            },
        }

    def extract(self, frames, fps, num_frequencies, method, remove_camera_motion, max_frames, remove_drift=False):
        node = "GIDMotionFromVideo"
        if isinstance(frames, torch.Tensor) and frames.ndim == 4:
            with node_errors(node):  # before the frames are converted or go through optical flow
                used = min(frames.shape[0], max_frames) if max_frames > 0 else frames.shape[0]
                check_extraction_job(int(used), frames.shape[1], frames.shape[2], fps)
        video = image_batch_to_nchw(frames, node, "frames")
        if max_frames > 0:
            video = video[:max_frames]
        count = int(video.shape[0])
        if count < 2 * num_frequencies:
            raise fail(
                node,
                f"got {count} frame(s) but K={num_frequencies} frequencies need at least {2 * num_frequencies}; "
                f"connect a longer video (150 frames is the paper's window), raise max_frames, or lower "
                f"num_frequencies to {max(1, count // 2)} or less.",
            )
        callback = _comfy.step_callback(count)
        with node_errors(node):
            result = spectral_volume_from_video(
                video.movedim(1, -1).cpu(), fps=float(fps), num_frequencies=int(num_frequencies), method=method,
                remove_camera_motion=bool(remove_camera_motion), callback=callback, remove_drift=bool(remove_drift),
            )
        for warning in result.warnings:
            LOGGER.warning("[%s] %s", node, warning)
        return (result.volume.to(_comfy.intermediate_device()),)


class GIDSpectralToMotion:
    """Inverse FFT of a spectral volume -> per-pixel displacements for any number of frames."""

    DESCRIPTION = (
        "Turns a spectral volume into a motion texture (per-pixel displacements in pixels over time) for "
        "rendering. frames and fps choose the output length and rate; the motion keeps its real-world speed "
        "unless speed changes it (0.5 = slow motion, smoothly interpolated). gain magnifies (>1) or calms "
        "(<1) the motion (0 = the still picture). Needs a volume in pixels: denormalize a model's output first."
    )
    CATEGORY = "GID/motion"
    FUNCTION = "synthesize"
    RETURN_TYPES = (types.MOTION, "FLOAT")
    RETURN_NAMES = ("motion", "fps")
    OUTPUT_TOOLTIPS = (
        "Motion texture (B, frames, 2, H, W): displacements in pixels from the start frame.",
        "The output frame rate (frames/s), for the render and video nodes.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "spectral_volume": (types.SPECTRAL_VOLUME, {"tooltip": "Spectral volume in pixels."}),
                "frames": (
                    "INT",
                    {"default": DEFAULT_NUM_FRAMES, "min": 1, "max": 10000,
                     "tooltip": "Number of output frames (the motion repeats with the volume's period)."},
                ),
                "fps": (
                    "FLOAT",
                    {"default": DEFAULT_FPS, "min": 0.1, "max": 1000.0, "step": 0.01,
                     "tooltip": "Output frame rate (frames/s)."},
                ),
                "gain": (
                    "FLOAT",
                    {"default": 1.0, "min": 0.0, "max": 20.0, "step": 0.05,
                     "tooltip": "Motion magnification: multiplies every oscillating frequency (1 = as measured)."},
                ),
                "speed": (
                    "FLOAT",
                    {"default": 1.0, "min": 0.01, "max": 20.0, "step": 0.01,
                     "tooltip": "Playback speed of the motion (0.5 = half-speed slow motion)."},
                ),
            }
        }

    def synthesize(self, spectral_volume, frames, fps, gain, speed):
        node = "GIDSpectralToMotion"
        volume = _require_volume(node, spectral_volume)
        with node_errors(node):
            check_motion_job(frames, fps, gain, speed)
            volume.require_physical(node)
            motion = spectral_to_motion(
                volume.to(_comfy.torch_device()), num_output_frames=int(frames), output_fps=float(fps),
                speed=float(speed), gain=float(gain),
            )
        return (motion.to(_comfy.intermediate_device()), float(fps))


class GIDNormalizeSpectralVolume:
    """Frequency-adaptive normalization (paper Eq. 4): S' = sign(S) sqrt(|S| / s_k)."""

    DESCRIPTION = (
        "Applies the paper's frequency-adaptive normalization so every frequency has a similar range "
        "(what the motion diffusion model works on). Pick the statistics file shipped with a model "
        "(models/gid/normalization*.safetensors) or fit them to this volume (95th percentile of |S| per "
        "frequency). The result remembers its statistics, so Denormalize needs no other input."
    )
    CATEGORY = "GID/motion"
    FUNCTION = "normalize"
    RETURN_TYPES = (types.SPECTRAL_VOLUME,)
    RETURN_NAMES = ("normalized_volume",)
    OUTPUT_TOOLTIPS = ("Normalized spectral volume carrying its statistics.",)

    @classmethod
    def INPUT_TYPES(cls):
        choices = _comfy.list_model_files(NORMALIZATION_PREFIX) + [FIT_TO_VOLUME]
        return {
            "required": {
                "spectral_volume": (types.SPECTRAL_VOLUME, {"tooltip": "Spectral volume in pixels."}),
                "statistics": (
                    choices,
                    {"default": choices[0],
                     "tooltip": "Normalization statistics: a file from models/gid, or fitted to this volume."},
                ),
            }
        }

    def normalize(self, spectral_volume, statistics):
        node = "GIDNormalizeSpectralVolume"
        volume = _require_volume(node, spectral_volume)
        with node_errors(node):
            volume.require_physical(node)
            if statistics == FIT_TO_VOLUME:
                stats = fit_normalization([volume])
            else:
                stats = FrequencyNormalization.load(str(_comfy.model_file_path(statistics)))
            result = normalize(volume, stats)
        return (result.to(_comfy.intermediate_device()),)


class GIDDenormalizeSpectralVolume:
    """Inverse of the frequency-adaptive normalization, with the statistics the volume carries."""

    DESCRIPTION = (
        "Turns a normalized spectral volume (from GIDNormalizeSpectralVolume or a motion model) back "
        "into pixels with the statistics it carries: S = sign(S') S'^2 s_k."
    )
    CATEGORY = "GID/motion"
    FUNCTION = "denormalize"
    RETURN_TYPES = (types.SPECTRAL_VOLUME,)
    RETURN_NAMES = ("spectral_volume",)
    OUTPUT_TOOLTIPS = ("Spectral volume in pixels.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "normalized_volume": (types.SPECTRAL_VOLUME, {"tooltip": "A normalized spectral volume."}),
            }
        }

    def denormalize(self, normalized_volume):
        node = "GIDDenormalizeSpectralVolume"
        volume = _require_volume(node, normalized_volume)
        if not volume.normalized:
            raise fail(
                node,
                "this spectral volume is already in pixels, so there is nothing to denormalize; "
                "remove this node or feed it the output of GIDNormalizeSpectralVolume or a motion model.",
            )
        with node_errors(node):
            result = denormalize(volume)
        return (result.to(_comfy.intermediate_device()),)


class GIDMatchMotionStatistics:
    """Move like this clip: a clip's per-frequency power and direction imposed on another volume."""

    DESCRIPTION = (
        "Motion transfer between different scenes. The spectral volume (e.g. sampled for your picture by "
        "the motion model) decides WHERE the picture moves; the reference (e.g. GIDMotionFromVideo of a clip "
        "of another scene) gives HOW: for every temporal frequency, the mean power and the direction "
        "covariance of its moving pixels, matched in Hz and scaled by the size ratio of the two scenes. "
        "Each frequency of the volume is mapped by one 2x2 matrix, so regions the volume leaves still stay "
        "still. strength blends from the volume's own motion (0) to the clip's statistics (1)."
    )
    CATEGORY = "GID/motion"
    FUNCTION = "match"
    RETURN_TYPES = (types.SPECTRAL_VOLUME,)
    RETURN_NAMES = ("spectral_volume",)
    OUTPUT_TOOLTIPS = ("The volume with the reference's statistics per frequency, in pixels (same size, T, fps).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "spectral_volume": (
                    types.SPECTRAL_VOLUME,
                    {"tooltip": "Where the picture moves: a volume in pixels, e.g. GIDSampleSpectralVolume's output."},
                ),
                "reference": (
                    types.SPECTRAL_VOLUME,
                    {"tooltip": "How it moves: a volume in pixels of another scene, e.g. from GIDMotionFromVideo."},
                ),
                "strength": (
                    "FLOAT",
                    {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                     "tooltip": "0 = the volume's own motion, 1 = the reference's power and direction per frequency."},
                ),
            }
        }

    def match(self, spectral_volume, reference, strength):
        node = "GIDMatchMotionStatistics"
        volume = _require_volume(node, spectral_volume)
        clip = _require_volume(node, reference)
        with node_errors(node):
            volume.require_physical(f"{node} (spectral_volume)")
            clip.require_physical(f"{node} (reference)")
            result = match_motion_statistics(volume.to("cpu"), clip.to("cpu"), float(strength))
        return (result.to(_comfy.intermediate_device()),)


NODE_CLASS_MAPPINGS = {
    "GIDMotionFromVideo": GIDMotionFromVideo,
    "GIDSpectralToMotion": GIDSpectralToMotion,
    "GIDNormalizeSpectralVolume": GIDNormalizeSpectralVolume,
    "GIDDenormalizeSpectralVolume": GIDDenormalizeSpectralVolume,
    "GIDMatchMotionStatistics": GIDMatchMotionStatistics,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "GIDMotionFromVideo": "GID Motion From Video",
    "GIDSpectralToMotion": "GID Spectral Volume To Motion",
    "GIDNormalizeSpectralVolume": "GID Normalize Spectral Volume",
    "GIDDenormalizeSpectralVolume": "GID Denormalize Spectral Volume",
    "GIDMatchMotionStatistics": "GID Match Motion Statistics (move like this clip)",
}
