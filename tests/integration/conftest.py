"""Fixtures for tests that run the pack inside a real ComfyUI server.

`comfyui_server` boots one server for the whole test session (every integration module shares
it) and always stops it. When the vendored ComfyUI sources or ComfyUI's Python requirements are
missing, the tests are skipped with the reason, except under CI (CI=true), where that fails.
"""

from __future__ import annotations

import os
import sys
import warnings

import pytest

from .comfyui_server import (
    COMFYUI_TARBALL,
    PACK_FOLDER_NAME,
    REPO_ROOT,
    VHS_FOLDER_NAME,
    VHS_TARBALL,
    ComfyUIServer,
    missing_distributions,
    unpack,
)


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str):
    """Skip loudly on a developer machine; fail under CI, where everything must be present."""
    message = f"real-ComfyUI integration tests cannot run: {reason}"
    if running_in_ci():
        pytest.fail(message + " (CI=true: this is a failure, run `bash .ci/run` to set things up)")
    warnings.warn(f"SKIPPING {message}", pytest.PytestWarning, stacklevel=2)  # listed in the warnings summary
    pytest.skip(message)


@pytest.fixture(scope="session")
def comfyui_sources():
    """(ComfyUI folder, VideoHelperSuite folder), unpacked from ../shared/vendor into the cache."""
    for tarball in (COMFYUI_TARBALL, VHS_TARBALL):
        if not tarball.is_file():
            skip_or_fail(f"{tarball} is missing (the repository's sibling folder shared/vendor/)")
    comfyui_dir, vhs_dir = unpack(COMFYUI_TARBALL), unpack(VHS_TARBALL)
    missing = missing_distributions(comfyui_dir, vhs_dir)
    if missing:
        skip_or_fail(f"ComfyUI's requirements are not installed in {sys.executable}: {', '.join(missing)}")
    return comfyui_dir, vhs_dir


@pytest.fixture(scope="session")
def comfyui_server(comfyui_sources, tmp_path_factory):
    """A running ComfyUI server with this pack and VideoHelperSuite installed as custom nodes."""
    comfyui_dir, vhs_dir = comfyui_sources
    server = ComfyUIServer(
        comfyui_dir,
        custom_nodes={PACK_FOLDER_NAME: REPO_ROOT, VHS_FOLDER_NAME: vhs_dir},
        work_dir=tmp_path_factory.mktemp("comfyui"),
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def object_info(comfyui_server):
    """The server's /object_info: every registered node's inputs, outputs and category."""
    return comfyui_server.get_json("/object_info", timeout=120)
