"""Memory of a device: what is free now, to size work chunks and to refuse allocations that
cannot fit before they are attempted.

A tensor larger than the memory left would not raise a clean error everywhere: on Linux the
kernel may kill the process (and with it the ComfyUI server) instead of failing the allocation,
and before that the machine swaps or starves other programs. So sizes are compared with the
*available* memory (free RAM plus what the kernel can reclaim at once, or free VRAM plus
PyTorch's unused cache), not with the total.
"""

from __future__ import annotations

import os

import torch

GIB = float(1 << 30)
UNKNOWN_FREE_BYTES = 4 << 30  # assumed when the platform cannot say


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (Linux), or None."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_memory_bytes(device: torch.device | str) -> int:
    """Available memory of the device in bytes (for the CPU: RAM the kernel can hand out now,
    MemAvailable where known, else free pages; 4 GiB when unknown).

    On CUDA this counts what PyTorch's caching allocator holds but does not use as free too, so
    the figure does not shrink after a first job merely because its blocks stay cached (work
    sized from it keeps the same shapes from run to run).
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(0, cached))
    available = _meminfo_available()
    if available is not None:
        return available
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
    """Raise MemoryError naming `what`, the figures and `fix` when num_bytes exceed the memory
    the device has free now."""
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        return
    free = free_memory_bytes(device)
    if num_bytes > free:
        total = total_memory_bytes(device)
        of_total = f" of {total / GIB:.1f} GiB" if total else ""
        raise MemoryError(
            f"{what} needs about {num_bytes / GIB:.1f} GiB, more than the {free / GIB:.1f} GiB{of_total} of "
            f"{device.type} memory free now; {fix}"
        )


def volume_bytes(batch: int, num_frequencies: int, height: int, width: int) -> int:
    """Bytes of one float32 spectral volume (batch, K, 4, height, width)."""
    return 4 * batch * num_frequencies * 4 * height * width


def frames_bytes(num_frames: int, height: int, width: int) -> int:
    """Bytes of one float32 video (num_frames, height, width, 3)."""
    return 4 * 3 * num_frames * height * width
