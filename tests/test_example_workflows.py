"""The example workflows against the real node definitions (fast, no ComfyUI needed).

Every example ships as a UI form (example_workflows/<name>.json, what users open: the source) and
an API form (example_workflows/api/<name>.api.json, what scripts POST to /prompt), derived from it
by tools/make_example_workflows.py, plus a thumbnail. Each form is checked by
tools/workflow_check.py: GID nodes exist, every input name is declared by the node's INPUT_TYPES,
every widget value has the right type, range or combo choice, every link joins matching types,
every node feeds an output, and every file loaded is one the pack puts into ComfyUI's input folder.
The checker is then shown to catch broken copies. ComfyUI and VideoHelperSuite nodes are described
in tools/workflow_nodes.py; the real-server tests hold those descriptions against /object_info
(tests/integration/test_example_workflows_server.py) and the UI-to-API conversion against the
frontends' (tests/integration/test_frontends_server.py).
The layout of each UI form is checked by tools/workflow_layout.py: opened at 100% zoom in a 1600x900
window, every node and group is on screen, no nodes overlap, each lies in its group and no link
runs behind a node (docs/workflows/ holds screenshots, made by tools/workflow_screenshots.py).
"""

from __future__ import annotations

import copy
import importlib
import json
import shutil

import pytest
from PIL import Image

from tools.make_example_workflows import (
    NEEDS_MOTION_MODEL,
    REPO_ROOT,
    WORKFLOW_DIR,
    WORKFLOWS,
    api_path,
    derive_api,
    example_inputs,
    main,
    node_inputs,
    pack_specs,
    render_all,
    ui_path,
)
from tools.workflow_check import check_api, check_ui
from tools.workflow_layout import check_layout

EXPECTED = ["image_to_loop", "image_to_loop_vhs", "interactive_poke", "interactive_poke_from_video", "loop_a_video",
            "motion_transfer"]
MAX_THUMBNAIL_BYTES = 60 * 1024
# The chain of node types each example must contain (the description of each).
REQUIRED_NODES = {
    "image_to_loop": {"LoadImage", "GIDLoadMotionModel", "GIDLoopGuidance", "GIDSampleSpectralVolume",
                      "GIDSpectralToMotion", "GIDRender", "CreateVideo", "SaveVideo"},
    "image_to_loop_vhs": {"LoadImage", "GIDLoadMotionModel", "GIDLoopGuidance", "GIDSampleSpectralVolume",
                          "GIDSpectralToMotion", "GIDRender", "VHS_VideoCombine"},
    "interactive_poke": {"LoadImage", "GIDLoadMotionModel", "GIDSampleSpectralVolume", "GIDModalSimulation",
                         "GIDRender", "CreateVideo", "SaveVideo"},
    "interactive_poke_from_video": {"LoadVideo", "GetVideoComponents", "GIDMotionFromVideo", "GIDModalSimulation",
                                    "GIDRender", "CreateVideo", "SaveVideo"},
    "loop_a_video": {"LoadVideo", "GetVideoComponents", "GIDMotionFromVideo", "ImageFromBatch", "GIDSpectralToMotion",
                     "GIDRender", "CreateVideo", "SaveVideo"},
    "motion_transfer": {"LoadVideo", "GetVideoComponents", "GIDMotionFromVideo", "LoadImage", "GIDLoadMotionModel",
                        "GIDSampleSpectralVolume", "GIDMatchMotionStatistics", "GIDSpectralToMotion",
                        "GIDRender", "CreateVideo", "SaveVideo"},
}  # fmt: skip


@pytest.fixture(scope="module")
def specs(pack):
    return pack_specs(pack)


@pytest.fixture(scope="module")
def input_files(pack) -> set[str]:
    """Names of the files the pack copies into ComfyUI's input folder."""
    return set(example_inputs(pack))


@pytest.fixture(scope="module")
def value_checks(pack_models):
    """Checks beyond INPUT_TYPES: a saved drags JSON must parse as the modal node parses it."""
    dynamics = importlib.import_module(f"{pack_models.__name__}.dynamics")

    def drags_parse(text):
        try:
            dynamics.drags_from_json(text, 512, 288)
        except ValueError as error:
            return f"GIDModalSimulation.drags does not parse: {error}"
        return None

    return {("GIDModalSimulation", "drags"): drags_parse}


def load(name: str) -> tuple[dict, dict]:
    return json.loads(ui_path(name).read_text()), json.loads(api_path(name).read_text())


def problems_of(ui: dict | None, api: dict | None, specs, value_checks, input_files) -> list[str]:
    found = []
    if ui is not None:
        found += check_ui(ui, specs, input_files, value_checks)
    if api is not None:
        found += check_api(api, specs, input_files, value_checks)
    return found


def test_every_expected_workflow_is_shipped():
    assert WORKFLOWS == EXPECTED
    assert NEEDS_MOTION_MODEL == {"image_to_loop", "image_to_loop_vhs", "interactive_poke", "motion_transfer"}
    assert sorted(p.name for p in (WORKFLOW_DIR / "api").glob("*.json")) == sorted(f"{n}.api.json" for n in EXPECTED)
    assert sorted(p.stem for p in WORKFLOW_DIR.glob("*.jpg")) == sorted(EXPECTED), "stray or missing thumbnails"


def test_api_forms_are_derived_from_the_ui_forms(specs):
    """The shipped API forms are what tools/make_example_workflows.py derives from the UI forms."""
    stale = [str(path.relative_to(REPO_ROOT)) for path, text in render_all(specs).items()
             if not path.is_file() or path.read_text() != text]  # fmt: skip
    assert not stale, f"rerun `python -m tools.make_example_workflows`; stale: {stale}"


def test_an_edited_ui_form_gives_a_new_api_form(specs):
    ui, api = load("image_to_loop")
    _node(ui, "GIDSampleSpectralVolume")["widgets_values"][0] = 8  # the seed, 7 in the shipped file
    assert node_inputs(derive_api(ui, specs), "GIDSampleSpectralVolume")["seed"] == 8
    assert node_inputs(api, "GIDSampleSpectralVolume")["seed"] == 7


def test_a_new_ui_form_gets_its_api_form(tmp_path, specs):
    """The tool writes the API form of a UI form that has none yet (it used to crash on it)."""
    for name in EXPECTED:
        shutil.copy(ui_path(name), tmp_path / f"{name}.json")
    assert main(["--folder", str(tmp_path), "--check"]) == 1  # every API form is missing
    assert main(["--folder", str(tmp_path)]) == 0
    for name in EXPECTED:
        assert (tmp_path / "api" / f"{name}.api.json").read_text() == api_path(name).read_text()
    assert main(["--folder", str(tmp_path), "--check"]) == 0


def test_examples_load_only_the_bundled_inputs(input_files):
    """The files the examples' LoadImage / LoadVideo nodes name are the ones a fresh ComfyUI gets."""
    assert input_files == {"dandelion_meadow.jpg", "grass_clip.mp4"}
    loaded = {node["inputs"][key] for name in EXPECTED for node in load(name)[1].values()
              for kind, key in (("LoadImage", "image"), ("LoadVideo", "file")) if node["class_type"] == kind}
    assert loaded == input_files


@pytest.mark.parametrize("name", EXPECTED)
def test_thumbnail_is_a_small_jpeg(name):
    path = WORKFLOW_DIR / f"{name}.jpg"
    assert path.stat().st_size <= MAX_THUMBNAIL_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    with Image.open(path) as thumbnail:
        assert thumbnail.format == "JPEG"
        assert min(thumbnail.size) >= 128, thumbnail.size


@pytest.mark.parametrize("name", EXPECTED)
def test_both_forms_are_valid(name, specs, value_checks, input_files):
    ui, api = load(name)
    assert problems_of(ui, api, specs, value_checks, input_files) == []
    types = {node["class_type"] for node in api.values()}
    assert REQUIRED_NODES[name] <= types, f"{name} lacks {REQUIRED_NODES[name] - types}"


def _node(form: dict, node_type: str) -> dict:
    """The first node of a type in a UI form (list of nodes) or an API form (dict of nodes)."""
    if "nodes" in form:
        return next(node for node in form["nodes"] if node["type"] == node_type)
    return next(node for node in form.values() if node["class_type"] == node_type)


def _ui_input(node: dict, name: str) -> dict:
    return next(entry for entry in node["inputs"] if entry["name"] == name)


def rename_ui_input(ui):
    _ui_input(_node(ui, "GIDRender"), "motion")["name"] = "motions"


def out_of_range_ui_widget(ui):
    _node(ui, "GIDMotionFromVideo")["widgets_values"][1] = 0  # num_frequencies, min 1


def bad_ui_combo(ui):
    _node(ui, "GIDMotionFromVideo")["widgets_values"][2] = "raft"  # method


def wrong_ui_widget_type(ui):
    _node(ui, "GIDMotionFromVideo")["widgets_values"][3] = "yes"  # remove_camera_motion (BOOLEAN)


def missing_ui_widget_value(ui):
    _node(ui, "GIDSpectralToMotion")["widgets_values"].pop()


def mismatched_ui_link(ui):
    """Feed GIDRender's motion input from LoadImage's IMAGE output."""
    link_id = _ui_input(_node(ui, "GIDRender"), "motion")["link"]
    link = next(link for link in ui["links"] if link[0] == link_id)
    link[1], link[2], link[5] = _node(ui, "LoadImage")["id"], 0, "IMAGE"


def unknown_ui_node(ui):
    _node(ui, "GIDRender")["type"] = "GIDRenderer"


def disconnected_ui_input(ui):
    _ui_input(_node(ui, "GIDRender"), "motion")["link"] = None


def missing_input_file(ui):
    _node(ui, "LoadImage")["widgets_values"][0] = "my_picture.png"


def broken_ui_drags(ui):
    _node(ui, "GIDModalSimulation")["widgets_values"][0] = '{"version": 1, "drags": [{"x": 2, "y": 0.5, "dx": 0.1, "dy": 0}]}'


def bad_seed_control(ui):
    _node(ui, "GIDSampleSpectralVolume")["widgets_values"][1] = "always"  # after seed: fixed/increment/...


def seed_out_of_range(ui):
    _node(ui, "GIDSampleSpectralVolume")["widgets_values"][0] = -1


UI_BREAKS = [
    ("motion_transfer", rename_ui_input, "input 'motions' is not declared by GIDRender"),
    ("motion_transfer", out_of_range_ui_widget, "num_frequencies = 0 is below its minimum 1"),
    ("motion_transfer", bad_ui_combo, "method = 'raft' is not one of its choices"),
    ("motion_transfer", wrong_ui_widget_type, "remove_camera_motion = 'yes' must be true or false"),
    ("motion_transfer", missing_ui_widget_value, "widgets_values has 3 values but GIDSpectralToMotion has 4"),
    ("motion_transfer", mismatched_ui_link, "(IMAGE) to GIDRender.motion (GID_MOTION)"),
    ("motion_transfer", unknown_ui_node, "unknown node type 'GIDRenderer'"),
    ("motion_transfer", disconnected_ui_input, "required input motion (GID_MOTION) is not connected"),
    ("motion_transfer", missing_input_file, "'my_picture.png' is not one of the example input files"),
    ("interactive_poke_from_video", broken_ui_drags, "GIDModalSimulation.drags does not parse"),
    ("image_to_loop", bad_seed_control, "GIDSampleSpectralVolume.seed control = 'always'"),
    ("image_to_loop", seed_out_of_range, "seed = -1 is below its minimum 0"),
]


@pytest.mark.parametrize(("name", "breaks", "expected"), UI_BREAKS, ids=[b.__name__ for _, b, _ in UI_BREAKS])
def test_broken_ui_copy_is_caught(name, breaks, expected, specs, value_checks, input_files):
    ui, _ = load(name)
    broken = copy.deepcopy(ui)
    breaks(broken)
    problems = problems_of(broken, None, specs, value_checks, input_files)
    assert any(expected in problem for problem in problems), problems
    assert problems_of(ui, None, specs, value_checks, input_files) == []  # the original is untouched and sound


def test_broken_vhs_widget_dict_is_caught(specs, value_checks, input_files):
    ui, _ = load("image_to_loop_vhs")
    broken = copy.deepcopy(ui)
    saved = _node(broken, "VHS_VideoCombine")["widgets_values"]
    saved["framerate"] = saved.pop("frame_rate")
    problems = problems_of(broken, None, specs, value_checks, input_files)
    assert any("'framerate', which is not a widget of VHS_VideoCombine" in p for p in problems), problems
    assert any("lacks 'frame_rate'" in p for p in problems), problems


def rename_api_input(api):
    inputs = _node(api, "GIDRender")["inputs"]
    inputs["motions"] = inputs.pop("motion")


def out_of_range_api_widget(api):
    _node(api, "GIDSpectralToMotion")["inputs"]["gain"] = 50.0  # max 20


def mismatched_api_link(api):
    picture_id = next(i for i, node in api.items() if node["class_type"] == "LoadImage")
    _node(api, "GIDRender")["inputs"]["motion"] = [picture_id, 0]


def unknown_api_node(api):
    _node(api, "GIDSpectralToMotion")["class_type"] = "GIDSpectralToMotions"


def api_socket_given_a_value(api):
    _node(api, "GIDRender")["inputs"]["motion"] = 1.0


def api_link_to_missing_slot(api):
    _node(api, "GIDRender")["inputs"]["motion"][1] = 5


def orphan_api_node(api):
    api["99"] = {"class_type": "GIDSpectralToMotion", "inputs": dict(_node(api, "GIDSpectralToMotion")["inputs"])}


API_BREAKS = [
    (rename_api_input, "input 'motions' is not declared by GIDRender"),
    (rename_api_input, "required input motion is missing"),
    (out_of_range_api_widget, "gain = 50.0 is above its maximum 20.0"),
    (mismatched_api_link, "motion (GID_MOTION) is linked to LoadImage output 0 of type IMAGE"),
    (unknown_api_node, "unknown node type 'GIDSpectralToMotions'"),
    (api_socket_given_a_value, "socket input motion (GID_MOTION) must be a link"),
    (api_link_to_missing_slot, "links output slot 5 of GIDSpectralToMotion"),
    (orphan_api_node, "node 99 (GIDSpectralToMotion) feeds no output node"),
]


@pytest.mark.parametrize(("breaks", "expected"), API_BREAKS, ids=[f"{b.__name__}-{i}" for i, (b, _) in enumerate(API_BREAKS)])
def test_broken_api_copy_is_caught(breaks, expected, specs, value_checks, input_files):
    _, api = load("motion_transfer")
    broken = copy.deepcopy(api)
    breaks(broken)
    problems = problems_of(None, broken, specs, value_checks, input_files)
    assert any(expected in problem for problem in problems), problems
    assert problems_of(None, api, specs, value_checks, input_files) == []


@pytest.mark.parametrize("name", EXPECTED)
def test_layout_fits_a_1600x900_window_at_100_percent(name, specs):
    """On screen, no overlaps, nodes inside their groups, no link behind a node (tools/workflow_layout.py)."""
    ui, _ = load(name)
    assert check_layout(ui, specs) == []


def zoomed_out(ui):
    ui["extra"]["ds"]["scale"] = 0.8


def node_off_screen(ui):
    _node(ui, "SaveVideo")["pos"][0] += 400


def nodes_overlap(ui):
    _node(ui, "GIDRender")["pos"] = list(_node(ui, "GIDSpectralToMotion")["pos"])


def node_out_of_its_group(ui):
    _node(ui, "GIDLoopGuidance")["pos"][1] += 60  # its bottom below the group's


def node_saved_too_small(ui):
    _node(ui, "GIDSampleSpectralVolume")["size"][1] = 120


def link_behind_a_node(ui):
    """Put the motion loader right in the path of the picture's wire to the sampler."""
    picture, sampler = _node(ui, "LoadImage"), _node(ui, "GIDSampleSpectralVolume")
    loader = _node(ui, "GIDLoadMotionModel")
    loader["pos"] = [(picture["pos"][0] + picture["size"][0] + sampler["pos"][0]) / 2 - loader["size"][0] / 2,
                     sampler["pos"][1] - 30]


LAYOUT_BREAKS = [
    (zoomed_out, "has scale 0.8: save it at 100% zoom"),
    (node_off_screen, "(SaveVideo) is off screen"),
    (nodes_overlap, "overlap"),
    (node_out_of_its_group, "(GIDLoopGuidance) sticks out of its group 'Motion'"),
    (node_saved_too_small, "(GIDSampleSpectralVolume) is saved 120 px tall, the frontend draws it at least 238"),
    (link_behind_a_node, "(LoadImage) -> node 4 (GIDSampleSpectralVolume)) passes behind node 2 (GIDLoadMotionModel)"),
]


@pytest.mark.parametrize(("breaks", "expected"), LAYOUT_BREAKS, ids=[b.__name__ for b, _ in LAYOUT_BREAKS])
def test_broken_layout_is_caught(breaks, expected, specs):
    ui, _ = load("image_to_loop")
    broken = copy.deepcopy(ui)
    breaks(broken)
    problems = check_layout(broken, specs)
    assert any(expected in problem for problem in problems), problems
