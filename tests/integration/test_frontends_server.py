"""The example workflows and the pack's widgets in two ComfyUI frontends, in headless Chromium.

Each test runs twice, once per frontend (the test ids say which):
- `vendored`: the frontend the vendored ComfyUI 0.3.64 pins (comfyui-frontend-package 1.27.10),
  nodes drawn on the LiteGraph canvas;
- `newest`: the newest comfyui-frontend-package from PyPI (`bash .ci/run` fetches and unpacks it
  and names its static folder in GID_NEWEST_FRONTEND), served by a second ComfyUI 0.3.64 with
  `--front-end-root`, with the Vue node renderer ("Nodes 2.0", setting Comfy.VueNodes.Enabled)
  switched on before the page loads. Without that folder the `newest` tests are skipped with the
  reason (they fail under CI=true).

Checked in each: every UI-form example loads with no node missing or red and the frontend queues
exactly the shipped API form; and on interactive_poke, the GIDModalSimulation node's widgets work
with real mouse input (DevTools mouse events at the widgets' places on the page): Clear and then a
drag on GID.DragPoints leave one arrow in `drags`, the node runs with it (queued from the page,
steps and frames lowered), GID.LivePreview shows the picture and a held drag moves it,
Record writes the take into `drags`, and queueing again renders exactly that take. The node keeps
its size through the run (it stays inside its group) and neither widget's status text is cut off.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from tools.frontend_check import Chromium, find_chromium, load_workflow, node_problems, wait_for_app
from tools.make_example_workflows import NEEDS_MOTION_MODEL, WORKFLOWS, api_path, ui_path

from .comfyui_server import PACK_FOLDER_NAME, REPO_ROOT, VHS_FOLDER_NAME, ComfyUIServer, cache_dir
from .conftest import skip_or_fail

pytestmark = pytest.mark.integration
LOGGER = logging.getLogger(__name__)

FRONTENDS = ("vendored", "newest")
PAGE_HELPERS = REPO_ROOT / "tests" / "browser" / "comfyui_widgets_check.js"
WINDOW = (1280, 800)  # CSS pixels of the page (the node is shown at 100% near its top left)
# Stored before the page loads: no first-run template browser over the canvas (it would take the
# mouse). The newest frontend also gets Comfy.VueNodes.Enabled.
SETTINGS = {"Comfy.TutorialCompleted": True}
INTERACTIVE = "interactive_poke"
# The interaction runs' lowered inputs: the sampler's steps as in test_example_workflows_server.SMALL
# (its motion has modes under the preview's grab point), and few frames to simulate and render (a
# drag is held 15 frames). ComfyUI's default cache drops what the last prompt did not use, so the sampler runs
# once per frontend; the Record run re-runs only the simulation and the render.
SMALL_WIDGETS = {"GIDModalSimulation": {"frames": 16}, "GIDSampleSpectralVolume": {"steps": 4}}


def newest_frontend_root() -> Path | None:
    """The static folder of the newest frontend: GID_NEWEST_FRONTEND, else the newest one that
    .ci/run unpacked under the cache (frontend/<version>/static), else None."""
    named = os.environ.get("GID_NEWEST_FRONTEND")
    if named:
        return Path(named) if (Path(named) / "index.html").is_file() else None
    unpacked = [path.parent for path in (cache_dir() / "frontend").glob("*/static/index.html")]
    return max(unpacked, key=lambda folder: [int(part) for part in re.findall(r"\d+", folder.parent.name)], default=None)


def store_settings(server: ComfyUIServer, settings: dict) -> None:
    """Store frontend settings for the server's (single) user, as the settings dialog would."""
    for setting_id, value in settings.items():
        request = urllib.request.Request(f"{server.url}/settings/{setting_id}", data=json.dumps(value).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, (setting_id, response.status)


class FrontendServer(ComfyUIServer):
    """ComfyUI serving the frontend in `front_end_root` instead of its pinned package."""

    def __init__(self, *args, front_end_root: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.front_end_root = front_end_root

    def command(self) -> list[str]:
        return [*super().command(), "--front-end-root", str(self.front_end_root)]



@pytest.fixture(scope="module")
def newest_server(comfyui_sources, tmp_path_factory):
    root = newest_frontend_root()
    if root is None:
        skip_or_fail("the newest comfyui-frontend-package is not unpacked (GID_NEWEST_FRONTEND unset or "
                     f"without index.html, nothing under {cache_dir() / 'frontend'}): `bash .ci/run` fetches it")
    comfyui_dir, vhs_dir = comfyui_sources
    server = FrontendServer(comfyui_dir, custom_nodes={PACK_FOLDER_NAME: REPO_ROOT, VHS_FOLDER_NAME: vhs_dir},
                            work_dir=tmp_path_factory.mktemp("comfyui-newest-frontend"), front_end_root=root)  # fmt: skip
    try:
        server.start()
        store_settings(server, {"Comfy.VueNodes.Enabled": True})
        yield server
    finally:
        server.stop()


class FrontendPage:
    """One frontend in Chromium: the browser, the server behind it, and which frontend it is."""

    def __init__(self, kind: str, server: ComfyUIServer, browser: Chromium):
        self.kind, self.server, self.browser = kind, server, browser

    def call(self, method: str, *args, timeout: float = 60.0):
        arguments = ", ".join(json.dumps(arg) for arg in args)
        return self.browser.evaluate(f"window.gidCheck.{method}({arguments})", timeout=timeout)

    def mouse(self, kind: str, x: float, y: float, pressed: bool) -> None:
        event = {"type": kind, "x": x, "y": y, "button": "left" if kind != "mouseMoved" or pressed else "none",
                 "buttons": 1 if pressed else 0, "clickCount": 1 if kind != "mouseMoved" else 0}  # fmt: skip
        self.browser.send("Input.dispatchMouseEvent", event)

    def press_and_pull(self, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
        """Press at start and move to end in steps (still pressed: call release)."""
        self.mouse("mouseMoved", *start, pressed=False)
        self.mouse("mousePressed", *start, pressed=True)
        for step in range(1, steps + 1):
            t = step / steps
            self.mouse("mouseMoved", start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]), pressed=True)
            time.sleep(0.03)

    def release(self, at: tuple[float, float]) -> None:
        self.mouse("mouseReleased", *at, pressed=False)

    def screenshot(self, name: str) -> Path:
        import base64

        path = self.server.work_dir / f"{self.kind}-{name}.png"
        path.write_bytes(base64.b64decode(self.browser.send("Page.captureScreenshot", {"format": "png"})["data"]))
        return path


@pytest.fixture(scope="module", params=FRONTENDS)
def frontend(request, comfyui_server):
    """The page of one frontend (module-scoped per frontend: the `newest` server boots once)."""
    chromium = find_chromium()
    if chromium is None:
        skip_or_fail("chromium is not installed (`bash .ci/run` installs Debian's chromium when run as root)")
    server = comfyui_server if request.param == "vendored" else request.getfixturevalue("newest_server")
    store_settings(server, SETTINGS)
    browser = Chromium(chromium, server.work_dir / f"chromium-{request.param}.log")
    try:
        width, height = WINDOW
        browser.open(server.url)
        browser.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                            "deviceScaleFactor": 1, "mobile": False})  # fmt: skip
        seconds = wait_for_app(browser)
        page = FrontendPage(request.param, server, browser)
        browser.evaluate(PAGE_HELPERS.read_text())
        version = browser.evaluate("window.__COMFYUI_FRONTEND_VERSION__ ?? null")
        LOGGER.info("%s frontend %s ready in Chromium after %.1f s", request.param, version, seconds)
        yield page
    finally:
        browser.close()


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_ui_form_loads_in_the_frontend(name, frontend):
    """No node shows as missing or red, and the frontend queues exactly the shipped API form."""
    workflow = json.loads(ui_path(name).read_text())
    report = load_workflow(frontend.browser, workflow)
    assert node_problems(report, workflow) == []
    assert report["output"] == json.loads(api_path(name).read_text())


def test_frontend_check_sees_a_missing_node(frontend):
    workflow = json.loads(ui_path("motion_transfer").read_text())
    next(node for node in workflow["nodes"] if node["type"] == "GIDRender")["type"] = "GIDRenderer"
    problems = node_problems(load_workflow(frontend.browser, workflow), workflow)
    assert any("(GIDRenderer) is missing in the frontend" in problem for problem in problems), problems


def wait_for_prompt(server: ComfyUIServer, prompt_id: str, timeout: float = 400.0) -> dict:
    """The /history entry of a prompt once it succeeded (raises with the messages otherwise)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        entry = server.get_json(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            assert entry["status"].get("status_str") == "success", json.dumps(entry["status"], indent=1)[:4000]
            return entry
        time.sleep(0.5)
    raise AssertionError(f"prompt {prompt_id} did not finish within {timeout:.0f} s\n{server.log_tail(30)}")


def centre(rect: dict, fx: float = 0.5, fy: float = 0.5) -> tuple[float, float]:
    return rect["x"] + fx * rect["width"], rect["y"] + fy * rect["height"]


def test_poke_widgets_drag_preview_record_and_queue(frontend):
    """interactive_poke, driven with the mouse as a user would (see the module docstring)."""
    if INTERACTIVE in NEEDS_MOTION_MODEL:
        from gid_models.networks.motion_model import MotionModel

        if not MotionModel.bundled_available():
            pytest.skip(f"!!! {INTERACTIVE} samples motion with the bundled motion model, whose files are missing")
    workflow = json.loads(ui_path(INTERACTIVE).read_text())
    assert node_problems(load_workflow(frontend.browser, workflow), workflow) == []
    frontend.call("setWidgets", SMALL_WIDGETS)
    before = frontend.call("show")
    LOGGER.info("%s before the run: %s", frontend.kind, before)
    frontend.screenshot("before-run")
    assert before["vueNodes"] == (frontend.kind == "newest"), "the Vue node renderer should be on only in the newest"
    assert before["widgetsConnected"] == [True, True], "the node's DOM widgets are not in the page"
    assert before["statusCutOff"] == [False, False], f"status text cut off: {before['statusTexts']}"
    assert len(json.loads(before["drags"])["drags"]) == 2, before["drags"]

    # Clear, then a new arrow on the drag widget: press on the picture and pull.
    assert json.loads(frontend.call("clickButton", "gid_drag_points", "Clear"))["drags"] == []
    start = centre(before["dragCanvas"], 0.5, 0.6)
    frontend.press_and_pull(start, (start[0] + 30, start[1] - 10))
    frontend.release((start[0] + 30, start[1] - 10))
    drawn = json.loads(frontend.call("show")["drags"])["drags"]
    assert len(drawn) == 1, f"dragging on the drag widget did not add one arrow: {drawn}"
    assert drawn[-1]["kind"] == "drag" and drawn[-1]["dx"] > 0.02 and drawn[-1]["dy"] < 0, drawn[-1]

    began = time.monotonic()
    entry = wait_for_prompt(frontend.server, frontend.call("queue"))
    LOGGER.info("%s: the first run took %.1f s", frontend.kind, time.monotonic() - began)
    assert frontend.call("waitForPreview", 60_000, timeout=90), "the live preview did not appear after the run"
    after = frontend.call("show")
    LOGGER.info("%s after the run: %s", frontend.kind, after)
    frontend.screenshot("after-run")
    assert after["nodeSize"] == pytest.approx(before["nodeSize"], abs=1), "the node changed size after the run"
    assert after["shownBottom"] == pytest.approx(before["shownBottom"], abs=1), "the Vue node changed size after the run"
    assert after["group"] is not None, "the node should sit in a group"
    gx, gy, gw, gh = after["group"]
    (x, y), (w, h) = after["nodePos"], after["nodeSize"]
    bottom = max(y + h, after["shownBottom"] or 0)
    where = f"the node (x {x}, y {y}, w {w}, bottom {bottom}) is not inside its group {after['group']}"
    assert x + w <= gx + gw and bottom <= gy + gh, where
    assert after["statusCutOff"] == [False, False], f"status text cut off: {after['statusTexts']}"
    queued = entry["prompt"][2]
    modal_id = next(node_id for node_id, node in queued.items() if node["class_type"] == "GIDModalSimulation")
    assert json.loads(queued[modal_id]["inputs"]["drags"])["drags"] == drawn, "the queued drags are not the drawn ones"

    # The live preview: a held drag moves the picture; released, it swings; Record stores the take.
    frames_at_rest = frontend.call("rememberRest")
    grab = centre(after["previewCanvas"], 0.5, 0.45)
    pull = (grab[0] + 0.04 * after["previewCanvas"]["width"], grab[1] + 0.03 * after["previewCanvas"]["height"])
    frontend.press_and_pull(grab, pull)
    time.sleep(0.3)
    held = frontend.call("previewDiff")
    frontend.release(pull)
    time.sleep(1.0)
    swinging = frontend.call("framesDrawn") - frames_at_rest
    LOGGER.info("%s: held drag changes the preview by %.2f (0..255), %d frames drawn", frontend.kind, held, swinging)
    assert held > 1.0, f"a held drag did not move the live preview ({held:.3f})"
    assert swinging > 10, f"the released preview did not animate ({swinging} frames drawn in 1 s)"
    recorded = frontend.call("record")
    LOGGER.info("%s: Record gives %s (%s)", frontend.kind, recorded["drags"], recorded["status"])
    take = json.loads(recorded["drags"])["drags"]
    assert len(take) == 1 and take[0]["kind"] == "drag" and take[0]["dx"] > 0.02, recorded

    began = time.monotonic()
    rerun = wait_for_prompt(frontend.server, frontend.call("queue"))
    LOGGER.info("%s: the run of the recorded take took %.1f s", frontend.kind, time.monotonic() - began)
    inputs = rerun["prompt"][2][modal_id]["inputs"]
    assert json.loads(inputs["drags"])["drags"] == take, "the queued drags are not the recorded take"
    videos = [item for output in rerun["outputs"].values() for items in output.values() if isinstance(items, list)
              for item in items if isinstance(item, dict) and str(item.get("filename", "")).endswith(".mp4")]  # fmt: skip
    assert videos, f"the re-queued workflow saved no video: {rerun['outputs']}"
