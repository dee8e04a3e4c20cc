"""Replaying the unguided noise prediction of every DDIM step from one captured CUDA graph.

One step of the sampler is a forward pass of the U-Net over B x K x 2 latent slices (CFG): well
over a thousand small kernels, each launched by Python. On a GPU the host's launch time, not the
device, sets the pace (on an H200: 20-35 ms per step eager, a few ms of device work). The shapes
are the same at every step, so the first step records the launches once as a CUDA graph and the
others replay it: the inputs are copied into the graph's fixed buffers, one launch runs all
kernels, and the output is read from its fixed buffer.

Only the unguided path is captured: loop and mask guidance differentiate through the network,
which stays eager. Anything that stops capture (an old driver, another thread using the GPU
during capture, a custom op) falls back to eager with a log note; the result is the same up to
float rounding either way.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import torch

LOGGER = logging.getLogger(__name__)

DISABLE_VARIABLE = "GID_NO_CUDA_GRAPHS"
"""Set this environment variable (to anything but 0) to always run the sampler eagerly."""
WARMUP_CALLS = 2
"""Eager calls on a side stream before capture (cuBLAS / cuDNN handles and autotuning happen there)."""

NoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cuda_graphs_enabled(device: torch.device) -> bool:
    """Whether noise predictions on this device are replayed from a CUDA graph."""
    return device.type == "cuda" and os.environ.get(DISABLE_VARIABLE, "0") in ("", "0")


class GraphedNoise:
    """noise_fn(z, t) with the same z shape and device at every call, replayed from a CUDA graph.

    The graph is captured at the first call (after WARMUP_CALLS eager calls). Each call returns a
    fresh tensor (a copy of the graph's output buffer), so callers may keep it.
    """

    def __init__(self, noise_fn: NoiseFn) -> None:
        self.noise_fn = noise_fn
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False
        self.static_z: torch.Tensor | None = None
        self.static_t: torch.Tensor | None = None
        self.static_eps: torch.Tensor | None = None

    def __call__(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.failed:
            return self.noise_fn(z, t)
        if self.graph is None:
            try:
                self._capture(z, t)
            except Exception as error:  # capture is an optimisation: any failure means eager
                self.failed = True
                self.graph = self.static_z = self.static_t = self.static_eps = None
                LOGGER.info("CUDA graph capture of the sampler failed (%s); sampling eagerly", error)
                return self.noise_fn(z, t)
        if z.shape != self.static_z.shape or z.device != self.static_z.device:
            raise ValueError(f"GraphedNoise was captured for latents {tuple(self.static_z.shape)}, "
                             f"got {tuple(z.shape)}.")
        self.static_z.copy_(z)
        self.static_t.copy_(t)
        self.graph.replay()
        return self.static_eps.clone()

    def _capture(self, z: torch.Tensor, t: torch.Tensor) -> None:
        self.static_z = z.detach().clone()
        self.static_t = torch.as_tensor(t, device=z.device).detach().clone()
        side = torch.cuda.Stream(device=z.device)
        side.wait_stream(torch.cuda.current_stream(z.device))
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(WARMUP_CALLS):
                self.noise_fn(self.static_z, self.static_t)
        torch.cuda.current_stream(z.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: CUDA work of other threads (a host such as ComfyUI has several) does not
        # break this capture.
        with torch.no_grad(), torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.static_eps = self.noise_fn(self.static_z, self.static_t)
        self.graph = graph
