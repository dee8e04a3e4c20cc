"""Train the motion VAE on normalized spectral-volume slices (paper notes, section 3).

    python -m gid_models.train.train_vae --shards DATA/ --out MODEL_DIR [--steps 20000]
    torchrun --nproc_per_node 8 -m gid_models.train.train_vae --shards DATA/ --out MODEL_DIR

MODEL_DIR must hold normalization.safetensors (fit_normalization); it receives motion_vae.json +
motion_vae.safetensors, losses in vae_losses.csv and a resumable checkpoint in checkpoints/vae/.

    python -m gid_models.train.train_vae --shards DATA/ --out MODEL_DIR --decoder-only --steps 600

fine-tunes only the decoder of MODEL_DIR's trained VAE (losses in vae_decoder_losses.csv,
checkpoint in checkpoints/vae_decoder/). The encoder, and so the latent space a denoiser was
trained in, stays exactly as it was: a better decoder improves a trained model without
retraining its denoiser.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange
from torch.utils.data import Dataset

from ..networks.motion_model import NORMALIZATION_FILE, VAE_FILE, load_network, save_network, size_configs
from ..networks.vae import RECONSTRUCTION_LOSSES, MotionVAE, vae_loss
from ..normalization import FrequencyNormalization, normalize_tensor
from .common import CsvLog, Runtime, autocast, batches, cleanup, load_checkpoint, save_checkpoint, setup_runtime, wrap_ddp
from .volume_smoothing import smooth_volume

LOGGER = logging.getLogger(__name__)


@dataclass
class VaeTraining:
    """Settings: steps and batch size per process; slices_per_example random bins per example."""

    steps: int = 20000
    batch_size: int = 16
    learning_rate: float = 2e-4
    slices_per_example: int = 4
    log_every: int = 50
    save_every: int = 1000
    seed: int = 0
    size: str = "cpu"
    crop: int = 0  # train on random crop x crop windows (pixels, a multiple of the VAE factor); 0 = whole slices
    decoder_only: bool = False  # freeze the encoder (keeps the latent space): needs a trained vae
    loss: str = "l1"  # reconstruction term: "l1" (the paper's), "mse" or "balanced" (networks/vae.py vae_loss)
    smoothing_px: float = 0.0  # blur each volume by a Gaussian of this sigma (pixels) first (volume_smoothing.py)


def random_slices(normalized: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """(B, K, 4, H, W) -> (B * count, 4, H, W): `count` distinct random bins of each example."""
    batch, k = normalized.shape[:2]
    count = min(count, k)
    picks = torch.stack([torch.randperm(k, generator=generator)[:count] for _ in range(batch)]).to(normalized.device)
    chosen = torch.gather(normalized, 1, picks.view(batch, count, 1, 1, 1).expand(-1, -1, *normalized.shape[2:]))
    return rearrange(chosen, "b k c h w -> (b k) c h w")


def random_crop(coeffs: torch.Tensor, crop: int, generator: torch.Generator) -> torch.Tensor:
    """One random crop x crop window (pixels) of (B, K, C, H, W), the same for the whole batch.
    The VAE is convolutional, so crops teach it the same mapping at a fraction of the cost."""
    height, width = coeffs.shape[-2:]
    crop_h, crop_w = min(crop, height), min(crop, width)
    top = int(torch.randint(height - crop_h + 1, (1,), generator=generator))
    left = int(torch.randint(width - crop_w + 1, (1,), generator=generator))
    return coeffs[..., top: top + crop_h, left: left + crop_w]


@torch.no_grad()
def latent_scaling_factor(vae: MotionVAE, dataset: Dataset, normalization: FrequencyNormalization,
                          device: torch.device, max_examples: int = 64, smoothing_px: float = 0.0) -> float:
    """1 / std of the posterior means over up to max_examples examples (all bins), each volume
    blurred by smoothing_px (pixels) as in training."""
    means = []
    for index in range(min(len(dataset), max_examples)):
        coeffs = smooth_volume(dataset[index]["coeffs"][None].float().to(device), smoothing_px)
        flat = rearrange(normalize_tensor(coeffs, normalization.scales), "b k c h w -> (b k) c h w")
        means.append(vae.encode(flat)[0].float().flatten())
    return float(1.0 / torch.cat(means).std().clamp_min(1e-6))


def train_vae(dataset: Dataset, normalization: FrequencyNormalization, settings: VaeTraining,
              out_dir: str | Path | None = None, runtime: Runtime | None = None,
              vae: MotionVAE | None = None) -> MotionVAE:
    """Train (or continue) a MotionVAE; saves it into out_dir when given. Returns it in eval mode."""
    runtime = runtime or setup_runtime()
    torch.manual_seed(settings.seed)
    if settings.loss not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"VAE loss must be one of {RECONSTRUCTION_LOSSES}, got {settings.loss!r}.")
    if vae is None and settings.decoder_only:
        raise ValueError("decoder-only training fine-tunes a trained VAE: give one (MODEL_DIR/motion_vae.*).")
    if settings.decoder_only and settings.smoothing_px != float(vae.config.training_smoothing_px):
        raise ValueError(f"decoder-only training keeps the encoder, trained on volumes smoothed by "
                         f"{vae.config.training_smoothing_px} px: use that smoothing, not {settings.smoothing_px} px.")
    if vae is None:
        vae = MotionVAE(**size_configs(settings.size)[0])
    vae = vae.to(runtime.device).train()
    for name, parameter in vae.named_parameters():
        parameter.requires_grad_(not settings.decoder_only or name.startswith("decoder"))
    trainable = [parameter for parameter in vae.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    out_dir = Path(out_dir) if out_dir is not None else None
    run_name = "vae_decoder" if settings.decoder_only else "vae"
    checkpoint = out_dir / "checkpoints" / run_name if out_dir is not None else None
    start = load_checkpoint(checkpoint, vae, optimizer) if checkpoint is not None else 0
    log = CsvLog(out_dir / f"{run_name}_losses.csv", enabled=runtime.is_main) if out_dir is not None else None
    network = wrap_ddp(vae, runtime)
    generator = torch.Generator().manual_seed(settings.seed + 1000 * runtime.rank + start)
    factor = vae.downsample_factor
    stream = batches(dataset, settings.batch_size, runtime, seed=settings.seed + start)
    for step in range(start, settings.steps):
        batch = next(stream)
        coeffs = batch["coeffs"].float().to(runtime.device)
        height, width = coeffs.shape[-2:]
        coeffs = coeffs[..., : height - height % factor, : width - width % factor]
        if settings.crop:
            coeffs = random_crop(coeffs, settings.crop, generator)
        coeffs = smooth_volume(coeffs, settings.smoothing_px)
        target = random_slices(normalize_tensor(coeffs, normalization.scales), settings.slices_per_example, generator)
        with autocast(runtime.device):
            reconstruction, mean, logvar = network(target)
        loss, parts = vae_loss(reconstruction.float(), target, mean.float(), logvar.float(), settings.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        if log is not None and (step % settings.log_every == 0 or step == settings.steps - 1):
            log.write(step=step, loss=loss.item(), **parts)
            LOGGER.info("vae step %d loss %.4f (%s %.4f)", step, loss.item(), settings.loss, parts[settings.loss])
        if checkpoint is not None and runtime.is_main and (step + 1) % settings.save_every == 0:
            save_checkpoint(checkpoint, vae, optimizer, step + 1)
    vae.eval()
    for parameter in vae.parameters():
        parameter.requires_grad_(True)
    if not settings.decoder_only:  # a frozen encoder keeps its latents, and so their scale
        factor = latent_scaling_factor(vae, dataset, normalization, runtime.device, smoothing_px=settings.smoothing_px)
        vae.register_to_config(scaling_factor=factor, training_smoothing_px=float(settings.smoothing_px))
    if out_dir is not None and runtime.is_main:
        if checkpoint is not None and settings.steps > start:
            save_checkpoint(checkpoint, vae, optimizer, settings.steps)
        save_network(vae, out_dir, VAE_FILE, torch.float32)
    return vae


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", nargs="+", required=True,
                        help="shard files or folders (gid prepare output) and/or gid scenes folders (their training seeds)")
    parser.add_argument("--out", required=True, help="model folder (holds normalization.safetensors)")
    defaults = VaeTraining()
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--size", choices=["default", "cpu", "tiny"], default=defaults.size)
    parser.add_argument("--crop", type=int, default=defaults.crop, help="train on random CROPxCROP windows (pixels; 0 = whole slices)")
    parser.add_argument("--save-every", type=int, default=defaults.save_every)
    parser.add_argument("--loss", choices=RECONSTRUCTION_LOSSES, default=defaults.loss,
                        help="reconstruction term: l1 (the paper's, default), mse or balanced")
    parser.add_argument("--smooth", type=float, default=defaults.smoothing_px, metavar="PX",
                        help="blur every volume by a Gaussian of PX pixels (sigma) before training (default 0)")
    parser.add_argument("--decoder-only", action="store_true", help="fine-tune only the decoder of MODEL_DIR's "
                        "trained VAE (its encoder and latent space stay; a denoiser trained on them stays valid)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from .shards import SpectralShardDataset

    runtime = setup_runtime(args.device)
    settings = VaeTraining(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                           size=args.size, save_every=args.save_every, crop=args.crop, decoder_only=args.decoder_only,
                           loss=args.loss, smoothing_px=args.smooth)
    normalization = FrequencyNormalization.load(str(Path(args.out) / NORMALIZATION_FILE))
    vae = load_network(MotionVAE, args.out, VAE_FILE) if args.decoder_only else None
    try:
        train_vae(SpectralShardDataset(args.shards, augment=True), normalization, settings, args.out, runtime, vae=vae)
    finally:
        cleanup(runtime)


if __name__ == "__main__":
    main()
