"""Attention across the K frequency slices at every latent position (paper notes, section 3).

The 2D U-Net processes a batch of (B * K) slices. A frequency attention layer regroups the
features so that each pixel of each picture becomes one sequence of K tokens, one per frequency,
and lets them attend to each other, like temporal attention in video diffusion. Its output
projection starts at zero, so inserting it leaves a trained stage-1 network unchanged.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import Timesteps
from einops import rearrange, repeat
from torch import nn


class FrequencyAttention(nn.Module):
    """Residual self-attention along K.

    channels: feature channels C; num_heads: attention heads (C must divide by it).
    """

    def __init__(self, channels: int, num_heads: int = 4):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"frequency attention: {channels} channels do not split into {num_heads} heads.")
        self.norm = nn.LayerNorm(channels)
        self.frequency_position = Timesteps(channels, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.position_proj = nn.Linear(channels, channels)
        self.attention = Attention(
            query_dim=channels, heads=num_heads, dim_head=channels // num_heads, bias=True, out_bias=True
        )
        nn.init.zeros_(self.attention.to_out[0].weight)
        nn.init.zeros_(self.attention.to_out[0].bias)

    def forward(self, hidden: torch.Tensor, frequency_index: torch.Tensor, num_frequencies: int) -> torch.Tensor:
        """hidden: (B * K, C, H, W); frequency_index: (B * K,) bin of each slice. Returns the same shape."""
        height, width = hidden.shape[-2:]
        tokens = rearrange(hidden, "(b k) c h w -> (b h w) k c", k=num_frequencies)
        position = self.position_proj(self.frequency_position(frequency_index.flatten()).to(hidden.dtype))
        position = repeat(position, "(b k) c -> (b h w) k c", k=num_frequencies, h=height, w=width)
        attended = self.attention(self.norm(tokens) + position)
        return hidden + rearrange(attended, "(b h w) k c -> (b k) c h w", h=height, w=width)
