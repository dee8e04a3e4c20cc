"""Live poke preview: exports a compact modal basis for the browser (being written).

`preview_payload` is called by GIDModalSimulation; until the live preview lands it returns no
UI payload.
"""

from __future__ import annotations

from typing import Any

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}


def preview_payload(picture: Any, volume: Any, params: dict[str, Any]) -> dict[str, list]:
    """UI payload ({key: [entries]}) that lets the frontend run the live preview of a node.

    picture: IMAGE (1, H, W, 3) or None; volume: SpectralVolume in pixels; params: the
    simulation settings of the node (damping, stiffness_scale, mass_scale, fps, ...).
    """
    return {}
