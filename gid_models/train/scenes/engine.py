"""`gid scenes` engine: many seeds -> rendered scenes with exact motion -> compact training records.

Example i has seed `first_seed + i`. Each scene is written on its own as a compact record
`scenes/scene-{seed:07d}.npz` (records.py: picture, spectral volume quantized to 1/256 px as
int16, zlib; about 1 MB instead of a shard example's 5.4 MB, so 2,000 examples keep within
5 GB), renamed into place when whole: an interrupted run resumes by skipping the seeds already
on disk, and parallel workers never touch the same file. `scenes_log.jsonl` then lists every
scene in seed order (what it holds, CPU seconds, share of moving pixels, motion size, whether it
is held out). The training commands read the folder directly (`gid train --shards DIR`, the
training seeds; `--val-shards DIR`, every tenth seed). `pack` (`gid scenes --pack`) also writes
them as shards, `shards/` and `held_out_shards/`, for tools that read only shards.
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
from ..shards import ShardWriter
from .records import STEP_PX, is_held_out, list_records, read_log_line, read_record, record_path, seed_of
from .scenery import LATEST_RECIPE, RECIPES

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
    recipe: int = LATEST_RECIPE  # compose.py; folders written before recipes existed hold recipe 1


@dataclass
class Example:
    image: np.ndarray          # (H, W, 3) uint8
    coeffs: torch.Tensor       # (K, 4, H, W) float32 pixels
    mask: np.ndarray           # (H, W) bool, False where motion was dropped (motion.py)
    record: dict               # the log line


def make_example(seed: int, config: SceneConfig, python: str | None = None) -> Example:
    """Compose, render and measure one scene (CPU: one Blender thread plus numpy)."""
    from .compose import compose
    from .motion import spectral_volume
    from .render import render

    began = time.process_time()
    scene = compose(seed, config.recipe)
    rendered = render(scene, config.width, config.height, config.samples, python)
    volume, valid = spectral_volume(scene, rendered.attributes, config.num_frames, config.fps, config.num_frequencies)
    coeffs = volume.coeffs[0]
    amplitude = coeffs[1:].square().sum(dim=(0, 1)).sqrt()  # (H, W) px
    moving = rendered.attributes["part"] >= 0
    record = {**scene.description,
              "cpu_s": round(rendered.cpu_seconds + time.process_time() - began, 2),
              "moving_pixel_ratio": round(float(moving.mean()), 4),
              "dropped_pixel_ratio": round(float(1.0 - valid.mean()), 4),
              "motion_rms_px": round(float(amplitude.square().mean().sqrt()), 4),
              "motion_p99_px": round(float(torch.quantile(amplitude.flatten(), 0.99)), 4)}
    return Example(rendered.image, coeffs, valid, json.loads(json.dumps(record, default=float)))


def write_record(out: Path, seed: int, config: SceneConfig, python: str | None = None) -> dict:
    """Render one seed into its compact record (atomically); returns its log line."""
    torch.set_num_threads(1)
    example = make_example(seed, config, python)
    quantized = torch.round(example.coeffs / STEP_PX).clamp(-32767, 32767).to(torch.int16).numpy()
    path = record_path(out, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    np.savez_compressed(staging, image=example.image, coeffs=quantized, mask=example.mask, num_frames=config.num_frames,
                        fps=config.fps, record=json.dumps(example.record))
    os.replace(staging, path)
    return example.record


def _record_job(job: tuple) -> tuple[int, str | None]:
    """(seed, None) once its record is written, or (seed, why) when Blender failed on it: one stuck
    or broken render must not stop the other seeds of a long run."""
    from .render import RenderFailed

    out, seed, config, python = job
    try:
        write_record(Path(out), seed, config, python)
    except RenderFailed as error:
        return seed, str(error)
    return seed, None


def pending_seeds(out: Path, count: int, config: SceneConfig) -> list[int]:
    seeds = range(config.first_seed, config.first_seed + count)
    return [seed for seed in seeds if not record_path(out, seed).is_file()]


def check_config(out: Path, config: SceneConfig) -> None:
    """A folder holds one configuration: refuse to mix shapes or seeds into an earlier run's records
    (and refuse an unknown recipe before anything is written or rendered)."""
    if config.recipe not in RECIPES:
        raise MotionError(f"gid scenes: recipe must be one of {RECIPES}, got {config.recipe!r}.")
    path = out / CONFIG_FILE
    if path.is_file():
        earlier = {"recipe": 1, **json.loads(path.read_text())}
        if earlier != asdict(config):
            raise MotionError(f"gid scenes: {out} was made with {earlier}, not {asdict(config)}; "
                              "use a new --out folder or the same options to resume.")
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(config)))


def write_log(out: str | Path) -> int:
    """(Re)write out/scenes_log.jsonl: every record's log line in seed order, marked held_out or not;
    returns the lines written."""
    out = Path(out)
    lines = [{**read_log_line(path), "held_out": is_held_out(seed_of(path))} for path in list_records(out, "all")]
    with open(out / LOG_FILE, "w", encoding="utf-8") as log:
        log.writelines(json.dumps(line) + "\n" for line in lines)
    return len(lines)


def pack(out: str | Path, config: SceneConfig) -> tuple[int, int]:
    """(Re)write out/shards/ (training seeds) and out/held_out_shards/ (`is_held_out` seeds; no folder
    when there are none) from every record, for tools that read only shards; returns (training,
    held-out) examples. Training commands read the records directly and need no shards."""
    out = Path(out)
    written = []
    for split, folder in (("train", out / "shards"), ("held_out", out / "held_out_shards")):
        shutil.rmtree(folder, ignore_errors=True)
        paths = list_records(out, split)
        if paths:
            with ShardWriter(folder, config.examples_per_shard) as writer:
                for path in paths:
                    image, coeffs, mask, _ = read_record(path)
                    writer.add(torch.from_numpy(image).permute(2, 0, 1), coeffs, num_frames=config.num_frames,
                               fps=config.fps, source=f"scene-{seed_of(path)}", start_frame=0, augmentation="",
                               mask=torch.from_numpy(mask))
        written.append(len(paths))
    return written[0], written[1]


def generate(out: str | Path, count: int, config: SceneConfig = SceneConfig(), workers: int = 1,
             progress: bool = True, pack_shards: bool = False) -> int:
    """Make `count` examples under out (resuming) and write scenes_log.jsonl; with pack_shards, also
    shards of them (`pack`); returns the examples on disk. A seed that Blender fails on (an error or
    its time limit) is logged and skipped; once the others are written, MotionError lists them."""
    from tqdm import tqdm

    from .render import require_blender_python

    out = Path(out)
    check_config(out, config)
    python = require_blender_python()
    seeds = pending_seeds(out, count, config)
    LOGGER.info("gid scenes: %d examples to make under %s (%d already there)", len(seeds), out, count - len(seeds))
    jobs = [(str(out), seed, config, python) for seed in seeds]
    began = time.perf_counter()
    failed: dict[int, str] = {}

    def finished(outcome: tuple[int, str | None]) -> None:
        seed, why = outcome
        if why is not None:
            failed[seed] = why
            LOGGER.warning("gid scenes: skipped seed %d: %s", seed, why)
        bar.update(1)

    with tqdm(total=len(jobs), unit="scene", desc="scenes", disable=not progress) as bar:
        if workers <= 1:
            for job in jobs:
                finished(_record_job(job))
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for outcome in pool.imap_unordered(_record_job, jobs):
                    finished(outcome)
    if jobs:
        LOGGER.info("made %d examples in %.0f s wall", len(jobs) - len(failed), time.perf_counter() - began)
    made = write_log(out)
    if pack_shards:
        trained, held_out = pack(out, config)
        LOGGER.info("packed %d training examples into %s and %d held-out ones into %s",
                    trained, out / "shards", held_out, out / "held_out_shards")
    if failed:
        seeds = sorted(failed)
        listed = ", ".join(map(str, seeds[:20])) + (", ..." if len(seeds) > 20 else "")
        first_reason = failed[seeds[0]].splitlines()[0]
        raise MotionError(f"gid scenes: Blender failed on {len(seeds)} of {len(jobs)} scenes (seeds {listed}; "
                          f"first: {first_reason}). The other {made} examples are saved under {out}; run the same "
                          "command again to retry the failed seeds.")
    return made
