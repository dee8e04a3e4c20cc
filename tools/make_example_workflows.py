"""Write the example workflows, UI form and API form, from one compact description each.

    python -m tools.make_example_workflows          # (re)write example_workflows/
    python -m tools.make_example_workflows --check  # exit 1 if a file differs from what it would write

UI forms go to example_workflows/<name>.json (ComfyUI lists every *.json there in its template
browser, with <name>.jpg as the thumbnail); API forms go to example_workflows/api/<name>.api.json,
out of the template browser's sight. Widget values not set below keep the default that the node's
INPUT_TYPES declares, so rerun this after changing a node's inputs. Sizes are what a user would run
(the picture at its size, 150 frames at 30 fps); tests shrink them in memory, never on disk.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import re
import sys
from pathlib import Path

from .workflow_forms import From, Node, Workflow, build_api, build_ui
from .workflow_nodes import H264_FORMAT, NodeSpec, node_specs

LOGGER = logging.getLogger("make_example_workflows")

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_DIR = REPO_ROOT / "example_workflows"
API_DIR = WORKFLOW_DIR / "api"
PACK_NAME = "comfyui_gid"
JSON_SCALAR = r'(?:-?[0-9.eE+-]+|"[^"\n,\[\]{}]*"|null|true|false)'  # no commas inside strings
SHORT_LIST = re.compile(rf"\[\s*({JSON_SCALAR}(?:,\s*{JSON_SCALAR})*)\s*\]")
PICTURE = "dandelion_meadow.jpg"
CLIP = "grass_clip.mp4"
INPUT_FILES = {PICTURE: REPO_ROOT / "gid_models" / "assets" / PICTURE, CLIP: REPO_ROOT / "gid_models" / "assets" / CLIP}

# A drag on the big dandelion head (pulled right, held, let go) and a flick on a small one.
DANDELION_DRAGS = json.dumps({"version": 1, "drags": [
    {"x": 0.29, "y": 0.3, "dx": 0.04, "dy": 0.0, "start": 0, "hold": 15, "kind": "drag"},
    {"x": 0.82, "y": 0.77, "dx": -0.03, "dy": 0.0, "start": 45, "kind": "poke"},
]})  # fmt: skip
# The grass of the clip sways mostly up and down: a drag pressing it down in the middle of the first
# frame (held, let go) and an upward flick on the right.
GRASS_DRAGS = json.dumps({"version": 1, "drags": [
    {"x": 0.35, "y": 0.75, "dx": 0.0, "dy": 0.05, "start": 0, "hold": 15, "kind": "drag"},
    {"x": 0.75, "y": 0.85, "dx": 0.0, "dy": -0.04, "start": 45, "kind": "poke"},
]})  # fmt: skip


def video_ending(render_key: str, prefix: str, column: int) -> list[Node]:
    """GIDRender's frames and frame rate -> CreateVideo -> SaveVideo (an H.264 mp4)."""
    return [
        Node("video", "CreateVideo", {"images": From(render_key, "frames"), "fps": From(render_key, "fps")},
             column=column, row=0, group="Video"),
        Node("save", "SaveVideo", {"video": From("video", "VIDEO"), "filename_prefix": prefix, "format": "mp4",
                                   "codec": "h264"}, column=column, row=1, group="Video"),
    ]  # fmt: skip


# Seeds of the bundled model's examples. The model places motion almost at random (see the model
# card), so these were picked by what each example shows. Loops: of seeds 0, 2, 4 and 7, seed 7
# has one of the two loops most dominated by low frequencies (a sway rather than a jitter: its
# one-frame seam step is 0.23 of its half-period change at 32 frames), with smaller extreme
# displacements than the other. Poke: among seeds 0-23, 13 is one of the three whose modes move
# the dandelion head sideways, along the example's drag (its response there is 3% of the
# picture's largest; most seeds leave it far under the 1% with which modal.py lets a drag move
# its point fully).
LOOP_SEED = 7
POKE_SEED = 13


def motion_model_nodes(guided: bool, seed: int) -> list[Node]:
    """LoadImage and the motion model -> GIDSampleSpectralVolume (with loop guidance if guided)."""
    nodes = [
        Node("picture", "LoadImage", {"image": PICTURE}, column=0, row=0, group="Picture"),
        Node("model", "GIDLoadMotionModel", {"model_name": "bundled"}, column=1, row=0, group="Motion"),
        Node("sample", "GIDSampleSpectralVolume", {
            "image": From("picture", "IMAGE"), "model": From("model", "model"), "seed": seed, "steps": 50,
            "cfg": 1.75, "num_frames": 150, "fps": 30.0,
            **({"guidance": From("guidance", "guidance")} if guided else {}),
        }, column=2, row=0, group="Motion"),
    ]  # fmt: skip
    if guided:
        nodes.insert(2, Node("guidance", "GIDLoopGuidance", {"u": 200.0, "self_recurrence": 2}, column=1, row=1,
                             group="Motion"))
    return nodes


LOOP_NOTE = (
    "Picture to seamless loop (Generative Image Dynamics): the motion diffusion model samples the picture's "
    "motion as a spectral volume (16 temporal frequencies per pixel) for 150 frames at 30 fps, loop guidance "
    "pushes the last frame's positions and velocities to match the first, and 150 frames at 30 fps are "
    "rendered: exactly one period, so the video loops without a seam.\n"
    "Change the seed for another motion; 50 steps is a good preview, 250 is the paper's quality. gain in "
    "GID Spectral Volume To Motion exaggerates (>1) or calms (<1) the motion.\n"
    "The loader's 'bundled' model ships with the pack (small, trained on clips of Big Buck Bunny: see "
    "gid_models/weights/MODEL_CARD.md); your own gid_motion_*.safetensors files in ComfyUI/models/gid are "
    "listed there too. GID Render uses the pixel renderer; connect GID Load Renderer to its renderer input "
    "for the neural one."
)


def loop_motion_and_render() -> list[Node]:
    return [
        Node("motion", "GIDSpectralToMotion", {
            "spectral_volume": From("sample", "spectral_volume"), "frames": 150, "fps": 30.0, "gain": 1.0, "speed": 1.0,
        }, column=3, row=0, group="Render"),
        Node("render", "GIDRender", {"picture": From("picture", "IMAGE"), "motion": From("motion", "motion")},
             column=4, row=0, group="Render"),
    ]  # fmt: skip


def image_to_loop() -> Workflow:
    nodes = motion_model_nodes(guided=True, seed=LOOP_SEED) + loop_motion_and_render() + video_ending("render", "gid/loop", 5)
    return Workflow("image_to_loop", nodes, LOOP_NOTE)


def image_to_loop_vhs() -> Workflow:
    nodes = motion_model_nodes(guided=True, seed=LOOP_SEED) + loop_motion_and_render()
    nodes.append(Node("combine", "VHS_VideoCombine", {
        "images": From("render", "frames"), "frame_rate": From("render", "fps"), "loop_count": 0,
        "filename_prefix": "gid/loop", "format": H264_FORMAT, "pingpong": False, "save_output": True,
        "pix_fmt": "yuv420p", "crf": 19, "save_metadata": True, "trim_to_audio": False,
    }, column=5, row=0, group="Video"))  # fmt: skip
    note = LOOP_NOTE + "\nThe video is written by VideoHelperSuite's Video Combine (H.264 mp4, loop_count 0)."
    return Workflow("image_to_loop_vhs", nodes, note)


def interactive_poke() -> Workflow:
    nodes = motion_model_nodes(guided=False, seed=POKE_SEED) + [
        Node("simulate", "GIDModalSimulation", {
            "spectral_volume": From("sample", "spectral_volume"), "drags": DANDELION_DRAGS, "damping": 0.05,
            "frames": 150, "fps": 30.0, "picture": From("picture", "IMAGE"),
        }, column=3, row=0, group="Poke"),
        Node("render", "GIDRender", {"picture": From("picture", "IMAGE"), "motion": From("simulate", "motion")},
             column=4, row=0, group="Render"),
        *video_ending("render", "gid/interactive_poke", column=5),
    ]  # fmt: skip
    note = (
        "Interactive poke: the motion model samples the picture's spectral volume; each of its temporal "
        "frequencies is a vibration mode of the scene, and GID Modal Simulation swings the modes as damped "
        "oscillators when you drag or poke the picture (paper section 6).\n"
        "Edit the arrows in the simulation node's picture widget (press and pull to add one; Delete removes "
        "the selected arrow), or write the drags JSON by hand. damping sets how fast the swinging dies out.\n"
        "The motion model is the one bundled with the pack (see the loader). It does not yet know where a "
        "scene moves: seed 13 is one with sideways motion at the dandelion head; with another seed, put the arrows where "
        "the widget's preview shows motion. interactive_poke_from_video "
        "measures the modes from a clip instead."
    )
    return Workflow("interactive_poke", nodes, note)


def motion_transfer() -> Workflow:
    nodes = [
        Node("clip", "LoadVideo", {"file": CLIP}, column=0, row=0, group="Motion of a video"),
        Node("components", "GetVideoComponents", {"video": From("clip", "VIDEO")}, column=1, row=0,
             group="Motion of a video"),
        Node("measure", "GIDMotionFromVideo", {
            "frames": From("components", "images"), "fps": From("components", "fps"), "num_frequencies": 16,
            "remove_camera_motion": True, "max_frames": 150,
        }, column=2, row=0, group="Motion of a video"),
        Node("picture", "LoadImage", {"image": PICTURE}, column=0, row=1, group="Another picture"),
        Node("motion", "GIDSpectralToMotion", {
            "spectral_volume": From("measure", "spectral_volume"), "frames": 100, "fps": From("components", "fps"),
        }, column=3, row=0, group="Render"),
        Node("render", "GIDRender", {"picture": From("picture", "IMAGE"), "motion": From("motion", "motion")},
             column=4, row=0, group="Render"),
        *video_ending("render", "gid/motion_transfer", column=5),
    ]  # fmt: skip
    note = (
        "Motion transfer: the grass clip's motion is measured (optical flow from the first frame, its 16 "
        "lowest temporal frequencies: a spectral volume) and applied to a different picture, the dandelions.\n"
        "The clip has 100 frames at 24 fps: 100 output frames at the clip's rate replay the measured motion "
        "once, and the motion repeats with that period (a clip whose motion drifts, like this one, shows a "
        "jump where it wraps). Raise gain to exaggerate the swaying, lower speed for slow motion. Use a clip "
        "from a fixed camera whose size has the picture's aspect ratio."
    )
    return Workflow("motion_transfer", nodes, note)


def interactive_poke_from_video() -> Workflow:
    nodes = [
        Node("clip", "LoadVideo", {"file": CLIP}, column=0, row=0, group="Modes of the scene (from a video)"),
        Node("components", "GetVideoComponents", {"video": From("clip", "VIDEO")}, column=1, row=0,
             group="Modes of the scene (from a video)"),
        Node("measure", "GIDMotionFromVideo", {
            "frames": From("components", "images"), "fps": From("components", "fps"), "num_frequencies": 16,
            "remove_camera_motion": True, "max_frames": 150,
        }, column=2, row=0, group="Modes of the scene (from a video)"),
        Node("first_frame", "ImageFromBatch", {"image": From("components", "images"), "batch_index": 0, "length": 1},
             column=1, row=1, title="First frame (the picture to poke)", group="Poke"),
        Node("simulate", "GIDModalSimulation", {
            "spectral_volume": From("measure", "spectral_volume"), "drags": GRASS_DRAGS, "damping": 0.05,
            "frames": 150, "fps": 30.0, "picture": From("first_frame", "IMAGE"),
        }, column=2, row=1, group="Poke"),
        Node("render", "GIDRender", {"picture": From("first_frame", "IMAGE"), "motion": From("simulate", "motion")},
             column=3, row=0, group="Render"),
        *video_ending("render", "gid/interactive_poke_from_video", column=4),
    ]  # fmt: skip
    note = (
        "Interactive poke, with the scene's vibration modes measured from a video (no motion model needed): "
        "every temporal frequency of the grass clip's spectral volume is a mode, and GID Modal Simulation "
        "swings them as damped oscillators when you drag or poke the first frame.\n"
        "Edit the arrows in the simulation node's picture widget (press and pull to add one; Delete removes "
        "the selected arrow), or write the drags JSON by hand. damping sets how fast the swinging dies out."
    )
    return Workflow("interactive_poke_from_video", nodes, note)


WORKFLOWS = {
    "image_to_loop": image_to_loop,
    "image_to_loop_vhs": image_to_loop_vhs,
    "interactive_poke": interactive_poke,
    "motion_transfer": motion_transfer,
    "interactive_poke_from_video": interactive_poke_from_video,
}
# Workflows that sample motion with the motion model (its weights ship in gid_models/weights/).
NEEDS_MOTION_MODEL = {"image_to_loop", "image_to_loop_vhs", "interactive_poke"}


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


def ui_path(name: str) -> Path:
    return WORKFLOW_DIR / f"{name}.json"


def api_path(name: str) -> Path:
    return API_DIR / f"{name}.api.json"


def dumps(data: dict) -> str:
    """Indented JSON with short lists of numbers and strings kept on one line (links, positions)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return SHORT_LIST.sub(lambda m: "[" + ", ".join(part.strip() for part in m.group(1).split(",")) + "]"
                          if len(m.group(0)) < 200 else m.group(0), text) + "\n"


def render_all(specs: dict[str, NodeSpec]) -> dict[Path, str]:
    """Every file this tool writes, with its text."""
    files = {}
    for name, describe in WORKFLOWS.items():
        workflow = describe()
        files[ui_path(name)] = dumps(build_ui(workflow, specs))
        files[api_path(name)] = dumps(build_api(workflow, specs))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file is missing or stale")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    files = render_all(pack_specs(load_pack()))
    stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            LOGGER.error("stale or missing: %s (run python -m tools.make_example_workflows)", path.relative_to(REPO_ROOT))
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        LOGGER.info("wrote %s", path.relative_to(REPO_ROOT))
    LOGGER.info("%d workflow files, %d rewritten", len(files), len(stale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
