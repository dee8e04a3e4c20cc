"""Interactive dynamics node: drag or poke a picture and simulate its modal response."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import torch
from PIL import Image

from ..gid_models.dynamics import EMPTY_DRAGS_JSON, INTEGRATORS, ModalBasis, drags_from_json
from ..gid_models.dynamics.modal import require_motion_memory, simulate_modal_coordinates, synthesize_motion
from ..gid_models.job_checks import check_simulation_job
from ..gid_models.spectral import MotionTexture, SpectralVolume
from . import _comfy, types
from .errors import fail, image_batch_to_nchw, node_errors

LOGGER = logging.getLogger("ComfyUI-GID")

PREVIEW_SUBFOLDER = "gid"
PREVIEW_MAX_SIDE = 512
PICTURE_UI_KEY = "gid_drag_picture"


def save_picture_preview(picture: torch.Tensor, node: str) -> dict[str, str]:
    """Write the first image of an IMAGE batch, at most PREVIEW_MAX_SIDE px, as a PNG in ComfyUI's
    temp folder; returns the /view entry {filename, subfolder, type} the widget loads it from."""
    image = image_batch_to_nchw(picture, node, "picture")[0]
    pixels = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    name = f"gid_drag_{hashlib.sha1(np.ascontiguousarray(pixels).tobytes()).hexdigest()[:16]}.png"
    folder = _comfy.temp_directory() / PREVIEW_SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        preview = Image.fromarray(pixels)
        preview.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
        preview.save(path)
    return {"filename": name, "subfolder": PREVIEW_SUBFOLDER, "type": "temp"}


class GIDModalSimulation:
    """Modal simulation of drags and pokes on a spectral volume (paper Sec. 6)."""

    DESCRIPTION = (
        "Makes the picture respond to your hand: each frequency of the spectral volume is a vibration mode "
        "of the scene, and a drag (pull a point by an arrow, hold, let go) or a poke (a flick) sets the modes "
        "swinging, each as a damped oscillator. Draw drags on the picture in the widget (click a point and "
        "pull an arrow; click an arrow to select it, Delete removes it) or pass the drags JSON as a string. "
        "Connect the output motion to GID Render with the same picture. damping: how fast the swinging dies "
        "out; stiffness_scale: stiffer = faster and smaller; mass_scale: heavier = moves less."
    )
    CATEGORY = "GID/dynamics"
    FUNCTION = "simulate"
    RETURN_TYPES = (types.MOTION, "FLOAT")
    RETURN_NAMES = ("motion", "fps")
    OUTPUT_TOOLTIPS = (
        "Motion texture (B, frames, 2, H, W): displacements in pixels at the volume's resolution.",
        "Frame rate of the motion (frames/s), for the video output.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "spectral_volume": (
                    types.SPECTRAL_VOLUME,
                    {"tooltip": "Spectral volume in pixels (from a motion model or a video); its bins above f_0 are the modes."},
                ),
                "drags": (
                    "STRING",
                    {"default": EMPTY_DRAGS_JSON, "multiline": True,
                     "tooltip": "Drag points as JSON {\"version\": 1, \"drags\": [{\"x\", \"y\", \"dx\", \"dy\", \"start\", "
                                "\"hold\", \"kind\"}]}: x, y in 0..1 of the picture, dx, dy in picture widths/heights, "
                                "start and hold in frames, kind 'drag' or 'poke'. Edited by the drag widget."},
                ),
                "damping": (
                    "FLOAT",
                    {"default": 0.05, "min": 0.0, "max": 1.0, "step": 0.005,
                     "tooltip": "Damping ratio zeta of every mode: 0 swings forever, 0.03-0.1 looks natural, 1 stops without swinging."},
                ),
                "stiffness_scale": (
                    "FLOAT",
                    {"default": 1.0, "min": 0.01, "max": 100.0, "step": 0.01,
                     "tooltip": "Multiplies every mode's stiffness (omega^2): higher = faster oscillation and smaller displacement."},
                ),
                "mass_scale": (
                    "FLOAT",
                    {"default": 1.0, "min": 0.01, "max": 100.0, "step": 0.01,
                     "tooltip": "Multiplies every modal mass: higher = the same drag or poke moves the scene less."},
                ),
                "frames": ("INT", {"default": 150, "min": 1, "max": 10000, "tooltip": "Number of output frames."}),
                "fps": (
                    "FLOAT",
                    {"default": 30.0, "min": 1.0, "max": 240.0, "step": 0.01,
                     "tooltip": "Frame rate of the simulation and the output (frames/s); drag start and hold count these frames."},
                ),
                "hold_frames": (
                    "INT",
                    {"default": 15, "min": 0, "max": 10000,
                     "tooltip": "Frames a drag is held before release, for drags that do not give their own 'hold'."},
                ),
            },
            "optional": {
                "picture": (
                    types.IMAGE,
                    {"tooltip": "The picture the motion is for: shown in the drag widget and the live preview (not simulated)."},
                ),
                "integrator": (
                    list(INTEGRATORS),
                    {"default": "exact",
                     "tooltip": "exact: closed-form step, stable at any setting (recommended); euler: the paper's "
                                "explicit stepping, sub-stepped so h * omega <= 0.1."},
                ),
            },
        }

    def simulate(self, spectral_volume, drags, damping, stiffness_scale, mass_scale, frames, fps, hold_frames,
                 picture=None, integrator="exact"):
        node = "GIDModalSimulation"
        if not isinstance(spectral_volume, SpectralVolume):
            raise fail(node, f"expected a GID_SPECTRAL_VOLUME, got {type(spectral_volume).__name__}; connect a GID motion node.")
        if spectral_volume.normalized:
            raise fail(node, "got a normalized spectral volume; pass it through GIDDenormalizeSpectralVolume first.")
        if not isinstance(drags, str):
            raise fail(node, f"drags must be a JSON string, got {type(drags).__name__}.")
        with node_errors(node):  # the culprit by name, before anything is simulated
            check_simulation_job(damping=damping, stiffness_scale=stiffness_scale, mass_scale=mass_scale, frames=frames,
                                 fps=fps, hold_frames=hold_frames)
        volume = spectral_volume.to(_comfy.torch_device())
        with node_errors(node):
            parsed = drags_from_json(drags, volume.width, volume.height, default_hold=float(hold_frames))
            if not parsed:
                LOGGER.info("[%s] no drags given: the motion is still", node)
            require_motion_memory(volume, int(frames))
            motions = []
            progress = _comfy.progress_bar(volume.batch_size)
            for index in range(volume.batch_size):
                _comfy.throw_if_interrupted()
                basis = ModalBasis.from_volume(volume, batch_index=index)
                q = simulate_modal_coordinates(
                    basis, parsed, int(frames), float(fps), float(damping), float(stiffness_scale),
                    float(mass_scale), integrator,
                )
                motions.append(synthesize_motion(basis, q, float(fps)).displacements)
                progress.update(1)
        motion = MotionTexture(torch.cat(motions).to(_comfy.intermediate_device()), fps=float(fps))
        params = {
            "damping": float(damping), "stiffness_scale": float(stiffness_scale), "mass_scale": float(mass_scale),
            "frames": int(frames), "fps": float(fps), "hold_frames": int(hold_frames), "integrator": integrator,
        }
        ui = dict(preview_payload(picture, spectral_volume, params))
        if picture is not None:
            ui[PICTURE_UI_KEY] = [save_picture_preview(picture, node)]
        return {"ui": ui, "result": (motion, float(fps))}


NODE_CLASS_MAPPINGS = {"GIDModalSimulation": GIDModalSimulation}
NODE_DISPLAY_NAME_MAPPINGS = {"GIDModalSimulation": "GID Modal Simulation (drag / poke)"}

from .interactive import preview_payload  # noqa: E402  (the live preview module imports this one's types)
