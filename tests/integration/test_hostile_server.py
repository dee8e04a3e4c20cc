"""Hostile input to the pack's nodes inside a real ComfyUI server (issue 18).

Each bad graph must end in an execution error that names the node and the fix (what the UI
shows), the server must keep running without growing towards the OOM killer, and the next,
valid prompt must run. One server serves the session (see conftest.py).
"""

from __future__ import annotations

import time
import uuid

import pytest

from .comfyui_server import ComfyUIServer, with_default_inputs

pytestmark = pytest.mark.integration

FRAMES = 40  # enough for K=16 frequencies
DEEP_DRAGS = '{"version": 1, "drags": ' + "[" * 20_000 + "]" * 20_000 + "}"
GREY = 0x808080


def _node(object_info: dict, class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": with_default_inputs(object_info, class_type, inputs)}


def _run(server: ComfyUIServer, graph: dict, timeout: float = 180.0) -> dict:
    """The /history entry of a finished prompt (success or error)."""
    status, reply = server.post_json("/prompt", {"prompt": graph, "client_id": uuid.uuid4().hex})
    assert status == 200 and "prompt_id" in reply, f"the graph was rejected before running: {reply}"
    prompt_id = reply["prompt_id"]
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        assert server.process.poll() is None, "ComfyUI died:\n" + server.log_tail()
        entry = server.get_json(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        time.sleep(0.5)
    server.post_json("/interrupt", {})
    pytest.fail(f"prompt {prompt_id} ran past {timeout:.0f} s:\n" + server.log_tail())


def _execution_error(entry: dict) -> dict:
    assert entry["status"]["status_str"] == "error", entry["status"]
    errors = [data for kind, data in entry["status"]["messages"] if kind == "execution_error"]
    assert errors, entry["status"]["messages"]
    return errors[0]


def _resident_bytes(server: ComfyUIServer) -> int:
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for the server process")


def _extract_graph(object_info: dict, width: int, height: int, frames: int = FRAMES) -> dict:
    return {
        "1": _node(object_info, "EmptyImage", width=width, height=height, batch_size=frames, color=GREY),
        "2": _node(object_info, "GIDMotionFromVideo", frames=["1", 0], fps=24.0, num_frequencies=16, max_frames=0),
    }


def _assert_alive_and_next_prompt_runs(server: ComfyUIServer, object_info: dict) -> None:
    assert server.process.poll() is None
    server.get_json("/system_stats")
    graph = _extract_graph(object_info, 96, 64)
    graph["3"] = _node(object_info, "GIDSpectralToMotion", spectral_volume=["2", 0], frames=12, fps=24.0)
    graph["6"] = _node(object_info, "EmptyImage", width=96, height=64, batch_size=1, color=GREY)
    graph["4"] = _node(object_info, "GIDRender", picture=["6", 0], motion=["3", 0])
    graph["5"] = _node(object_info, "SaveImage", images=["4", 0], filename_prefix=f"gid_hostile/{uuid.uuid4().hex}")
    entry = _run(server, graph)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert len(entry["outputs"]["5"]["images"]) == 12


def test_frames_too_small_for_optical_flow(comfyui_server, object_info):
    graph = _extract_graph(object_info, 8, 8)
    graph["3"] = _node(object_info, "GIDPreviewSpectralVolume", spectral_volume=["2", 0])
    graph["4"] = _node(object_info, "SaveImage", images=["3", 0], filename_prefix="gid_hostile/never")
    error = _execution_error(_run(comfyui_server, graph))
    assert error["node_type"] == "GIDMotionFromVideo"
    assert "[GIDMotionFromVideo] frames is 8x8 pixels" in error["exception_message"]
    assert "at least 16" in error["exception_message"]
    _assert_alive_and_next_prompt_runs(comfyui_server, object_info)


def test_deeply_nested_drags_json(comfyui_server, object_info):
    graph = _extract_graph(object_info, 96, 64)
    graph["3"] = _node(object_info, "GIDModalSimulation", spectral_volume=["2", 0], drags=DEEP_DRAGS)
    graph["4"] = _node(object_info, "GIDPreviewMotion", motion=["3", 0])
    graph["5"] = _node(object_info, "SaveImage", images=["4", 0], filename_prefix="gid_hostile/never")
    error = _execution_error(_run(comfyui_server, graph))
    assert error["node_type"] == "GIDModalSimulation"
    assert "nested too deeply" in error["exception_message"]
    _assert_alive_and_next_prompt_runs(comfyui_server, object_info)


def test_a_huge_picture_is_refused_before_the_server_grows(comfyui_server, object_info):
    """8192x8192 into GIDSampleSpectralVolume: refused with the estimate, and the server grows by
    little more than the 805 MB picture EmptyImage made (not by gigabytes of volumes)."""
    before = _resident_bytes(comfyui_server)
    graph = {
        "1": _node(object_info, "EmptyImage", width=8192, height=8192, batch_size=1, color=GREY),
        "2": _node(object_info, "GIDLoadMotionModel"),
        "3": _node(object_info, "GIDSampleSpectralVolume", image=["1", 0], model=["2", 0], steps=1000),
        "4": _node(object_info, "GIDPreviewSpectralVolume", spectral_volume=["3", 0]),
        "5": _node(object_info, "SaveImage", images=["4", 0], filename_prefix="gid_hostile/never"),
    }
    error = _execution_error(_run(comfyui_server, graph))
    assert error["node_type"] == "GIDSampleSpectralVolume"
    message = error["exception_message"]
    assert message.startswith("[GIDSampleSpectralVolume] ran out of memory") and "GiB" in message
    assert "scale the image down" in message
    assert _resident_bytes(comfyui_server) - before < 2 * (1 << 30)
    _assert_alive_and_next_prompt_runs(comfyui_server, object_info)
