"""Where a picture moves, and how much: per-pixel motion amplitude seen from the picture.

Motion model v2 (issue 17). The denoiser alone placed its motion with no regard to the scene
(sky and mountains swayed, grass did not). This network looks at the picture through the frozen
EfficientNet-Lite0 (image_encoder.py) and predicts, on the encoder's stride-8 grid, the log
amplitude of every frequency bin's x and y motion:

    A[b, k, a, i, j] = log(rms over the 8 x 8 pixel cell (i, j) of |S_k| along axis a, in pixels)

with |S_k| along x = sqrt(Re x^2 + Im x^2) (and the same for y) of the spectral volume at the
model's working size (256 x 160 for the shipped one). Bin 0 (the mean offset) is predicted too
but the sampler replaces it (sampling/amplitude.py keeps frame 0 at rest).

Architecture: each encoder map gets a 1x1 projection to `width` channels, the stride-16 and -32
maps are resized to the stride-8 grid, concatenated with the picture's mean colour per cell, and
pass three 3x3 convolutions (the last dilated) and a 1x1 head. The head's bias starts at
`initial_log_amplitude`, so an untrained network predicts a flat, small motion.

The sampler (sampling/amplitude.py) imposes these amplitudes on the diffusion model's sample:
the denoiser decides the motion's phase, direction and texture, this network decides where and
how strongly it moves.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange
from torch import nn

from .image_encoder import FEATURE_CHANNELS, EfficientNetLite0Features, ImageFeatures
from .weight_files import read_network_file, write_network_file

FORMAT_TAG = "gid-motion-amplitude"
FILE_NAME = "motion_amplitude.safetensors"
CELL = 8
"""Pixels per side of one cell of the predicted grid (the encoder's finest stride)."""
AXES = 2


class MotionAmplitudeNet(ModelMixin, ConfigMixin):
    """Picture -> log motion amplitude per frequency bin and axis on the stride-8 grid.

    num_frequencies: K bins (16 for the shipped model). width: channels of the projections and
    the trunk. initial_log_amplitude: the head's starting bias (log pixels).
    The frozen encoder is not part of the state dict; `attach_encoder` gives it one.
    """

    @register_to_config
    def __init__(self, num_frequencies: int = 16, width: int = 48, initial_log_amplitude: float = -3.0,
                 kernel_size: int = 3, dropout: float = 0.0, feature_levels: tuple[int, ...] = (0, 1, 2)):
        super().__init__()
        self.levels = tuple(int(level) for level in feature_levels)
        self.projections = nn.ModuleList(nn.Conv2d(FEATURE_CHANNELS[level], width, 1) for level in self.levels)
        inputs = width * len(self.levels) + 3
        pad = kernel_size // 2
        self.trunk = nn.Sequential(
            nn.Dropout2d(dropout),
            nn.Conv2d(inputs, 2 * width, kernel_size, padding=pad), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, kernel_size, padding=pad), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, kernel_size, padding=2 * pad, dilation=2), nn.SiLU(),
        )
        self.head = nn.Conv2d(2 * width, num_frequencies * AXES, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, initial_log_amplitude)
        self._encoder: list[EfficientNetLite0Features] = []  # a list keeps it out of the state dict

    def attach_encoder(self, encoder: EfficientNetLite0Features | None = None) -> "MotionAmplitudeNet":
        """Use this frozen encoder (default: the bundled EfficientNet-Lite0) for `forward`."""
        self._encoder[:] = [encoder if encoder is not None else EfficientNetLite0Features.load()]
        return self

    def encode(self, picture: torch.Tensor) -> ImageFeatures:
        """picture (B, 3, H, W) in 0..1, H and W multiples of 8 -> the frozen encoder's features."""
        if not self._encoder:
            self.attach_encoder()
        encoder = self._encoder[0]
        if next(encoder.parameters()).device != picture.device:
            encoder.to(picture.device)
        with torch.no_grad():
            return encoder(picture.float() * 2 - 1)

    def predict(self, features: ImageFeatures, picture: torch.Tensor) -> torch.Tensor:
        """(B, K, 2, H / 8, W / 8) log amplitudes (log pixels) from encoder features and the
        picture (B, 3, H, W) in 0..1 (training calls this with cached features)."""
        grid = features.stride8.shape[-2:]
        chosen = [features[level] for level in self.levels]
        maps = [F.interpolate(p(f.float()), size=grid, mode="bilinear", align_corners=False) if f.shape[-2:] != grid
                else p(f.float()) for p, f in zip(self.projections, chosen)]
        colour = F.adaptive_avg_pool2d(picture.float(), grid) * 2 - 1
        out = self.head(self.trunk(torch.cat([*maps, colour], dim=1)))
        return rearrange(out, "b (k a) h w -> b k a h w", a=AXES)

    def forward(self, picture: torch.Tensor) -> torch.Tensor:
        """picture (B, 3, H, W) in 0..1, H and W multiples of 8 -> (B, K, 2, H / 8, W / 8) log pixels."""
        if picture.ndim != 4 or picture.shape[1] != 3 or picture.shape[-1] % CELL or picture.shape[-2] % CELL:
            raise ValueError(f"MotionAmplitudeNet needs (B, 3, H, W) with H, W multiples of {CELL}, "
                             f"got {tuple(picture.shape)}.")
        return self.predict(self.encode(picture), picture)

    def save(self, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
        return write_network_file(self, path, FORMAT_TAG, dtype)

    @classmethod
    def load(cls, path: str | Path) -> "MotionAmplitudeNet":
        """The network in path (float32, eval mode, frozen), checked against its config; MotionError otherwise."""
        return read_network_file(cls, path, FORMAT_TAG).requires_grad_(False)


def cell_log_amplitude(coeffs: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """(B, K, 4, H, W) coefficients in pixels -> (B, K, 2, H / 8, W / 8) log of the rms amplitude
    per axis over each 8 x 8 cell (H, W multiples of 8), floored at `floor` pixels."""
    power = rearrange(coeffs.float().square(), "b k (a c) h w -> b k a c h w", a=AXES).sum(dim=3)
    b, k = power.shape[:2]
    pooled = F.avg_pool2d(power.reshape(b * k * AXES, 1, *power.shape[-2:]), CELL)
    return pooled.reshape(b, k, AXES, *pooled.shape[-2:]).clamp_min(floor * floor).sqrt().log()
