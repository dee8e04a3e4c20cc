"""Screenshots of the example workflows as a user first sees them in a real ComfyUI.

    python -m tools.workflow_screenshots                 # docs/workflows/<name>.jpg for every example
    python -m tools.workflow_screenshots --sizes sizes.json image_to_loop

Boots the vendored ComfyUI (tests/integration/comfyui_server.py: ../shared/vendor, this pack and
VideoHelperSuite as custom nodes), opens its frontend in headless Chromium (tools/frontend_check.py)
in a 1600x900 viewport at device scale 1, loads each UI form the way opening it does
(app.loadGraphData with the saved view, extra.ds: 100% zoom) and saves a JPEG of the page,
shrunk to 1200x675. `--sizes` also
writes what the frontend made of each node ({name: {node id: {"pos", "size"}}}, graph units), to
compare with the sizes the layout check (tools/workflow_layout.py) assumes; the tool exits 1 when
the frontend moved or resized a node from what the file saves.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.integration.comfyui_server import (
    COMFYUI_TARBALL,
    PACK_FOLDER_NAME,
    REPO_ROOT,
    VHS_FOLDER_NAME,
    VHS_TARBALL,
    ComfyUIServer,
    unpack,
)

from .frontend_check import Chromium, find_chromium, wait_for_app
from .workflow_layout import VIEWPORT

LOGGER = logging.getLogger("workflow_screenshots")

WORKFLOW_DIR = REPO_ROOT / "example_workflows"
OUT_DIR = REPO_ROOT / "docs" / "workflows"
JPEG_QUALITY = 45
SHOT_SCALE = 0.75  # the 1600x900 window saved as 1200x675: legible, and ~50 KB a picture
# Settings of a user who has opened ComfyUI before: no first-run template dialog over the canvas.
SETTINGS = {"Comfy.TutorialCompleted": True}
# Opens one workflow (substituted for WORKFLOW, in a tab named NAME, as the template browser does)
# with its saved view, then reports the nodes.
OPEN_AND_MEASURE = """(async () => {
  const app = window.comfyAPI.app.app;
  await app.loadGraphData(structuredClone(WORKFLOW), true, true, NAME,
                          {showMissingNodesDialog: false, showMissingModelsDialog: false});
  await new Promise((done) => setTimeout(done, 2500));  // previews load, DOM widgets settle
  app.canvas.setDirty(true, true);
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const nodes = {};
  for (const node of app.graph.nodes) nodes[node.id] = {pos: [...node.pos], size: [...node.size]};
  return JSON.stringify({nodes, ds: {scale: app.canvas.ds.scale, offset: [...app.canvas.ds.offset]}});
})()"""


def start_server(work_dir: Path) -> ComfyUIServer:
    """The vendored ComfyUI with this pack and VideoHelperSuite, answering HTTP."""
    for tarball in (COMFYUI_TARBALL, VHS_TARBALL):
        if not tarball.is_file():
            raise FileNotFoundError(f"{tarball} is missing (the repository's sibling folder shared/vendor/)")
    comfyui_dir, vhs_dir = unpack(COMFYUI_TARBALL), unpack(VHS_TARBALL)
    server = ComfyUIServer(comfyui_dir, {PACK_FOLDER_NAME: REPO_ROOT, VHS_FOLDER_NAME: vhs_dir}, work_dir)
    server.start()
    try:
        for key, value in SETTINGS.items():
            request = urllib.request.Request(f"{server.url}/settings/{key}", data=json.dumps(value).encode(),
                                             method="POST")
            urllib.request.urlopen(request, timeout=30).close()
    except Exception:
        server.stop()
        raise
    return server


def screenshot(browser: Chromium, workflow: dict, path: Path) -> dict:
    """Open `workflow`, save the viewport as a JPEG at `path`; the frontend's node positions and sizes."""
    script = OPEN_AND_MEASURE.replace("NAME", json.dumps(path.stem)).replace("WORKFLOW", json.dumps(workflow))
    report = json.loads(browser.evaluate(script, timeout=120))
    width, height = VIEWPORT
    shot = browser.send("Page.captureScreenshot", {
        "format": "jpeg", "quality": JPEG_QUALITY,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": SHOT_SCALE}}, timeout=60)
    path.write_bytes(base64.b64decode(shot["data"]))
    return report


def resized_nodes(workflow: dict, report: dict) -> list[str]:
    """Nodes the frontend moved or drew at another size than the file saves (then the layout check's
    sizes, tools/workflow_layout.py, are out of date)."""
    changed = []
    for node in workflow["nodes"]:
        shown = report["nodes"].get(str(node["id"]))
        if shown and any(abs(a - b) > 1 for a, b in zip(shown["pos"] + shown["size"], node["pos"] + node["size"])):
            changed.append(f"node {node['id']} ({node['type']}) saved at {node['pos']} size {node['size']}, "
                           f"shown at {[round(v) for v in shown['pos']]} size {[round(v) for v in shown['size']]}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="example names (default: every example_workflows/*.json)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"folder of the JPEGs (default {OUT_DIR})")
    parser.add_argument("--sizes", type=Path, help="also write the frontend's node positions and sizes here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    chromium = find_chromium()
    if chromium is None:
        LOGGER.error("no chromium found (apt-get install chromium)")
        return 2
    names = args.names or sorted(path.stem for path in WORKFLOW_DIR.glob("*.json"))
    args.out.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="gid-screenshots-"))
    server = start_server(work_dir)
    browser = Chromium(chromium, work_dir / "chromium.log")
    measured, failed = {}, 0
    try:
        browser.open(server.url)
        width, height = VIEWPORT
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        LOGGER.info("frontend ready after %.1f s", wait_for_app(browser))
        time.sleep(2)  # extensions finish registering their widgets
        for name in names:
            path = args.out / f"{name}.jpg"
            workflow = json.loads((WORKFLOW_DIR / f"{name}.json").read_text())
            measured[name] = screenshot(browser, workflow, path)
            LOGGER.info("wrote %s (%d bytes)", path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT)
                        else path, path.stat().st_size)
            for change in resized_nodes(workflow, measured[name]):
                LOGGER.error("%s: the frontend moved or resized %s", name, change)
                failed += 1
    finally:
        browser.close()
        server.stop()
    if args.sizes:
        args.sizes.write_text(json.dumps(measured, indent=1))
    shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
