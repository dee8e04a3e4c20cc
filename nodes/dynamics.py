"""Interactive dynamics node: drag or poke a picture and simulate its modal response."""

from __future__ import annotations

import logging

from ..gid_models.dynamics import EMPTY_DRAGS_JSON, INTEGRATORS, drags_from_json, simulate
from ..gid_models.job_checks import check_simulation_job
from ..gid_models.spectral import SpectralVolume
from . import _comfy, types
from .errors import fail, node_errors
from .interactive import preview_payload

LOGGER = logging.getLogger("ComfyUI-GID")


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
            _comfy.throw_if_interrupted()
            motion = simulate(
                volume, parsed, int(frames), float(fps), float(damping), float(stiffness_scale), float(mass_scale),
                integrator, callback=_comfy.step_callback(volume.batch_size),
            )
        params = {
            "damping": float(damping), "stiffness_scale": float(stiffness_scale), "mass_scale": float(mass_scale),
            "frames": int(frames), "fps": float(fps), "hold_frames": int(hold_frames), "integrator": integrator,
        }
        ui = preview_payload(picture, spectral_volume, params)
        return {"ui": ui, "result": (motion.to(_comfy.intermediate_device()), float(fps))}


NODE_CLASS_MAPPINGS = {"GIDModalSimulation": GIDModalSimulation}
NODE_DISPLAY_NAME_MAPPINGS = {"GIDModalSimulation": "GID Modal Simulation (drag / poke)"}
