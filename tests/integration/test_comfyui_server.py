"""The pack inside a real ComfyUI 0.3.64 server (with VideoHelperSuite 1.7.9), over HTTP.

Checks that the pack imports cleanly, that /object_info shows every node with the inputs and
outputs it declares, and that small video -> motion -> preview graphs run end to end through
/prompt and save the expected images. One server serves the whole session (see conftest.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .comfyui_server import PACK_FOLDER_NAME, REPO_ROOT, ComfyUIServer, log_problems, with_default_inputs

pytestmark = pytest.mark.integration

# Nodes of ComfyUI and VideoHelperSuite that the example workflows and these tests rely on.
HOST_NODES = [
    "LoadImage", "SaveImage", "SaveAnimatedWEBP", "CreateVideo", "SaveVideo", "LoadVideo",
    "GetVideoComponents", "VHS_LoadVideo", "VHS_VideoCombine", "VHS_VideoInfoLoaded",
]  # fmt: skip

BUNDLED_CLIP = REPO_ROOT / "gid_models" / "assets" / "grass_clip.mp4"
# Small sizes keep each graph to a few seconds on two CPU cores.
WIDTH, HEIGHT = 96, 64
LOADED_FRAMES = 24
NUM_FREQUENCIES = 4
MOTION_FRAMES = 12


def synthetic_clip(path: Path, num_frames: int = LOADED_FRAMES, fps: float = 24.0) -> Path:
    """A 96x64 mp4 with two regions oscillating at known frequencies (tests/synthetic_clips.py)."""
    from gid_models.video_io import write_video
    from synthetic_clips import two_region_clip

    write_video(path, two_region_clip(num_frames=num_frames).frames, fps=fps)
    return path


def saved_image_sizes(server: ComfyUIServer, entries: list[dict]) -> list[tuple[int, int]]:
    """(width, height) of each file a save node reported; asserts every file exists."""
    from PIL import Image  # ComfyUI's requirement; imported here so collection never needs it

    sizes = []
    for entry in entries:
        assert entry["type"] == "output", entry
        path = server.output_dir / entry["subfolder"] / entry["filename"]
        assert path.is_file(), f"{path} was reported by the server but does not exist"
        with Image.open(path) as picture:
            sizes.append(picture.size)
    return sizes


def test_pack_imports_cleanly(comfyui_server):
    log = comfyui_server.startup_log
    pack_dir = str(comfyui_server.work_dir / "custom_nodes" / PACK_FOLDER_NAME)
    import_lines = [line for line in log.splitlines() if line.rstrip().endswith(pack_dir) or pack_dir + " " in line]
    assert import_lines, f"ComfyUI did not list {pack_dir} among its custom nodes.\n{comfyui_server.log_tail()}"
    assert not any("IMPORT FAILED" in line for line in import_lines), "\n".join(import_lines)
    problems = log_problems(log, pack_markers=(pack_dir, f"{REPO_ROOT}/", "[GID"))
    assert not problems, "ComfyUI's start-up log shows problems:\n" + "\n\n".join(problems)


def test_host_nodes_are_available(object_info):
    missing = [name for name in HOST_NODES if name not in object_info]
    assert not missing, f"ComfyUI/VideoHelperSuite nodes missing from /object_info: {missing}"


def test_object_info_matches_every_node(pack, object_info):
    assert pack.NODE_CLASS_MAPPINGS, "the pack registers no nodes"
    for node_id, node_class in pack.NODE_CLASS_MAPPINGS.items():
        assert node_id in object_info, f"{node_id} is not in /object_info"
        served = object_info[node_id]
        declared = node_class.INPUT_TYPES()
        for section in ("required", "optional"):
            assert list(served["input"].get(section, {})) == list(declared.get(section, {})), (node_id, section)
        assert served["output"] == list(node_class.RETURN_TYPES), node_id
        assert served["output_name"] == list(node_class.RETURN_NAMES), node_id
        assert served["category"] == node_class.CATEGORY, node_id
        assert served["display_name"] == pack.NODE_DISPLAY_NAME_MAPPINGS[node_id], node_id
        assert served["python_module"].endswith(PACK_FOLDER_NAME), (node_id, served["python_module"])


def test_frontend_extension_is_served(comfyui_server):
    """ComfyUI serves every .js file under the pack's WEB_DIRECTORY (the frontend imports them all)."""
    web_dir = REPO_ROOT / "web"
    ours = sorted(f"/extensions/{PACK_FOLDER_NAME}/{path.relative_to(web_dir).as_posix()}" for path in web_dir.rglob("*.js"))
    listed = sorted(url for url in comfyui_server.get_json("/extensions") if url.startswith(f"/extensions/{PACK_FOLDER_NAME}/"))
    assert listed == ours
    for url in ours:
        body = comfyui_server.get_bytes(url)
        assert body == (web_dir / url.split("/", 3)[3]).read_bytes(), url


def test_video_to_motion_preview_graph(comfyui_server, object_info):
    """VHS_LoadVideo -> GIDMotionFromVideo -> GIDSpectralToMotion -> GIDPreviewMotion -> SaveImage."""
    clip_name = "gid_test_clip.mp4"
    if BUNDLED_CLIP.is_file():
        shutil.copyfile(BUNDLED_CLIP, comfyui_server.input_dir / clip_name)
    else:
        synthetic_clip(comfyui_server.input_dir / clip_name)

    def node(class_type, **inputs):
        return {"class_type": class_type, "inputs": with_default_inputs(object_info, class_type, inputs)}

    graph = {
        "1": node("VHS_LoadVideo", video=clip_name, custom_width=WIDTH, custom_height=HEIGHT,
                  frame_load_cap=LOADED_FRAMES, format="None"),
        "2": node("VHS_VideoInfoLoaded", video_info=["1", 3]),
        "3": node("GIDMotionFromVideo", frames=["1", 0], fps=["2", 0], num_frequencies=NUM_FREQUENCIES, max_frames=0),
        "4": node("GIDSpectralToMotion", spectral_volume=["3", 0], frames=MOTION_FRAMES, fps=["2", 0]),
        "5": node("GIDPreviewMotion", motion=["4", 0], row=0.5),
        "6": node("SaveImage", images=["5", 0], filename_prefix="gid_it/flow"),
        "7": node("SaveImage", images=["5", 1], filename_prefix="gid_it/xt"),
    }  # fmt: skip
    graph["5"]["inputs"]["picture"] = ["1", 0]
    result = comfyui_server.run_prompt(graph, timeout=300)

    flow_sizes = saved_image_sizes(comfyui_server, result.saved_images("6"))
    assert flow_sizes == [(WIDTH, HEIGHT)] * MOTION_FRAMES
    xt_sizes = saved_image_sizes(comfyui_server, result.saved_images("7"))
    assert len(xt_sizes) == 1 and xt_sizes[0][0] == WIDTH
    assert xt_sizes[0][1] in (MOTION_FRAMES, 2 * MOTION_FRAMES + 2), xt_sizes


def test_core_video_nodes_to_spectral_preview_graph(comfyui_server, object_info):
    """LoadVideo -> GetVideoComponents -> GIDMotionFromVideo -> GIDPreviewSpectralVolume -> SaveImage."""
    clip_name = "gid_synthetic_clip.mp4"
    synthetic_clip(comfyui_server.input_dir / clip_name)

    def node(class_type, **inputs):
        return {"class_type": class_type, "inputs": with_default_inputs(object_info, class_type, inputs)}

    graph = {
        "1": node("LoadVideo", file=clip_name),
        "2": node("GetVideoComponents", video=["1", 0]),
        "3": node("GIDMotionFromVideo", frames=["2", 0], fps=["2", 2], num_frequencies=NUM_FREQUENCIES, max_frames=0),
        "4": node("GIDPreviewSpectralVolume", spectral_volume=["3", 0]),
        "5": node("SaveImage", images=["4", 0], filename_prefix="gid_it/amplitude"),
        "6": node("SaveImage", images=["4", 1], filename_prefix="gid_it/phase"),
    }  # fmt: skip
    result = comfyui_server.run_prompt(graph, timeout=300)

    amplitude = saved_image_sizes(comfyui_server, result.saved_images("5"))
    phase = saved_image_sizes(comfyui_server, result.saved_images("6"))
    assert len(amplitude) == 1 and len(phase) == 1, (amplitude, phase)
    assert amplitude == phase
    # a grid of K tiles, each at least the clip's size
    assert amplitude[0][0] * amplitude[0][1] >= NUM_FREQUENCIES * WIDTH * HEIGHT, amplitude
