"""The one adapter between this pack and ComfyUI's services.

Every other module asks here for progress bars, interrupt checks, devices, model folders and the
temp folder. When ComfyUI is absent (the `gid` CLI, unit tests) each service degrades to a plain
fallback: a tqdm bar or nothing, no interrupts, CUDA if present else CPU, the bundled weights.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

LOGGER = logging.getLogger("ComfyUI-GID")

MODEL_FOLDER = "gid"
MODEL_EXTENSIONS = {".safetensors"}
BUNDLED_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "gid_models" / "weights"
# The picture and clip that the example workflows load (LoadImage, LoadVideo) by file name.
EXAMPLE_INPUTS_DIR = Path(__file__).resolve().parent.parent / "gid_models" / "assets"
EXAMPLE_INPUT_SUFFIXES = {".jpg", ".png", ".mp4"}


def _import(name: str) -> Any | None:
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        return None


def comfy_available() -> bool:
    return _import("comfy.model_management") is not None


class _NullProgress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.current = 0

    def update(self, value: int) -> None:
        self.current += value

    def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
        self.current = value


def progress_bar(total: int) -> Any:
    """A ComfyUI ProgressBar (shown on the running node) or a silent stand-in without ComfyUI."""
    utils = _import("comfy.utils")
    if utils is not None and hasattr(utils, "ProgressBar"):
        return utils.ProgressBar(total)
    return _NullProgress(total)


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel; no-op without ComfyUI."""
    management = _import("comfy.model_management")
    if management is not None:
        management.throw_exception_if_processing_interrupted()


def interrupt_check() -> Callable[[], None] | None:
    """The cheap check to hand to gid_models loops that look for a Cancel often (inside a sampling
    step): ComfyUI's own, which raises its interrupt exception; None without ComfyUI."""
    management = _import("comfy.model_management")
    return None if management is None else management.throw_exception_if_processing_interrupted


def torch_device() -> torch.device:
    """Device ComfyUI computes on (respects --cpu), else CUDA when available, else CPU."""
    management = _import("comfy.model_management")
    if management is not None:
        return management.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def intermediate_device() -> torch.device:
    """Device ComfyUI keeps node outputs on (CPU unless configured otherwise)."""
    management = _import("comfy.model_management")
    if management is not None:
        return management.intermediate_device()
    return torch.device("cpu")


def step_callback(total: int):
    """A per-step callback for gid_models loops: advances a progress bar and honours interrupts."""
    bar = progress_bar(total)

    def callback(step: int, *_: Any) -> None:
        throw_if_interrupted()
        bar.update_absolute(step + 1, total)

    return callback


def progress_callback():
    """A (done, total) callback for gid_models loops that count their own work (the sampler's
    passes): moves a progress bar to done of total and honours interrupts."""
    bar = progress_bar(1)

    def callback(done: int, total: int) -> None:
        throw_if_interrupted()
        bar.update_absolute(done, total)

    return callback


def register_model_folder() -> None:
    """Register ComfyUI/models/gid (plus the bundled weights folder) as the `gid` model folder."""
    folder_paths = _import("folder_paths")
    if folder_paths is None:
        return
    default = os.path.join(folder_paths.models_dir, MODEL_FOLDER)
    if MODEL_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[MODEL_FOLDER] = ([default], set(MODEL_EXTENSIONS))
    paths = folder_paths.folder_names_and_paths[MODEL_FOLDER][0]
    if str(BUNDLED_WEIGHTS_DIR) not in paths:
        paths.append(str(BUNDLED_WEIGHTS_DIR))


def example_input_files() -> list[Path]:
    """The bundled files that the example workflows load from ComfyUI's input folder."""
    return sorted(p for p in EXAMPLE_INPUTS_DIR.iterdir() if p.suffix.lower() in EXAMPLE_INPUT_SUFFIXES)


def install_example_inputs() -> None:
    """Make a fresh ComfyUI ready for the example workflows: copy the bundled picture and clip into
    its input folder, where a file of the same name (perhaps the user's own) is never replaced, and
    create ComfyUI/models/gid for the user's motion models. No-op without ComfyUI."""
    folder_paths = _import("folder_paths")
    if folder_paths is None:
        return
    try:
        os.makedirs(os.path.join(folder_paths.models_dir, MODEL_FOLDER), exist_ok=True)
        input_dir = Path(folder_paths.get_input_directory())
        input_dir.mkdir(parents=True, exist_ok=True)
        for source in example_input_files():
            target = input_dir / source.name
            if target.exists():
                continue
            partial = input_dir / f".{source.name}.partial"  # never a half-copied file under the real name
            shutil.copyfile(source, partial)
            os.replace(partial, target)
            LOGGER.info("copied the example input %s into %s", source.name, input_dir)
    except OSError as error:
        LOGGER.warning("could not prepare ComfyUI's folders for the example workflows (%s); copy the files "
                       "of %s into ComfyUI's input folder by hand", error, EXAMPLE_INPUTS_DIR)


def list_model_files(prefix: str = "") -> list[str]:
    """Names of .safetensors files in the `gid` model folder(s) whose name starts with prefix."""
    folder_paths = _import("folder_paths")
    if folder_paths is not None:
        register_model_folder()
        names = folder_paths.get_filename_list(MODEL_FOLDER)
    else:
        names = [p.name for p in BUNDLED_WEIGHTS_DIR.glob("*.safetensors")]
    return sorted(n for n in names if Path(n).name.startswith(prefix))


def model_file_path(name: str) -> Path:
    """Full path of a file listed by list_model_files; raises FileNotFoundError with the fix.

    Only files inside the registered `gid` model folders (or the bundled weights folder) are
    returned: names with '..' or absolute paths that lead elsewhere are refused (a link the user
    put inside a model folder is followed, as ComfyUI does)."""
    folder_paths = _import("folder_paths")
    folders = [BUNDLED_WEIGHTS_DIR]
    found = None
    if folder_paths is not None:
        register_model_folder()
        folders = [Path(p) for p in folder_paths.folder_names_and_paths[MODEL_FOLDER][0]]
        found = folder_paths.get_full_path(MODEL_FOLDER, name)
    candidate = Path(found) if found else BUNDLED_WEIGHTS_DIR / str(name)
    normal = Path(os.path.normpath(os.path.abspath(candidate)))
    inside = any(normal.is_relative_to(os.path.normpath(os.path.abspath(folder))) for folder in folders)
    if inside and normal.is_file() and normal.suffix.lower() in MODEL_EXTENSIONS:
        return normal
    raise FileNotFoundError(
        f"model file '{name}' not found in the gid model folders; put it in ComfyUI/models/{MODEL_FOLDER}/ and "
        "refresh, or pick one of the listed files (paths outside those folders are not loaded)."
    )


def temp_directory() -> Path:
    """ComfyUI's temp folder (served at /view?type=temp), else the system temp folder."""
    folder_paths = _import("folder_paths")
    if folder_paths is not None:
        path = Path(folder_paths.get_temp_directory())
    else:
        path = Path(tempfile.gettempdir()) / "comfyui-gid"
    path.mkdir(parents=True, exist_ok=True)
    return path


class _ManagedNetwork(torch.nn.Module):
    """What ComfyUI's ModelPatcher manages for one of our networks: the network as its only child,
    plus the plain `device` attribute the patcher writes on every load and offload (diffusers'
    ModelMixin, NeuralRenderer's base, has a read-only `device` property instead)."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network
        self.device = None


def load_model_to_device(model: torch.nn.Module, memory_required: int = 0) -> torch.device:
    """Make room for and move a torch module to the compute device through ComfyUI's model
    management (so VRAM is shared with other nodes' models); plain .to() without ComfyUI.
    Returns the device the module is now on."""
    device = torch_device()
    management = _import("comfy.model_management")
    patcher_module = _import("comfy.model_patcher")
    if management is not None and patcher_module is not None:
        patcher = getattr(model, "_gid_patcher", None)
        if patcher is None:
            patcher = patcher_module.ModelPatcher(
                _ManagedNetwork(model), load_device=device, offload_device=management.unet_offload_device()
            )
            object.__setattr__(model, "_gid_patcher", patcher)
        management.load_models_gpu([patcher], memory_required=memory_required)
        return device
    model.to(device)
    return device
