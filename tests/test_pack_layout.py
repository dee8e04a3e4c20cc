"""Fast checks of the pack's shape: what ComfyUI, the registry and users rely on.

- gid_models imports without ComfyUI; the pack imports without ComfyUI too.
- Every node declares the classic API fully (category under GID, description, tooltips,
  output names and tooltips) and has a display name.
- The repository holds the files a pack needs, keeps torch out of requirements.txt, tracks no
  pickle files and stays small (each file <= 16 MB, shipped weights <= 30 MB).
- The tests pass in a checkout folder named ComfyUI-GID (not a Python identifier).
- Loaded in ComfyUI, the pack gives a fresh install what the example workflows need (their
  picture and clip in the input folder, models/gid); a wheel ships the assets and weights.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_WEIGHTS_BYTES = 30 * 1024 * 1024
WEIGHTS_DIR = "gid_models/weights/"
REQUIRED_PATHS = [
    "__init__.py", "nodes", "gid_models", "web", "tests", "pyproject.toml", "README.md",
    "requirements.txt", "example_workflows", "benchmarks", ".ci/run", "LICENSE",
]  # fmt: skip
COMFY_MODULES = ("comfy", "folder_paths", "server", "execution", "comfy_api")
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".joblib"}
NOT_COPIED = (".git", "__pycache__", ".pytest_cache", "*.egg-info", ".venv", "node_modules", "build", "dist")

# Runs in a fresh interpreter so that nothing imported by other tests (the ComfyUI shim) leaks in.
IMPORT_ALL_MODEL_MODULES = """
import importlib, json, pkgutil, sys
import gid_models
names = ["gid_models"]
for info in pkgutil.walk_packages(gid_models.__path__, "gid_models."):
    importlib.import_module(info.name)
    names.append(info.name)
leaked = sorted(n for n in sys.modules if n.split(".")[0] in {comfy_modules})
print(json.dumps({{"modules": names, "leaked": leaked}}))
"""

# The pack loaded as in ComfyUI (the shim's folder_paths importable), on a fresh input folder.
IMPORT_PACK_IN_COMFYUI = """
import json, os, sys
sys.path[:0] = ["tests", "tests/comfy_shim"]
import conftest, folder_paths
conftest.load_pack()
print(json.dumps({{"inputs": sorted(os.listdir(folder_paths.get_input_directory())),
                  "models_gid": os.path.isdir(os.path.join(folder_paths.models_dir, "gid"))}}))
"""

IMPORT_PACK = """
import json, sys
sys.path.insert(0, "tests")
import conftest
pack = conftest.load_pack()
leaked = sorted(n for n in sys.modules if n.split(".")[0] in {comfy_modules})
print(json.dumps({{"nodes": sorted(pack.NODE_CLASS_MAPPINGS), "leaked": leaked}}))
"""


def run_python(source: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", source.format(comfy_modules=set(COMFY_MODULES))],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def tracked_files() -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout ({error}); tracked-file checks need one")
    return [Path(name) for name in listing.decode().split("\0") if name and (REPO_ROOT / name).is_file()]


def is_pickle(path: Path) -> bool:
    """Pickle protocol >= 2 stream, or a zip archive holding one (torch.save's format)."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith((".pkl", ".pickle")) for name in archive.namelist())
    return False


def input_declarations(node_class) -> dict[str, tuple]:
    declared = node_class.INPUT_TYPES()
    return {**declared.get("required", {}), **declared.get("optional", {})}


def test_model_package_imports_without_comfyui():
    result = run_python(IMPORT_ALL_MODEL_MODULES)
    assert "gid_models.spectral" in result["modules"]
    assert result["leaked"] == [], f"gid_models pulled in ComfyUI modules: {result['leaked']}"


def test_pack_imports_without_comfyui(pack):
    result = run_python(IMPORT_PACK)
    assert result["nodes"] == sorted(pack.NODE_CLASS_MAPPINGS)
    assert result["leaked"] == [], f"importing the pack outside ComfyUI left {result['leaked']} in sys.modules"


def test_mappings_are_consistent(pack):
    assert set(pack.NODE_CLASS_MAPPINGS) == set(pack.NODE_DISPLAY_NAME_MAPPINGS)
    for node_id, display_name in pack.NODE_DISPLAY_NAME_MAPPINGS.items():
        assert node_id.startswith("GID"), node_id
        assert isinstance(display_name, str) and display_name.strip(), node_id
    names = list(pack.NODE_DISPLAY_NAME_MAPPINGS.values())
    assert len(set(names)) == len(names), "two nodes share a display name"
    assert pack.WEB_DIRECTORY == "./web"


def test_every_node_declares_the_classic_api(pack):
    problems = []
    for node_id, node_class in pack.NODE_CLASS_MAPPINGS.items():
        category = getattr(node_class, "CATEGORY", "")
        if not (category == "GID" or category.startswith("GID/")):
            problems.append(f"{node_id}: CATEGORY {category!r} is not under GID/")
        if not str(getattr(node_class, "DESCRIPTION", "")).strip():
            problems.append(f"{node_id}: no DESCRIPTION")
        function = getattr(node_class, "FUNCTION", None)
        if not function or not callable(getattr(node_class, function, None)):
            problems.append(f"{node_id}: FUNCTION {function!r} is not a method of the class")
        for name, declaration in input_declarations(node_class).items():
            options = declaration[1] if len(declaration) > 1 and isinstance(declaration[1], dict) else {}
            if not str(options.get("tooltip", "")).strip():
                problems.append(f"{node_id}: input {name!r} has no tooltip")
        outputs = len(node_class.RETURN_TYPES)
        for attribute in ("RETURN_NAMES", "OUTPUT_TOOLTIPS"):
            values = getattr(node_class, attribute, None)
            if values is None or len(values) != outputs:
                problems.append(f"{node_id}: {attribute} {values!r} does not match {outputs} RETURN_TYPES")
    assert not problems, "\n".join(problems)


def test_required_files_exist():
    missing = [path for path in REQUIRED_PATHS if not (REPO_ROOT / path).exists()]
    assert not missing, f"missing from the repository root: {missing}"


def test_no_test_scripts_among_frontend_modules():
    """ComfyUI serves every .js file under web/ and the frontend imports each one: tests must be .mjs."""
    scripts = [path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "web").rglob("*.js")]
    tests = [name for name in scripts if "/tests/" in name or name.endswith((".test.js", ".spec.js"))]
    assert not tests, f"test files under web/ would be loaded by the ComfyUI frontend; name them .mjs: {tests}"


def test_torch_is_not_a_plain_requirement():
    names = []
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line.replace(">", " ").replace("=", " ").replace("<", " ").split()[0].lower())
    assert not {"torch", "torchvision", "torchaudio"} & set(names), (
        "torch must stay out of requirements.txt (pip would replace a user's CUDA build); "
        "it is the [torch] extra in pyproject.toml"
    )



def _requirement_names(lines) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip().strip('",')
        if line:
            names.add(line.replace(">", " ").replace("=", " ").replace("<", " ").split()[0].lower())
    return names


def test_pyav_is_installed_with_the_pack():
    """A fresh install (README quick start, or requirements.txt) must write browser-playable H.264
    .mp4 files, which needs PyAV: without it video_io falls back to OpenCV's MPEG-4 part 2."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert "av" in _requirement_names(project["dependencies"])
    assert "av" in _requirement_names((REPO_ROOT / "requirements.txt").read_text().splitlines())

def test_no_pickle_files_are_tracked():
    pickles = [str(path) for path in tracked_files()
               if path.suffix.lower() in PICKLE_SUFFIXES or is_pickle(REPO_ROOT / path)]  # fmt: skip
    assert not pickles, f"pickle-format files are tracked (use safetensors): {pickles}"


def test_tracked_files_are_small():
    files = tracked_files()
    too_big = [f"{path} ({(REPO_ROOT / path).stat().st_size / 2**20:.1f} MB)" for path in files
               if (REPO_ROOT / path).stat().st_size > MAX_FILE_BYTES]  # fmt: skip
    assert not too_big, f"files over 16 MB: {too_big}"
    weights = sum((REPO_ROOT / path).stat().st_size for path in files if path.as_posix().startswith(WEIGHTS_DIR))
    assert weights <= MAX_WEIGHTS_BYTES, f"shipped weights total {weights / 2**20:.1f} MB (limit 30 MB)"


@pytest.mark.slow
def test_suite_runs_in_a_checkout_folder_named_comfyui_gid(tmp_path):
    """The README's clone and ComfyUI's custom_nodes/ComfyUI-GID: a folder name that is not a Python
    identifier, where pytest once imported the root __init__.py and every test errored."""
    checkout = tmp_path / "ComfyUI-GID"
    shutil.copytree(REPO_ROOT, checkout, ignore=shutil.ignore_patterns(*NOT_COPIED))
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_spectral.py",
         "tests/test_motion_nodes.py"],
        cwd=checkout, env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else completed.stderr[-2000:]
    assert completed.returncode == 0, completed.stdout[-4000:]
    assert " passed" in summary and "error" not in summary, summary


def test_loading_in_comfyui_puts_the_example_inputs_in_place():
    """A fresh ComfyUI gets the example workflows' picture and clip and a models/gid folder."""
    result = run_python(IMPORT_PACK_IN_COMFYUI)
    assert result["inputs"] == ["dandelion_meadow.jpg", "grass_clip.mp4"]
    assert result["models_gid"]


def test_example_inputs_never_replace_a_users_file(pack, comfy_shim):
    comfy = importlib.import_module(f"{pack.__name__}.nodes._comfy")
    folder_paths = importlib.import_module("folder_paths")
    input_dir = Path(folder_paths.get_input_directory())
    for old in input_dir.iterdir():
        old.unlink()
    users_picture = input_dir / "dandelion_meadow.jpg"
    users_picture.write_bytes(b"the user's own picture")
    comfy.install_example_inputs()
    comfy.install_example_inputs()  # a second start changes nothing
    assert users_picture.read_bytes() == b"the user's own picture"
    clip = REPO_ROOT / "gid_models" / "assets" / "grass_clip.mp4"
    assert (input_dir / "grass_clip.mp4").read_bytes() == clip.read_bytes()
    assert sorted(p.name for p in input_dir.iterdir()) == ["dandelion_meadow.jpg", "grass_clip.mp4"]  # no leftovers
    assert (Path(folder_paths.models_dir) / "gid").is_dir()


@pytest.mark.slow
def test_wheel_ships_the_example_assets_and_weights(tmp_path):
    """`pip install .` (not editable) must keep what the CLI and the examples use."""
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*NOT_COPIED))
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp_path / "wheels"), str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    (wheel,) = (tmp_path / "wheels").glob("comfyui_gid-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("gid_models/assets/dandelion_meadow.jpg", "gid_models/assets/grass_clip.mp4",
                 "gid_models/weights/denoiser.safetensors", "gid_models/weights/renderer.safetensors"):
        assert name in names, f"{name} is not in {wheel.name}"
