"""The live poke preview in a real browser: headless Chromium runs tests/browser/preview_check.html.

nodes/interactive.py writes the basis and picture for a textured 512x288 picture; the page
fetches them through a /view route like ComfyUI's, and for the WebGL2 and the 2D-canvas renderer
checks that a synthetic drag changes the pixels and that after release they oscillate and return
towards the rest image, and that the take is recorded as the drag made.

Needs Debian's chromium (`apt-get install -y chromium`; .ci/run installs it). Without it the test
is skipped with a loud reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from urllib.parse import urlencode

import pytest
import torch

from conftest import REPO_ROOT

LOGGER = logging.getLogger(__name__)
PARAMS = {"damping": 0.1, "stiffness_scale": 1.0, "mass_scale": 1.0, "frames": 60, "fps": 30.0,
          "hold_frames": 15, "integrator": "exact"}


def _harness():
    spec = importlib.util.spec_from_file_location("gid_browser_harness", REPO_ROOT / "tests" / "browser" / "harness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def textured_picture(height: int = 288, width: int = 512) -> torch.Tensor:
    """IMAGE (1, H, W, 3): 16-pixel checkerboard over colour ramps, so any warp changes pixels."""
    y = torch.arange(height).view(-1, 1).float()
    x = torch.arange(width).view(1, -1).float()
    checker = ((torch.div(x, 16, rounding_mode="floor") + torch.div(y, 16, rounding_mode="floor")) % 2) * 0.5
    red, green = x / width * 0.5 + checker, y / height * 0.5 + checker
    blue = torch.sin(x / 9.0) * torch.cos(y / 7.0) * 0.25 + 0.5
    return torch.stack([red, green, blue.expand(height, width)], dim=-1).clamp(0, 1).unsqueeze(0)


def smooth_volume(spectral, generator, bins: int = 16, height: int = 144, width: int = 256):
    coarse = torch.randn(1, bins * 4, 3, 5, generator=generator)
    coeffs = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)
    return spectral.SpectralVolume(coeffs.reshape(1, bins, 4, height, width), num_frames=150, fps=30.0)


def write_preview_files(pack_models, generator) -> tuple[dict, object]:
    """The node's UI entry for a textured picture, and the temp folder the files are in."""
    interactive = importlib.import_module("comfyui_gid.nodes.interactive")
    comfy_adapter = importlib.import_module("comfyui_gid.nodes._comfy")
    ui = interactive.preview_payload(textured_picture(), smooth_volume(pack_models.spectral, generator), PARAMS)
    return ui["gid_live_preview"][0], comfy_adapter.temp_directory()


def _chromium(harness) -> str:
    chromium = harness.find_chromium()
    if chromium is None:
        pytest.skip(
            "!!!!! CHROMIUM IS NOT INSTALLED: the live-preview browser check did NOT run. "
            "Install Debian's chromium (apt-get install -y chromium; .ci/run does this as root). !!!!!"
        )
    return chromium


def test_live_preview_moves_and_springs_back_in_chromium(pack, pack_models, comfy_shim, generator):
    harness = _harness()
    chromium = _chromium(harness)
    entry, temp_dir = write_preview_files(pack_models, generator)
    query = urlencode({"basis": entry["basis"], "picture": entry["picture"], "subfolder": entry["subfolder"]})
    with harness.serve(REPO_ROOT, temp_dir) as (base, reports, received):
        status, payload = harness.run_page(
            chromium, f"{base}/tests/browser/preview_check.html?{query}", received, reports
        )
    report = json.loads(payload)
    LOGGER.info("browser report: %s", report)
    assert status == "PASS", report
    assert report["modes"] == 8 and report["grid"] == [256, 144]
    canvas = report["renderers"]["canvas"]
    assert canvas["size"] == [512, 288]
    assert canvas["held_diff"] > 1 and canvas["settled_diff"] < 0.25 * canvas["held_diff"]
    # Chromium's software WebGL2 (SwiftShader) is present even with --disable-gpu.
    assert "webgl2" in report["renderers"], report.get("note")


def test_comfyui_extension_records_a_pointer_drag_into_the_drags_widget(pack, pack_models, comfy_shim, generator):
    """web/js/gid_live_preview.js on a stand-in node (ComfyUI's app/api modules stubbed, see
    tests/browser/comfy_stub/): onExecuted loads the files, pointer events drag the picture,
    Record writes the take into the drags widget, Play animates it. Runs in real time (about 8 s):
    the animation loop is requestAnimationFrame, which headless virtual time hardly runs."""
    harness = _harness()
    chromium = _chromium(harness)
    entry, temp_dir = write_preview_files(pack_models, generator)
    query = urlencode({"basis": entry["basis"], "picture": entry["picture"], "subfolder": entry["subfolder"]})
    with harness.serve(REPO_ROOT, temp_dir) as (base, reports, received):
        status, payload = harness.run_page(
            chromium, f"{base}/tests/browser/extension_check.html?{query}", received, reports
        )
    report = json.loads(payload)
    LOGGER.info("extension report: %s", report)
    assert status == "PASS", report
    take = json.loads(report["recorded"])["drags"][0]
    assert take["kind"] == "drag" and take["start"] == 0 and take["dx"] == pytest.approx(0.04, abs=0.01)
