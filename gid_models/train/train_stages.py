"""The stages of `gid train`, each a call of its trainer's function with a settings object: skipped
when its checkpoint reached the asked steps and its output exists, otherwise run (resuming) and timed.

A stage returns its record for train_summary.json: status, steps_run, total_steps, wall_seconds,
seconds_per_1000_steps, device, batch_size (per process) and world_size (processes).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch.distributed as dist

from ..networks.motion_model import (
    CALIBRATION_FILE, DENOISER_FILE, NORMALIZATION_FILE, VAE_FILE, MotionModel, load_network,
)
from ..networks.vae import MotionVAE
from ..normalization import FrequencyNormalization
from .calibrate import fit_calibration, format_table, write_calibration
from .common import Runtime
from .conditioned import with_image_conditioning
from .fit_normalization import fit_dataset_normalization
from .prepare import PrepareConfig
from .shards import SpectralShardDataset
from .train_denoiser import DenoiserTraining, new_stage1_model, train_denoiser
from .train_renderer import RendererTraining, settings_from_text, train_renderer
from .train_vae import VaeTraining, train_vae

LOGGER = logging.getLogger("gid.train")

CHECKPOINTS = {"vae": "vae", "stage1": "denoiser_stage1", "stage2": "denoiser_stage2"}
MOTION_ORDER = ("normalization", "vae", "stage1", "stage2")  # each one's output is the next one's input
MOTION_FILES = (NORMALIZATION_FILE, f"{VAE_FILE}.json", f"{VAE_FILE}.safetensors",
                f"{DENOISER_FILE}.json", f"{DENOISER_FILE}.safetensors")
RENDERER_FILE, RENDERER_RUN = "renderer.safetensors", "renderer_run"
RENDERER_CHANNELS = {"tiny": (8, 16)}  # other sizes keep train_renderer's default pyramid
RENDERER_BATCH = 8


@dataclass
class Job:
    """One `gid train` run: what to train, on what, where, and the process group it runs in."""

    args: argparse.Namespace
    out: Path
    init: Path | None  # the model folder fine-tuned from; None = scratch
    stages: tuple[str, ...]
    runtime: Runtime
    prepare: PrepareConfig  # of the shards made from --clips (--prepare-args)
    renderer: RendererTraining  # of the renderer stage (renderer_settings)
    shards: list[str] | None = None

    def dataset(self, augment: bool = True) -> SpectralShardDataset:
        return SpectralShardDataset(self.shards, augment=augment)

    def batch_size(self, default: int) -> int:
        return self.args.batch_size or default

    def barrier(self) -> None:
        if self.runtime.distributed:
            dist.barrier()


def require(path: Path, what: str, stage: str) -> None:
    if not path.is_file():
        raise ValueError(f"stage {stage} needs {what} ({path}), which is not there: add the stage that makes it to "
                         "--stages, or fine-tune a trained model with --init shipped or --init FOLDER.")


# -- stages ---------------------------------------------------------------------------------------

def checkpoint_step(folder: Path) -> int:
    """The step a checkpoint folder's state.json records (0 when there is none)."""
    state = folder / "state.json"
    return int(json.loads(state.read_text())["step"]) if state.is_file() else 0


def timed_stage(job: Job, name: str, checkpoint: Path, output: Path, steps: int, batch_size: int,
                train: Callable[[], object]) -> dict:
    """Run train() unless the checkpoint already reached `steps` and the output exists; the figures."""
    start = checkpoint_step(checkpoint)
    record = {"total_steps": steps, "device": str(job.runtime.device), "batch_size": batch_size,
              "world_size": job.runtime.world_size}
    if start >= steps and output.is_file():
        LOGGER.info("%s: finished earlier (%d/%d steps, %s); skipped", name, start, steps, output.name)
        return {**record, "status": "skipped", "steps_run": 0}
    LOGGER.info("%s: steps %d -> %d, batch %d per process x %d process(es) on %s",
                name, start, steps, batch_size, job.runtime.world_size, job.runtime.device)
    began = time.perf_counter()
    train()
    job.barrier()
    wall = time.perf_counter() - began
    steps_run = max(0, steps - start)
    if steps_run and job.runtime.is_main:
        set_aside_later_checkpoints(job, name)
    per_thousand = round(1000 * wall / steps_run, 2) if steps_run else None
    LOGGER.info("%s: %d steps in %.1f s (%s s per 1,000 steps)", name, steps_run, wall, per_thousand)
    return {**record, "status": "trained", "steps_run": steps_run, "wall_seconds": round(wall, 2),
            "seconds_per_1000_steps": per_thousand}


def set_aside_later_checkpoints(job: Job, name: str) -> None:
    """A refitted normalization, retrained VAE or stage 1 makes later stages' checkpoints stale: move
    them aside so those stages continue from the new weights instead of restoring old ones."""
    later = MOTION_ORDER[MOTION_ORDER.index(name) + 1:] if name in MOTION_ORDER else ()
    if name in MOTION_ORDER and (job.out / CALIBRATION_FILE).is_file():
        (job.out / CALIBRATION_FILE).unlink()  # gains and limits fitted to the old weights; the calibrate stage refits them
        LOGGER.info("%s changed: removed %s (stage calibrate fits it again)", name, CALIBRATION_FILE)
    for stage in later:
        folder = job.out / "checkpoints" / CHECKPOINTS[stage]
        if folder.is_dir():
            stale = folder.with_name(folder.name + ".stale")
            shutil.rmtree(stale, ignore_errors=True)
            folder.replace(stale)
            LOGGER.info("%s changed: moved %s aside to %s; %s starts again", name, folder.name, stale.name, stage)


def stage_normalization(job: Job) -> dict:
    output = job.out / NORMALIZATION_FILE
    if output.is_file():
        LOGGER.info("normalization: %s exists; skipped", output.name)
        return {"status": "skipped", "steps_run": 0}
    began = time.perf_counter()
    dataset = job.dataset(augment=False)
    if job.runtime.is_main:
        fit_dataset_normalization(dataset).save(str(output))
        LOGGER.info("normalization: fitted on %d examples -> %s", len(dataset), output)
        set_aside_later_checkpoints(job, "normalization")
    job.barrier()
    return {"status": "trained", "examples": len(dataset), "wall_seconds": round(time.perf_counter() - began, 2),
            "device": "cpu"}


def stage_vae(job: Job) -> dict:
    require(job.out / NORMALIZATION_FILE, "the normalization", "vae")
    settings = VaeTraining(steps=job.args.vae_steps, batch_size=job.batch_size(VaeTraining.batch_size),
                           size=job.args.size or "cpu", crop=job.args.vae_crop,
                           loss=job.args.vae_loss, smoothing_px=job.args.vae_smooth)

    def train() -> None:
        normalization = FrequencyNormalization.load(str(job.out / NORMALIZATION_FILE))
        existing = (job.out / f"{VAE_FILE}.json").is_file()  # continue from it (fine-tuning or an earlier run)
        vae = load_network(MotionVAE, job.out, VAE_FILE) if existing else None
        train_vae(job.dataset(), normalization, settings, job.out, job.runtime, vae=vae)

    return timed_stage(job, "vae", job.out / "checkpoints" / "vae", job.out / f"{VAE_FILE}.safetensors",
                       settings.steps, settings.batch_size, train)


LATENT_CACHE_MAX_EXAMPLES = 512  # about 1.3 GB of cached latents at 256x160, K = 16


def stage_denoiser(job: Job, stage: int) -> dict:
    name = f"stage{stage}"
    require(job.out / f"{VAE_FILE}.safetensors", "a trained motion VAE", name)
    if stage == 2:
        require(job.out / f"{DENOISER_FILE}.safetensors", "the stage-1 denoiser", name)
    steps = job.args.stage1_steps if stage == 1 else job.args.stage2_steps
    settings = DenoiserTraining(stage=stage, steps=steps, batch_size=job.batch_size(DenoiserTraining.batch_size),
                                new_layer_lr_scale=getattr(job.args, "new_layer_lr_scale", DenoiserTraining.new_layer_lr_scale),
                                save_every=getattr(job.args, "save_every", DenoiserTraining.save_every),
                                log_every=getattr(job.args, "log_every", DenoiserTraining.log_every))

    def train() -> None:
        dataset = job.dataset()
        if (job.out / f"{DENOISER_FILE}.json").is_file():
            model = MotionModel.load_directory(job.out)
        else:
            sample_size = tuple(dataset[0]["image"].shape[-2:])
            model = new_stage1_model(job.out, job.args.size or "cpu", sample_size)
        if getattr(job.args, "image_features", None):  # motion model v2: the denoiser sees the picture
            model.denoiser = with_image_conditioning(model.denoiser, job.args.image_features,
                                                     job.args.image_feature_injection)
        store = getattr(job.args, "latent_store", None)
        if store or len(dataset) <= LATENT_CACHE_MAX_EXAMPLES:  # encode once, not every step (about 2x faster on CPU)
            from .latent_cache import LatentCacheDataset

            dataset = LatentCacheDataset(job.dataset(augment=False), model.to(job.runtime.device),
                                         device=job.runtime.device, store=store, progress=store is not None)
        val_dataset = SpectralShardDataset(job.args.val_shards, split="held_out") if job.args.val_shards else None
        train_denoiser(dataset, model, settings, job.out, job.runtime, val_dataset=val_dataset,
                       train_eval_dataset=job.dataset(augment=False))

    return timed_stage(job, name, job.out / "checkpoints" / CHECKPOINTS[name],
                       job.out / f"{DENOISER_FILE}.safetensors", steps, settings.batch_size, train)


def stage_calibrate(job: Job) -> dict:
    """Per-bin output gains and limits of the trained model (train/calibrate.py), on the training shards."""
    output, weights = job.out / CALIBRATION_FILE, job.out / f"{DENOISER_FILE}.safetensors"
    require(weights, "a trained denoiser", "calibrate")
    if output.is_file() and output.stat().st_mtime >= weights.stat().st_mtime:
        LOGGER.info("calibrate: %s is newer than the denoiser; skipped", output.name)
        return {"status": "skipped", "steps_run": 0}
    began = time.perf_counter()
    record: dict = {}
    if job.runtime.is_main:
        model = MotionModel.load_directory(job.out).to(job.runtime.device)
        gains, limits, record = fit_calibration(model, job.dataset(augment=False), steps=job.args.calibrate_steps,
                                                max_examples=job.args.calibrate_examples)
        write_calibration(job.out, gains, limits, record)
        LOGGER.info("calibrate: %d examples, %d DDIM steps -> %s\n%s", record["examples"], record["steps"],
                    output.name, format_table(record))
    job.barrier()
    return {"status": "trained", "examples": record.get("examples"), "ddim_steps": job.args.calibrate_steps,
            "wall_seconds": round(time.perf_counter() - began, 2), "device": str(job.runtime.device)}


def renderer_settings(args: argparse.Namespace) -> RendererTraining:
    """The renderer stage's settings: `gid train`'s --renderer-steps, --batch-size, --renderer-crop and
    --size, then whatever --renderer-args sets (train_renderer flags, which win)."""
    defaults = RendererTraining(steps=args.renderer_steps, batch_size=args.batch_size or RENDERER_BATCH,
                                crop=args.renderer_crop, channels=RENDERER_CHANNELS.get(args.size, RendererTraining.channels))
    return settings_from_text(args.renderer_args, defaults)


def stage_renderer(job: Job) -> dict:
    run_dir, final = job.out / RENDERER_RUN, job.out / RENDERER_FILE
    settings = job.renderer
    init = final if job.init is not None and final.is_file() else None
    if job.init is not None and init is None:
        LOGGER.info("renderer: %s holds no renderer, so it starts from scratch", job.init)

    def train() -> None:
        written = train_renderer(job.args.clips, settings, run_dir, job.runtime, init=init,
                                 resume=(run_dir / "checkpoint" / "state.json").is_file())
        if job.runtime.is_main:
            shutil.copy2(written, final)
            shutil.copy2(written.with_suffix(".json"), final.with_suffix(".json"))

    return timed_stage(job, "renderer", run_dir / "checkpoint", final, settings.steps, settings.batch_size, train)
