"""Fixed-noise denoising loss: the same number on every call, so train and validation compare.

The training loss of a diffusion model is noisy (random timesteps, noise and slices per step),
too noisy to show overfitting on a few tens of scenes. Here every example is scored at fixed
timesteps with noise from a fixed seed, on every frequency slice, with the picture kept (no
condition dropout). Scoring a fixed subset of the training examples and the validation examples
the same way gives two comparable curves: their gap is the overfitting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..sampling.ddim import make_scheduler
from .volume_smoothing import training_slices

DEFAULT_TIMESTEPS = (50, 200, 400, 600, 800, 950)


@torch.no_grad()
def fixed_noise_loss(model, dataset: Dataset, *, stage: int, max_examples: int = 16,
                     timesteps: tuple[int, ...] = DEFAULT_TIMESTEPS, seed: int = 1234,
                     device: torch.device | str = "cpu") -> float:
    """Mean noise-prediction MSE of model.denoiser over up to max_examples examples of dataset
    (all K slices each, with frequency attention when stage == 2), at the given DDPM timesteps."""
    device = torch.device(device)
    denoiser = model.denoiser
    was_training = denoiser.training
    denoiser.eval()
    factor = model.downsample_factor
    scheduler = make_scheduler()
    alphas_cumprod = scheduler.alphas_cumprod.to(device)
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    try:
        for index in range(min(len(dataset), max_examples)):
            item = dataset[index]
            coeffs, image = item["coeffs"].float(), item["image"].float()
            height, width = coeffs.shape[-2:]
            crop_h, crop_w = height - height % factor, width - width % factor
            coeffs = coeffs[None, ..., :crop_h, :crop_w].to(device)
            condition = image[None, :, :crop_h, :crop_w].to(device) * 2 - 1
            latents = model.encode(training_slices(model, coeffs))
            bins = torch.arange(latents.shape[1], device=device)[None]
            for timestep in timesteps:
                noise = torch.randn(latents.shape, generator=generator).to(device)
                alpha = alphas_cumprod[timestep]
                noisy = alpha.sqrt() * latents + (1 - alpha).sqrt() * noise
                step = torch.full((1,), timestep, device=device, dtype=torch.long)
                prediction = denoiser(noisy, step, condition, bins, use_frequency_attention=stage == 2)
                total += float(F.mse_loss(prediction.float(), noise))
                count += 1
    finally:
        denoiser.train(was_training)
    if count == 0:
        raise ValueError("fixed_noise_loss needs at least one example.")
    return total / count
