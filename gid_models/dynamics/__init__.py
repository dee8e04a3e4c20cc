"""Interactive dynamics: image-space modal simulation of drags and pokes (paper notes, sections 6 and 9).

Public API:
- ModalBasis.from_volume(volume, max_modes=None): mode shapes, frequencies and masses.
- simulate_modal_coordinates(basis, drags, num_frames, fps, ...) -> q (N, J) complex.
- synthesize_motion(basis, q, fps) -> MotionTexture; simulate(volume, drags, ..., callback=None) does
  both for every batch item, calling callback(item, B) after each; its response settles within
  settle_seconds of a release and limit_warp keeps every frame fold-free (WarpLimit).
- Drag, drags_from_json(text, width, height, default_hold): the widget's drag JSON in pixels.
"""

from .drags import DRAG_KINDS, EMPTY_DRAGS_JSON, Drag, drags_from_json, parse_drag_entries
from .fold_limit import DEFAULT_WARP_LIMIT, WarpLimit, limit_warp
from .integrators import INTEGRATORS, settled_dynamics, step_matrices
from .modal import (
    SETTLE_SECONDS,
    modal_energy,
    modal_force,
    require_motion_memory,
    simulate,
    simulate_modal_coordinates,
    simulate_modal_state,
    synthesize_motion,
)
from .modes import ModalBasis

__all__ = [
    "DEFAULT_WARP_LIMIT",
    "DRAG_KINDS",
    "SETTLE_SECONDS",
    "WarpLimit",
    "limit_warp",
    "settled_dynamics",
    "EMPTY_DRAGS_JSON",
    "INTEGRATORS",
    "Drag",
    "ModalBasis",
    "drags_from_json",
    "modal_energy",
    "modal_force",
    "parse_drag_entries",
    "require_motion_memory",
    "simulate",
    "simulate_modal_coordinates",
    "simulate_modal_state",
    "step_matrices",
    "synthesize_motion",
]
