"""The paper's importance metric for softmax splatting (paper notes, section 5).

W(p) = (1/T) * sum_t ||F_t(p)||_2, the mean motion magnitude of a pixel in pixels: pixels that
move more are taken as foreground and win where splatted pixels collide.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..spectral import MotionTexture


def motion_importance(displacements: torch.Tensor) -> torch.Tensor:
    """(B, T, 2, H, W) displacements in pixels -> (B, 1, H, W) mean magnitude W in pixels."""
    if displacements.ndim != 5 or displacements.shape[2] != 2:
        raise ValueError(f"motion_importance needs (B, T, 2, H, W) displacements, got {tuple(displacements.shape)}.")
    return torch.linalg.vector_norm(displacements.float(), dim=2).mean(dim=1, keepdim=False).unsqueeze(1)


def importance_at(motion: MotionTexture, height: int, width: int, batch_index: int = 0) -> torch.Tensor:
    """W of one motion item at height x width pixels: (1, 1, height, width).

    The displacements are scaled to the target resolution (dx by the width ratio, dy by the
    height ratio) before taking norms, and the norm map is then resized bilinearly, which avoids
    resizing all T frames to the target resolution just to average them.
    """
    displacements = motion.displacements[batch_index : batch_index + 1]
    scale = torch.tensor(
        [width / motion.width, height / motion.height], dtype=torch.float32, device=displacements.device
    ).view(1, 1, 2, 1, 1)
    importance = motion_importance(displacements.float() * scale)
    if (height, width) != (motion.height, motion.width):
        importance = F.interpolate(importance, size=(height, width), mode="bilinear", align_corners=False)
    return importance
