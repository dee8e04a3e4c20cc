"""Interrupt checks inside long network passes (a sampling step, a render chunk).

One loop-guided DDIM step is several forwards and backwards of the denoiser and the motion VAE's
decoder: on a loaded 2-core CPU, 20-70 s with the shipped model; one chunk of the neural renderer
takes 10-50 s there. A user's Cancel must not wait for either to end, so the loops take a cheap
`check_interrupt()` that raises to stop (the nodes hand it ComfyUI's
`throw_exception_if_processing_interrupted`; the CLI hands nothing, as its Ctrl-C raises
KeyboardInterrupt wherever the work is). The loops call it between their passes; `checks_inside`
below makes a network call it before every block's forward and again when backward reaches the
block, so no stretch of work between two checks is longer than about one block.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

InterruptCheck = Callable[[], None]


def _is_block(module: nn.Module) -> bool:
    """Blocks worth a check: modules built outside torch.nn (our layers, diffusers' ResNet,
    attention, up- and down-sampling blocks). torch.nn's own layers are too small to be worth it
    and its containers are never called."""
    return not type(module).__module__.startswith("torch.nn")


def _output_tensors(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [item for item in output if isinstance(item, torch.Tensor)]
    return []


@contextlib.contextmanager
def checks_inside(network: nn.Module | None, check_interrupt: InterruptCheck | None) -> Iterator[None]:
    """While inside, `check_interrupt()` runs before each block of `network` runs forward and, for
    outputs that take part in a gradient, again when backward reaches them. Exceptions it raises
    reach the caller (out of autograd too) unchanged. The hooks are removed on leaving, interrupted
    or not; with network or check_interrupt None nothing is installed."""
    if network is None or check_interrupt is None:
        yield
        return

    def on_backward(_gradient: torch.Tensor) -> None:
        check_interrupt()

    def before_forward(_module: nn.Module, _inputs) -> None:
        check_interrupt()

    def after_forward(_module: nn.Module, _inputs, output) -> None:
        if torch.is_grad_enabled():
            for tensor in _output_tensors(output):
                if tensor.requires_grad:
                    tensor.register_hook(on_backward)

    handles = []
    try:
        for module in network.modules():
            if _is_block(module):
                handles.append(module.register_forward_pre_hook(before_forward))
                handles.append(module.register_forward_hook(after_forward))
        yield
    finally:
        for handle in handles:
            handle.remove()
