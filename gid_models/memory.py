"""Memory of a device: the free part (to size work chunks) and the total (to refuse allocations
that cannot fit, before they are attempted).

A tensor larger than all of the device's memory would not raise a clean error everywhere: on
Linux the kernel may kill the process (and with it the ComfyUI server) instead of failing the
allocation. Only sizes above the *total* memory are refused, so nothing that might fit is.
"""

from __future__ import annotations

import os

import torch

GIB = float(1 << 30)
UNKNOWN_FREE_BYTES = 4 << 30  # assumed when the platform cannot say


def free_memory_bytes(device: torch.device | str) -> int:
    """Free memory of the device in bytes (free physical RAM for the CPU; 4 GiB when unknown).

    On CUDA this counts what PyTorch's caching allocator holds but does not use as free too, so
    the figure does not shrink after a first job merely because its blocks stay cached (work
    sized from it keeps the same shapes from run to run).
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(0, cached))
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return UNKNOWN_FREE_BYTES


def total_memory_bytes(device: torch.device | str) -> int | None:
    """All memory of the device in bytes (physical RAM for the CPU), or None when unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    if device.type != "cpu":
        return None
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def require_memory(num_bytes: int, device: torch.device | str, what: str, fix: str) -> None:
    """Raise MemoryError naming `what` and `fix` when num_bytes exceed all of the device's memory."""
    total = total_memory_bytes(device)
    if total is not None and num_bytes > total:
        raise MemoryError(
            f"{what} needs about {num_bytes / GIB:.1f} GiB, more than all {total / GIB:.1f} GiB of "
            f"{torch.device(device).type} memory; {fix}"
        )
