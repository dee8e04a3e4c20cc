"""Seconds per denoiser training step on this machine: can motion model v2 train without a GPU?

Times `train_denoiser.denoiser_step_loss` + backward + AdamW step of the bundled model's denoiser
(the shipped `cpu` size) at 256x160, batch 8 examples, the way `gid train` runs it on a data set
too large for the latent cache (more than 512 examples): stage 1 encodes the 4 picked bins of each
example with the frozen VAE every step; stage 2 encodes all 16 bins of 2 examples. Each stage is
timed for the v1 denoiser and for the picture-conditioned v2 one (frozen EfficientNet-Lite0, FiLM),
which runs the encoder on the batch's pictures every step. The cost does not depend on the data,
so the batch is random.

    python benchmarks/train_step.py [--threads 2] [--steps 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from gid_models.networks.motion_model import BUNDLED_DIR, MotionModel  # noqa: E402
from gid_models.train.conditioned import optimizer_groups, with_image_conditioning  # noqa: E402
from gid_models.train.train_denoiser import DenoiserTraining, denoiser_step_loss  # noqa: E402

HEIGHT, WIDTH, BINS = 160, 256, 16


def seconds_per_step(model: MotionModel, stage: int, batch_size: int, steps: int, device: torch.device) -> float:
    """Median wall seconds of `steps` training steps (after one warm-up step)."""
    settings = DenoiserTraining(stage=stage, batch_size=batch_size)
    network = model.denoiser.train()
    optimizer = torch.optim.AdamW(optimizer_groups(network, settings.learning_rate, settings.new_layer_lr_scale))
    generator = torch.Generator().manual_seed(0)
    batch = {"coeffs": torch.randn(batch_size, BINS, 4, HEIGHT, WIDTH, generator=generator) * 0.5,
             "image": torch.rand(batch_size, 3, HEIGHT, WIDTH, generator=generator)}
    times = []
    for step in range(steps + 1):
        began = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        denoiser_step_loss(model, network, batch, settings, generator, device).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step:  # the first step allocates and warms up
            times.append(time.perf_counter() - began)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (median reported)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {args.device}, {args.threads} threads, 256x160, K = {BINS}")
    for stage, batch_size in ((1, DenoiserTraining.batch_size), (2, 2)):
        for conditioned in (False, True):
            model = MotionModel.load(BUNDLED_DIR).to(device)
            model.vae.requires_grad_(False)
            if conditioned:
                model.denoiser = with_image_conditioning(model.denoiser, "efficientnet-lite0", "film")
            model.denoiser.to(device)
            took = seconds_per_step(model, stage, batch_size, args.steps, device)
            print(f"stage {stage}, batch {batch_size}, {'v2 (picture-conditioned)' if conditioned else 'v1':24s}: "
                  f"{took:.2f} s per step -> {took * 2000 / 3600:.2f} h per 2,000 steps", flush=True)


if __name__ == "__main__":
    main()
