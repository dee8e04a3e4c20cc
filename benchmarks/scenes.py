"""Scene engine cost: CPU-seconds per example (frame-0 render + attribute pass + motion) and disk.

Renders seeds FIRST..FIRST+N-1 at 256x160 (16 samples, denoised, one Blender thread) one after
another through the same code as `gid scenes` and prints, per example and on average: the CPU
seconds of the Blender subprocess and of our own process (composing, volume), the wall time,
and the disk the shard takes per example, with the figure for 2,000 examples.
The issue's targets: <= 20 CPU-s per example; 2,000 examples <= 5 GB.

Run: python benchmarks/scenes.py [N] [FIRST]      (needs bpy, the `scenes` extra)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
# A script run as `python benchmarks/scenes.py`: make the repository importable.
sys.path.insert(0, str(REPO_ROOT))

from gid_models.train.scenes.engine import SceneConfig, make_example  # noqa: E402
from gid_models.train.scenes.render import require_blender_python  # noqa: E402
from gid_models.train.shards import ShardWriter  # noqa: E402


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    torch.set_num_threads(1)
    config = SceneConfig()
    python = require_blender_python()
    cpu, wall = [], []
    with tempfile.TemporaryDirectory() as out:
        with ShardWriter(out, examples_per_shard=count) as writer:
            for seed in range(first, first + count):
                began = time.perf_counter()
                example = make_example(seed, config, python)
                wall.append(time.perf_counter() - began)
                cpu.append(example.record["cpu_s"])
                writer.add(torch.from_numpy(example.image).permute(2, 0, 1), example.coeffs,
                           num_frames=config.num_frames, fps=config.fps, source=f"scene-{seed}", start_frame=0)
                print(f"seed {seed}: {example.record['shot']:9s} {cpu[-1]:6.1f} CPU-s  {wall[-1]:6.1f} s wall  "
                      f"moving {example.record['moving_pixel_ratio']:.2f}", flush=True)
        size = sum(p.stat().st_size for p in Path(out).glob("shard-*.safetensors")) / count
    print(f"\nmean {sum(cpu) / count:.1f} CPU-s per example (target <= 20), {sum(wall) / count:.1f} s wall "
          f"at {config.width}x{config.height}, {config.samples} samples")
    print(f"disk {size / 1e6:.2f} MB per example -> {2000 * size / 1e9:.1f} GB for 2,000 (target <= 5 GB)")


if __name__ == "__main__":
    main()
