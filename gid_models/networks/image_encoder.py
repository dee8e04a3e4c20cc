"""Frozen pretrained image encoder: EfficientNet-Lite0 features at strides 8, 16 and 32.

EfficientNet-Lite0 (Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019; the Lite variants of the TensorFlow TPU repository): ImageNet-trained,
Apache-2.0. The architecture is written out here rather than taken from a library because timm
(the well-kept one) needs torchvision, which does not install beside a CPU build of torch without
replacing it (and would pull a CUDA torch onto users' machines), and the PyPI port is not kept.

What is kept is what the motion model reads: the stem and the 16 inverted-residual (MBConv)
blocks, no squeeze-excitation, ReLU6, TensorFlow "SAME" padding (stride-2 convolutions pad one
pixel more at the bottom and right). The 1280-channel head and the classifier are dropped.
Batch normalisation is folded into the convolutions at conversion (tools/convert_image_encoder.py
writes gid_models/weights/image_encoder.safetensors, fp16), so every convolution has a bias.

Input: pictures (B, 3, H, W) RGB in -1..1 (the denoiser's condition), fed to the network as
(255 * p - 127) / 128 with p in 0..1, the TensorFlow Lite preprocessing the weights were trained with.
Output (`ImageFeatures`): (B, 40, ceil(H / 8), ceil(W / 8)), (B, 112, ceil(H / 16), ceil(W / 16)),
(B, 320, ceil(H / 32), ceil(W / 32)).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..spectral import MotionError
from .weight_files import load_weights, open_safetensors

WEIGHTS_FILE = Path(__file__).resolve().parent.parent / "weights" / "image_encoder.safetensors"
FORMAT_TAG = "gid-image-encoder-efficientnet-lite0"
STEM_CHANNELS = 32
# EfficientNet-Lite0 stages: (kernel, stride, expansion, output channels, blocks)
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
FEATURE_STAGES = (2, 4, 6)  # the last block of these stages gives the stride 8, 16 and 32 features
FEATURE_CHANNELS = (40, 112, 320)
FEATURE_STRIDES = (8, 16, 32)


class ImageFeatures(NamedTuple):
    """Encoder features: stride8 (B, 40, h8, w8), stride16 (B, 112, h16, w16), stride32 (B, 320, h32, w32)."""

    stride8: torch.Tensor
    stride16: torch.Tensor
    stride32: torch.Tensor


class SameConv(nn.Conv2d):
    """Conv2d (with bias) padded as TensorFlow's "SAME": output ceil(input / stride), the odd
    pixel of padding at the bottom and right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class InvertedResidual(nn.Module):
    """MBConv block without squeeze-excitation: 1x1 expansion (unless expansion is 1), depthwise
    k x k (stride s), 1x1 projection; ReLU6 after the first two; residual when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = SameConv(in_channels, hidden, 1) if expansion != 1 else None
        self.depthwise = SameConv(hidden, hidden, kernel, stride=stride, groups=hidden)
        self.project = SameConv(hidden, out_channels, 1)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x if self.expand is None else F.relu6(self.expand(x))
        hidden = self.project(F.relu6(self.depthwise(hidden)))
        return x + hidden if self.residual else hidden


class EfficientNetLite0Features(nn.Module):
    """The EfficientNet-Lite0 backbone up to its last block (see the module docstring); 3.0 M
    parameters. Always in eval mode and frozen once loaded (`load`)."""

    def __init__(self):
        super().__init__()
        self.stem = SameConv(3, STEM_CHANNELS, 3, stride=2)
        self.stages = nn.ModuleList()
        channels = STEM_CHANNELS
        for kernel, stride, expansion, out_channels, blocks in STAGES:
            stage = nn.Sequential()
            for index in range(blocks):
                stage.append(InvertedResidual(channels, out_channels, kernel, stride if index == 0 else 1, expansion))
                channels = out_channels
            self.stages.append(stage)

    def forward(self, picture: torch.Tensor) -> ImageFeatures:
        """picture (B, 3, H, W) in -1..1 -> ImageFeatures at strides 8, 16, 32."""
        x = (255.0 * (picture + 1) / 2 - 127.0) / 128.0
        x = F.relu6(self.stem(x))
        features = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in FEATURE_STAGES:
                features.append(x)
        return ImageFeatures(*features)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "EfficientNetLite0Features":
        """The converted weights (default: the bundled gid_models/weights/image_encoder.safetensors),
        float32, eval mode, frozen; MotionError naming the file if it is missing, damaged or another model's."""
        path = Path(WEIGHTS_FILE if path is None else path)
        if not path.is_file():
            raise MotionError(
                f"the image encoder weights {path} are missing; reinstall the pack (they ship in gid_models/weights/) "
                "or rebuild them with `python tools/convert_image_encoder.py`."
            )
        content = open_safetensors(path)
        if content["metadata"].get("format") != FORMAT_TAG:
            raise MotionError(f"{path.name} is not the GID image encoder (format tag {content['metadata'].get('format')!r}, "
                              f"expected {FORMAT_TAG!r}).")
        encoder = cls()
        load_weights(encoder, content["tensors"], str(path))
        return encoder.eval().requires_grad_(False)
