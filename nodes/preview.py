"""Preview nodes: see a spectral volume or a motion texture as images."""

from __future__ import annotations

import torch

from ..gid_models.preview import flow_to_color, robust_max, spectral_volume_grids, xt_slice
from ..gid_models.spectral import MotionTexture, SpectralVolume
from . import _comfy, types
from .errors import fail, image_batch_to_nchw, node_errors

ASPECT_TOLERANCE = 0.02


class GIDPreviewSpectralVolume:
    """Per-frequency amplitude and phase tiles of a spectral volume."""

    DESCRIPTION = (
        "Shows each of the K frequency slices of a spectral volume as a tile: amplitude (viridis, each "
        "tile scaled to its own 99th percentile, labelled with bin, Hz and that scale) and phase (hue, "
        "dark where nothing moves). Natural motion is strongest at low frequencies. One grid per batch item."
    )
    CATEGORY = "GID/preview"
    FUNCTION = "preview"
    RETURN_TYPES = (types.IMAGE, types.IMAGE)
    RETURN_NAMES = ("amplitude", "phase")
    OUTPUT_TOOLTIPS = (
        "Amplitude grid per batch item (B, H', W', 3).",
        "Phase grid per batch item (B, H', W', 3).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"spectral_volume": (types.SPECTRAL_VOLUME, {"tooltip": "Spectral volume to look at."})}}

    def preview(self, spectral_volume):
        node = "GIDPreviewSpectralVolume"
        if not isinstance(spectral_volume, SpectralVolume):
            raise fail(node, f"expected a GID_SPECTRAL_VOLUME, got {type(spectral_volume).__name__}.")
        with node_errors(node):
            amplitude, phase = spectral_volume_grids(spectral_volume)
        device = _comfy.intermediate_device()
        return (amplitude.to(device), phase.to(device))


def _motion_at_picture_size(node: str, motion: MotionTexture, picture: torch.Tensor) -> MotionTexture:
    height, width = picture.shape[-2:]
    if (height, width) == (motion.height, motion.width):
        return motion
    if abs(width / height - motion.width / motion.height) > ASPECT_TOLERANCE * motion.width / motion.height:
        raise fail(
            node,
            f"picture is {width}x{height} but the motion is {motion.width}x{motion.height} (a different aspect "
            "ratio); crop or resize the picture to the motion's aspect ratio, or make the motion from it.",
        )
    return motion.resized(height, width)


class GIDPreviewMotion:
    """Flow-colour frames and an X-t slice of a motion texture."""

    DESCRIPTION = (
        "Shows a motion texture: every frame's displacement as colour (hue = direction, saturation = "
        "distance, white = still; one scale for the whole clip) and an X-t slice along one row (time runs "
        "down): x-displacement in blue/white/red, and with a picture connected, that picture row moved by "
        "the motion above it, as the paper's X-t figures. Several motions are shown one after another."
    )
    CATEGORY = "GID/preview"
    FUNCTION = "preview"
    RETURN_TYPES = (types.IMAGE, types.IMAGE)
    RETURN_NAMES = ("flow_frames", "xt_slice")
    OUTPUT_TOOLTIPS = (
        "Flow-colour frames (B*T, H, W, 3), playable as a video.",
        "X-t slice per motion (B, T or 2T+2, W, 3).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion": (types.MOTION, {"tooltip": "Motion texture to look at."}),
                "row": (
                    "FLOAT",
                    {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                     "tooltip": "Row of the X-t slice: 0 = top, 1 = bottom."},
                ),
            },
            "optional": {
                "picture": (
                    types.IMAGE,
                    {"tooltip": "Picture the motion belongs to; its row is shown moving in the X-t slice."},
                ),
            },
        }

    def preview(self, motion, row, picture=None):
        node = "GIDPreviewMotion"
        if not isinstance(motion, MotionTexture):
            raise fail(node, f"expected a GID_MOTION, got {type(motion).__name__}; connect GIDSpectralToMotion.")
        if not torch.isfinite(motion.displacements).all():
            raise fail(node, "the motion contains NaN or infinite displacements; check the node that produced it.")
        pictures = None if picture is None else image_batch_to_nchw(picture, node, "picture")
        if pictures is not None:
            motion = _motion_at_picture_size(node, motion, pictures)
        displacements = motion.displacements.float().cpu()
        scale = robust_max(displacements.norm(dim=2))
        flow_frames, slices = [], []
        with node_errors(node):
            for item in range(motion.batch_size):
                flow_frames.append(flow_to_color(displacements[item], max_magnitude=scale))
                source = None if pictures is None else pictures[min(item, pictures.shape[0] - 1)].movedim(0, -1).cpu()
                slices.append(xt_slice(displacements[item], float(row), picture=source, max_magnitude=scale))
        device = _comfy.intermediate_device()
        return (torch.cat(flow_frames).to(device), torch.stack(slices).to(device))


NODE_CLASS_MAPPINGS = {
    "GIDPreviewSpectralVolume": GIDPreviewSpectralVolume,
    "GIDPreviewMotion": GIDPreviewMotion,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "GIDPreviewSpectralVolume": "GID Preview Spectral Volume",
    "GIDPreviewMotion": "GID Preview Motion",
}
