"""gid_models/heap.py: the CLI's heap settings are scoped, nest, survive errors and are restored."""

from __future__ import annotations

import sys
import threading

import pytest
import torch

from gid_models import heap


def test_glibc_linux_gets_the_heap_settings():
    if sys.platform.startswith("linux") and heap._glibc() is not None:
        assert heap.tuning_available()
    else:
        assert not heap.tuning_available()


def test_settings_nest_and_are_restored_after_an_error():
    assert heap._depth == 0
    with heap.reuse_freed_memory():
        assert heap._depth == (1 if heap.tuning_available() else 0)
        with pytest.raises(RuntimeError, match="inner"):
            with heap.reuse_freed_memory():
                assert heap._depth == (2 if heap.tuning_available() else 0)
                raise RuntimeError("inner")
        assert heap._depth == (1 if heap.tuning_available() else 0)
        # memory allocated and freed inside works as anywhere else
        total = sum(float(torch.ones(3 << 20).sum()) for _ in range(3))
        assert total == 3 * (3 << 20)
    assert heap._depth == 0


def test_threads_share_one_setting():
    errors = []

    def work():
        try:
            with heap.reuse_freed_memory():
                torch.zeros(1 << 20).add_(1)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and heap._depth == 0


@pytest.mark.skipif(not heap.tuning_available(), reason="glibc only")
def test_cpu_sampling_and_rendering_run_with_freed_memory_kept(tiny_model):
    """Called from anywhere (a node, the CLI, evaluation), CPU sampling and rendering keep freed
    memory for their next step, and give it back when they end."""
    from gid_models.rendering import render_motion
    from gid_models.sampling import sample_spectral_volume
    from gid_models.spectral import MotionTexture

    depths = []
    picture = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    volume, _ = sample_spectral_volume(tiny_model, picture, seed=0, steps=2, num_frames=8,
                                       callback=lambda step, steps: depths.append(heap._depth))
    motion = MotionTexture(torch.randn(1, 3, 2, 16, 16, generator=torch.Generator().manual_seed(1)), fps=30.0)
    frames = render_motion(picture, motion, callback=lambda index, total: depths.append(heap._depth))
    assert depths == [1, 1, 1]  # two DDIM steps, then the three frames in one chunk
    assert volume.coeffs.shape[-2:] == (16, 16) and frames.shape == (3, 3, 16, 16)
    assert heap._depth == 0
