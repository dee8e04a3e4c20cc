"""Compact modal basis for the browser's live poke preview (paper notes, sections 6 and 9).

The browser simulates the same decoupled oscillators as `modal.py`, but on a handful of
dominant modes sampled on a small grid, so that one frame costs a few hundred thousand
multiply-adds. This module picks those modes, resamples them, and writes them to a small
safetensors file that `web/js/lib/preview/basis_format.js` reads.

Units are never rescaled: mode shapes stay in pixels of the *source* volume (its width x height),
omegas in rad/s, masses as in the source basis. The reduced grid is only where the shapes are
sampled; the browser converts drags to source pixels exactly as the Python simulation does, so
the modal coordinates q_j(t) it computes equal the Python ones for the same modes.

File layout (safetensors, little-endian):
- ``shapes``: (J, h, w, 4) float16 or float32, channels (Re x, Im x, Re y, Im y) in source
  pixels; row 0 is the top of the picture. Channel-last so one mode is one RGBA texture layer.
- ``omegas``: (J,) float32 angular frequencies in rad/s.
- ``masses``: (J,) float32 modal masses.
- metadata (strings): ``format`` = "gid-preview-basis", ``version``, ``source_width``,
  ``source_height`` (pixels the shapes are measured in), ``mode_indices`` (JSON list: the volume
  frequency bin of each kept mode), ``params`` (JSON: the node's simulation settings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .modes import ModalBasis

FORMAT = "gid-preview-basis"
FORMAT_VERSION = 1
DEFAULT_MAX_MODES = 8
DEFAULT_MAX_SIDE = 256


@dataclass(frozen=True)
class PreviewBasis:
    """A few dominant modes on a reduced grid, ready to write for the browser.

    shapes: (J, h, w, 4) float32, channels (Re x, Im x, Re y, Im y) in source-volume pixels.
    omegas: (J,) float32 rad/s. masses: (J,) float32.
    mode_indices: volume frequency bin k of each kept mode (ascending).
    source_width, source_height: size in pixels of the grid the shapes' values are measured in.
    """

    shapes: torch.Tensor
    omegas: torch.Tensor
    masses: torch.Tensor
    mode_indices: tuple[int, ...]
    source_width: int
    source_height: int

    @property
    def num_modes(self) -> int:
        return int(self.shapes.shape[0])

    @property
    def grid_size(self) -> tuple[int, int]:
        """(height, width) of the reduced sampling grid."""
        return int(self.shapes.shape[1]), int(self.shapes.shape[2])


def select_dominant_modes(masses: torch.Tensor, max_modes: int = DEFAULT_MAX_MODES) -> list[int]:
    """Indices of the `max_modes` heaviest modes (largest modal mass = mean |phi_j|^2, the power of
    the mode in the observed motion), in ascending (frequency) order; ties keep the lower index.

    This is the same choice as ModalBasis.from_volume(max_modes=...).
    """
    if max_modes < 1:
        raise ValueError(f"max_modes must be at least 1, got {max_modes}.")
    order = torch.argsort(masses.double(), descending=True, stable=True)[:max_modes]
    return sorted(int(j) for j in order)


def reduced_grid_size(height: int, width: int, max_side: int = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """(h, w) of a grid with at most max_side pixels on its long side, aspect ratio kept, never upscaled."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resample_shapes(shapes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(J, 2, H, W) complex -> (J, h, w, 4) float32 (Re x, Im x, Re y, Im y), values unchanged in units.

    Downsampling averages areas (no aliasing of fine mode detail); same size is an exact copy.
    """
    channels = torch.stack(
        [shapes[:, 0].real, shapes[:, 0].imag, shapes[:, 1].real, shapes[:, 1].imag], dim=1
    ).float()
    if tuple(channels.shape[-2:]) != tuple(size):
        channels = F.interpolate(channels, size=size, mode="area")
    return channels.permute(0, 2, 3, 1).contiguous()


def build_preview_basis(
    basis: ModalBasis, max_modes: int = DEFAULT_MAX_MODES, max_side: int = DEFAULT_MAX_SIDE
) -> PreviewBasis:
    """Keep the heaviest modes of a modal basis, sampled on a grid of at most max_side pixels."""
    kept = select_dominant_modes(basis.masses, max_modes)
    grid = resample_shapes(basis.shapes[kept].cpu(), reduced_grid_size(basis.height, basis.width, max_side))
    return PreviewBasis(
        shapes=grid,
        omegas=basis.omegas.detach().cpu().float()[kept].contiguous(),
        masses=basis.masses.detach().cpu().float()[kept].contiguous(),
        mode_indices=tuple(int(k) for k in basis.frequency_indices[kept]),
        source_width=basis.width,
        source_height=basis.height,
    )


def save_preview_basis(
    basis: PreviewBasis, path: str | Path, params: dict[str, Any], half: bool = True
) -> None:
    """Write the basis file described in the module docstring; half=True stores shapes as float16."""
    from safetensors.torch import save_file

    shapes = basis.shapes.half() if half else basis.shapes.float()
    metadata = {
        "format": FORMAT,
        "version": str(FORMAT_VERSION),
        "source_width": str(basis.source_width),
        "source_height": str(basis.source_height),
        "mode_indices": json.dumps(list(basis.mode_indices)),
        "params": json.dumps(params, sort_keys=True),
    }
    tensors = {"shapes": shapes.contiguous(), "omegas": basis.omegas, "masses": basis.masses}
    save_file(tensors, str(path), metadata=metadata)


def load_preview_basis(path: str | Path) -> tuple[PreviewBasis, dict[str, Any]]:
    """Read a file written by save_preview_basis; returns (basis with float32 shapes, params)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path} is not a GID preview basis (format={metadata.get('format')!r}).")
        shapes = handle.get_tensor("shapes").float()
        omegas = handle.get_tensor("omegas").float()
        masses = handle.get_tensor("masses").float()
    basis = PreviewBasis(
        shapes=shapes,
        omegas=omegas,
        masses=masses,
        mode_indices=tuple(json.loads(metadata["mode_indices"])),
        source_width=int(metadata["source_width"]),
        source_height=int(metadata["source_height"]),
    )
    return basis, json.loads(metadata["params"])
