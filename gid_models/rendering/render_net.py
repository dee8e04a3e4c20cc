"""The neural renderer of the paper (Sec. 5, Fig. 4), compact and trained from scratch.

picture I_0 -> feature pyramid (ResNet-style encoder, strides 1, 2, 4, 8) -> each level softmax-
splatted with the flow resized and rescaled to that level and the importance W -> a synthesis
decoder that walks the pyramid coarse to fine, fusing the warped features and their coverage,
and predicts a correction to the pixel renderer's frame (splat + pull-push fill). The last
layer starts at zero, so an untrained network renders exactly like the pixel renderer and
training only has to learn what the fill gets wrong (disocclusions, edges, blur).

Weights are saved as one fp16 safetensors file with the config in its metadata (plus a
sibling .json with the same config, for people reading the folder).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .hole_fill import coverage_alpha, pull_push_fill
from .softsplat import softmax_splat

FORMAT_NAME = "gid-neural-renderer"
BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "renderer.safetensors"


@dataclass(frozen=True)
class RendererConfig:
    """channels: feature channels per pyramid level (level l has stride 2**l)."""

    channels: tuple[int, ...] = (32, 64, 96, 128)

    def __post_init__(self) -> None:
        if len(self.channels) < 1 or any(int(c) < 4 for c in self.channels):
            raise ValueError(f"renderer channels must be one or more widths >= 4, got {self.channels}.")


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


MAX_CONFIG_CHARS = 4096
MAX_LEVELS = 6
MAX_CHANNELS = 1024


def renderer_config(text: object, source: str) -> RendererConfig:
    """The RendererConfig stored in a weights file's metadata, refused unless it is a small JSON
    object {"channels": [c0, c1, ...]} of 1..6 widths in 4..1024 (a hostile config must not make
    us build a network of any size)."""
    if not isinstance(text, str) or len(text) > MAX_CONFIG_CHARS:
        raise ValueError(f"{source}: the renderer config in the file's metadata is missing or too long; "
                         "the file is not a GID neural renderer or is damaged.")
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{source}: the renderer config is not valid JSON; the file is damaged.") from error
    channels = config.get("channels") if isinstance(config, dict) else None
    if (not isinstance(channels, list) or not 1 <= len(channels) <= MAX_LEVELS
            or not all(type(c) is int and 4 <= c <= MAX_CHANNELS for c in channels)):
        raise ValueError(f"{source}: the renderer config {text[:200]} is not {{\"channels\": [1 to {MAX_LEVELS} "
                         f"widths in 4..{MAX_CHANNELS}]}}; the file is not a GID neural renderer or is damaged.")
    return RendererConfig(channels=tuple(channels))


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


class NeuralRenderer(nn.Module):
    """Softmax-splatting pyramid renderer.

    forward(picture (N, 3, H, W) 0..1, flow (N, 2, H, W) pixels, importance (N, 1, H, W))
    -> (N, 3, H, W) frame. For many frames of one picture use encode() once, then render().
    """

    def __init__(self, config: RendererConfig | None = None) -> None:
        super().__init__()
        self.config = config or RendererConfig()
        channels = [int(c) for c in self.config.channels]
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
        warped_picture, coverage = warped_levels[0][0][:, :3], warped_levels[0][1]
        base = pull_push_fill(warped_picture.float(), coverage.float())
        return (base + self.head(x).float()).clamp(0.0, 1.0)

    def forward(self, picture: torch.Tensor, flow: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
        return self.render(self.encode(picture), flow, importance)

    # -- files --------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """fp16 safetensors at path (config in the metadata) and the config as path.json."""
        from safetensors.torch import save_file

        path = Path(path)
        config_json = json.dumps(asdict(self.config))
        tensors = {name: value.detach().half().cpu().contiguous() for name, value in self.state_dict().items()}
        save_file(tensors, str(path), metadata={"format": FORMAT_NAME, "config": config_json})
        path.with_suffix(".json").write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "NeuralRenderer":
        """Read a file written by save(); float32 module on CPU. Refuses other files clearly:
        the motion model's checks (no pickles, format tag, every name and shape, finite values)
        plus a sane config."""
        from ..networks.motion_model import _load_weights, _open_safetensors

        path = Path(path)
        content = _open_safetensors(path)
        metadata = content["metadata"]
        if metadata.get("format") != FORMAT_NAME:
            raise ValueError(
                f"{path.name} is not a GID neural renderer file (expected safetensors written by "
                f"gid_models.train.train_renderer, with format={FORMAT_NAME} metadata)."
            )
        model = cls(renderer_config(metadata.get("config"), path.name))
        _load_weights(model, content["tensors"], path.name)
        return model.eval()

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
