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
