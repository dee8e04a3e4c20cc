"""`gid scenes` engine: many seeds -> rendered scenes with exact motion -> training shards.

Example i has seed `first_seed + i`. Examples are grouped in blocks of `examples_per_shard`; block b
becomes `shard-{b:05d}.safetensors` (the format `gid train` reads, see train/shards.py), written
whole by one worker process and renamed into place, so an interrupted run resumes by skipping the
blocks already on disk and parallel workers never touch the same file. Each finished block also
leaves `blocks/block-{b:05d}.json` (its scenes' log lines and spectrum sums); the run then pools
them into `spectrum.safetensors` and `scenes_log.jsonl` (one line per scene: what it holds, CPU
seconds, share of moving pixels, motion size).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ...spectral import MotionError
from ..shards import SPECTRUM_FILE, ShardWriter

LOGGER = logging.getLogger(__name__)
CONFIG_FILE = "scenes_config.json"
LOG_FILE = "scenes_log.jsonl"


@dataclass(frozen=True)
class SceneConfig:
    width: int = 256
    height: int = 160
    num_frames: int = 150
    fps: float = 30.0
    num_frequencies: int = 16
    samples: int = 16
    examples_per_shard: int = 8
    first_seed: int = 0


@dataclass
class Example:
    image: np.ndarray          # (H, W, 3) uint8
    coeffs: torch.Tensor       # (K, 4, H, W) float32 pixels
    record: dict               # the log line


def make_example(seed: int, config: SceneConfig, python: str | None = None) -> Example:
    """Compose, render and measure one scene (CPU: one Blender thread plus numpy)."""
    from .compose import compose
    from .motion import spectral_volume
    from .render import render

    began = time.process_time()
    scene = compose(seed)
    rendered = render(scene, config.width, config.height, config.samples, python)
    volume = spectral_volume(scene, rendered.attributes, config.num_frames, config.fps, config.num_frequencies)
    coeffs = volume.coeffs[0]
    amplitude = coeffs[1:].square().sum(dim=(0, 1)).sqrt()  # (H, W) px
    moving = rendered.attributes["part"] >= 0
    record = {**scene.description,
              "cpu_s": round(rendered.cpu_seconds + time.process_time() - began, 2),
              "moving_pixel_ratio": round(float(moving.mean()), 4),
              "motion_rms_px": round(float(amplitude.square().mean().sqrt()), 4),
              "motion_p99_px": round(float(torch.quantile(amplitude.flatten(), 0.99)), 4)}
    return Example(rendered.image, coeffs, json.loads(json.dumps(record, default=float)))


def write_block(out: Path, block: int, seeds: list[int], config: SceneConfig, python: str | None = None) -> list[dict]:
    """Render seeds into shard-{block}.safetensors (atomically) and blocks/block-{block}.json."""
    torch.set_num_threads(1)
    staging = out / f".staging-{block:05d}"
    shutil.rmtree(staging, ignore_errors=True)
    records = []
    with ShardWriter(staging, examples_per_shard=len(seeds)) as writer:
        for seed in seeds:
            example = make_example(seed, config, python)
            writer.add(torch.from_numpy(example.image).permute(2, 0, 1), example.coeffs, num_frames=config.num_frames,
                       fps=config.fps, source=f"scene-{seed}", start_frame=0, augmentation="")
            records.append(example.record)
    from safetensors import safe_open

    with safe_open(str(staging / SPECTRUM_FILE), framework="pt") as handle:
        mean_power = handle.get_tensor("mean_power").double()
        pixels = int(handle.metadata()["pixel_count"])
    (out / "blocks").mkdir(exist_ok=True)
    (out / "blocks" / f"block-{block:05d}.json").write_text(json.dumps(
        {"seeds": seeds, "records": records, "pixel_count": pixels, "power_sum": (mean_power * pixels).tolist()}))
    os.replace(staging / "shard-00000.safetensors", out / f"shard-{block:05d}.safetensors")
    shutil.rmtree(staging, ignore_errors=True)
    return records


def _block_job(job: tuple) -> tuple[int, list[dict]]:
    out, block, seeds, config, python = job
    return block, write_block(Path(out), block, seeds, config, python)


def pending_blocks(out: Path, count: int, config: SceneConfig) -> list[tuple[int, list[int]]]:
    per = config.examples_per_shard
    blocks = []
    for block in range((count + per - 1) // per):
        seeds = [config.first_seed + i for i in range(block * per, min(count, (block + 1) * per))]
        done = out / f"shard-{block:05d}.safetensors"
        if done.is_file() and (out / "blocks" / f"block-{block:05d}.json").is_file():
            if len(json.loads((out / "blocks" / f"block-{block:05d}.json").read_text())["seeds"]) == len(seeds):
                continue
        blocks.append((block, seeds))
    return blocks


def check_config(out: Path, config: SceneConfig) -> None:
    """A folder holds one configuration: refuse to mix shapes or seeds into an earlier run's shards."""
    path = out / CONFIG_FILE
    if path.is_file():
        earlier = json.loads(path.read_text())
        if earlier != asdict(config):
            raise MotionError(f"gid scenes: {out} was made with {earlier}, not {asdict(config)}; "
                              "use a new --out folder or the same options to resume.")
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(config)))


def pool_outputs(out: Path) -> int:
    """Rewrite spectrum.safetensors and scenes_log.jsonl from every finished block; returns the examples."""
    from safetensors.torch import save_file

    power, pixels, lines = None, 0, []
    for path in sorted((out / "blocks").glob("block-*.json")):
        block = json.loads(path.read_text())
        block_power = torch.tensor(block["power_sum"], dtype=torch.float64)
        power = block_power if power is None else power + block_power
        pixels += block["pixel_count"]
        lines.extend(block["records"])
    if power is None:
        return 0
    save_file({"mean_power": (power / pixels).float()}, str(out / SPECTRUM_FILE),
              metadata={"format": "gid-spectrum", "num_examples": str(len(lines)), "pixel_count": str(pixels)})
    with open(out / LOG_FILE, "w", encoding="utf-8") as log:
        log.writelines(json.dumps(line) + "\n" for line in lines)
    return len(lines)


def generate(out: str | Path, count: int, config: SceneConfig = SceneConfig(), workers: int = 1,
             progress: bool = True) -> int:
    """Make `count` examples under out (resuming); returns the examples on disk."""
    from tqdm import tqdm

    from .render import require_blender_python

    out = Path(out)
    check_config(out, config)
    python = require_blender_python()
    blocks = pending_blocks(out, count, config)
    total = sum(len(seeds) for _, seeds in blocks)
    LOGGER.info("gid scenes: %d examples to make in %d shard(s) under %s (%d already there)", total, len(blocks), out, count - total)
    jobs = [(str(out), block, seeds, config, python) for block, seeds in blocks]
    bar = tqdm(total=total, unit="scene", desc="scenes", disable=not progress)
    began = time.perf_counter()
    try:
        if workers <= 1:
            results = map(_block_job, jobs)
            for block, records in results:
                bar.update(len(records))
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for block, records in pool.imap_unordered(_block_job, jobs):
                    bar.update(len(records))
    finally:
        bar.close()
        made = pool_outputs(out)
    if total:
        LOGGER.info("made %d examples in %.0f s wall", total, time.perf_counter() - began)
    return made
