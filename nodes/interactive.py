"""What GIDModalSimulation's two widgets load after a run, written into ComfyUI's temp folder.

`preview_payload` is called at the end of each run. It writes the picture once as a PNG, which
both the drag widget (web/js/gid_drag_points.js, UI key `gid_drag_picture`) and the live poke
preview (web/js/gid_live_preview.js, UI key `gid_live_preview`) show, and for the live preview a
compact modal basis (a few dominant modes at reduced resolution,
gid_models/dynamics/basis_export.py). The UI entries name the files, served by /view?type=temp;
the browser fetches them by file name, never as base64 in the graph.
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
from ..gid_models.dynamics.modes import ModalBasis
from ..gid_models.spectral import SpectralVolume
from . import _comfy
from .errors import image_batch_to_nchw

LOGGER = logging.getLogger("ComfyUI-GID")

UI_KEY = "gid_live_preview"
PICTURE_UI_KEY = "gid_drag_picture"
SUBFOLDER = "gid"
PICTURE_MAX_SIDE = 640  # the preview canvas is at most this large (web/js/lib/preview/live_view.js)
NODE = "GIDModalSimulation"

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}


def _plain_params(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe settings (numbers and strings) of a node's params."""
    return {k: v for k, v in params.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def save_picture(picture: torch.Tensor) -> str:
    """First image of an IMAGE batch as a PNG (long side <= PICTURE_MAX_SIDE) in the temp subfolder;
    returns its file name (named by its pixels, so a re-run writes nothing new)."""
    image = image_batch_to_nchw(picture, NODE, "picture")[0]
    pixels = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().contiguous().numpy()
    name = f"gid_picture_{hashlib.sha1(pixels.tobytes()).hexdigest()[:16]}.png"
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
    name = f"gid_basis_{digest.hexdigest()[:16]}.safetensors"
    path = _comfy.temp_directory() / SUBFOLDER / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_preview_basis(basis, path, params)
    return name, basis.num_modes


def preview_payload(picture: Any, volume: Any, params: dict[str, Any]) -> dict[str, list]:
    """UI payload ({key: [entries]}) of GIDModalSimulation's drag widget and live preview.

    picture: IMAGE (B, H, W, C) or None (nothing to show then: returns {}); volume: SpectralVolume
    in pixels (its first item is previewed); params: the node's simulation settings (damping,
    stiffness_scale, mass_scale, frames, fps, hold_frames, ...). Returns
    {"gid_drag_picture": [{"filename", "subfolder", "type": "temp"}],
     "gid_live_preview": [{"basis", "picture", "subfolder", "type": "temp", "modes"}]}, both naming
    the same picture file. A volume with nothing to simulate gives no live preview entry (logged),
    never a failed node: the preview is an extra on top of the node's real output.
    """
    if picture is None:
        return {}
    picture_name = save_picture(picture)
    payload = {PICTURE_UI_KEY: [{"filename": picture_name, "subfolder": SUBFOLDER, "type": "temp"}]}
    try:
        basis_name, modes = _save_basis(volume, _plain_params(params))
    except ValueError as error:
        LOGGER.warning("[%s] no live preview: %s", NODE, error)
        return payload
    entry = {"basis": basis_name, "picture": picture_name, "subfolder": SUBFOLDER, "type": "temp", "modes": modes}
    return {**payload, UI_KEY: [entry]}
