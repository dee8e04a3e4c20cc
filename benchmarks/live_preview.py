"""Live poke preview: cost of the Python export and of one browser frame at 512x288.

Prints (1) the time nodes/interactive.py takes to write the compact basis + picture for a
256x144 spectral volume with 16 bins (8 modes kept), the basis file size, and (2) headless
Chromium's milliseconds per frame of simulation step + warp at 512x288 for the 2D-canvas (CPU)
path and for WebGL2 (SwiftShader, i.e. also the CPU, in headless Chromium; a real GPU is far
faster), timed in real time by tests/browser/preview_check.html?bench=N.

Run: python benchmarks/live_preview.py [frames]   (needs Debian's chromium)
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parent.parent
# A script run as `python benchmarks/live_preview.py`: make the repository and tests importable.
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

import torch  # noqa: E402

import conftest  # noqa: E402
from test_browser_preview import PARAMS, smooth_volume, textured_picture  # noqa: E402


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    conftest.load_pack()
    interactive = importlib.import_module("comfyui_gid.nodes.interactive")
    comfy_adapter = importlib.import_module("comfyui_gid.nodes._comfy")
    spectral = importlib.import_module("comfyui_gid.gid_models.spectral")
    volume = smooth_volume(spectral, torch.Generator().manual_seed(0))
    picture = textured_picture()
    params = {**PARAMS, "bench_run": time.time()}  # a fresh file name: time the write, not the cache
    start = time.perf_counter()
    entry = interactive.preview_payload(picture, volume, params)["gid_live_preview"][0]
    export_ms = (time.perf_counter() - start) * 1000
    folder = comfy_adapter.temp_directory() / entry["subfolder"]
    size_kb = (folder / entry["basis"]).stat().st_size / 1024
    print(f"python export (basis + picture): {export_ms:.0f} ms, basis file {size_kb:.0f} KiB, {entry['modes']} modes")

    spec = importlib.util.spec_from_file_location("gid_browser_harness", REPO_ROOT / "tests" / "browser" / "harness.py")
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    chromium = harness.find_chromium()
    if chromium is None:
        print("chromium not installed: browser figures skipped (apt-get install -y chromium)")
        return
    query = urlencode({"basis": entry["basis"], "picture": entry["picture"], "subfolder": entry["subfolder"],
                       "bench": frames})
    with harness.serve(REPO_ROOT, comfy_adapter.temp_directory()) as (base, reports, received):
        status, payload = harness.run_page(
            chromium, f"{base}/tests/browser/preview_check.html?{query}", received, reports
        )
    report = json.loads(payload)
    if status != "PASS":
        print(f"browser check failed: {report}")
        return
    for renderer, ms in report["ms_per_frame"].items():
        print(f"browser {renderer:7s} 512x288, {frames} frames: {ms:.2f} ms/frame = {1000 / ms:.0f} fps")


if __name__ == "__main__":
    main()
