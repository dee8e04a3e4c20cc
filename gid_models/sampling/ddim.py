"""DDIM sampling of latent spectral volumes with optional gradient self-guidance.

The noise schedule is the one the denoiser is trained with (`make_scheduler`, LDM's scaled-linear
betas over 1000 steps). `sample_ddim` is model-agnostic: it gets a noise-prediction function (in
which classifier-free guidance already happened) and an optional guidance loss on the clean-latent
estimate, and implements universal guidance (Bansal et al. 2023) as the paper uses it (notes,
section 4):
    eps_hat = eps + sigma_n * grad_{z_n} loss(z0_hat(z_n)),  sigma_n = sqrt(1 - alpha_bar_n),
with the step repeated `recurrence` times, re-noising z_{n-1} back to step n in between.
"""

from __future__ import annotations

from typing import Callable

import torch
from diffusers import DDIMScheduler

NOISE_SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=True,
    timestep_spacing="trailing",
    prediction_type="epsilon",
)

NoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor], torch.Tensor]


def make_scheduler() -> DDIMScheduler:
    """The DDIM scheduler of training and sampling (trailing spacing: step 1 starts at t = 999)."""
    return DDIMScheduler(**NOISE_SCHEDULE)


def randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Standard normal noise drawn on the CPU generator (same numbers on every device), then moved."""
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device)


def sample_ddim(
    noise_fn: NoiseFn,
    latents: torch.Tensor,
    *,
    steps: int,
    generator: torch.Generator,
    guidance_loss: LossFn | None = None,
    recurrence: int = 1,
    through_denoiser: bool = True,
    callback: Callable[[int, int], None] | None = None,
    pass_callback: Callable[[int, int], None] | None = None,
    check_interrupt: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) from pure-noise latents to clean latents.

    noise_fn(z, t) -> eps: predicted noise, same shape as z (B, K, C, h, w); t is a 0-d int64
        tensor on z's device (the diffusion step).
    guidance_loss(z0_hat) -> (B,) differentiable loss of the clean-latent estimate; None: plain DDIM.
    recurrence: times each step is run when guided (1 = no self-recurrence).
    through_denoiser: differentiate through the denoiser (exact); False treats eps as constant,
        so grad_z = grad_z0 / sqrt(alpha_bar) (about 2x cheaper per step).
    callback(step, steps) after every step (progress, interrupt).
    pass_callback(done, total) after every pass, a step being `recurrence` passes when guided, else
        one: total = steps x passes per step (progress finer than whole steps, interrupt).
    check_interrupt() before and after every pass and between a guided pass's noise estimate and
        its gradient; raises to stop (gid_models/interrupt.py adds checks inside the networks).
    """
    if steps < 1:
        raise ValueError(f"DDIM needs at least 1 step, got {steps}.")
    if recurrence < 1:
        raise ValueError(f"self-recurrence must be at least 1 (one pass per step), got {recurrence}.")
    scheduler = make_scheduler()
    scheduler.set_timesteps(steps)
    # The schedule stays on the host (Python ints, CPU scalars): reading it never waits for the
    # GPU, so the host can queue the next step's kernels while the device runs this one.
    alphas = scheduler.alphas_cumprod
    device_timesteps = scheduler.timesteps.to(latents.device)
    stride = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    latents = latents.float()
    check = check_interrupt if check_interrupt is not None else _never
    passes = recurrence if guidance_loss is not None else 1
    for index, timestep in enumerate(scheduler.timesteps.tolist()):
        alpha = alphas[timestep]
        previous_t = timestep - stride
        alpha_previous = alphas[previous_t] if previous_t >= 0 else scheduler.final_alpha_cumprod
        for attempt in range(passes):
            check()
            if guidance_loss is None:
                with torch.no_grad():
                    eps = noise_fn(latents, device_timesteps[index]).float()
            else:
                eps = _guided_noise(noise_fn, guidance_loss, latents, device_timesteps[index], alpha,
                                    through_denoiser, check)
            check()
            latents = scheduler.step(eps, timestep, latents, eta=0.0).prev_sample
            if attempt < passes - 1:
                ratio = alpha / alpha_previous
                latents = ratio.sqrt() * latents + (1 - ratio).sqrt() * randn(latents.shape, generator, latents.device)
            if pass_callback is not None:
                pass_callback(index * passes + attempt + 1, steps * passes)
        if callback is not None:
            callback(index, steps)
    return latents


def _never() -> None:
    """The interrupt check of a caller that gave none."""


def _guided_noise(
    noise_fn: NoiseFn, guidance_loss: LossFn, latents: torch.Tensor, timestep: torch.Tensor,
    alpha: torch.Tensor, through_denoiser: bool, check: Callable[[], None],
) -> torch.Tensor:
    """eps + sigma * grad_z loss(z0_hat), the self-guided noise estimate of one step."""
    sigma = (1 - alpha).sqrt()
    with torch.enable_grad():
        z = latents.detach().requires_grad_(True)
        if through_denoiser:
            eps = noise_fn(z, timestep).float()
            check()
            clean = (z - sigma * eps) / alpha.sqrt()
            gradient = torch.autograd.grad(guidance_loss(clean).sum(), z)[0]
        else:
            with torch.no_grad():
                eps = noise_fn(latents, timestep).float()
            check()
            clean = ((latents - sigma * eps) / alpha.sqrt()).detach().requires_grad_(True)
            gradient = torch.autograd.grad(guidance_loss(clean).sum(), clean)[0] / alpha.sqrt()
    return eps.detach() + sigma * torch.nan_to_num(gradient)
