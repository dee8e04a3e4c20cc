"""Softmax-splat rendering of motion textures (paper notes, section 5).

Public API:
- softmax_splat(source, flow, metric) -> (warped, coverage): forward warping of any tensor.
- motion_importance(displacements) -> W: the paper's importance metric (mean motion magnitude).
- render_motion(picture, motion, renderer=None, ...) -> frames (T, 3, H, W): the pixel renderer
  (splat + pull-push fill) or a trained NeuralRenderer.
- NeuralRenderer: the pyramid renderer network (a diffusers config: channels).
- pull_push_fill(image, alpha): the hole filling used by both renderers.
"""

from .hole_fill import coverage_alpha, pull_push_fill
from .importance import importance_at, motion_importance
from .pixel import render_pixel_frames
from .render import check_render_inputs, pick_chunk_size, render_motion, require_frames_memory
from .render_net import NeuralRenderer, resize_flow
from .softsplat import softmax_splat

__all__ = [
    "NeuralRenderer",
    "check_render_inputs",
    "coverage_alpha",
    "importance_at",
    "motion_importance",
    "pick_chunk_size",
    "pull_push_fill",
    "render_motion",
    "require_frames_memory",
    "render_pixel_frames",
    "resize_flow",
    "softmax_splat",
]
