"""Live poke preview: the files the browser needs to simulate and warp the picture in real time.

GIDModalSimulation calls `preview_payload` at the end of each run. It writes two files into
ComfyUI's temp folder (served by /view?type=temp): a compact modal basis (a few dominant modes at
reduced resolution, gid_models/dynamics/basis_export.py) and the picture as a PNG. The UI entry
names them; web/js/gid_live_preview.js fetches both by file name, never as base64 in the graph.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import torch
from PIL import Image

from ..gid_models.dynamics.basis_export import (
    DEFAULT_MAX_MODES,
    DEFAULT_MAX_SIDE,
    build_preview_basis,
    save_preview_basis,
)
from ..gid_models.dynamics.modal import ModalBasis
from ..gid_models.spectral import SpectralVolume
from . import _comfy
from .errors import image_batch_to_nchw

LOGGER = logging.getLogger("ComfyUI-GID")

UI_KEY = "gid_live_preview"
SUBFOLDER = "gid_live"
PICTURE_MAX_SIDE = 640  # the preview canvas is at most this large (web/js/lib/preview/live_view.js)
NODE = "GIDModalSimulation"

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}


def _plain_params(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe settings (numbers and strings) of a node's params."""
    return {k: v for k, v in params.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def _save_picture(picture: torch.Tensor) -> str:
    """First image of an IMAGE batch as a PNG (long side <= PICTURE_MAX_SIDE) in the temp subfolder."""
    image = image_batch_to_nchw(picture, NODE, "picture")[0]
    pixels = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().contiguous().numpy()
    name = f"gid_live_{hashlib.sha1(pixels.tobytes()).hexdigest()[:16]}.png"
    path = _comfy.temp_directory() / SUBFOLDER / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        preview = Image.fromarray(pixels)
        preview.thumbnail((PICTURE_MAX_SIDE, PICTURE_MAX_SIDE))
        preview.save(path)
    return name


def _save_basis(volume: SpectralVolume, params: dict[str, Any]) -> tuple[str, int]:
    """The compact basis of the volume's first item in the temp subfolder; returns (name, modes)."""
    basis = build_preview_basis(ModalBasis.from_volume(volume), DEFAULT_MAX_MODES, DEFAULT_MAX_SIDE)
    digest = hashlib.sha1(basis.shapes.numpy().tobytes())
    digest.update(basis.omegas.numpy().tobytes() + basis.masses.numpy().tobytes())
    digest.update(json.dumps(params, sort_keys=True).encode())
    name = f"gid_live_{digest.hexdigest()[:16]}.safetensors"
    path = _comfy.temp_directory() / SUBFOLDER / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_preview_basis(basis, path, params)
    return name, basis.num_modes


def preview_payload(picture: Any, volume: Any, params: dict[str, Any]) -> dict[str, list]:
    """UI payload ({key: [entries]}) that lets the frontend run the live preview of a node.

    picture: IMAGE (B, H, W, C) or None (no preview then: returns {}); volume: SpectralVolume in
    pixels (its first item is previewed); params: the node's simulation settings (damping,
    stiffness_scale, mass_scale, frames, fps, hold_frames, ...). Returns
    {"gid_live_preview": [{"basis", "picture", "subfolder", "type": "temp", "modes"}]}.
    A volume with nothing to simulate gives no preview (logged), never a failed node: the preview
    is an extra on top of the node's real output.
    """
    if picture is None:
        return {}
    plain = _plain_params(params)
    try:
        basis_name, modes = _save_basis(volume, plain)
    except ValueError as error:
        LOGGER.warning("[%s] no live preview: %s", NODE, error)
        return {}
    picture_name = _save_picture(picture)
    entry = {"basis": basis_name, "picture": picture_name, "subfolder": SUBFOLDER, "type": "temp", "modes": modes}
    return {UI_KEY: [entry]}
