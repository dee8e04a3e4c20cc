"""Keeping freed CPU memory for reuse during a hot loop (glibc's malloc on Linux).

Why: glibc gives every block above its mmap threshold (at most 32 MiB) its own mapping and
unmaps it on free, and trims the heap's free top once it exceeds the trim threshold (by then
64 MiB). A sampling step frees and allocates hundreds of MiB of activations, so each step got
fresh pages from the kernel, which zeroes them: on 2 cores 1.2 M page faults and 2.6 s of system
time per step of the main job (4.1 s in all). Inside `reuse_freed_memory()` the trim threshold is
raised, so blocks under the mmap threshold come back from the heap without a fault; callers keep
their large temporaries under `HEAP_BLOCK_BYTES` (MotionModel.decode works a few slices at a
time, render_motion a frame at a time on the CPU). On leaving, the usual threshold comes back
and the freed memory is returned to the system (malloc_trim), so a long-lived process keeps no
more than before. CPU sampling and rendering run inside it wherever they are called from, and
the `gid` command as a whole. In a worker thread (ComfyUI runs nodes in one) a loop-guided step
took 2.6 s inside and 3.2 s outside; the neural renderer gains less there (0.48 against 0.51 s
per frame), as glibc unmaps a thread's wholly free heaps whatever the threshold.

Elsewhere (macOS, Windows, musl) these are no-ops: their allocators are left as they are.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sys
import threading
from typing import Iterator

LOGGER = logging.getLogger(__name__)

HEAP_BLOCK_BYTES = 24 << 20
"""Largest temporary a hot loop should make to be served from the heap: under glibc's maximum
mmap threshold (32 MiB), with room for allocator headers and rounding."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest; blocks above it are mapped whatever we ask
_KEEP_TRIM_THRESHOLD = 1 << 30  # free heap top kept inside the context (mallopt takes an int)
_USUAL_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD  # what glibc's own scheme settles at

_lock = threading.Lock()
_depth = 0


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it (musl has mallopt as a stub)
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _glibc()


def tuning_available() -> bool:
    """True where reuse_freed_memory() changes anything (Linux with glibc)."""
    return _LIBC is not None


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Inside: freed heap memory is kept and reused instead of given back to the kernel at every
    free (see module docstring). Nests and is thread-safe; the outermost exit restores glibc's
    usual trim threshold and returns the freed memory to the system."""
    global _depth
    if _LIBC is None:
        yield
        return
    with _lock:
        if _depth == 0:
            # mallopt returns 1 on success; a refusal only loses the speed-up
            if not (_LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) and _LIBC.mallopt(_M_TRIM_THRESHOLD, _KEEP_TRIM_THRESHOLD)):
                LOGGER.debug("mallopt refused the heap settings; freed memory goes back to the kernel as usual")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _LIBC.mallopt(_M_TRIM_THRESHOLD, _USUAL_TRIM_THRESHOLD)
                _LIBC.malloc_trim(0)
