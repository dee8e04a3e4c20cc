"""Write the example workflows' API forms from their UI forms.

    python -m tools.make_example_workflows          # (re)write example_workflows/api/ from the UI forms
    python -m tools.make_example_workflows --check  # exit 1 if an API form is missing or stale

The UI forms, example_workflows/<name>.json, are the examples themselves: ComfyUI lists every
*.json there in its template browser, with <name>.jpg as the thumbnail. Edit one in ComfyUI (open
it, change it, Export) or by hand, then rerun this tool. tests/test_example_workflows.py checks
every UI form against the nodes' INPUT_TYPES (tools/workflow_check.py), so after a node gains an
input, its value must be added to the saved widgets_values too.

The API forms, example_workflows/api/<name>.api.json (what scripts POST to /prompt, out of the
template browser's sight), are what the frontend queues for each UI form (workflow_check.ui_to_api;
the real-server test holds the two conversions equal). Sizes are what a user would run (the picture
at its size, 150 frames at 30 fps); tests shrink them in memory, never on disk.

The seeds of the bundled model's examples were picked by what each shows, under motion model v1,
which placed its motion almost at random (model card). Loop, seed 7: of seeds 0, 2, 4 and 7, one
of the two loops most dominated by low frequencies (a sway rather than a jitter), with the smaller
extreme displacements. Poke, seed 13 (picked for model v1, whose modes moved the big dandelion
head sideways at 3 of 24 seeds); since motion model v2 that head barely moves at any seed
(0.07-0.14 of the drag at seeds 0-16, session 22), so the drag pulls the seed head in the middle
and the poke flicks the one at the lower right, which answer in full.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import re
import sys
from pathlib import Path

from .workflow_check import ui_to_api
from .workflow_nodes import NodeSpec, node_specs

LOGGER = logging.getLogger("make_example_workflows")

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_DIR = REPO_ROOT / "example_workflows"
API_DIR = WORKFLOW_DIR / "api"
PACK_NAME = "comfyui_gid"
JSON_SCALAR = r'(?:-?[0-9.eE+-]+|"[^"\n,\[\]{}]*"|null|true|false)'  # no commas inside strings
SHORT_LIST = re.compile(rf"\[\s*({JSON_SCALAR}(?:,\s*{JSON_SCALAR})*)\s*\]")
WORKFLOWS = sorted(path.stem for path in WORKFLOW_DIR.glob("*.json"))


def ui_path(name: str) -> Path:
    return WORKFLOW_DIR / f"{name}.json"


def api_path(name: str) -> Path:
    return API_DIR / f"{name}.api.json"


def api_form(name: str) -> dict[str, dict]:
    """The shipped API form of an example: {node id: {"inputs", "class_type", "_meta"}}."""
    return json.loads(api_path(name).read_text())


def node_inputs(graph: dict[str, dict], class_type: str) -> dict:
    """The inputs of the first node of a type in an API form (e.g. an example's seed or drags)."""
    return next(node["inputs"] for node in graph.values() if node["class_type"] == class_type)


def ui_form(name: str) -> dict:
    """The UI form of an example (the source of its API form)."""
    return json.loads(ui_path(name).read_text())


# Examples that sample motion with the motion model (its weights ship in gid_models/weights/). Read
# from the UI forms, which exist before their API forms are first written.
NEEDS_MOTION_MODEL = {name for name in WORKFLOWS
                      if any(node["type"] == "GIDLoadMotionModel" for node in ui_form(name)["nodes"])}


def load_pack():
    """The pack (NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS), imported the way ComfyUI imports a
    custom-node folder."""
    if PACK_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACK_NAME, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[PACK_NAME]


def pack_specs(pack) -> dict[str, NodeSpec]:
    """Specs of the pack's nodes and of the ComfyUI/VideoHelperSuite nodes the examples use."""
    return node_specs(pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS)


def example_inputs(pack) -> dict[str, Path]:
    """{file name: bundled file} of what the examples load from ComfyUI's input folder (the pack
    copies these files there when ComfyUI loads it)."""
    comfy = importlib.import_module(f"{pack.__name__}.nodes._comfy")
    return {path.name: path for path in comfy.example_input_files()}


def derive_api(ui: dict, specs: dict[str, NodeSpec]) -> dict[str, dict]:
    """The API form of a UI form, inputs in INPUT_TYPES order, each node titled as the frontend does."""
    titles = {str(node["id"]): node.get("title") for node in ui["nodes"]}
    graph = {}
    for node_id, node in ui_to_api(ui, specs).items():
        spec = specs[node["class_type"]]
        order = [declared.name for declared in spec.inputs] + list(spec.extra_widgets(node["inputs"]))
        inputs = {name: node["inputs"][name] for name in order if name in node["inputs"]}
        inputs.update({name: value for name, value in node["inputs"].items() if name not in inputs})
        title = titles[node_id] or spec.display_name
        graph[node_id] = {"inputs": inputs, "class_type": node["class_type"], "_meta": {"title": title}}
    return graph


def dumps(data: dict) -> str:
    """Indented JSON with short lists of numbers and strings kept on one line (links)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return SHORT_LIST.sub(lambda m: "[" + ", ".join(part.strip() for part in m.group(1).split(",")) + "]"
                          if len(m.group(0)) < 200 else m.group(0), text) + "\n"


def render_all(specs: dict[str, NodeSpec], folder: Path = WORKFLOW_DIR) -> dict[Path, str]:
    """Every API form, with its text, derived from the UI forms in `folder` (<name>.json ->
    api/<name>.api.json), whether or not the API form exists yet."""
    return {folder / "api" / f"{path.stem}.api.json": dumps(derive_api(json.loads(path.read_text()), specs))
            for path in sorted(folder.glob("*.json"))}


def _shown(path: Path) -> Path:
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file is missing or stale")
    parser.add_argument("--folder", type=Path, default=WORKFLOW_DIR,
                        help="folder of the UI forms, their API forms go to its api/ (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    files = render_all(pack_specs(load_pack()), args.folder)
    stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            LOGGER.error("stale or missing: %s (run python -m tools.make_example_workflows)", _shown(path))
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        LOGGER.info("wrote %s", _shown(path))
    LOGGER.info("%d API forms, %d rewritten", len(files), len(stale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
