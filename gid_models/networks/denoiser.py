"""Frequency-coordinated latent denoiser: a 2D U-Net over (B * K) slices with frequency attention.

Paper notes, section 3. One 2D U-Net (LDM style, assembled from diffusers blocks) predicts the
noise of one latent slice; it is conditioned on the picture by concatenating the downsampled I_0
with the noisy latent, and on the slice's frequency bin by a frequency embedding added to the
timestep embedding. Stage 2 interleaves FrequencyAttention after every spatial block (zero
initialised) and trains only those (`freeze_spatial`).

"Downsampled I_0" (ours): the picture in -1..1 is space-to-depth rearranged (pixel_unshuffle) by
the VAE factor, so the latent grid gets all 3 * f * f picture values at its position without
losing detail. The empty condition of classifier-free guidance is all zeros.

Optional (motion model v2, `image_features="efficientnet-lite0"`): the picture also reaches every
U-Net level through a frozen pretrained image encoder (image_conditioning.py). Without it (the
default, and the shipped v1 model) the network and its state dict are exactly as before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from einops import rearrange, repeat
from torch import nn

from .frequency_attention import FrequencyAttention
from .image_conditioning import ImageConditioning


class _Layer(nn.Module):
    """ResNet block, optional spatial self-attention, then frequency attention."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, groups: int,
                 spatial_attention: bool, head_dim: int, frequency_heads: int):
        super().__init__()
        self.resnet = ResnetBlock2D(
            in_channels=in_channels, out_channels=out_channels, temb_channels=temb_channels, groups=groups
        )
        self.attention = (
            Attention(
                query_dim=out_channels, heads=max(1, out_channels // head_dim), dim_head=head_dim,
                norm_num_groups=groups, residual_connection=True, bias=True, upcast_softmax=True,
                _from_deprecated_attn_block=True,
            )
            if spatial_attention
            else None
        )
        self.frequency_attention = FrequencyAttention(out_channels, frequency_heads)

    def forward(self, hidden, temb, frequency_index, num_frequencies, use_frequency_attention):
        hidden = self.resnet(hidden, temb)
        if self.attention is not None:
            hidden = self.attention(hidden)
        if use_frequency_attention:
            hidden = self.frequency_attention(hidden, frequency_index, num_frequencies)
        return hidden


class MotionDenoiser(ModelMixin, ConfigMixin):
    """Noise predictor eps(z, t, I_0, f) for latent spectral volumes.

    sample_size: (height, width) in pixels of the training pictures (sampling works near it).
    num_frequencies: K the model was trained with (frequency indices 0..K-1).
    image_patch: the VAE's downsampling factor (picture space-to-depth factor).
    block_out_channels: U-Net channels per level; len - 1 downsamplings of the latent.
    spatial_attention: per level, whether blocks carry 2D self-attention.
    image_features: None, or "efficientnet-lite0" to inject frozen-encoder features of the picture
        at every level (image_feature_width channels, image_feature_injection "film" or "add").
    """

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 4,
        image_channels: int = 3,
        image_patch: int = 4,
        num_frequencies: int = 16,
        sample_size: tuple[int, int] = (160, 256),
        block_out_channels: tuple[int, ...] = (64, 128, 128),
        layers_per_block: int = 2,
        spatial_attention: tuple[bool, ...] = (False, False, True),
        attention_head_dim: int = 32,
        frequency_attention_heads: int = 4,
        norm_num_groups: int = 32,
        image_features: str | None = None,
        image_feature_width: int = 64,
        image_feature_injection: str = "film",
    ):
        super().__init__()
        if len(spatial_attention) != len(block_out_channels):
            raise ValueError("spatial_attention needs one flag per entry of block_out_channels.")
        channels = list(block_out_channels)
        groups = norm_num_groups
        temb = 4 * channels[0]
        self.time_proj = Timesteps(channels[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(channels[0], temb)
        self.frequency_proj = Timesteps(channels[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.frequency_embedding = TimestepEmbedding(channels[0], temb)
        in_channels = latent_channels + image_channels * image_patch**2
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.image_conditioning = None if image_features is None else ImageConditioning(
            (channels[0], *channels[:-1]), image_feature_width, image_feature_injection, image_features)

        def layer(cin: int, cout: int, attend: bool) -> _Layer:
            return _Layer(cin, cout, temb, groups, attend, attention_head_dim, frequency_attention_heads)

        self.down_levels = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        skip_channels = [channels[0]]
        previous = channels[0]
        for level, width in enumerate(channels):
            stage = nn.ModuleList()
            for _ in range(layers_per_block):
                stage.append(layer(previous, width, spatial_attention[level]))
                previous = width
                skip_channels.append(width)
            self.down_levels.append(stage)
            if level < len(channels) - 1:
                self.downsamplers.append(Downsample2D(width, use_conv=True, padding=1, name="op"))
                skip_channels.append(width)

        self.mid = nn.ModuleList([layer(previous, previous, True), layer(previous, previous, False)])

        self.up_levels = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level in reversed(range(len(channels))):
            width = channels[level]
            stage = nn.ModuleList()
            for _ in range(layers_per_block + 1):
                stage.append(layer(previous + skip_channels.pop(), width, spatial_attention[level]))
                previous = width
            self.up_levels.append(stage)
            if level > 0:
                self.upsamplers.append(Upsample2D(width, use_conv=True))
        self.norm_out = nn.GroupNorm(groups, previous)
        self.conv_out = nn.Conv2d(previous, latent_channels, 3, padding=1)

    @property
    def downsample_factor(self) -> int:
        """Latent downsampling inside the U-Net: latent height and width must divide by it."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def frequency_attention_modules(self) -> list[FrequencyAttention]:
        return [m for m in self.modules() if isinstance(m, FrequencyAttention)]

    def freeze_spatial(self, frozen: bool = True) -> None:
        """Stage 2 switch: freeze every weight except the frequency attention layers."""
        for parameter in self.parameters():
            parameter.requires_grad_(not frozen)
        for module in self.frequency_attention_modules():
            for parameter in module.parameters():
                parameter.requires_grad_(True)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        condition: torch.Tensor,
        frequency_index: torch.Tensor,
        use_frequency_attention: bool = True,
    ) -> torch.Tensor:
        """Predicted noise, (B, K, latent, h, w).

        sample: (B, K, latent, h, w) noisy latents; timestep: scalar or (B,) diffusion step;
        condition: (B, 3, h * p, w * p) picture in -1..1 (zeros = no picture);
        frequency_index: (K,) or (B, K) frequency bin of each slice.
        use_frequency_attention: False gives the stage-1 network (slices independent).
        """
        batch, num_frequencies = sample.shape[:2]
        hidden = rearrange(sample, "b k c h w -> (b k) c h w")
        picture = F.pixel_unshuffle(condition.to(hidden.dtype), self.config.image_patch)
        picture = repeat(picture, "b c h w -> (b k) c h w", k=num_frequencies)
        timestep = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(batch)
        frequency_index = torch.as_tensor(frequency_index, device=sample.device)
        frequency_index = frequency_index.reshape(-1, num_frequencies).expand(batch, num_frequencies).reshape(-1)
        timestep = repeat(timestep, "b -> (b k)", k=num_frequencies)
        temb = self.time_embedding(self.time_proj(timestep).to(hidden.dtype))
        temb = temb + self.frequency_embedding(self.frequency_proj(frequency_index).to(hidden.dtype))
        frequency_position = frequency_index.float()
        run = (temb, frequency_position, num_frequencies, use_frequency_attention)
        pictures = None if self.image_conditioning is None else self.image_conditioning(condition, num_frequencies)

        hidden = self.conv_in(torch.cat([hidden, picture], dim=1))
        skips = [hidden]
        for level, stage in enumerate(self.down_levels):
            if pictures is not None:
                hidden = pictures.inject(level, hidden)
            for block in stage:
                hidden = block(hidden, *run)
                skips.append(hidden)
            if level < len(self.downsamplers):
                hidden = self.downsamplers[level](hidden)
                skips.append(hidden)
        for block in self.mid:
            hidden = block(hidden, *run)
        for level, stage in enumerate(self.up_levels):
            for block in stage:
                hidden = block(torch.cat([hidden, skips.pop()], dim=1), *run)
            if level < len(self.upsamplers):
                hidden = self.upsamplers[level](hidden)
        hidden = self.conv_out(F.silu(self.norm_out(hidden)))
        return rearrange(hidden, "(b k) c h w -> b k c h w", b=batch)
