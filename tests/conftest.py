"""Shared test set-up.

- The repository root is collected as a plain folder (RootAsFolder), so the suite runs whatever
  the checkout's folder is called, ComfyUI-GID included.
- `gid_models` is imported as a top-level package (the repository root is on sys.path).
- Node code is imported through the pack itself, loaded under the package name `comfyui_gid`
  exactly as ComfyUI loads a custom node folder, so relative imports behave as in production.
  Node tests must take model-package types from `comfyui_gid.gid_models`, not `gid_models`.
- `comfy_shim` puts the minimal ComfyUI stand-in of tests/comfy_shim on sys.path for one test.
- `one_thread` (opt-in per module), `tiny_model` / `make_tiny_model`: the tiny untrained motion
  model of the network, sampling and node tests, built from `models_package`.
"""

from __future__ import annotations

import importlib
import signal
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIM_DIR = Path(__file__).resolve().parent / "comfy_shim"
SHARED_DIR = REPO_ROOT.parent / "shared"
PACK_NAME = "comfyui_gid"

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

torch.set_num_threads(2)


class RootAsFolder:
    """pytest plugin: collect the repository root as a plain folder, not as a package.

    The root's __init__.py makes it a package for ComfyUI. pytest would import that file to look
    for setup_module, which fails in a checkout folder whose name is not a Python identifier (e.g.
    ComfyUI-GID, as in ComfyUI's custom_nodes/): its relative imports then have no parent package.
    The tests load the pack themselves, under a valid name (load_pack). A plugin rather than a hook
    of this file, because pytest asks only the conftest files at or above a folder about it.
    """

    @staticmethod
    def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if path.resolve() == REPO_ROOT:
            return pytest.Dir.from_parent(parent, path=path)
        return None


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(RootAsFolder(), "comfyui-gid-root-as-folder")


def load_pack():
    """Import the repository as the custom-node package `comfyui_gid` (cached in sys.modules)."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pack():
    """The pack as ComfyUI sees it: NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, WEB_DIRECTORY."""
    return load_pack()


@pytest.fixture(scope="session")
def pack_models(pack):
    """The pack's own copy of gid_models (use its classes when feeding nodes)."""
    return importlib.import_module(f"{PACK_NAME}.gid_models")


@pytest.fixture
def comfy_shim(monkeypatch):
    """Make `comfy.*` and `folder_paths` importable from the shim for the duration of a test."""
    monkeypatch.syspath_prepend(str(SHIM_DIR))
    for name in [n for n in sys.modules if n == "comfy" or n.startswith("comfy.") or n == "folder_paths"]:
        monkeypatch.delitem(sys.modules, name)
    utils = importlib.import_module("comfy.utils")
    utils.UPDATES.clear()
    yield importlib.import_module("comfy.model_management")
    for name in [n for n in sys.modules if n == "comfy" or n.startswith("comfy.") or n == "folder_paths"]:
        sys.modules.pop(name, None)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: tiny networks run fastest so, and do not fight other test
    processes. A module asks for it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models_package():
    """The gid_models package the tiny model is built from. Node test modules override this with
    the pack's copy (`pack_models`), whose classes the nodes check their inputs against."""
    return importlib.import_module("gid_models")


@pytest.fixture(scope="module")
def make_tiny_model(models_package):
    """Builds a fresh untrained tiny MotionModel (K = 4 frequencies, 16x16 samples), seeded, in eval
    mode: for a test that changes its model (output gains, limits)."""
    networks = importlib.import_module(f"{models_package.__name__}.networks")
    normalization = importlib.import_module(f"{models_package.__name__}.normalization")

    def make():
        torch.manual_seed(0)
        stats = normalization.FrequencyNormalization(torch.tensor([0.5, 1.0, 0.5, 0.25]))
        return networks.MotionModel.create("tiny", num_frequencies=4, sample_size=(16, 16),
                                           normalization=stats).eval()

    return make


@pytest.fixture(scope="module")
def tiny_model(make_tiny_model):
    """One tiny model shared by a module's tests (see make_tiny_model); tests must not change it."""
    return make_tiny_model()


@pytest.fixture
def case_time_limit(request):
    """Fail a case that runs past its module's CASE_LIMIT_S seconds (a hang, or a slow step that
    the argument checks should have prevented). Modules opt in with pytest.mark.usefixtures."""
    limit = request.module.CASE_LIMIT_S

    def expire(*_):
        raise TimeoutError(f"the case ran past {limit} s: a hang or a slow step before the error")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
