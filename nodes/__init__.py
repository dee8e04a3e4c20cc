"""ComfyUI node classes of the pack, one module per topic; each module exports its mappings."""

from __future__ import annotations

from . import diffusion, dynamics, interactive, motion, preview, render
from ._comfy import register_model_folder

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

for _module in (motion, preview, diffusion, render, dynamics, interactive):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "register_model_folder"]
