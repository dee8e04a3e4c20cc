"""Rendering speed and peak memory: pixel and neural renderers at 256x160, 512x288 and 1920x1080.

Run: python benchmarks/render.py [--threads N] [--repeats R] [--devices cpu,cuda] [--chunk FRAMES]

Every (renderer, size, device) runs in its own subprocess so that the CPU peak memory (peak RSS
growth over the idle process) belongs to that configuration alone; on CUDA the peak is
torch.cuda.max_memory_allocated. The motion is a smooth random oscillation of a few pixels at a
quarter of the resolution (what the motion model produces), resized by render_motion. fps counts
frames rendered into a buffer on the compute device; "to cpu" also copies them to the host (what
the ComfyUI node does). The neural renderer is the bundled one (gid_models/weights/) when it ships,
else an untrained one of the default size (the same network; its speed does not depend on its
weights); the last line says which. On the CPU render_motion keeps freed memory for its next
chunk (gid_models/heap.py), as it does wherever it is called from.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = ((256, 160), (512, 288), (1920, 1080))
RENDERERS = ("pixel", "neural")


def frames_to_render(renderer: str, device: str, width: int) -> int:
    if device == "cuda":
        return 150
    if renderer == "pixel":
        return 16 if width >= 1920 else 48
    return 2 if width >= 1920 else 8


def make_motion(width: int, height: int, frames: int, generator: torch.Generator):
    from gid_models.spectral import MotionTexture

    low_h, low_w = max(2, height // 4), max(2, width // 4)
    amplitude = 3.0 * width / 512 / 4  # ~3 px per unit of the field at 512 wide, in quarter-res pixels
    field = torch.nn.functional.interpolate(
        torch.randn(1, 4, max(2, low_h // 8), max(2, low_w // 8), generator=generator),
        size=(low_h, low_w), mode="bicubic", align_corners=False,
    )
    t = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1) * (2 * math.pi / 30.0)
    displacements = amplitude * (field[:, :2] * torch.cos(t) + field[:, 2:] * torch.sin(t))
    return MotionTexture(displacements[None].contiguous(), fps=30.0)


def neural_renderer():
    """The bundled neural renderer, or an untrained one of the default size when none ships."""
    from gid_models.rendering import NeuralRenderer

    return NeuralRenderer.from_bundled() if NeuralRenderer.bundled_available() else NeuralRenderer().eval()


def run_single(
    renderer_name: str, width: int, height: int, device_name: str, repeats: int, threads: int, chunk: int | None
) -> dict:
    from gid_models.rendering import render_motion

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    generator = torch.Generator().manual_seed(0)
    frames = frames_to_render(renderer_name, device_name, width)
    picture = torch.rand(1, 3, height, width, generator=generator).to(device)
    motion = make_motion(width, height, frames, generator).to(device)
    renderer = neural_renderer().to(device) if renderer_name == "neural" else None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def timed(output_device: torch.device) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        render_motion(picture, motion, renderer=renderer, output_device=output_device, chunk_size=chunk)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    timed(device)  # warm-up (allocator, cuDNN autotuning)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = [timed(device) for _ in range(repeats)]
    result = {
        "renderer": renderer_name,
        "size": f"{width}x{height}",
        "device": device_name,
        "frames": frames,
        "fps_best": frames / min(times),
        "fps_median": frames / statistics.median(times),
    }
    if device.type == "cuda":
        result["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["device_name"] = torch.cuda.get_device_name()
        result["fps_to_cpu"] = frames / min(timed(torch.device("cpu")) for _ in range(repeats))
    else:
        result["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline_rss) / 2**20
        result["threads"] = threads
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--renderers", default=",".join(RENDERERS))
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES))
    parser.add_argument("--chunk", type=int, default=0, help="frames per chunk (default 0: render_motion picks)")
    parser.add_argument("--single", nargs=4, metavar=("RENDERER", "WIDTH", "HEIGHT", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        renderer_name, width, height, device_name = args.single
        print(json.dumps(run_single(renderer_name, int(width), int(height), device_name, args.repeats, args.threads,
                                    args.chunk or None)))
        return
    header = (f"{'renderer':8} {'size':>10} {'device':6} {'frames':>6} {'fps best':>9} {'fps median':>10} "
              f"{'to cpu':>8} {'peak MB':>8}")
    print(header)
    print("-" * len(header))
    for device_name in args.devices.split(","):
        for renderer_name in args.renderers.split(","):
            for size in args.sizes.split(","):
                width, height = (int(v) for v in size.split("x"))
                command = [sys.executable, __file__, "--single", renderer_name, str(width), str(height), device_name,
                           "--repeats", str(args.repeats), "--threads", str(args.threads), "--chunk", str(args.chunk)]
                completed = subprocess.run(command, capture_output=True, text=True, check=False)
                if completed.returncode != 0:
                    print(f"{renderer_name:8} {size:>10} {device_name:6} failed: {completed.stderr.strip()[-300:]}")
                    continue
                r = json.loads(completed.stdout.strip().splitlines()[-1])
                to_cpu = f"{r['fps_to_cpu']:8.1f}" if "fps_to_cpu" in r else f"{'-':>8}"
                print(f"{r['renderer']:8} {r['size']:>10} {r['device']:6} {r['frames']:6d} {r['fps_best']:9.1f} "
                      f"{r['fps_median']:10.1f} {to_cpu} {r['peak_mb']:8.0f}", flush=True)
    from gid_models.rendering import NeuralRenderer

    gpu = f"; GPU: {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    weights = "bundled" if NeuralRenderer.bundled_available() else "untrained (none ships in gid_models/weights/)"
    print(f"CPU threads: {args.threads}{gpu}; neural renderer: {weights}")


if __name__ == "__main__":
    main()
