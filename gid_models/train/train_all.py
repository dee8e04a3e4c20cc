"""`gid train`: the whole stack on your own clips, in the paper's order, resumable.

    gid train --out MODEL_DIR --clips my_clips/ [--init shipped|scratch|FOLDER] [--size cpu] ...
    torchrun --nproc_per_node 8 -m gid_models.train.train_all --out MODEL_DIR --clips my_clips/ ...

Stages, each a call into its own entry point that keeps a checkpoint under MODEL_DIR:
  normalization  per-frequency scales of the spectral volumes (fit_normalization, paper Eq. 4)
  vae            the motion VAE on normalized slices (train_vae)
  stage1         the denoiser's 2D U-Net on single frequency slices (train_denoiser, stage 1)
  stage2         its frequency attention on all K slices at once (train_denoiser, stage 2)
  calibrate      per-frequency output gains and limits: sampled motion as strong as the data's, never larger (calibrate)
  renderer       the neural renderer on frame pairs of the clips (train_renderer)

MODEL_DIR ends up in the layout of gid_models/weights/ (normalization.safetensors,
motion_vae.*, denoiser.*, calibration.safetensors, renderer.*), plus shards/ (when made from --clips), checkpoints/,
renderer_run/ (the renderer's checkpoint, losses and clip cache), loss CSVs and
train_summary.json (per stage: steps run, wall seconds, seconds per 1,000 steps, device, batch).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Sequence

import torch
import torch.distributed as dist

from ..cli import entry_point
from ..networks.motion_model import BUNDLED_DIR, NORMALIZATION_FILE, SINGLE_FILE_PREFIX, MotionModel
from ..networks.vae import RECONSTRUCTION_LOSSES
from ..normalization import FrequencyNormalization
from . import prepare
from .common import Runtime, cleanup, setup_runtime
from .latent_store import check_store_folder
from .shards import SpectralShardDataset
from .train_denoiser import DenoiserTraining, add_conditioning_arguments
from .train_stages import (
    LATENT_CACHE_MAX_EXAMPLES, MOTION_FILES, RENDERER_BATCH, RENDERER_FILE, Job, renderer_settings, stage_calibrate,
    stage_denoiser, stage_normalization, stage_renderer, stage_vae,
)
from .train_vae import VaeTraining

LOGGER = logging.getLogger("gid.train")

STAGES = ("normalization", "vae", "stage1", "stage2", "calibrate", "renderer")
FINE_TUNE_STAGES = ("stage1", "stage2", "calibrate", "renderer")
SUMMARY_FILE = "train_summary.json"
GROUP_TIMEOUT = timedelta(hours=12)  # other ranks wait at a barrier while rank 0 prepares the shards


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gid train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the motion model (normalization, VAE, denoiser stages 1 and 2) and the neural\n"
                    "renderer on your own clips. Re-running the same command resumes every stage from its\n"
                    "checkpoint and skips the finished ones.",
        epilog="--init shipped (fine-tuning) skips normalization and VAE by default: they fix the latent\n"
               "space the shipped denoiser works in, so retraining them would make the denoiser start over.\n"
               "Steps and batch sizes are per process; under torchrun each of N GPUs takes its own batch:\n"
               "  torchrun --nproc_per_node N -m gid_models.train.train_all --out MODEL_DIR --clips DIR",
    )
    parser.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to write; created if missing")
    parser.add_argument("--clips", nargs="+", default=[], metavar="DIR_OR_FILE", help="video files and/or folders: "
                        "prepared into MODEL_DIR/shards (reused when there) and used for the renderer")
    parser.add_argument("--shards", nargs="+", default=[], metavar="DIR_OR_FILE", help="shards from `gid prepare` "
                        "instead, and/or `gid scenes` folders (their training seeds; every tenth seed is left out) "
                        "(then the renderer stage also needs --clips)")
    parser.add_argument("--val-shards", nargs="+", default=[], metavar="DIR_OR_FILE", help="held-out shards, and/or "
                        "`gid scenes` folders (their held-out seeds: 9, 19, ...): the denoiser stages log a "
                        "fixed-noise train/validation loss to denoiser_stage{1,2}_validation.csv")
    parser.add_argument("--init", default=None, metavar="shipped|scratch|FOLDER", help="shipped: fine-tune the "
                        "model in gid_models/weights (the default when it holds one); scratch: every stage fresh; "
                        "or a model FOLDER (this layout) to fine-tune")
    parser.add_argument("--size", choices=["cpu", "default", "tiny"], default=None,
                        help="network size when training from scratch (default cpu; an --init model keeps its own)")
    parser.add_argument("--stages", default=None, metavar="LIST", help=f"comma list of {','.join(STAGES)} "
                        f"(default: all from scratch, {','.join(FINE_TUNE_STAGES)} when fine-tuning)")
    for name, default in (("vae", VaeTraining.steps), ("stage1", DenoiserTraining.steps),
                          ("stage2", DenoiserTraining.steps), ("renderer", 20_000)):
        parser.add_argument(f"--{name}-steps", type=int, default=default, metavar="N", help=f"default {default}")
    parser.add_argument("--calibrate-steps", type=int, default=25, metavar="N",
                        help="DDIM steps per sample when fitting the output gains (default 25)")
    parser.add_argument("--calibrate-examples", type=int, default=32, metavar="N",
                        help="training examples sampled when fitting the output gains (default 32)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N", help="per process, every stage "
                        f"(default: vae {VaeTraining.batch_size}, denoiser {DenoiserTraining.batch_size}, "
                        f"renderer {RENDERER_BATCH})")
    parser.add_argument("--vae-crop", type=int, default=0, metavar="PX", help="train the VAE on random PXxPX "
                        "windows (0 = whole examples, the default)")
    parser.add_argument("--vae-loss", choices=list(RECONSTRUCTION_LOSSES), default="l1",
                        help="the VAE's reconstruction term: l1 (the paper's, default), mse, or balanced "
                        "(each channel's squared error over its own power)")
    parser.add_argument("--vae-smooth", type=float, default=0.0, metavar="PX",
                        help="blur every volume by a Gaussian of PX pixels (sigma) for the VAE; the denoiser's "
                        "latents are made the same way (default 0: none)")
    parser.add_argument("--renderer-crop", type=int, default=256, metavar="PX",
                        help="renderer training crop for --renderer-args='--pairs flow' (default 256); the "
                        "default window pairs use whole 256x160 frames")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when present")
    parser.add_argument("--export", default=None, metavar="FILE", help="also write FILE = gid_motion_NAME.safetensors "
                        "(and renderer_NAME.safetensors beside it) for ComfyUI/models/gid/")
    parser.add_argument("--prepare-args", default="", metavar="'OPTIONS'",
                        help="extra `gid prepare` options, e.g. '--frames 150 --size 256x160'")
    parser.add_argument("--renderer-args", default="", metavar="'OPTIONS'",
                        help="extra train_renderer options, e.g. '--workers 8 --lr 1e-4'")
    parser.add_argument("--save-every", type=int, default=DenoiserTraining.save_every, metavar="N",
                        help=f"denoiser checkpoint every N steps (default {DenoiserTraining.save_every})")
    parser.add_argument("--log-every", type=int, default=DenoiserTraining.log_every, metavar="N",
                        help=f"denoiser loss row every N steps (default {DenoiserTraining.log_every})")
    parser.add_argument("--latent-store", default=None, metavar="DIR",
                        help="cache the denoiser stages' latents in this folder on disk (about 4 MB per 256x160 "
                             f"example): any data size, reused by stage 2 and by a resumed run; default: in memory "
                             f"up to {LATENT_CACHE_MAX_EXAMPLES} examples, none above")
    add_conditioning_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


# -- planning -------------------------------------------------------------------------------------

def init_folder(init: str | None) -> Path | None:
    """The model folder to fine-tune from (None = scratch); the shipped one when present by default."""
    if init is None:
        init = "shipped" if MotionModel.bundled_available(BUNDLED_DIR) else "scratch"
        LOGGER.info("--init %s (%s)", init, "gid_models/weights holds a trained model" if init == "shipped"
                    else "no trained model ships in gid_models/weights")
    if init == "scratch":
        return None
    folder = BUNDLED_DIR if init == "shipped" else Path(init)
    if not MotionModel.bundled_available(folder):
        where = "gid_models/weights holds no trained motion model" if init == "shipped" else \
            f"'{folder}' is not a model folder (it needs {', '.join(MOTION_FILES)})"
        raise ValueError(f"--init {init}: {where}; use --init scratch to train every stage fresh.")
    return folder


def plan_stages(text: str | None, init: Path | None, has_clips: bool) -> tuple[str, ...]:
    """Stages to run, in the paper's order; the renderer only when there are clips for it."""
    if text is None:
        chosen = FINE_TUNE_STAGES if init is not None else STAGES
        if not has_clips and "renderer" in chosen:
            LOGGER.info("renderer stage skipped: it trains on clips, and only --shards were given (add --clips)")
            chosen = tuple(s for s in chosen if s != "renderer")
        return chosen
    asked = {s.strip() for s in text.split(",") if s.strip()}
    unknown = sorted(asked - set(STAGES))
    if unknown or not asked:
        raise ValueError(f"--stages: unknown stage(s) {unknown or text!r}; choose from {','.join(STAGES)}.")
    if "renderer" in asked and not has_clips:
        raise ValueError("--stages renderer trains on frame pairs of video clips: give --clips as well as --shards.")
    if init is not None and asked & {"normalization", "vae"}:
        LOGGER.warning("refitting the normalization or VAE of an --init model changes the latent space its "
                       "denoiser learned; train stage1 and stage2 long enough to adapt")
    return tuple(s for s in STAGES if s in asked)


def join_process_group(device: str | None) -> Runtime:
    """Set up torchrun's process group once (long timeout: rank 0 may prepare shards for hours), then
    the Runtime every stage shares."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available; use --device cpu.")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device != "cpu"
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=GROUP_TIMEOUT)
    return setup_runtime(device)


# -- data and initial weights ---------------------------------------------------------------------

def prepare_shards(job: Job) -> list[str]:
    """--shards as given, or MODEL_DIR/shards made from --clips by rank 0 (reused when complete)."""
    if job.args.shards:
        SpectralShardDataset(job.args.shards)  # fails now, clearly, when there are no examples
        return list(job.args.shards)
    folder, partial = job.out / "shards", job.out / "shards.partial"
    if job.runtime.is_main and folder.is_dir():
        LOGGER.info("reusing the shards in %s (delete the folder to prepare them again)", folder)
    elif job.runtime.is_main:
        clips = prepare.clips_of(job.args.clips, job.prepare)
        shutil.rmtree(partial, ignore_errors=True)  # an interrupted earlier prepare
        paths, _ = prepare.run(clips, partial, job.prepare)
        if not paths:
            raise ValueError(f"gid prepare kept no training window of {len(clips)} clip(s); the reasons are in "
                             f"{partial / 'prepare_log.jsonl'} (static camera, visible oscillation, long enough).")
        partial.replace(folder)
    job.barrier()
    return [str(folder)]


def copy_init(job: Job) -> None:
    """Copy the --init model's files into MODEL_DIR where it has none yet (rank 0); a normalization
    asked for in --stages is fitted anew instead."""
    if job.init is None or not job.runtime.is_main:
        return
    refit = {NORMALIZATION_FILE} if "normalization" in job.stages else set()
    for names in (MOTION_FILES, ("renderer.json", RENDERER_FILE)):  # the last name must be there
        if any((job.out / name).is_file() for name in names) or not (job.init / names[-1]).is_file():
            continue
        copied = [name for name in names if name not in refit and (job.init / name).is_file()]
        for name in copied:
            shutil.copy2(job.init / name, job.out / name)
        LOGGER.info("copied %s from %s", ", ".join(copied), job.init)


def check_frequencies(job: Job) -> None:
    """The shards' K must match the normalization the model was built on."""
    path = job.out / NORMALIZATION_FILE
    if not path.is_file():
        return
    model_k = FrequencyNormalization.load(str(path)).num_frequencies
    shard_k = job.dataset(augment=False)[0]["coeffs"].shape[0]
    if model_k != shard_k:
        raise ValueError(f"the shards hold K={shard_k} frequencies but {path} has K={model_k}; prepare the "
                         f"shards with --frequencies {model_k} (--prepare-args) or train with --init scratch.")


# -- the whole run --------------------------------------------------------------------------------

def check_export(path: str | None) -> None:
    if path and not (Path(path).name.startswith(SINGLE_FILE_PREFIX + "_") and path.endswith(".safetensors")):
        raise ValueError(f"--export {path}: name the file {SINGLE_FILE_PREFIX}_NAME.safetensors; "
                         "GIDLoadMotionModel lists only such files in ComfyUI/models/gid/.")


def export(job: Job) -> None:
    """The one-file motion model (and the renderer beside it) for ComfyUI/models/gid/."""
    path = Path(job.args.export)
    path.parent.mkdir(parents=True, exist_ok=True)
    MotionModel.load_directory(job.out).save_file(path)
    LOGGER.info("exported %s", path)
    if (job.out / RENDERER_FILE).is_file():
        renderer = path.with_name("renderer_" + path.stem[len(SINGLE_FILE_PREFIX) + 1:] + ".safetensors")
        shutil.copy2(job.out / RENDERER_FILE, renderer)
        LOGGER.info("exported %s", renderer)


def write_summary(job: Job, records: dict[str, dict]) -> Path:
    """MODEL_DIR/train_summary.json: this run's figures; skipped stages keep those of the run that trained them."""
    path = job.out / SUMMARY_FILE
    previous = json.loads(path.read_text()).get("stages", {}) if path.is_file() else {}
    stages = dict(previous)
    for name, record in records.items():
        stages[name] = {**previous.get(name, {}), "status": "skipped (finished earlier)"} \
            if record["status"] == "skipped" and name in previous else record
    size = job.args.size or ("cpu" if job.init is None else "that of --init")
    summary = {"model_dir": str(job.out.resolve()), "init": str(job.init) if job.init else "scratch", "size": size,
               "stages": {s: stages[s] for s in STAGES if s in stages}}
    path.write_text(json.dumps(summary, indent=2) + "\n")
    for name, record in summary["stages"].items():
        LOGGER.info("summary %-13s %s", name, describe(record))
    return path


def describe(record: dict) -> str:
    """One log line of a stage record."""
    if "examples" in record:
        return f"{record['status']}: fitted on {record['examples']} examples in {record.get('wall_seconds')} s"
    if record["status"] == "skipped":
        return "skipped (finished before; no figures in train_summary.json)"
    return (f"{record['status']}: {record['steps_run']} steps in {record['wall_seconds']} s, "
            f"{record['seconds_per_1000_steps']} s per 1,000 steps, {record['device']}, "
            f"batch {record['batch_size']} per process x {record['world_size']}")


def run(args: argparse.Namespace) -> Path:
    """Train every planned stage into args.out; returns the summary file."""
    if not args.clips and not args.shards:
        raise ValueError("nothing to train on: give --clips (video files or folders) or --shards (gid prepare output).")
    check_export(args.export)
    if args.latent_store:
        check_store_folder(args.latent_store)
    init = init_folder(args.init)
    if init is not None and args.size:
        LOGGER.info("--size %s ignored for networks continued from %s", args.size, init)
    stages = plan_stages(args.stages, init, bool(args.clips))
    prepare_config = prepare.config_from_text(args.prepare_args)  # options checked before hours of training
    job = Job(args, Path(args.out), init, stages, join_process_group(args.device), prepare_config, renderer_settings(args))
    try:
        if job.runtime.is_main:
            job.out.mkdir(parents=True, exist_ok=True)
        copy_init(job)
        job.barrier()
        records: dict[str, dict] = {}
        if set(stages) - {"renderer"}:
            job.shards = prepare_shards(job)
            check_frequencies(job)
        for name in stages:
            LOGGER.info("== stage %s ==", name)
            if name == "normalization":
                records[name] = stage_normalization(job)
                check_frequencies(job)
            elif name == "vae":
                records[name] = stage_vae(job)
            elif name in ("stage1", "stage2"):
                records[name] = stage_denoiser(job, int(name[-1]))
            elif name == "calibrate":
                records[name] = stage_calibrate(job)
            else:
                records[name] = stage_renderer(job)
        summary = job.out / SUMMARY_FILE
        if job.runtime.is_main:
            summary = write_summary(job, records)
            if args.export:
                export(job)
        return summary
    finally:
        cleanup(job.runtime)


@entry_point("gid train")
def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    level = logging.DEBUG if args.verbose else logging.INFO if main_rank else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    run(args)


if __name__ == "__main__":
    raise SystemExit(main())
