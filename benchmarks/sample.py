"""Seconds per spectral-volume sample at 256x160 (K = 16, random weights: the cost does not
depend on the weights) for 25, 50 and 250 DDIM steps, with and without loop guidance (u = 200,
2 self-recurrence passes), for the `default` (paper-like, 7.7 M U-Net) and the shipped `cpu`
(3.3 M U-Net) model sizes. CPU always, CUDA when available. On CUDA the unguided steps replay a
CUDA graph; set GID_NO_CUDA_GRAPHS=1 to time them eagerly.

    python benchmarks/sample.py [--cpu-steps 2] [--devices cpu cuda] [--sizes default cpu] [--unguided-only]

On the CPU the sampler keeps freed memory for its next step (gid_models/heap.py) wherever it is
called from, so these figures hold for the CLI and the nodes alike.

On the CPU a full 250-step run takes many minutes, so by default the CPU figures are per-step
times measured over --cpu-steps steps and multiplied out (marked "extrapolated"); pass
--cpu-steps 0 to run every step. Target on an H100: 250 CFG steps <= 3 s (H200 figures: README).
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
from gid_models.sampling.cuda_graph import cuda_graphs_enabled

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


def run(device: torch.device, measured_steps: int, size: str, unguided_only: bool = False) -> None:
    model = MotionModel.create(size).to(device).eval()
    picture = torch.rand(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0)).to(device)
    seconds(model, picture, 2, None)  # warm-up (kernels, allocator)
    if device.type == "cuda" and not unguided_only:
        seconds(model, picture, 2, LoopGuidance())  # and the backward pass's kernels
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    if cuda_graphs_enabled(device):
        name += ", unguided steps replayed from a CUDA graph"
    print(f"device: {name}; model size {size!r}; picture {WIDTH}x{HEIGHT}, K={model.num_frequencies}, cfg on, batch 1")
    cases = [("no guidance", None)]
    if not unguided_only:
        cases.append((f"loop guidance u={LoopGuidance().u:g} r=2", LoopGuidance()))
    for label, guidance in cases:
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
    parser.add_argument("--sizes", nargs="+", default=["default", "cpu"], help="model sizes (default: default cpu)")
    parser.add_argument("--unguided-only", action="store_true", help="skip the loop-guidance timings")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    for device in devices:
        for size in args.sizes:
            run(torch.device(device), args.cpu_steps if device == "cpu" else 0, size, args.unguided_only)


if __name__ == "__main__":
    main()
