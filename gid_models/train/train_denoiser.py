"""Train the frequency-coordinated denoiser (paper notes, section 3).

    python -m gid_models.train.train_denoiser --shards DATA/ --out MODEL_DIR --stage 1
    python -m gid_models.train.train_denoiser --shards DATA/ --out MODEL_DIR --stage 2
    torchrun --nproc_per_node 8 -m gid_models.train.train_denoiser ...   (multi-GPU, DDP)

MODEL_DIR must hold normalization.safetensors and the trained motion VAE. Stage 1 trains the 2D
U-Net on `slices_per_example` random single slices per example (frequency attention off); stage
2 loads it, freezes its 2D weights and trains only the frequency attention on all K slices.
Loss: MSE on the noise (Eq. 3). Optionally (`snr_gamma` > 0) each example is weighted by
min(SNR_t, gamma) / SNR_t ("min-SNR-gamma", Hang et al. 2023), which stops the low-noise steps
from dominating the loss; off by default: on our 32-example CPU run it did not improve the
validation figures (MODEL_CARD.md, "Experiments that did not ship"). The picture is dropped to
zeros 10% of the time so classifier-free guidance works. Writes denoiser.json +
denoiser.safetensors, losses to denoiser_stage{N}_losses.csv and resumable checkpoints to
checkpoints/denoiser_stage{N}/.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..networks.denoiser import MotionDenoiser
from ..networks.motion_model import (
    DENOISER_FILE, NORMALIZATION_FILE, VAE_FILE, MotionModel, load_network, save_network, size_configs,
)
from ..networks.vae import MotionVAE
from ..normalization import FrequencyNormalization
from ..sampling.ddim import make_scheduler
from .conditioned import optimizer_groups, use_cached_features, with_image_conditioning
from .common import CsvLog, Runtime, autocast, batches, cleanup, load_checkpoint, save_checkpoint, setup_runtime, wrap_ddp
from .validation import fixed_noise_loss
from .volume_smoothing import training_slices

LOGGER = logging.getLogger(__name__)


@dataclass
class DenoiserTraining:
    """Settings; steps and batch size are per process."""

    stage: int = 1
    steps: int = 100000
    batch_size: int = 8
    learning_rate: float = 1e-4
    slices_per_example: int = 4
    condition_dropout: float = 0.1
    snr_gamma: float = 0.0  # min-SNR-gamma loss weighting (5 is the usual value); 0 = plain MSE
    log_every: int = 50
    save_every: int = 1000
    seed: int = 0
    val_every: int = 250  # fixed-noise loss on train and validation examples (validation.py)
    new_layer_lr_scale: float = 10.0  # learning rate of the v2 picture conditioning's layers, x learning_rate


def _pick_slices(slices: torch.Tensor, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """count random distinct bins per example of (B, K, C, H, W): (B, count, C, H, W) and the bins (B, count)."""
    batch, k = slices.shape[:2]
    picks = torch.stack([torch.randperm(k, generator=generator)[: min(count, k)] for _ in range(batch)])
    picks = picks.to(slices.device)
    chosen = torch.gather(slices, 1, picks.view(*picks.shape, 1, 1, 1).expand(-1, -1, *slices.shape[2:]))
    return chosen, picks


def _stage_bins(slices: torch.Tensor, settings: DenoiserTraining, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Slices (B, K, ...) a stage trains on and their bins (B, k): random single slices in stage 1, all K in 2."""
    if settings.stage == 1:
        return _pick_slices(slices, settings.slices_per_example, generator)
    batch_size, k = slices.shape[:2]
    return slices, torch.arange(k, device=slices.device).expand(batch_size, k)


def denoiser_step_loss(model: MotionModel, network: torch.nn.Module, batch: dict, settings: DenoiserTraining,
                       generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Noise-prediction MSE of one batch (network: the denoiser, maybe DDP-wrapped)."""
    if "latents" in batch:  # a LatentCacheDataset batch: the VAE's work is already done
        latents, bins = _stage_bins(batch["latents"].float().to(device), settings, generator)
        return _noise_prediction_loss(network, latents, batch["image"].float().to(device), bins, settings,
                                      generator, device, batch.get("features"))
    factor = model.downsample_factor
    height, width = batch["coeffs"].shape[-2:]
    crop_h, crop_w = height - height % factor, width - width % factor
    if crop_h == 0 or crop_w == 0:
        raise ValueError(f"training examples of {width}x{height} are smaller than the model factor {factor}.")
    coeffs = batch["coeffs"].float().to(device)[..., :crop_h, :crop_w]
    image = batch["image"].float().to(device)[..., :crop_h, :crop_w]
    normalized, bins = _stage_bins(training_slices(model, coeffs), settings, generator)
    with torch.no_grad():
        latents = model.encode(normalized)
    return _noise_prediction_loss(network, latents, image, bins, settings, generator, device)


def _noise_prediction_loss(network: torch.nn.Module, latents: torch.Tensor, image: torch.Tensor, bins: torch.Tensor,
                           settings: DenoiserTraining, generator: torch.Generator, device: torch.device,
                           features: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Eq. 3 on clean latents (B, k, c, h, w) of the frequency bins (B, k), picture (B, 3, H, W) 0..1;
    features: the picture's cached encoder maps (conditioned denoisers; None = run the encoder)."""
    batch_size = latents.shape[0]
    scheduler = make_scheduler()
    timesteps = torch.randint(scheduler.config.num_train_timesteps, (batch_size,), generator=generator).to(device)
    noise = torch.randn(latents.shape, generator=generator).to(device)
    alphas = scheduler.alphas_cumprod.to(device)[timesteps].view(-1, 1, 1, 1, 1)
    noisy = alphas.sqrt() * latents + (1 - alphas).sqrt() * noise
    keep = (torch.rand(batch_size, generator=generator) >= settings.condition_dropout).to(device)
    condition = (image * 2 - 1) * keep.view(-1, 1, 1, 1)  # dropped = all zeros, the sampler's empty pass
    if features is not None:
        use_cached_features(getattr(network, "module", network), condition, features, keep)
    with autocast(device):
        prediction = network(noisy, timesteps, condition, bins, use_frequency_attention=settings.stage == 2)
    per_example = (prediction.float() - noise).square().flatten(1).mean(1)
    return (min_snr_weights(alphas.flatten(), settings.snr_gamma) * per_example).mean()


def min_snr_weights(alphas_cumprod: torch.Tensor, gamma: float) -> torch.Tensor:
    """min(SNR, gamma) / SNR per example for noise prediction, SNR = alpha_bar / (1 - alpha_bar);
    all ones when gamma is 0."""
    if gamma <= 0:
        return torch.ones_like(alphas_cumprod)
    snr = alphas_cumprod / (1 - alphas_cumprod)
    return snr.clamp(max=gamma) / snr


def _log_validation(log: CsvLog, model: MotionModel, train_set: Dataset, val_set: Dataset, step: int,
                    settings: DenoiserTraining, device: torch.device) -> None:
    """One row of fixed-noise losses on the training and validation examples (their gap = overfitting)."""
    train_loss = fixed_noise_loss(model, train_set, stage=settings.stage, device=device)
    val_loss = fixed_noise_loss(model, val_set, stage=settings.stage, device=device)
    log.write(step=step, train_fixed_noise=train_loss, val_fixed_noise=val_loss)
    LOGGER.info("denoiser stage %d step %d fixed-noise loss: train %.4f, validation %.4f",
                settings.stage, step, train_loss, val_loss)


def train_denoiser(dataset: Dataset, model: MotionModel, settings: DenoiserTraining,
                   out_dir: str | Path | None = None, runtime: Runtime | None = None,
                   val_dataset: Dataset | None = None, train_eval_dataset: Dataset | None = None) -> MotionModel:
    """Train stage 1 or 2 of model.denoiser in place (its VAE and normalization stay fixed).
    With val_dataset (un-augmented validation examples) and out_dir, every settings.val_every
    steps writes the fixed-noise loss of training examples (train_eval_dataset: the training
    set without augmentation; default dataset) and validation examples to
    denoiser_stage{N}_validation.csv."""
    if settings.stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {settings.stage}.")
    runtime = runtime or setup_runtime()
    torch.manual_seed(settings.seed)
    model = model.to(runtime.device)
    model.vae.eval().requires_grad_(False)
    denoiser = model.denoiser.train()
    if settings.stage == 2:
        denoiser.freeze_spatial()
    else:
        denoiser.requires_grad_(True)
        for module in denoiser.frequency_attention_modules():
            module.requires_grad_(False)
    trainable = [p for p in denoiser.parameters() if p.requires_grad]
    groups = optimizer_groups(denoiser, settings.learning_rate, settings.new_layer_lr_scale)
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate, weight_decay=0.0)
    out_dir = Path(out_dir) if out_dir is not None else None
    name = f"denoiser_stage{settings.stage}"
    checkpoint = out_dir / "checkpoints" / name if out_dir is not None else None
    start = load_checkpoint(checkpoint, denoiser, optimizer) if checkpoint is not None else 0
    log = CsvLog(out_dir / f"{name}_losses.csv", enabled=runtime.is_main) if out_dir is not None else None
    network = wrap_ddp(denoiser, runtime)
    generator = torch.Generator().manual_seed(settings.seed + 1000 * runtime.rank + start)
    stream = batches(dataset, settings.batch_size, runtime, seed=settings.seed + start)
    val_log = None
    if val_dataset is not None and out_dir is not None and runtime.is_main and len(val_dataset) > 0:
        val_log = CsvLog(out_dir / f"{name}_validation.csv")
    for step in range(start, settings.steps):
        if val_log is not None and step % settings.val_every == 0:
            _log_validation(val_log, model, train_eval_dataset or dataset, val_dataset, step, settings, runtime.device)
        loss = denoiser_step_loss(model, network, next(stream), settings, generator, runtime.device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        if log is not None and (step % settings.log_every == 0 or step == settings.steps - 1):
            log.write(step=step, loss=loss.item())
            LOGGER.info("%s step %d loss %.4f", name, step, loss.item())
        if checkpoint is not None and runtime.is_main and (step + 1) % settings.save_every == 0:
            save_checkpoint(checkpoint, denoiser, optimizer, step + 1)
    if val_log is not None and settings.steps > start:
        _log_validation(val_log, model, train_eval_dataset or dataset, val_dataset, settings.steps, settings,
                        runtime.device)
    denoiser.requires_grad_(True)
    denoiser.eval()
    if out_dir is not None and runtime.is_main:
        if checkpoint is not None and settings.steps > start:
            save_checkpoint(checkpoint, denoiser, optimizer, settings.steps)
        save_network(denoiser, out_dir, DENOISER_FILE, torch.float32)
    return model


def new_stage1_model(out_dir: Path, size: str, sample_size: tuple[int, int]) -> MotionModel:
    """An untrained denoiser of the given size around the trained VAE and normalization in out_dir."""
    vae = load_network(MotionVAE, out_dir, VAE_FILE)
    normalization = FrequencyNormalization.load(str(out_dir / NORMALIZATION_FILE))
    config = size_configs(size)[1]
    config["image_patch"] = vae.downsample_factor
    denoiser = MotionDenoiser(num_frequencies=normalization.num_frequencies, sample_size=sample_size, **config)
    return MotionModel(vae, denoiser, normalization)


def add_conditioning_arguments(parser: argparse.ArgumentParser) -> None:
    """The motion model v2 options (picture conditioning), shared with `gid train`."""
    parser.add_argument("--image-features", choices=["efficientnet-lite0"], default=None,
                        help="add frozen-encoder picture conditioning to the denoiser (v2); new layers start at zero")
    parser.add_argument("--image-feature-injection", choices=["film", "add"], default="film",
                        help="how the picture features enter the U-Net (default film)")
    parser.add_argument("--new-layer-lr-scale", type=float, default=DenoiserTraining.new_layer_lr_scale,
                        help="learning rate of the picture conditioning's layers, as a multiple of --lr (default 10)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", nargs="+", required=True,
                        help="shard files or folders (gid prepare output) and/or gid scenes folders (their training seeds)")
    parser.add_argument("--out", required=True, help="model folder with normalization + motion VAE")
    defaults = DenoiserTraining()
    parser.add_argument("--stage", type=int, choices=[1, 2], default=1)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--size", choices=["default", "cpu", "tiny"], default="cpu", help="new stage-1 U-Net size")
    parser.add_argument("--height", type=int, default=160, help="training picture height (pixels)")
    parser.add_argument("--width", type=int, default=256, help="training picture width (pixels)")
    parser.add_argument("--snr-gamma", type=float, default=defaults.snr_gamma,
                        help="min-SNR-gamma loss weighting, e.g. 5 (default 0: plain noise MSE)")
    parser.add_argument("--save-every", type=int, default=defaults.save_every)
    parser.add_argument("--val-shards", nargs="*", default=None,
                        help="validation shards and/or gid scenes folders (their held-out seeds): fixed-noise loss on "
                             "them and on training examples every --val-every steps")
    parser.add_argument("--val-every", type=int, default=defaults.val_every)
    parser.add_argument("--export", default=None, help="also write a single gid_motion_*.safetensors file (fp16)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--cache-latents", action="store_true",
                        help="encode every example (4 flip/time-reversal variants) once instead of every step: "
                             "about twice as fast on a CPU, about 2.6 MB of memory per 256x160 example")
    parser.add_argument("--latent-store", default=None,
                        help="keep those cached latents in this folder on disk instead of memory (implies "
                             "--cache-latents): encoded once per model, reused by later runs, stage 2 and restarts; "
                             "about 4 MB of disk per 256x160 example")
    add_conditioning_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from .shards import SpectralShardDataset

    if args.latent_store:
        from .latent_store import check_store_folder

        check_store_folder(args.latent_store)
    runtime = setup_runtime(args.device)
    out = Path(args.out)
    settings = DenoiserTraining(stage=args.stage, steps=args.steps, batch_size=args.batch_size,
                                learning_rate=args.lr, snr_gamma=args.snr_gamma, save_every=args.save_every,
                                val_every=args.val_every, new_layer_lr_scale=args.new_layer_lr_scale)
    dataset = SpectralShardDataset(args.shards, augment=True)
    if args.stage == 2 or (out / f"{DENOISER_FILE}.json").is_file():
        model = MotionModel.load_directory(out)
    else:
        model = new_stage1_model(out, args.size, (args.height, args.width))
    if args.image_features:
        model.denoiser = with_image_conditioning(model.denoiser, args.image_features, args.image_feature_injection)
    if args.cache_latents or args.latent_store:
        from .latent_cache import LatentCacheDataset

        dataset = LatentCacheDataset(SpectralShardDataset(args.shards), model.to(runtime.device), device=runtime.device,
                                     store=args.latent_store, progress=args.latent_store is not None)
    try:
        val_dataset = SpectralShardDataset(args.val_shards, split="held_out") if args.val_shards else None
        model = train_denoiser(dataset, model, settings, out, runtime, val_dataset=val_dataset,
                               train_eval_dataset=SpectralShardDataset(args.shards))
        if args.export and runtime.is_main:
            model.save_file(args.export)
    finally:
        cleanup(runtime)


if __name__ == "__main__":
    main()
