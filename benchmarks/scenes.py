"""Scene engine cost: CPU-seconds per example (frame-0 render + attribute pass + motion) and disk.

Renders seeds FIRST..FIRST+N-1 at 256x160 (16 samples, denoised, one Blender thread) one after
another through the same code as `gid scenes` and prints, per example and on average: the CPU
seconds of the Blender subprocess and of our own process (composing, volume), the wall time,
and the disk per example: the compact record gid scenes keeps (scenes/*.npz), which training
reads, and the shard `gid scenes --pack` can add, with the figures for 2,000 examples.
The issue's targets: <= 20 CPU-s per example; 2,000 examples <= 5 GB.

Run: python benchmarks/scenes.py [N] [FIRST] [RECIPE]      (needs bpy, the `scenes` extra;
RECIPE defaults to the latest, as in `gid scenes`)
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

from gid_models.train.scenes.engine import SceneConfig, pack, record_path, write_record  # noqa: E402
from gid_models.train.scenes.render import require_blender_python  # noqa: E402
from gid_models.train.scenes.scenery import LATEST_RECIPE, RECIPES  # noqa: E402


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    recipe = int(sys.argv[3]) if len(sys.argv) > 3 else LATEST_RECIPE
    if recipe not in RECIPES:
        raise SystemExit(f"benchmarks/scenes.py: RECIPE must be one of {RECIPES}, got {recipe}.")
    torch.set_num_threads(1)
    config = SceneConfig(recipe=recipe)
    python = require_blender_python()
    cpu, wall = [], []
    with tempfile.TemporaryDirectory() as out:
        out = Path(out)
        for seed in range(first, first + count):
            began = time.perf_counter()
            record = write_record(out, seed, config, python)
            wall.append(time.perf_counter() - began)
            cpu.append(record["cpu_s"])
            print(f"seed {seed}: {record['shot']:9s} {cpu[-1]:6.1f} CPU-s  {wall[-1]:6.1f} s wall  "
                  f"moving {record['moving_pixel_ratio']:.2f}  record {record_path(out, seed).stat().st_size / 1e6:.2f} MB",
                  flush=True)
        size = sum(p.stat().st_size for p in (out / "scenes").glob("*.npz")) / count
        pack(out, config)
        shard_size = sum(p.stat().st_size for p in out.glob("*shards/shard-*.safetensors")) / count
    print(f"\nmean {sum(cpu) / count:.1f} CPU-s per example (target <= 20), {sum(wall) / count:.1f} s wall "
          f"at {config.width}x{config.height}, {config.samples} samples, recipe {config.recipe}")
    print(f"disk {size / 1e6:.2f} MB per example as records -> {2000 * size / 1e9:.1f} GB for 2,000 (target <= 5 GB); "
          f"as shards (gid scenes --pack, optional) {shard_size / 1e6:.2f} MB per example -> "
          f"{2000 * shard_size / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
