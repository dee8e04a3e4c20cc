"""Seconds per spectral-volume sample at 256x160 (K = 16, default-size model, random weights:
the cost does not depend on the weights) for 25, 50 and 250 DDIM steps, with and without loop
guidance (u = 200, 2 self-recurrence passes). CPU always, CUDA when available.

    python benchmarks/sample.py [--cpu-steps 2] [--devices cpu cuda]

On the CPU a full 250-step run takes many minutes, so by default the CPU figures are per-step
times measured over --cpu-steps steps and multiplied out (marked "extrapolated"); pass
--cpu-steps 0 to run every step. Target on an H100: 250 CFG steps <= 3 s.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from gid_models.networks import MotionModel
from gid_models.sampling import LoopGuidance, sample_spectral_volume

STEP_COUNTS = (25, 50, 250)
HEIGHT, WIDTH = 160, 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(model: MotionModel, picture: torch.Tensor, steps: int, guidance: LoopGuidance | None) -> float:
    device = model.compute_device()
    _sync(device)
    start = time.perf_counter()
    sample_spectral_volume(model, picture, seed=0, steps=steps, guidance=guidance)
    _sync(device)
    return time.perf_counter() - start


def run(device: torch.device, measured_steps: int) -> None:
    model = MotionModel.create("default").to(device).eval()
    picture = torch.rand(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0)).to(device)
    seconds(model, picture, 2, None)  # warm-up (kernels, allocator)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; picture {WIDTH}x{HEIGHT}, K={model.num_frequencies}, cfg on, batch 1")
    for label, guidance in (("no guidance", None), ("loop guidance u=200 r=2", LoopGuidance())):
        if measured_steps:
            per_step = seconds(model, picture, measured_steps, guidance) / measured_steps
            for steps in STEP_COUNTS:
                print(f"  {label:26s} {steps:4d} steps: {per_step * steps:8.2f} s/sample "
                      f"(extrapolated from {measured_steps} steps, {per_step:.3f} s/step)")
        else:
            for steps in STEP_COUNTS:
                print(f"  {label:26s} {steps:4d} steps: {seconds(model, picture, steps, guidance):8.2f} s/sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-steps", type=int, default=2, help="steps timed on the CPU (0: run all steps)")
    parser.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: both when present)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    for device in devices:
        run(torch.device(device), args.cpu_steps if device == "cpu" else 0)


if __name__ == "__main__":
    main()
