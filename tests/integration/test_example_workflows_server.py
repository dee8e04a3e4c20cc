"""The example workflows in a real ComfyUI 0.3.64 server (with VideoHelperSuite 1.7.9), over HTTP.

- The descriptions of ComfyUI's and VideoHelperSuite's nodes in tools/workflow_nodes.py (what the
  fast test validates the workflows against) match this server's /object_info.
- The pack, loaded by a fresh server, has put the examples' picture and clip into its input
  folder and created models/gid.
- Each runnable example's API form (example_workflows/api/<name>.api.json) is POSTed to /prompt
  with those files in the server's input folder, and only its frame counts
  lowered (edited in memory; the shipped files keep their real sizes). Every video it saves is
  decoded and checked: frame count, size, frame rate, the loop seam for loops (on the rendered
  frames, saved losslessly beside the video: see check_loop), and that a poke moves the picture
  and settles.
- Workflows that sample motion with the motion model run with the bundled model of
  gid_models/weights/ (few steps: the sampler works at about the model's training size, 256x160,
  whatever the picture size, so the step count sets the cost) and get the same checks, loop seam
  included. When the bundled model's files are missing (a user deleted them), that test is
  skipped with the reason and their wiring runs instead with an untrained tiny model file put
  into the server's models/gid folder: each must produce a video of the right length, size and
  rate (the motion itself is noise then).
- The UI forms in the frontends, and the pack's widgets there: test_frontends_server.py.
"""

from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest

from gid_models.video_io import read_video
from tools.make_example_workflows import NEEDS_MOTION_MODEL, WORKFLOWS, api_path, example_inputs, ui_path
from tools.workflow_nodes import HOST_INPUT_TYPES, VHS_FORMAT_WIDGETS, host_spec, parse_input

from .comfyui_server import ComfyUIServer, PromptResult

pytestmark = pytest.mark.integration
LOGGER = logging.getLogger(__name__)

PICTURE_SIZE = (512, 288)  # (width, height) of the bundled dandelion_meadow.jpg and grass_clip.mp4
CLIP_FRAMES = 32  # frames of the clip measured (the clip runs at 24 fps; K = 16 needs 32)
MOTION_FRAMES = 64  # frames of GIDSpectralToMotion's output: 64 per 5 s period, so one step between
# frames stays well below the frame-0-to-T/2 change (at 32, v2's faster bins made a step half of it)
POKE_FRAMES = 48  # long enough for the drag (held 15 frames) and the poke at frame 45
# Inputs lowered before POSTing, per node type: {input: value}.
SMALL = {
    "GIDMotionFromVideo": {"max_frames": CLIP_FRAMES},
    "GIDSpectralToMotion": {"frames": MOTION_FRAMES},
    "GIDModalSimulation": {"frames": POKE_FRAMES},
    "GIDSampleSpectralVolume": {"steps": 4},
}
LOOPS = {"image_to_loop", "image_to_loop_vhs"}
UNTRAINED_MODEL = "gid_motion_untrained_tiny.safetensors"
LOSSLESS_PREFIX = "gid_test/rendered"  # SaveImage's prefix for the rendered frames of loops


def motion_model_available() -> bool:
    from gid_models.networks.motion_model import MotionModel

    return MotionModel.bundled_available()


def small_graph(name: str) -> dict:
    """The shipped API form with SMALL applied (only to inputs that hold values, never links)."""
    graph = copy.deepcopy(json.loads(api_path(name).read_text()))
    for node in graph.values():
        for key, value in SMALL.get(node["class_type"], {}).items():
            if key in node["inputs"] and not isinstance(node["inputs"][key], list):
                node["inputs"][key] = value
    for node in graph.values():  # a loop of fewer frames must still span one period of the sampled motion
        source = graph.get(str(node["inputs"].get("spectral_volume", [None])[0]))
        if node["class_type"] == "GIDSpectralToMotion" and source and source["class_type"] == "GIDSampleSpectralVolume":
            period_s = source["inputs"]["num_frames"] / source["inputs"]["fps"]
            node["inputs"]["fps"] = node["inputs"]["frames"] / period_s
    return graph


def saved_files(server: ComfyUIServer, graph: dict, result: PromptResult) -> list:
    """Paths of every file the graph's output nodes reported; asserts each exists."""
    paths = []
    for node_id, node in graph.items():
        reported = result.history["outputs"].get(node_id, {})
        for entries in reported.values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and "filename" in entry and entry.get("type") == "output":
                    path = server.output_dir / entry.get("subfolder", "") / entry["filename"]
                    assert path.is_file(), f"{node['class_type']} reported {path}, which does not exist"
                    paths.append(path)
    return paths


def decode(path) -> tuple[np.ndarray, float]:
    """(frames (T, H, W, 3) float 0..1, frames/s) of a video file."""
    import av  # ComfyUI's requirement: imported here so that collecting tests never needs it

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return np.stack(frames).astype(np.float32) / 255.0, fps


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


@pytest.fixture(scope="module")
def bundled_inputs(pack) -> dict:
    """{file name: bundled file} of what the examples load (gid_models/assets/)."""
    return example_inputs(pack)


@pytest.fixture(scope="module")
def server_inputs(comfyui_server, bundled_inputs):
    """The bundled picture and clip in the server's input folder, under the names the workflows
    use: the pack put them there when the fresh server loaded it (nothing is copied by hand)."""
    missing = [name for name in bundled_inputs if not (comfyui_server.input_dir / name).is_file()]
    assert not missing, f"the pack did not put {missing} into {comfyui_server.input_dir} at start-up"
    return comfyui_server.input_dir


def test_fresh_install_has_the_example_inputs_and_the_model_folder(comfyui_server, bundled_inputs):
    """Opening an example from the template browser and pressing Run needs no file copied by hand."""
    assert sorted(bundled_inputs) == ["dandelion_meadow.jpg", "grass_clip.mp4"]
    for name, source in bundled_inputs.items():
        assert (comfyui_server.input_dir / name).read_bytes() == source.read_bytes(), name
    assert (comfyui_server.work_dir / "models" / "gid").is_dir()


@pytest.fixture(scope="module")
def untrained_model(comfyui_server):
    """A tiny untrained motion model in the server's models/gid folder (for wiring runs only)."""
    import torch
    from gid_models.networks.motion_model import MotionModel

    torch.manual_seed(0)
    folder = comfyui_server.work_dir / "models" / "gid"
    folder.mkdir(parents=True, exist_ok=True)
    MotionModel.create("tiny", sample_size=(32, 56)).save_file(folder / UNTRAINED_MODEL)
    return UNTRAINED_MODEL


def test_host_node_descriptions_match_the_server(object_info):
    """tools/workflow_nodes.py describes ComfyUI's and VHS's nodes as this server serves them."""
    for node_type in HOST_INPUT_TYPES:
        assert node_type in object_info, f"{node_type} is not served"
        served, described = object_info[node_type], host_spec(node_type)
        assert served["display_name"] == described.display_name, node_type
        assert served["output"] == [kind for _, kind in described.outputs], node_type
        assert bool(served.get("output_node")) == described.output_node, node_type
        served_inputs = [parse_input(name, declaration, section == "optional")
                         for section in ("required", "optional")
                         for name, declaration in served["input"].get(section, {}).items()]  # fmt: skip
        assert [i.name for i in served_inputs] == [i.name for i in described.inputs], node_type
        for served_input, declared in zip(served_inputs, described.inputs):
            where = f"{node_type}.{declared.name}"
            assert (served_input.kind, served_input.optional) == (declared.kind, declared.optional), where
            for key in ("default", "min", "max", "image_upload", "video_upload", "control_after_generate"):
                assert served_input.options.get(key) == declared.options.get(key), (where, key)
            if declared.choices:  # file lists (empty here) depend on the input folder
                # VideoHelperSuite lists its formats in directory order (os.scandir): compare as sets
                assert sorted(served_input.choices) == sorted(declared.choices), where
    served_formats = object_info["VHS_VideoCombine"]["input"]["required"]["format"]
    for video_format, widgets in VHS_FORMAT_WIDGETS.items():
        served_widgets = {entry[0]: entry for entry in served_formats[1]["formats"][video_format]}
        for name, declaration in widgets.items():
            served_widget = parse_input(name, tuple(served_widgets[name][1:]), True)
            described = parse_input(name, declaration, True)
            assert (served_widget.kind, served_widget.choices) == (described.kind, described.choices), name
            assert served_widget.options.get("default") == described.options.get("default"), name


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_example_workflow_runs(name, comfyui_server, server_inputs, bundled_inputs):
    if name in NEEDS_MOTION_MODEL and not motion_model_available():
        pytest.skip(f"!!! {name} samples motion with the bundled motion model, whose files are missing from "
                    "gid_models/weights/ (GIDLoadMotionModel would stop with 'missing'); its wiring runs with "
                    "an untrained tiny model instead")
    picture = read_picture(bundled_inputs["dandelion_meadow.jpg"])
    if name in LOOPS:
        frames, fps, rendered = run_and_decode(comfyui_server, name, with_lossless_frames(small_graph(name)))
        check_loop(name, frames, fps, picture, rendered)
        return
    frames, fps, _ = run_and_decode(comfyui_server, name, small_graph(name))
    if name == "loop_a_video":  # one period of the clip's motion (32 frames here) on its first frame
        clip_first = read_video(str(bundled_inputs["grass_clip.mp4"]), max_frames=1)[0][0] / np.float32(255.0)
        check_video_loop(name, frames, clip_first)
        assert fps == pytest.approx(24.0, abs=0.01), "the loop should keep the clip's frame rate"
    elif name == "motion_transfer":
        check_transfer(frames, fps, picture)
    else:
        check_poke(name, frames, fps)


@pytest.mark.parametrize("name", sorted(NEEDS_MOTION_MODEL))
def test_motion_model_workflow_runs_with_an_untrained_model(name, comfyui_server, server_inputs, untrained_model):
    """Without the bundled model: the graph runs end to end and writes a video of the right length,
    size and rate."""
    if motion_model_available():
        pytest.skip(f"{name} runs with the bundled motion model in test_example_workflow_runs")
    graph = small_graph(name)
    loader = next(node for node in graph.values() if node["class_type"] == "GIDLoadMotionModel")
    loader["inputs"]["model_name"] = untrained_model
    frames, fps, _ = run_and_decode(comfyui_server, name, graph)
    if name in LOOPS:
        assert len(frames) == MOTION_FRAMES and fps == pytest.approx(MOTION_FRAMES / 5.0, abs=0.01), (len(frames), fps)
    elif name == "motion_transfer":
        assert len(frames) == MOTION_FRAMES and fps == pytest.approx(30.0, abs=0.01), (len(frames), fps)
    else:
        assert len(frames) == POKE_FRAMES and fps == pytest.approx(30.0, abs=0.01), (len(frames), fps)


def with_lossless_frames(graph: dict) -> dict:
    """The graph with ComfyUI's SaveImage added on GIDRender's frames (PNG: lossless), beside the
    workflow's own video output."""
    graph = copy.deepcopy(graph)
    render = next(key for key, node in graph.items() if node["class_type"] == "GIDRender")
    graph[str(max(int(key) for key in graph) + 1)] = {
        "class_type": "SaveImage", "inputs": {"images": [render, 0], "filename_prefix": LOSSLESS_PREFIX},
    }
    return graph


def run_and_decode(server: ComfyUIServer, name: str, graph: dict) -> tuple[np.ndarray, float, np.ndarray | None]:
    """POST the graph, wait for it, and decode the one video it saves (checked to be picture-sized).
    Returns (frames, frames/s, the frames SaveImage wrote as PNG files in order, or None when the
    graph has no SaveImage)."""
    result = server.run_prompt(graph, timeout=400)
    LOGGER.info("%s ran in %.1f s", name, result.seconds)
    paths = saved_files(server, graph, result)
    images = sorted(path for path in paths if path.suffix == ".png")
    videos = [path for path in paths if path.suffix != ".png"]
    assert len(videos) == 1, f"{name} should save one video, saved {videos}"
    frames, fps = decode(videos[0])
    height, width = frames.shape[1:3]
    assert (width, height) == PICTURE_SIZE, (name, width, height)
    rendered = np.stack([read_picture(path) for path in images]) if images else None
    return frames, fps, rendered


def read_picture(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def check_moving_picture(name: str, frames: np.ndarray, picture: np.ndarray) -> float:
    """The video is the picture, moving: its frames stay close to the picture and change over time.
    Returns the mean absolute change between frame 0 and the middle frame (0..1 units)."""
    drift = max(mean_abs(frame, picture) for frame in frames)
    across = mean_abs(frames[len(frames) // 2], frames[0])
    LOGGER.info("%s: largest mean |frame - picture| %.4f, mean |frame T/2 - frame 0| %.4f", name, drift, across)
    assert drift < 0.05, f"{name}: a frame differs from the picture by {drift:.4f} on average"
    assert across > 0.002, f"{name}: the picture does not move (frame 0 vs T/2 {across:.4f})"
    return across


def check_transfer(frames: np.ndarray, fps: float, picture: np.ndarray) -> None:
    """The dandelion picture moved like the clip, at the sampled motion's frame rate (30 fps)."""
    assert len(frames) == MOTION_FRAMES, len(frames)
    assert fps == pytest.approx(30.0, abs=0.01), "the motion should keep the sampled volume's frame rate"
    check_moving_picture("motion_transfer", frames, picture)


def check_loop(name: str, frames: np.ndarray, fps: float, picture: np.ndarray, rendered: np.ndarray) -> None:
    """A seamless loop: the last frame is much closer to the first than the middle frame is, and the
    step from the last frame back to the first is no larger than the steps on either side of it.

    frames: the decoded video; rendered: the same frames as GIDRender gave them to the video node
    (saved losslessly by with_lossless_frames). The seam is measured on the rendered frames, what
    the pack makes: h264 (SaveVideo's codec) changes every frame by about 0.007-0.009 mean
    absolute on this picture, more than a guided loop's step at the wrap (about 0.004), and by a
    different amount on the first (key) frame than on the last, so on decoded frames the wrap
    would measure the codec (measured with the shipped model, 4 steps: rendered wrap 0.0038
    against steps 0.0039 and 0.0040 beside it; after h264 0.0088 against 0.0036 and 0.0047)."""
    assert len(frames) == len(rendered) == MOTION_FRAMES, (name, len(frames), len(rendered))
    check_moving_picture(name, frames, picture)
    codec_error = max(mean_abs(video, lossless) for video, lossless in zip(frames, rendered))
    LOGGER.info("%s: largest mean |video frame - rendered frame| %.4f", name, codec_error)
    assert codec_error < 0.02, f"{name}: the video's frames are not the rendered ones ({codec_error:.4f})"
    frames = rendered
    across = check_moving_picture(name, frames, picture)
    seam = mean_abs(frames[-1], frames[0])
    LOGGER.info("%s: mean |last frame - frame 0| %.4f", name, seam)
    assert seam < 0.5 * across, f"{name}: loop seam {seam:.4f} vs frame 0 to T/2 {across:.4f}"
    steps = [mean_abs(frames[t + 1], frames[t]) for t in range(len(frames) - 1)]
    # the steps beside the seam, not the median: the motion's speed varies over the period
    beside = max(steps[0], steps[-1])
    LOGGER.info("%s: steps beside the seam %.4f, %.4f; median %.4f", name, steps[-1], steps[0], np.median(steps))
    assert seam <= 1.5 * beside, f"{name}: loop seam {seam:.4f} vs the steps beside it {steps[-1]:.4f}, {steps[0]:.4f}"


def check_video_loop(name: str, frames: np.ndarray, picture: np.ndarray) -> None:
    """A clip looped (drift removed): it moves, and the step from the last frame back to the first
    is an ordinary step, within 1.5x the largest step between consecutive frames. (A clip's
    broadband sway has no half-period landmark for check_loop's frame-0-to-T/2 comparison. The
    decoded frames carry the encoder's noise, about as large as this clip's sub-pixel steps, hence
    the margin; test_flow checks the motion itself: its wrap step is an ordinary step.)"""
    assert len(frames) == MOTION_FRAMES, (name, len(frames))
    check_moving_picture(name, frames, picture)
    steps = [mean_abs(frames[t + 1], frames[t]) for t in range(len(frames) - 1)]
    seam = mean_abs(frames[-1], frames[0])
    LOGGER.info("%s: wrap step %.4f, consecutive steps median %.4f max %.4f", name, seam, np.median(steps), max(steps))
    assert seam <= 1.5 * max(steps), f"{name}: loop seam {seam:.4f} vs the largest step between frames {max(steps):.4f}"


def check_poke(name: str, frames: np.ndarray, fps: float) -> None:
    """Still before the drag, moved while it is held, swinging after the poke."""
    assert len(frames) == POKE_FRAMES, (name, len(frames))
    assert fps == pytest.approx(30.0, abs=0.01)
    held = mean_abs(frames[14], frames[0])
    noise = mean_abs(frames[1], frames[0])
    assert held > 3 * noise + 1e-3, f"{name}: the held drag does not move the picture ({held:.4f} vs {noise:.4f})"
    after_poke = mean_abs(frames[-1], frames[44])
    LOGGER.info("%s: |f14 - f0| %.4f, |f1 - f0| %.4f, |f47 - f44| %.4f", name, held, noise, after_poke)
    assert after_poke > noise, f"{name}: the poke at frame 45 does not move the picture ({after_poke:.4f})"
