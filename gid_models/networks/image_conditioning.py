"""The picture, as the frozen image encoder sees it, brought to every level of the denoiser's U-Net.

Motion model v2 (issue 17): besides the space-to-depth pixels at its input, the denoiser reads
EfficientNet-Lite0 features (image_encoder.py) of the picture at strides 8, 16 and 32. Each map
gets its own 1x1 projection to `width` channels (a 1x1 convolution commutes with bilinear
resizing, so this runs once on the small encoder maps); at each U-Net level the three are resized
to the level's grid, summed, passed through SiLU and a zero-initialised 1x1 head, and injected
into the hidden state at the start of that level's down blocks:
- "add":  hidden + head(f)  (the same as concatenating f and a 1x1 convolution whose hidden part
  is the identity);
- "film": hidden * (1 + gamma) + beta with (gamma, beta) = head(f), per pixel and channel.
Zero heads make a new conditioning start as a no-op, so it can be added to a trained denoiser.

Classifier-free guidance: a picture that is all zeros (how training drops the condition and how
the sampler asks for the empty one) gets all-zero encoder features, so both passes see the same
"no picture". The encoder's features are cached for the last condition tensor (held by weak
reference, checked by identity and version), so a sampler that passes the same tensor at every
DDIM step and guidance pass runs the encoder once per picture.

The encoder's weights are not part of the denoiser's state dict (they ship once, in
gid_models/weights/image_encoder.safetensors); it follows the condition's device when used.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from einops import repeat
from torch import nn

from .image_encoder import FEATURE_CHANNELS, EfficientNetLite0Features, ImageFeatures

INJECTIONS = ("add", "film")
ENCODERS = ("efficientnet-lite0",)


class PictureMaps:
    """The projected features of one batch of pictures, ready to inject at any U-Net level."""

    def __init__(self, conditioning: "ImageConditioning", projected: list[torch.Tensor], num_frequencies: int):
        self.conditioning = conditioning
        self.projected = projected  # per encoder map: (B, width, h_s, w_s)
        self.num_frequencies = num_frequencies

    def inject(self, level: int, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B * K, C_level, h, w) with the picture injected (see the module docstring)."""
        size = hidden.shape[-2:]
        summed = sum(F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in self.projected)
        head = self.conditioning.heads[level](F.silu(summed)).to(hidden.dtype)
        head = repeat(head, "b c h w -> (b k) c h w", k=self.num_frequencies)
        if self.conditioning.injection == "add":
            return hidden + head
        gamma, beta = head.chunk(2, dim=1)
        return hidden * (1 + gamma) + beta


class ImageConditioning(nn.Module):
    """Frozen-encoder features of the picture for every U-Net level.

    level_channels: channels of the hidden state entering each U-Net level's down blocks.
    width: channels of the shared projection of the encoder maps.
    injection: "add" or "film".
    """

    def __init__(self, level_channels: tuple[int, ...], width: int = 64, injection: str = "film",
                 encoder: str = "efficientnet-lite0"):
        super().__init__()
        if injection not in INJECTIONS:
            raise ValueError(f"image feature injection must be one of {INJECTIONS}, got {injection!r}.")
        if encoder not in ENCODERS:
            raise ValueError(f"image encoder must be one of {ENCODERS}, got {encoder!r}.")
        self.injection = injection
        self.projections = nn.ModuleList(nn.Conv2d(c, width, 1) for c in FEATURE_CHANNELS)
        outputs = 2 if injection == "film" else 1
        self.heads = nn.ModuleList(nn.Conv2d(width, outputs * c, 1) for c in level_channels)
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        # kept out of the module tree: not in the state dict, never trained, never cast by .to()
        self.__dict__["encoder"] = EfficientNetLite0Features.load()
        self._cache: tuple[weakref.ref, int, ImageFeatures] | None = None

    def encode(self, condition: torch.Tensor) -> ImageFeatures:
        """Encoder features of condition (B, 3, H, W) in -1..1; all zeros for all-zero pictures.
        Cached for the last condition tensor."""
        if self._cache is not None:
            reference, version, features = self._cache
            if reference() is condition and version == condition._version:
                return features
        encoder = self.encoder
        if next(encoder.parameters()).device != condition.device:
            encoder.to(condition.device)
        present = condition.flatten(1).abs().amax(dim=1) > 0
        with torch.no_grad():
            features = encoder(condition.to(next(encoder.parameters()).dtype))
            features = ImageFeatures(*(f * present.view(-1, 1, 1, 1).to(f.dtype) for f in features))
        self._cache = (weakref.ref(condition), condition._version, features)
        return features

    def remember(self, condition: torch.Tensor, features: ImageFeatures) -> None:
        """Answer the next encode(condition) with features (e.g. computed once per training picture)."""
        self._cache = (weakref.ref(condition), condition._version, features)

    def forward(self, condition: torch.Tensor, num_frequencies: int) -> PictureMaps:
        """condition (B, 3, H, W) in -1..1 -> PictureMaps for the (B * K) slices of the denoiser."""
        features = self.encode(condition)
        weight_dtype = self.projections[0].weight.dtype
        projected = [projection(f.to(weight_dtype)) for projection, f in zip(self.projections, features)]
        return PictureMaps(self, projected, num_frequencies)
