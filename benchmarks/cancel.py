"""Seconds from a ComfyUI Cancel to the stop of a loop-guided GIDSampleSpectralVolume run.

The node runs as ComfyUI runs it (a worker thread, under torch.inference_mode, the model loaded
by GIDLoadMotionModel and moved through ComfyUI's model management) with the shipped `cpu` model
on the bundled picture (sampled at the model's 256x160), 50 steps, cfg 1.75 and GIDLoopGuidance's
defaults (u = 200, 2 self-recurrence passes, exact gradient): the slowest steps a user meets. The
main thread presses Cancel the way ComfyUI's /interrupt route does,
`comfy.model_management.interrupt_current_processing()`, after each of the --after delays (one
fresh run per delay, so the press lands in different parts of a step: the denoiser's forward,
the loss's decode, the backward), and prints the time until the node raised ComfyUI's
InterruptProcessingException. It also prints how long each pass took: without checks inside a
step a Cancel waited for the step's end, up to two of those.

ComfyUI is the vendored 0.3.64 (../shared/vendor, unpacked as the integration tests do), run
on the CPU; --shim uses tests/comfy_shim instead (same interrupt flag semantics, no ComfyUI).

With `--jobs render` (or `--jobs sample render`) the same for GIDRender with the bundled neural
renderer on the bundled picture (512x288, 150 frames of smooth random motion).

    python benchmarks/cancel.py [--after 10 30 50] [--jobs sample render] [--threads 2] [--shim]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from a checkout

PICTURE = REPO_ROOT / "gid_models" / "assets" / "dandelion_meadow.jpg"
PACK_NAME = "comfyui_gid"


def import_comfy(shim: bool):
    """comfy.model_management and comfy.utils: the vendored ComfyUI's on the CPU, or the test shim's."""
    if shim:
        sys.path.insert(0, str(REPO_ROOT / "tests" / "comfy_shim"))
        label = "tests/comfy_shim"
    else:
        from tests.integration.comfyui_server import COMFYUI_TARBALL, unpack

        comfyui_dir = unpack(COMFYUI_TARBALL)
        sys.path.insert(0, str(comfyui_dir))
        cli_args = importlib.import_module("comfy.cli_args")
        cli_args.args.cpu = True  # as `python main.py --cpu`
        label = f"vendored {COMFYUI_TARBALL.name.removesuffix('.tar.gz')} (--cpu)"
    return importlib.import_module("comfy.model_management"), importlib.import_module("comfy.utils"), label


def load_pack():
    """This repository as the custom-node package ComfyUI imports it as."""
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


class PassClock:
    """ComfyUI's progress hook (as the server sets it): the seconds each finished pass took."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self.last = time.perf_counter()

    def restart(self) -> None:
        self.last = time.perf_counter()

    def __call__(self, value, total, preview=None, **_) -> None:
        now = time.perf_counter()
        self.durations.append(now - self.last)
        self.last = now


def cancel_latency(management, job: Callable[[], None], after: float, clock: PassClock) -> float:
    """Run job (a node call) in a worker thread as ComfyUI's executor does, press Cancel `after`
    seconds later, return the seconds until the node stopped (raised ComfyUI's interrupt exception)."""
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            with torch.inference_mode():  # as ComfyUI's executor runs every node
                job()
            outcome["result"] = "finished"
        except management.InterruptProcessingException:
            outcome["result"] = "interrupted"
        outcome["stopped"] = time.perf_counter()

    management.interrupt_current_processing(False)
    worker = threading.Thread(target=work)
    clock.restart()
    worker.start()
    worker.join(timeout=after)
    pressed = time.perf_counter()
    management.interrupt_current_processing(True)
    worker.join()
    if outcome.get("result") != "interrupted":
        raise RuntimeError(f"the run {outcome.get('result', 'failed')} instead of stopping; see the log above")
    return float(outcome["stopped"]) - pressed


def sampling_job(pack, image: torch.Tensor) -> tuple[Callable[[], None], str]:
    nodes = pack.NODE_CLASS_MAPPINGS
    with torch.inference_mode():
        (model,) = nodes["GIDLoadMotionModel"]().load("bundled")
    (guidance,) = nodes["GIDLoopGuidance"]().build(200.0, 2, True)

    def job() -> None:
        nodes["GIDSampleSpectralVolume"]().sample(image, model, seed=0, steps=50, cfg=1.75, num_frames=150, fps=30.0,
                                                  guidance=guidance)

    return job, (f"GIDSampleSpectralVolume, shipped model (sampled at {model.sample_size[1]}x{model.sample_size[0]}), "
                 "50 steps, cfg 1.75, loop guidance u=200 r=2 exact gradient; a progress step is one guided pass")


def render_job(pack, image: torch.Tensor) -> tuple[Callable[[], None], str]:
    nodes = pack.NODE_CLASS_MAPPINGS
    spectral = importlib.import_module(f"{PACK_NAME}.gid_models.spectral")
    with torch.inference_mode():
        (renderer,) = nodes["GIDLoadRenderer"]().load("bundled")
    height, width = image.shape[1:3]
    smooth = torch.randn(1, 150, 2, height // 32, width // 32, generator=torch.Generator().manual_seed(0)) * 4
    motion = spectral.MotionTexture(torch.nn.functional.interpolate(smooth[0], size=(height // 4, width // 4),
                                                                    mode="bilinear")[None], fps=30.0)

    def job() -> None:
        nodes["GIDRender"]().render(image, motion, renderer=renderer)

    return job, "GIDRender, bundled neural renderer, 150 frames; a progress step is one chunk of frames"


JOBS = {"sample": sampling_job, "render": render_job}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--after", nargs="+", type=float, default=[10.0, 30.0, 50.0],
                        help="seconds after the start to press Cancel, one fresh run each")
    parser.add_argument("--jobs", nargs="+", choices=sorted(JOBS), default=["sample"], help="nodes to cancel")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the CI machine has 2 cores)")
    parser.add_argument("--shim", action="store_true", help="use tests/comfy_shim instead of the vendored ComfyUI")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    management, utils, label = import_comfy(args.shim)
    pack = load_pack()
    image = torch.from_numpy(np.asarray(Image.open(PICTURE).convert("RGB"), dtype=np.float32) / 255.0)[None]
    print(f"ComfyUI: {label}; CPU, {torch.get_num_threads()} torch threads; picture {PICTURE.name} "
          f"{image.shape[2]}x{image.shape[1]}", flush=True)
    for name in args.jobs:
        job, description = JOBS[name](pack, image)
        clock = PassClock()
        if hasattr(utils, "set_progress_bar_global_hook"):
            utils.set_progress_bar_global_hook(clock)
        print(description, flush=True)
        latencies = []
        for after in args.after:
            latency = cancel_latency(management, job, after, clock)
            latencies.append(latency)
            print(f"  Cancel pressed {after:5.1f} s after the start: stopped {latency:.2f} s later", flush=True)
        print(f"  cancel latency: max {max(latencies):.2f} s, mean {sum(latencies) / len(latencies):.2f} s "
              f"over {len(latencies)} presses")
        if clock.durations:
            print(f"  one progress step took {min(clock.durations):.1f}-{max(clock.durations):.1f} s here: "
                  "what a Cancel checked only between them would have waited", flush=True)


if __name__ == "__main__":
    main()
