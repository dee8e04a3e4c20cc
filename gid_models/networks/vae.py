"""Motion VAE: one 4-channel spectral-volume slice <-> a 4-channel latent (paper notes, section 3).

The VAE works on *normalized* slices (frequency-adaptive normalization, notes section 2): a slice
is (Re x, Im x, Re y, Im y) of one frequency bin, values mostly in -1..1. Each level but the last
halves the resolution, so the latent is (4, H / f, W / f) with f = 2 ** (levels - 1).
Loss (trainer): L1 reconstruction + 0.2 multi-scale gradient consistency + 1e-6 KL.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from torch import nn


def _resnet(in_channels: int, out_channels: int, groups: int) -> ResnetBlock2D:
    return ResnetBlock2D(in_channels=in_channels, out_channels=out_channels, temb_channels=None, groups=groups)


class MotionVAE(ModelMixin, ConfigMixin):
    """Convolutional VAE for normalized spectral-volume slices.

    block_out_channels: channels per level; len - 1 downsamplings (3 levels: 4x).
    scaling_factor: multiplies latents before diffusion (1 / std of training latents, set by the
        VAE trainer) so the denoiser sees roughly unit-variance latents.
    training_smoothing_px: the Gaussian sigma (pixels) its training volumes were blurred with
        before normalization (0: none); the denoiser's training latents are made the same way.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        latent_channels: int = 4,
        block_out_channels: tuple[int, ...] = (32, 64, 96),
        layers_per_block: int = 1,
        norm_num_groups: int = 16,
        scaling_factor: float = 1.0,
        training_smoothing_px: float = 0.0,
    ):
        super().__init__()
        channels = list(block_out_channels)
        groups = norm_num_groups
        self.encoder_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.encoder_blocks = nn.ModuleList()
        previous = channels[0]
        for level, width in enumerate(channels):
            stage = nn.ModuleList()
            for _ in range(layers_per_block):
                stage.append(_resnet(previous, width, groups))
                previous = width
            if level < len(channels) - 1:
                stage.append(Downsample2D(width, use_conv=True, padding=1, name="op"))
            self.encoder_blocks.append(stage)
        self.encoder_mid = _resnet(previous, previous, groups)
        self.encoder_norm = nn.GroupNorm(groups, previous)
        self.encoder_out = nn.Conv2d(previous, 2 * latent_channels, 3, padding=1)

        self.decoder_in = nn.Conv2d(latent_channels, channels[-1], 3, padding=1)
        self.decoder_mid = _resnet(channels[-1], channels[-1], groups)
        self.decoder_blocks = nn.ModuleList()
        previous = channels[-1]
        for level, width in reversed(list(enumerate(channels))):
            stage = nn.ModuleList()
            for _ in range(layers_per_block + 1):
                stage.append(_resnet(previous, width, groups))
                previous = width
            if level > 0:
                stage.append(Upsample2D(width, use_conv=True))
            self.decoder_blocks.append(stage)
        self.decoder_norm = nn.GroupNorm(groups, previous)
        self.decoder_out = nn.Conv2d(previous, in_channels, 3, padding=1)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def decode_bytes_per_slice(self, height: int, width: int, element_size: int = 4) -> int:
        """Bytes of the largest activation decode() makes per latent slice of height x width:
        level l runs at (height * f / 2**l) x (width * f / 2**l) and holds up to its own channels
        and those upsampled into it from level l + 1."""
        channels = list(self.config.block_out_channels)
        factor = self.downsample_factor
        largest = 0
        for level, width_channels in enumerate(channels):
            held = max(width_channels, channels[level + 1] if level + 1 < len(channels) else 0)
            scale = factor // 2**level
            largest = max(largest, held * height * scale * width * scale)
        return largest * element_size

    @staticmethod
    def _run(stage: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for layer in stage:
            x = layer(x, None) if isinstance(layer, ResnetBlock2D) else layer(x)
        return x

    def encode(self, slices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """slices: (N, 4, H, W) normalized -> (mean, logvar), each (N, latent, H / f, W / f), unscaled."""
        x = self.encoder_in(slices)
        for stage in self.encoder_blocks:
            x = self._run(stage, x)
        x = self.encoder_mid(x, None)
        x = self.encoder_out(F.silu(self.encoder_norm(x)))
        mean, logvar = x.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents: (N, latent, h, w) unscaled -> (N, 4, h * f, w * f) normalized slices."""
        x = self.decoder_in(latents)
        x = self.decoder_mid(x, None)
        for stage in self.decoder_blocks:
            x = self._run(stage, x)
        return self.decoder_out(F.silu(self.decoder_norm(x)))

    def forward(
        self, slices: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction (N, 4, H, W) of a sampled latent, plus the posterior's mean and logvar."""
        mean, logvar = self.encode(slices)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        latents = mean + (0.5 * logvar).exp() * noise
        return self.decode(latents), mean, logvar


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """Multi-scale gradient consistency: mean L1 of finite-difference x/y gradients over `scales`
    2x average-pooled resolutions. prediction, target: (N, C, H, W)."""
    total = prediction.new_zeros(())
    for scale in range(scales):
        if scale:
            if min(prediction.shape[-2:]) < 4:
                break
            prediction = F.avg_pool2d(prediction, 2)
            target = F.avg_pool2d(target, 2)
        dx = (prediction.diff(dim=-1) - target.diff(dim=-1)).abs().mean()
        dy = (prediction.diff(dim=-2) - target.diff(dim=-2)).abs().mean()
        total = total + dx + dy
    return total


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), mean over elements."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()


RECONSTRUCTION_LOSSES = ("l1", "mse", "balanced")


def channel_balanced_error(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over channels of each channel's squared error over its own target power.

    reconstruction, target: (N, C, H, W) normalized slices. Every channel counts the same however
    little it moves; a channel's power is floored at 1 % of the mean channel power so that a batch
    where it is (nearly) still does not blow its term up."""
    power = target.detach().square().mean(dim=(0, 2, 3))
    power = power.clamp_min(0.01 * float(power.mean()) + 1e-8)
    return ((reconstruction - target).square().mean(dim=(0, 2, 3)) / power).mean()


def vae_loss(
    reconstruction: torch.Tensor, target: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
    reconstruction_loss: str = "l1",
) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 + 0.2 multi-scale gradient + 1e-6 KL (paper notes, section 3). Returns (loss, parts).

    reconstruction_loss "mse" puts the mean squared error in place of L1 (part "mse"); "balanced"
    the squared error of each channel over that channel's power, averaged (part "balanced", see
    channel_balanced_error). On the scene engine's exact, per-pixel volumes an L1 decoder outputs
    zero for a channel it cannot yet predict and learns the channels one after another; MSE
    learned x faster but after 13,000 steps still dropped y, whose normalized power is a fifth
    of x's (MODEL_CARD.md, "The motion VAE on the scene data")."""
    if reconstruction_loss not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"reconstruction_loss must be one of {RECONSTRUCTION_LOSSES}, got {reconstruction_loss!r}.")
    error = reconstruction - target
    if reconstruction_loss == "l1":
        reconstruction_term = error.abs().mean()
    elif reconstruction_loss == "mse":
        reconstruction_term = error.square().mean()
    else:
        reconstruction_term = channel_balanced_error(reconstruction, target)
    gradient = gradient_loss(reconstruction, target)
    kl = kl_loss(mean, logvar)
    loss = reconstruction_term + 0.2 * gradient + 1e-6 * kl
    return loss, {reconstruction_loss: reconstruction_term.item(), "gradient": gradient.item(), "kl": kl.item()}
