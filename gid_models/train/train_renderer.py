"""Train the neural renderer on (I_0, I_t, flow I_0 -> I_t) pairs from real clips (paper Sec. 5).

    python -m gid_models.train.train_renderer --clips DIR --out DIR [--resume] [--init FILE] [--steps N] ...
    torchrun --nproc_per_node 8 -m gid_models.train.train_renderer --clips DIR --out DIR

Pairs (--pairs): "windows" (default) draws I_t from I_0 with the displacement of a 150-frame
motion window and the window's importance, as rendering a motion texture does (render_windows);
"flow" uses nearby frames and their own flow (render_pairs).
Loss: L1 + multi-scale gradient L1 (strides 1, 2, 4) + (1 - SSIM) + squared error, weights on
the command line (the paper's VGG loss needs pretrained weights, which are not available
offline). bf16 autocast on GPU; DDP over torch.distributed when launched by torchrun (NCCL on
GPU, gloo on CPU).
Everything is written without pickle: out/checkpoint/{model,optimizer}.safetensors +
state.json (step, config, arguments) for --resume, out/losses.csv (train and validation rows),
and out/renderer.safetensors (fp16, config in the metadata) + renderer.json at the end, ready
for ComfyUI/models/gid or gid_models/weights/. Validation uses the held-out clips of the data
set and also reports the pixel renderer's L1 and squared error on the same pairs, the figures
to beat.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..frame_metrics import frame_psnr
from ..rendering import NeuralRenderer, RendererConfig, render_pixel_frames
from .render_pairs import RenderPairDataset
from .render_windows import WindowPairDataset

LOGGER = logging.getLogger("gid.train_renderer")
CSV_FIELDS = ["step", "split", "loss", "l1", "gradient", "ssim", "l1_pixel_renderer", "lr", "seconds", "mse",
              "mse_pixel_renderer", "psnr", "psnr_pixel_renderer"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the GID neural renderer.")
    parser.add_argument("--clips", required=True, help="folder of training videos (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder (checkpoints, losses.csv, renderer.safetensors)")
    parser.add_argument("--resume", action="store_true", help="continue from out/checkpoint")
    parser.add_argument("--init", default=None, help="start from these renderer weights (a renderer.safetensors; "
                        "its channels replace --channels); a checkpoint found by --resume wins over it")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=8, help="per process")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--warmup", type=int, default=500, help="linear warm-up steps, then cosine decay")
    parser.add_argument("--pairs", choices=("windows", "flow"), default="windows",
                        help="windows: I_t drawn from I_0 with the displacement of a 150-frame motion window and "
                        "its importance, as at run time (default); flow: nearby frames with their own flow")
    parser.add_argument("--size", default="256x160", help="windows: frame size WIDTHxHEIGHT")
    parser.add_argument("--window-stride", type=int, default=75, help="windows: frames between window starts")
    parser.add_argument("--crop", type=int, default=256, help="flow: square crop")
    parser.add_argument("--max-gap", type=int, default=24, help="flow: largest frame gap between I_0 and I_t")
    parser.add_argument("--max-side", type=int, default=512, help="flow: downscale clips to this longest side")
    parser.add_argument("--channels", default="32,64,96,128", help="feature channels per pyramid level")
    parser.add_argument("--gradient-weight", type=float, default=0.1)
    parser.add_argument("--ssim-weight", type=float, default=0.2)
    parser.add_argument("--mse-weight", type=float, default=0.0,
                        help="weight of the squared error; L1 alone favours sharp guesses where the flow is "
                        "unsure, the squared error favours the mean")
    parser.add_argument("--psnr-weight", type=float, default=0.01,
                        help="weight of minus each frame's PSNR in dB, averaged (what gid eval scores): unlike "
                        "the squared error it weighs an error on a nearly perfect frame as much as a 10x "
                        "larger one on a hard frame")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--val-pairs", type=int, default=32, help="validation pairs (0 = no validation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="decoded-clip cache folder (default out/cache)")
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


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM over 3x3 windows (images in 0..1)."""
    c1, c2 = 0.01**2, 0.03**2
    mu_p, mu_t = F.avg_pool2d(prediction, 3, 1, 1), F.avg_pool2d(target, 3, 1, 1)
    var_p = F.avg_pool2d(prediction * prediction, 3, 1, 1) - mu_p**2
    var_t = F.avg_pool2d(target * target, 3, 1, 1) - mu_t**2
    covariance = F.avg_pool2d(prediction * target, 3, 1, 1) - mu_p * mu_t
    numerator = (2 * mu_p * mu_t + c1) * (2 * covariance + c2)
    denominator = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    return (numerator / denominator).mean()


def render_losses(prediction: torch.Tensor, target: torch.Tensor, args: argparse.Namespace) -> dict[str, torch.Tensor]:
    prediction, target = prediction.float(), target.float()
    terms = {
        "l1": (prediction - target).abs().mean(),
        "gradient": gradient_loss(prediction, target),
        "ssim": 1.0 - ssim(prediction, target),
        "mse": F.mse_loss(prediction, target),
        "psnr": frame_psnr(prediction, target).mean(),
    }
    terms["loss"] = (terms["l1"] + args.gradient_weight * terms["gradient"] + args.ssim_weight * terms["ssim"]
                     + args.mse_weight * terms["mse"] - args.psnr_weight * terms["psnr"])
    return terms


# -- checkpoints (no pickle) ----------------------------------------------------------------------

def save_checkpoint(folder: Path, model: NeuralRenderer, optimizer: torch.optim.Optimizer, step: int, args) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(folder / "model.tmp"))
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{key}": value.detach().cpu().contiguous()
        for index, slots in state["state"].items()
        for key, value in slots.items()
    }
    save_file(tensors, str(folder / "optimizer.tmp"), metadata={"param_groups": json.dumps(state["param_groups"])})
    summary = {"step": step, "channels": list(model.config.channels), "args": vars(args)}
    (folder / "state.tmp").write_text(json.dumps(summary, indent=2))
    for name in ("model", "optimizer"):
        (folder / f"{name}.tmp").replace(folder / f"{name}.safetensors")
    (folder / "state.tmp").replace(folder / "state.json")


def load_checkpoint(folder: Path, model: NeuralRenderer, optimizer: torch.optim.Optimizer) -> int:
    from safetensors import safe_open

    state = json.loads((folder / "state.json").read_text())
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    with safe_open(str(folder / "optimizer.safetensors"), framework="pt") as handle:
        param_groups = json.loads(handle.metadata()["param_groups"])
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for name in handle.keys():
            index, key = name.split(".", 1)
            slots.setdefault(int(index), {})[key] = handle.get_tensor(name)
    optimizer.load_state_dict({"state": slots, "param_groups": param_groups})
    return int(state["step"])


# -- training -------------------------------------------------------------------------------------

def setup_distributed(device_type: str | None = None) -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins torch.distributed when torchrun set WORLD_SIZE > 1 (or
    reuses the process group a caller such as `gid train` already set up)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and device_type != "cpu":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def learning_rate(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def validate(
    model: NeuralRenderer, batches: list[dict[str, torch.Tensor]], device: torch.device, args
) -> dict[str, float]:
    model.eval()
    sums = {"loss": 0.0, "l1": 0.0, "gradient": 0.0, "ssim": 0.0, "mse": 0.0, "psnr": 0.0, "l1_pixel_renderer": 0.0,
            "mse_pixel_renderer": 0.0, "psnr_pixel_renderer": 0.0}
    for batch in batches:
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            prediction = model(batch["picture"], batch["flow"], batch["importance"])
        for key, value in render_losses(prediction, batch["target"], args).items():
            sums[key] += float(value)
        pixel = torch.cat([
            render_pixel_frames(p[None], f[None], w[None])
            for p, f, w in zip(batch["picture"], batch["flow"], batch["importance"])
        ])
        sums["l1_pixel_renderer"] += float((pixel - batch["target"]).abs().mean())
        sums["mse_pixel_renderer"] += float(F.mse_loss(pixel, batch["target"]))
        sums["psnr_pixel_renderer"] += float(frame_psnr(pixel, batch["target"]).mean())
    model.train()
    return {k: v / max(1, len(batches)) for k, v in sums.items()}


def pair_dataset(args: argparse.Namespace, cache: Path, **kwargs) -> torch.utils.data.Dataset:
    """The training or validation pairs that --pairs names (kwargs: split, seed, num_pairs)."""
    if args.pairs == "flow":
        return RenderPairDataset(args.clips, cache_dir=cache, crop=args.crop, max_gap=args.max_gap,
                                 max_side=args.max_side, **kwargs)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT in pixels, e.g. 256x160, got {args.size!r}.") from None
    return WindowPairDataset(args.clips, cache_dir=cache / "windows", width=width, height=height,
                             stride=args.window_stride, **kwargs)


def train(args: argparse.Namespace) -> Path:
    owns_process_group = not dist.is_initialized()
    rank, world, device = setup_distributed(args.device)
    out = Path(args.out)
    checkpoint = out / "checkpoint"
    torch.manual_seed(args.seed + rank)
    cache = Path(args.cache) if args.cache else out / "cache"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    if world > 1 and rank != 0:
        dist.barrier()  # rank 0 decodes the clips into the shared cache first
    dataset = pair_dataset(args, cache, split="train", seed=args.seed)
    if world > 1 and rank == 0:
        dist.barrier()
    val_batches: list[dict[str, torch.Tensor]] = []
    if rank == 0 and args.val_pairs > 0:
        try:
            val = pair_dataset(args, cache, split="val", seed=1234, num_pairs=args.val_pairs)
            val_batches = list(torch.utils.data.DataLoader(val, batch_size=args.batch_size))
        except ValueError as error:
            LOGGER.warning("no validation: %s", error)

    if args.init:
        model = NeuralRenderer.load(args.init).to(device)
        LOGGER.info("starting from %s (channels %s)", args.init, list(model.config.channels))
    else:
        channels = tuple(int(c) for c in args.channels.split(","))
        model = NeuralRenderer(RendererConfig(channels=channels)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step = 0
    if args.resume and (checkpoint / "state.json").is_file():
        step = load_checkpoint(checkpoint, model, optimizer)
        LOGGER.info("resumed from %s at step %d", checkpoint, step)
    elif args.resume:
        LOGGER.warning("--resume given but %s holds no checkpoint; starting fresh", checkpoint)
    trained = model
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    sampler = None
    if world > 1:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank, seed=args.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, sampler=sampler, shuffle=sampler is None, num_workers=args.workers,
        pin_memory=device.type == "cuda", drop_last=True, persistent_workers=args.workers > 0,
        generator=torch.Generator().manual_seed(args.seed + step),
    )
    csv_path = out / "losses.csv"
    if rank == 0:
        start_csv(csv_path, keep=args.resume)
    started = time.time()
    epoch = step * args.batch_size * world // len(dataset)
    trained.train()
    while step < args.steps:
        if sampler is not None:
            sampler.set_epoch(epoch)
        for batch in loader:
            if step >= args.steps:
                break
            batch = to_device(batch, device)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, args)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                prediction = trained(batch["picture"], batch["flow"], batch["importance"])
            terms = render_losses(prediction, batch["target"], args)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            if rank == 0 and (step % args.log_every == 0 or step == args.steps):
                row = {k: f"{float(v.detach()):.6f}" for k, v in terms.items()}
                row.update(step=step, split="train", lr=f"{learning_rate(step - 1, args):.3e}")
                _append_csv(csv_path, {**row, "seconds": f"{time.time() - started:.1f}"})
                LOGGER.info("step %d loss %s l1 %s", step, row["loss"], row["l1"])
            if rank == 0 and (step % args.save_every == 0 or step == args.steps):
                save_checkpoint(checkpoint, model, optimizer, step, args)
                if val_batches:
                    figures = validate(model, val_batches, device, args)
                    _append_csv(csv_path, {"step": step, "split": "val", **{k: f"{v:.6f}" for k, v in figures.items()},
                                           "seconds": f"{time.time() - started:.1f}"})
                    LOGGER.info("step %d validation %s", step, figures)
        epoch += 1
    final = out / "renderer.safetensors"
    if rank == 0:
        model.save(final)
        LOGGER.info("saved %s (%d parameters)", final, model.num_parameters())
    if world > 1:
        dist.barrier()
        if owns_process_group:
            dist.destroy_process_group()
    return final


def start_csv(path: Path, keep: bool) -> None:
    """A losses.csv with CSV_FIELDS as its header; keep=True keeps its rows (rewritten under the
    current header when an older version of this script wrote it with fewer columns)."""
    rows = []
    if keep and path.is_file():
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames == CSV_FIELDS:
                return
            rows = list(reader)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, CSV_FIELDS)
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k in CSV_FIELDS} for row in rows)


def _append_csv(path: Path, row: dict) -> None:
    with path.open("a", newline="") as handle:
        csv.DictWriter(handle, CSV_FIELDS).writerow(row)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    train(parse_args(argv))


if __name__ == "__main__":
    main()
