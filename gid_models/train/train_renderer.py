"""Train the neural renderer on (I_0, I_t, flow I_0 -> I_t) pairs from real clips (paper Sec. 5).

    python -m gid_models.train.train_renderer --clips DIR_OR_FILES... --out DIR [--resume] [--init FILE] [--steps N] ...
    torchrun --nproc_per_node 8 -m gid_models.train.train_renderer --clips DIR --out DIR

From Python: train_renderer(clips, RendererTraining(...), out_dir, runtime) (what `gid train` calls).
Pairs (--pairs): "windows" (default) draws I_t from I_0 with the displacement of a 150-frame
motion window and the window's importance, as rendering a motion texture does (render_windows);
"flow" uses nearby frames and their own flow (render_pairs). Clips are listed by train/clips.py
(folders searched recursively, the validation clips held out for validation).
Loss: L1 + multi-scale gradient L1 (strides 1, 2, 4) + (1 - SSIM, gid_models.frame_metrics) +
squared error - PSNR, weights on the command line (the paper's VGG loss needs pretrained weights,
which are not available offline). bf16 autocast on GPU; DDP over torch.distributed when launched
by torchrun (train/common.py).
Everything is written without pickle: out/checkpoint/ (train/common.py's checkpoint) for --resume,
out/losses.csv (train and validation rows), and out/renderer.safetensors (fp16, config in the
metadata) + renderer.json at the end, ready for ComfyUI/models/gid or gid_models/weights/.
Validation uses the held-out clips and also reports the pixel renderer's L1, squared error and
PSNR on the same pairs, the figures to beat.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..frame_metrics import frame_psnr, frame_ssim
from ..rendering import NeuralRenderer, render_pixel_frames
from .common import CsvLog, Runtime, autocast, batches, cleanup, load_checkpoint, save_checkpoint, setup_runtime, wrap_ddp
from .render_pairs import RenderPairDataset
from .render_windows import WindowPairDataset

LOGGER = logging.getLogger("gid.train_renderer")
CSV_FIELDS = ["step", "split", "loss", "l1", "gradient", "ssim", "l1_pixel_renderer", "lr", "seconds", "mse",
              "mse_pixel_renderer", "psnr", "psnr_pixel_renderer"]


@dataclass
class RendererTraining:
    """Settings of one renderer training run: steps and batch size per process, sizes in pixels."""

    steps: int = 20_000
    batch_size: int = 8
    learning_rate: float = 2e-4
    warmup: int = 500  # linear warm-up steps, then cosine decay
    pairs: str = "windows"  # "windows" (as rendering a motion texture) or "flow" (nearby frames)
    size: tuple[int, int] = (256, 160)  # windows: frame (width, height)
    window_stride: int = 75  # windows: frames between window starts
    crop: int = 256  # flow: square crop
    max_gap: int = 24  # flow: largest frame gap between I_0 and I_t
    max_side: int = 512  # flow: clips downscaled to this longest side
    channels: tuple[int, ...] = (32, 64, 96, 128)  # feature channels per pyramid level (an init file's win)
    gradient_weight: float = 0.1
    ssim_weight: float = 0.2
    mse_weight: float = 0.0
    psnr_weight: float = 0.01
    workers: int = 4
    log_every: int = 25
    save_every: int = 500
    val_pairs: int = 32  # 0 = no validation
    seed: int = 0


def add_settings_arguments(parser: argparse.ArgumentParser, defaults: RendererTraining) -> None:
    """The command-line flags of RendererTraining, defaulting to defaults' values."""
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process")
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="linear warm-up steps, then cosine decay")
    parser.add_argument("--pairs", choices=("windows", "flow"), default=defaults.pairs,
                        help="windows: I_t drawn from I_0 with the displacement of a 150-frame motion window and "
                        "its importance, as at run time (default); flow: nearby frames with their own flow")
    parser.add_argument("--size", default="x".join(map(str, defaults.size)), help="windows: frame size WIDTHxHEIGHT")
    parser.add_argument("--window-stride", type=int, default=defaults.window_stride,
                        help="windows: frames between window starts")
    parser.add_argument("--crop", type=int, default=defaults.crop, help="flow: square crop")
    parser.add_argument("--max-gap", type=int, default=defaults.max_gap, help="flow: largest frame gap between I_0 and I_t")
    parser.add_argument("--max-side", type=int, default=defaults.max_side, help="flow: downscale clips to this longest side")
    parser.add_argument("--channels", default=",".join(map(str, defaults.channels)),
                        help="feature channels per pyramid level")
    parser.add_argument("--gradient-weight", type=float, default=defaults.gradient_weight)
    parser.add_argument("--ssim-weight", type=float, default=defaults.ssim_weight)
    parser.add_argument("--mse-weight", type=float, default=defaults.mse_weight,
                        help="weight of the squared error; L1 alone favours sharp guesses where the flow is "
                        "unsure, the squared error favours the mean")
    parser.add_argument("--psnr-weight", type=float, default=defaults.psnr_weight,
                        help="weight of minus each frame's PSNR in dB, averaged (what gid eval scores): unlike "
                        "the squared error it weighs an error on a nearly perfect frame as much as a 10x "
                        "larger one on a hard frame")
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--save-every", type=int, default=defaults.save_every)
    parser.add_argument("--val-pairs", type=int, default=defaults.val_pairs, help="validation pairs (0 = no validation)")
    parser.add_argument("--seed", type=int, default=defaults.seed)


def settings_from_args(args: argparse.Namespace) -> RendererTraining:
    """RendererTraining from parsed flags (add_settings_arguments); clear errors for malformed sizes."""
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT in pixels, e.g. 256x160, got {args.size!r}.") from None
    try:
        channels = tuple(int(c) for c in args.channels.split(","))
    except ValueError:
        raise ValueError(f"--channels must be widths separated by commas, e.g. 32,64,96,128, got {args.channels!r}.") from None
    named = {f.name for f in fields(RendererTraining)} - {"learning_rate", "size", "channels"}
    return RendererTraining(learning_rate=args.lr, size=(width, height), channels=channels,
                            **{name: getattr(args, name) for name in named})


def settings_from_text(text: str, defaults: RendererTraining, prog: str = "gid train --renderer-args") -> RendererTraining:
    """RendererTraining from a string of train_renderer flags (`gid train --renderer-args`) over defaults."""
    parser = argparse.ArgumentParser(prog=prog, description="train_renderer settings")
    add_settings_arguments(parser, defaults)
    return settings_from_args(parser.parse_args(shlex.split(text)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the GID neural renderer.")
    parser.add_argument("--clips", required=True, nargs="+", help="training videos and/or folders of them "
                        "(searched recursively; the validation clips are held out for validation)")
    parser.add_argument("--out", required=True, help="output folder (checkpoints, losses.csv, renderer.safetensors)")
    parser.add_argument("--resume", action="store_true", help="continue from out/checkpoint")
    parser.add_argument("--init", default=None, help="start from these renderer weights (a renderer.safetensors; "
                        "its channels replace --channels); a checkpoint found by --resume wins over it")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--cache", default=None, help="decoded-clip cache folder (default out/cache)")
    add_settings_arguments(parser, RendererTraining())
    return parser.parse_args(argv)


# -- losses ---------------------------------------------------------------------------------------

def gradient_loss(prediction: torch.Tensor, target: torch.Tensor, strides: tuple[int, ...] = (1, 2, 4)) -> torch.Tensor:
    """Mean L1 between horizontal and vertical finite differences, at several strides."""
    total = prediction.new_zeros(())
    for stride in strides:
        p = F.avg_pool2d(prediction, stride) if stride > 1 else prediction
        t = F.avg_pool2d(target, stride) if stride > 1 else target
        total = total + (p.diff(dim=-1) - t.diff(dim=-1)).abs().mean() + (p.diff(dim=-2) - t.diff(dim=-2)).abs().mean()
    return total / len(strides)


def render_losses(prediction: torch.Tensor, target: torch.Tensor, settings: RendererTraining) -> dict[str, torch.Tensor]:
    """The loss terms of (N, 3, H, W) frames against their targets, and their weighted sum "loss"."""
    prediction, target = prediction.float(), target.float()
    terms = {
        "l1": (prediction - target).abs().mean(),
        "gradient": gradient_loss(prediction, target),
        "ssim": 1.0 - frame_ssim(prediction, target).mean(),
        "mse": F.mse_loss(prediction, target),
        "psnr": frame_psnr(prediction, target).mean(),
    }
    terms["loss"] = (terms["l1"] + settings.gradient_weight * terms["gradient"] + settings.ssim_weight * terms["ssim"]
                     + settings.mse_weight * terms["mse"] - settings.psnr_weight * terms["psnr"])
    return terms


# -- training -------------------------------------------------------------------------------------

def learning_rate(step: int, settings: RendererTraining) -> float:
    if step < settings.warmup:
        return settings.learning_rate * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return settings.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def validate(
    model: NeuralRenderer, val_batches: list[dict[str, torch.Tensor]], device: torch.device, settings: RendererTraining
) -> dict[str, float]:
    """Mean loss terms of the network and the pixel renderer's figures over the validation batches."""
    model.eval()
    sums = {"loss": 0.0, "l1": 0.0, "gradient": 0.0, "ssim": 0.0, "mse": 0.0, "psnr": 0.0, "l1_pixel_renderer": 0.0,
            "mse_pixel_renderer": 0.0, "psnr_pixel_renderer": 0.0}
    for batch in val_batches:
        batch = to_device(batch, device)
        with autocast(device):
            prediction = model(batch["picture"], batch["flow"], batch["importance"])
        for key, value in render_losses(prediction, batch["target"], settings).items():
            sums[key] += float(value)
        pixel = torch.cat([
            render_pixel_frames(p[None], f[None], w[None])
            for p, f, w in zip(batch["picture"], batch["flow"], batch["importance"])
        ])
        sums["l1_pixel_renderer"] += float((pixel - batch["target"]).abs().mean())
        sums["mse_pixel_renderer"] += float(F.mse_loss(pixel, batch["target"]))
        sums["psnr_pixel_renderer"] += float(frame_psnr(pixel, batch["target"]).mean())
    model.train()
    return {k: v / max(1, len(val_batches)) for k, v in sums.items()}


def pair_dataset(clips: Sequence[str | Path], settings: RendererTraining, cache: Path, **kwargs) -> torch.utils.data.Dataset:
    """The training or validation pairs that settings.pairs names (kwargs: split, seed, num_pairs)."""
    if settings.pairs == "flow":
        return RenderPairDataset(clips, cache_dir=cache, crop=settings.crop, max_gap=settings.max_gap,
                                 max_side=settings.max_side, **kwargs)
    width, height = settings.size
    return WindowPairDataset(clips, cache_dir=cache / "windows", width=width, height=height,
                             stride=settings.window_stride, **kwargs)


def train_renderer(clips: Sequence[str | Path], settings: RendererTraining, out_dir: str | Path,
                   runtime: Runtime | None = None, init: str | Path | None = None, resume: bool = False,
                   cache: str | Path | None = None) -> Path:
    """Train (or continue) a renderer on the clips; returns out_dir/renderer.safetensors.

    init: renderer weights to start from (their channels win over settings.channels); resume:
    continue from out_dir/checkpoint when it holds one (it wins over init); cache: decoded-clip
    cache folder (default out_dir/cache)."""
    runtime = runtime or setup_runtime()
    device, out = runtime.device, Path(out_dir)
    checkpoint = out / "checkpoint"
    torch.manual_seed(settings.seed + runtime.rank)
    cache = Path(cache) if cache else out / "cache"
    if runtime.is_main:
        out.mkdir(parents=True, exist_ok=True)
    if runtime.distributed and not runtime.is_main:
        dist.barrier()  # rank 0 decodes the clips into the shared cache first
    dataset = pair_dataset(clips, settings, cache, split="train", seed=settings.seed)
    if runtime.distributed and runtime.is_main:
        dist.barrier()
    val_batches: list[dict[str, torch.Tensor]] = []
    if runtime.is_main and settings.val_pairs > 0:
        try:
            val = pair_dataset(clips, settings, cache, split="val", seed=1234, num_pairs=settings.val_pairs)
            val_batches = list(torch.utils.data.DataLoader(val, batch_size=settings.batch_size))
        except ValueError as error:
            LOGGER.warning("no validation: %s", error)

    if init:
        model = NeuralRenderer.load(init).to(device)
        LOGGER.info("starting from %s (channels %s)", init, list(model.config.channels))
    else:
        model = NeuralRenderer(channels=settings.channels).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, betas=(0.9, 0.99), weight_decay=0.0)
    if resume and not (checkpoint / "state.json").is_file():
        LOGGER.warning("--resume given but %s holds no checkpoint; starting fresh", checkpoint)
    step = load_checkpoint(checkpoint, model, optimizer) if resume else 0
    trained = wrap_ddp(model, runtime)
    stream = batches(dataset, settings.batch_size, runtime, seed=settings.seed + step, num_workers=settings.workers)
    log = CsvLog(out / "losses.csv", enabled=runtime.is_main, fields=CSV_FIELDS, keep=resume)
    started = time.time()
    trained.train()
    while step < settings.steps:
        batch = to_device(next(stream), device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings)
        with autocast(device):
            prediction = trained(batch["picture"], batch["flow"], batch["importance"])
        terms = render_losses(prediction, batch["target"], settings)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % settings.log_every == 0 or step == settings.steps:
            row = {k: f"{float(v.detach()):.6f}" for k, v in terms.items()}
            log.write(step=step, split="train", lr=f"{learning_rate(step - 1, settings):.3e}",
                      seconds=f"{time.time() - started:.1f}", **row)
            if runtime.is_main:
                LOGGER.info("step %d loss %s l1 %s", step, row["loss"], row["l1"])
        if runtime.is_main and (step % settings.save_every == 0 or step == settings.steps):
            save_checkpoint(checkpoint, model, optimizer, step)
            if val_batches:
                figures = validate(model, val_batches, device, settings)
                log.write(step=step, split="val", seconds=f"{time.time() - started:.1f}",
                          **{k: f"{v:.6f}" for k, v in figures.items()})
                LOGGER.info("step %d validation %s", step, figures)
    final = out / "renderer.safetensors"
    if runtime.is_main:
        model.save(final)
        LOGGER.info("saved %s (%d parameters)", final, model.num_parameters())
    if runtime.distributed:
        dist.barrier()
    return final


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    settings = settings_from_args(args)
    runtime = setup_runtime(args.device)
    try:
        train_renderer(args.clips, settings, args.out, runtime, init=args.init, resume=args.resume, cache=args.cache)
    finally:
        cleanup(runtime)


if __name__ == "__main__":
    main()
