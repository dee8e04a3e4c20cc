"""The neural renderer of the paper (Sec. 5, Fig. 4), compact and trained from scratch.

picture I_0 -> feature pyramid (ResNet-style encoder, strides 1, 2, 4, 8) -> each level softmax-
splatted with the flow resized and rescaled to that level and the importance W -> a synthesis
decoder that walks the pyramid coarse to fine, fusing the warped features and their coverage,
and predicts a correction to the pixel renderer's frame (splat + pull-push fill). The last
layer starts at zero, so an untrained network renders exactly like the pixel renderer and
training only has to learn what the fill gets wrong (disocclusions, edges, blur).

Config and files as the motion model's networks: a diffusers config (`renderer.config.channels`)
and one fp16 safetensors file with its format tag and config in the metadata, plus a sibling
.json with the same config (gid_models/networks/weight_files.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from .hole_fill import coverage_alpha, pull_push_fill
from .pixel import splat_pixel_frames
from .softsplat import softmax_splat

FORMAT_NAME = "gid-neural-renderer"
BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "renderer.safetensors"


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


MAX_LEVELS = 6
MAX_CHANNELS = 1024


def check_renderer_file(path: Path, option: str) -> None:
    """ValueError naming option unless path is a readable GID neural renderer file (loads it)."""
    if not path.is_file():
        raise ValueError(f"{option}: '{path}' is neither 'neural', 'pixel' nor a renderer .safetensors file.")
    try:
        NeuralRenderer.load(path)
    except ValueError as error:
        raise ValueError(f"{option}: {error}") from error


def _stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
        nn.LeakyReLU(0.2),
        ResidualBlock(out_channels),
    )


def resize_flow(flow: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 2, H, W) pixels -> (N, 2, height, width) pixels at the new resolution."""
    if tuple(flow.shape[-2:]) == (height, width):
        return flow
    scale = torch.tensor([width / flow.shape[-1], height / flow.shape[-2]], device=flow.device, dtype=flow.dtype)
    resized = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return resized * scale.view(1, 2, 1, 1)


class NeuralRenderer(ModelMixin, ConfigMixin):
    """Softmax-splatting pyramid renderer.

    channels: feature channels per pyramid level (level l has stride 2**l).
    forward(picture (N, 3, H, W) 0..1, flow (N, 2, H, W) pixels, importance (N, 1, H, W))
    -> (N, 3, H, W) frame. For many frames of one picture use encode() once, then render().
    """

    @register_to_config
    def __init__(self, channels: tuple[int, ...] = (32, 64, 96, 128)) -> None:
        super().__init__()
        if isinstance(channels, (str, bytes)) or not all(isinstance(c, int) and not isinstance(c, bool) for c in channels):
            raise ValueError(f"renderer channels must be whole numbers, got {str(channels)[:80]}.")
        channels = list(channels)
        # a hostile config must not make us build a network of any size
        if not 1 <= len(channels) <= MAX_LEVELS or any(not 4 <= c <= MAX_CHANNELS for c in channels):
            raise ValueError(f"renderer channels must be 1 to {MAX_LEVELS} widths in 4..{MAX_CHANNELS}, got {channels[:8]}.")
        self.register_to_config(channels=tuple(channels))  # a tuple whether given as a list (JSON) or not
        self.encoder = nn.ModuleList(
            [_stage(3, channels[0], 1)] + [_stage(channels[i - 1], channels[i], 2) for i in range(1, len(channels))]
        )
        # Decoder level l sees: its warped features (+ the warped picture at level 0), its
        # coverage, and the upsampled decoder state of level l+1.
        self.decoder = nn.ModuleList()
        for level, width in enumerate(channels):
            extra = 3 if level == 0 else 0
            coarser = channels[level + 1] if level + 1 < len(channels) else 0
            self.decoder.append(_stage(width + extra + 1 + coarser, width, 1))
        self.head = nn.Conv2d(channels[0], 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def encode(self, picture: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) in 0..1 -> features per level, level 0 prefixed with the picture itself."""
        features = []
        x = picture * 2.0 - 1.0
        for stage in self.encoder:
            x = stage(x)
            features.append(x)
        # Level 0 stays float32 even under autocast: it carries the picture, whose warped copy is
        # the base frame (bf16 would band it); the decoder convolutions still run in bf16.
        features[0] = torch.cat([picture.float(), features[0].float()], dim=1)
        return features

    def render(
        self, features: list[torch.Tensor], flow: torch.Tensor, importance: torch.Tensor
    ) -> torch.Tensor:
        """Frames from encoded features (batch 1 or N, broadcast) and N flows: (N, 3, H, W)."""
        n = flow.shape[0]
        warped_levels = []
        for level_features in features:
            h, w = level_features.shape[-2:]
            level_features = level_features.expand(n, *level_features.shape[1:])
            level_importance = F.interpolate(importance, size=(h, w), mode="bilinear", align_corners=False)
            warped, coverage = softmax_splat(
                level_features, resize_flow(flow, h, w), level_importance.expand(n, 1, h, w)
            )
            warped_levels.append((warped, coverage_alpha(coverage).to(warped.dtype)))
        x = None
        for level in reversed(range(len(features))):
            warped, coverage = warped_levels[level]
            inputs = [warped, coverage]
            if x is not None:
                inputs.append(F.interpolate(x, size=warped.shape[-2:], mode="bilinear", align_corners=False))
            x = self.decoder[level](torch.cat(inputs, dim=1))
        # The base frame is the pixel renderer's (stretch-supersampled splat of the picture), so an
        # untrained head renders exactly as the pixel renderer does.
        warped_picture, coverage = splat_pixel_frames(features[0][:, :3].float(), flow.float(), importance.float())
        base = pull_push_fill(warped_picture, coverage_alpha(coverage))
        return (base + self.head(x).float()).clamp(0.0, 1.0)

    def forward(self, picture: torch.Tensor, flow: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
        return self.render(self.encode(picture), flow, importance)

    # -- files --------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """fp16 safetensors at path (format tag and config in the metadata) and the config as path.json."""
        from ..networks.weight_files import write_network_file

        write_network_file(self, path, FORMAT_NAME)

    @classmethod
    def load(cls, path: str | Path) -> "NeuralRenderer":
        """Read a file written by save(); float32 module on CPU, checked against its config. Refuses
        other files clearly (MotionError, a ValueError)."""
        from ..networks.weight_files import read_network_file

        return read_network_file(cls, path, FORMAT_NAME)

    @staticmethod
    def bundled_available() -> bool:
        """True when the shipped weights gid_models/weights/renderer.safetensors are present."""
        return BUNDLED_WEIGHTS.is_file()

    @classmethod
    def from_bundled(cls) -> "NeuralRenderer":
        if not cls.bundled_available():
            raise FileNotFoundError(
                f"the bundled neural renderer is missing ({BUNDLED_WEIGHTS} does not exist); reinstall the "
                "pack to restore it, render without one (the pixel renderer) or train one with "
                "`python -m gid_models.train.train_renderer`."
            )
        return cls.load(BUNDLED_WEIGHTS)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
