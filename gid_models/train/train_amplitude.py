"""Training the motion-amplitude network (networks/motion_amplitude.py) on pictures with known motion.

    gid train-amplitude --out DIR --scenes SCENES_DIR... --shards SHARD_DIR... [--steps 1200]
        [--photos ../shared/data/pictures --masks ../shared/data/photo_masks]

Data: `gid scenes` records (DIR/scenes/scene-*.npz, exact motion) and `gid prepare` shards (film
shots, motion from optical flow). Every `held_out_every`-th scene seed is held out and scored,
never trained on. Each picture is seen as itself, mirrored, and in `colour_variants` colour- and
blur-jittered copies (rendered pictures are cleaner and more saturated than photographs); the
frozen encoder's features of every copy are computed once, before the first step, so a step
costs only the small network (milliseconds per batch on a CPU core).

Loss, per cell of the stride-8 grid where the motion is known (the example's mask): L1 between
predicted and true log amplitude of bins 1..K-1 and both axes, plus L1 of the log of the total
amplitude (the magnitude map the photo score ranks). Logged every `log_every` steps to
amplitude_losses.csv (train loss, held-out loss, held-out Spearman of the magnitude map, and the
real-photo AUC when --photos and --masks are given: a record, never used to choose the steps).
Resumable: DIR/checkpoint.pt holds the network, optimizer and step.
"""

from __future__ import annotations

import csv
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..evaluation.metrics import spearman
from ..evaluation.photo_score import find_photo_pairs, load_mask, map_auc
from ..networks.image_encoder import EfficientNetLite0Features, ImageFeatures
from ..networks.motion_amplitude import CELL, MotionAmplitudeNet, cell_log_amplitude
from ..spectral import MotionError
from .scenes.records import HELD_OUT_EVERY, is_held_out, read_record
from .shards import SpectralShardDataset, shard_paths

LOGGER = logging.getLogger(__name__)

LOG_FILE = "amplitude_losses.csv"
CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class AmplitudeTraining:
    out: Path
    scenes: list[Path] = field(default_factory=list)
    shards: list[Path] = field(default_factory=list)
    steps: int = 1200
    batch_size: int = 16
    learning_rate: float = 2e-3
    width: int = 16
    kernel_size: int = 3
    dropout: float = 0.5
    weight_decay: float = 0.1
    feature_levels: tuple[int, ...] = (0, 1, 2)
    film_share: float = 0.0
    """Share of every batch drawn from the shards' pictures (0: in proportion to their number)."""
    held_out_every: int = HELD_OUT_EVERY
    colour_variants: int = 3
    log_every: int = 100
    seed: int = 0
    photos: Path | None = None
    masks: Path | None = None


@dataclass
class Example:
    """One picture with known motion: picture (3, H, W) float 0..1, target (K, 2, h, w) log px,
    valid (h, w) bool (cells where the motion is known)."""
    name: str
    picture: torch.Tensor
    target: torch.Tensor
    valid: torch.Tensor


def _example(name: str, picture: torch.Tensor, coeffs: torch.Tensor, mask: torch.Tensor) -> Example:
    height, width = picture.shape[-2:]
    if height % CELL or width % CELL:
        raise MotionError(f"{name}: {width}x{height} is not a multiple of {CELL}; make the data at a size that is.")
    valid = F.avg_pool2d(mask.float().reshape(1, 1, height, width), CELL)[0, 0] > 0.5
    return Example(name, picture.float(), cell_log_amplitude(coeffs[None])[0], valid)


def load_examples(config: AmplitudeTraining) -> tuple[list[Example], list[Example]]:
    """(training examples, held-out scene examples) from the configured scene folders and shards."""
    train, held_out = [], []
    for folder in config.scenes:
        records = sorted(Path(folder, "scenes").glob("scene-*.npz"))
        if not records:
            raise MotionError(f"gid train-amplitude: {folder} holds no scenes/scene-*.npz records (make them with `gid scenes`).")
        for path in records:
            image, coeffs, mask, line = read_record(path)
            example = _example(path.stem, torch.from_numpy(image).permute(2, 0, 1) / 255.0, coeffs, torch.from_numpy(mask))
            (held_out if is_held_out(int(line["seed"]), config.held_out_every) else train).append(example)
    if config.shards:
        dataset = SpectralShardDataset(shard_paths(config.shards))
        for index in range(len(dataset)):
            item = dataset[index]
            train.append(_example(f"shard-{index}", item["image"], item["coeffs"], item["mask"][0]))
    if not train:
        raise MotionError("gid train-amplitude: no training examples; pass --scenes and/or --shards.")
    return train, held_out


def jitter_colour(picture: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """(3, H, W) 0..1 with random brightness, contrast, saturation, gamma and a light blur."""
    grey = picture.mean(dim=0, keepdim=True)
    out = grey + (picture - grey) * rng.uniform(0.5, 1.3)
    out = (out - out.mean()) * rng.uniform(0.7, 1.3) + out.mean()
    out = (out * rng.uniform(0.7, 1.3)).clamp(0, 1) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.5:
        sigma = rng.uniform(0.5, 1.5)
        radius = max(1, math.ceil(2 * sigma))
        kernel = torch.exp(-torch.arange(-radius, radius + 1).float().square() / (2 * sigma * sigma))
        kernel = kernel / kernel.sum()
        out = F.conv2d(F.pad(out[:, None], (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
        out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))[:, 0]
    return out.clamp(0, 1)


class FeatureBank:
    """Every training copy's (picture, encoder features, target, valid), computed once."""

    def __init__(self, encoder: EfficientNetLite0Features, examples: list[Example], colour_variants: int, seed: int):
        rng = random.Random(seed)
        self.items: list[tuple[torch.Tensor, ImageFeatures, torch.Tensor, torch.Tensor]] = []
        self.from_film: list[bool] = []
        for example in examples:
            for mirrored in (False, True):
                picture, target, valid = example.picture, example.target, example.valid
                if mirrored:
                    picture, target, valid = picture.flip(-1), target.flip(-1), valid.flip(-1)
                copies = [picture] + [jitter_colour(picture, rng) for _ in range(colour_variants)]
                for copy in copies:
                    self.items.append((copy, encode(encoder, copy[None]), target, valid))
                    self.from_film.append(example.name.startswith("shard-"))

    def draw(self, rng: random.Random, batch_size: int, film_share: float) -> list[int]:
        """batch_size indices; round(film_share * batch_size) of them film pictures when film_share > 0."""
        film = [i for i, is_film in enumerate(self.from_film) if is_film]
        if film_share <= 0 or not film or len(film) == len(self.items):
            return rng.sample(range(len(self.items)), batch_size)
        scenes = [i for i, is_film in enumerate(self.from_film) if not is_film]
        count = round(film_share * batch_size)
        return rng.sample(film, min(count, len(film))) + rng.sample(scenes, batch_size - min(count, len(film)))

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, ImageFeatures, torch.Tensor, torch.Tensor]:
        chosen = [self.items[i] for i in indices]
        features = ImageFeatures(*(torch.cat([c[1][level] for c in chosen]).float() for level in range(3)))
        return (torch.stack([c[0] for c in chosen]), features, torch.stack([c[2] for c in chosen]),
                torch.stack([c[3] for c in chosen]))


@torch.no_grad()
def encode(encoder: EfficientNetLite0Features, picture: torch.Tensor) -> ImageFeatures:
    """Encoder features (float16, to keep thousands of copies in memory) of (B, 3, H, W) 0..1."""
    return ImageFeatures(*(f.half() for f in encoder(picture * 2 - 1)))


def total_log_amplitude(log_amplitude: torch.Tensor) -> torch.Tensor:
    """(B, K, 2, h, w) log px per bin and axis -> (B, h, w) log of the magnitude over bins 1..K-1."""
    return 0.5 * torch.logsumexp(2 * log_amplitude[:, 1:].flatten(1, 2), dim=1)


def amplitude_loss(predicted: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Masked L1 over bins 1..K-1 and both axes plus masked L1 of the total (log px)."""
    weight = valid.float()
    count = weight.sum().clamp_min(1.0)
    per_bin = (predicted[:, 1:] - target[:, 1:]).abs().mean(dim=(1, 2))
    total = (total_log_amplitude(predicted) - total_log_amplitude(target)).abs()
    return ((per_bin + total) * weight).sum() / count


@torch.no_grad()
def held_out_scores(network: MotionAmplitudeNet, bank: FeatureBank) -> tuple[float, float]:
    """(mean loss, mean Spearman of the magnitude map over the valid cells) on the held-out copies."""
    losses, correlations = [], []
    for index in range(len(bank.items)):
        picture, features, target, valid = bank.batch([index])
        predicted = network.predict(features, picture)
        losses.append(float(amplitude_loss(predicted, target, valid)))
        keep = valid[0]
        ours, truth = total_log_amplitude(predicted)[0][keep], total_log_amplitude(target)[0][keep]
        if keep.sum() > 1 and ours.min() < ours.max() and truth.min() < truth.max():  # a constant map ranks nothing
            correlations.append(spearman(ours, truth))
    return float(np.mean(losses)), float(np.mean(correlations)) if correlations else math.nan


@torch.no_grad()
def photo_aucs(network: MotionAmplitudeNet, photos: list[tuple[str, torch.Tensor, np.ndarray]]) -> dict[str, float]:
    """{photo: ROC AUC of the predicted magnitude map against its mask} (photos with both classes)."""
    scores = {}
    for name, picture, mask in photos:
        value = map_auc(total_log_amplitude(network(picture[None]))[0], mask)
        if not math.isnan(value):
            scores[name] = value
    return scores


def load_photos(photos: Path, masks: Path, height: int = 160, max_width: int = 320) -> list[tuple[str, torch.Tensor, np.ndarray]]:
    """[(name, picture (3, h, w) 0..1 at about the working size, mask)] for every photo with a mask."""
    import cv2

    out = []
    for picture_path, mask_path in find_photo_pairs(Path(photos), Path(masks)):
        image = cv2.cvtColor(cv2.imread(str(picture_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        scale = math.sqrt(height * 256 / (image.shape[0] * image.shape[1]))
        h = max(CELL, round(image.shape[0] * scale / CELL) * CELL)
        w = max(CELL, min(max_width, round(image.shape[1] * scale / CELL) * CELL))
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        out.append((picture_path.stem, torch.from_numpy(image).permute(2, 0, 1).float() / 255.0, load_mask(mask_path)))
    return out


def _log_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


@dataclass
class AmplitudeData:
    """Everything a run trains and scores on, built once (the encoder pass is the slow part)."""
    encoder: EfficientNetLite0Features
    bank: FeatureBank
    held_out: FeatureBank | None
    photos: list
    num_frequencies: int
    start_log_amplitude: float


def prepare_data(config: AmplitudeTraining) -> AmplitudeData:
    train, held_out = load_examples(config)
    LOGGER.info("gid train-amplitude: %d training and %d held-out pictures", len(train), len(held_out))
    photos = load_photos(config.photos, config.masks) if config.photos and config.masks else []  # fails before the slow pass
    encoder = EfficientNetLite0Features.load()
    return AmplitudeData(
        encoder=encoder,
        bank=FeatureBank(encoder, train, config.colour_variants, config.seed),
        held_out=FeatureBank(encoder, held_out, 0, config.seed) if held_out else None,
        photos=photos,
        num_frequencies=train[0].target.shape[0],
        start_log_amplitude=float(torch.stack([e.target[1:][:, :, e.valid].median() for e in train]).median()),
    )


def one_cycle(optimizer: torch.optim.Optimizer, peak: float, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """One-cycle learning rate over `steps` optimizer steps, warming up for 5 % of them; a run too
    short for a warm-up and a decay of at least 2 steps each (fewer than 4 steps) keeps `peak`."""
    if steps < 4:
        for group in optimizer.param_groups:
            group["lr"] = peak
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    # OneCycleLR divides by its warm-up's length in steps minus one: it must be at least 2 steps.
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, peak, total_steps=steps, pct_start=max(0.05, 2 / steps))


def train_amplitude(config: AmplitudeTraining, progress: bool = True, data: AmplitudeData | None = None) -> MotionAmplitudeNet:
    """Train (or resume) the network in config.out; writes motion_amplitude.safetensors there.
    data: prepared by prepare_data (built from config when None)."""
    from tqdm import tqdm

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    data = prepare_data(config) if data is None else data
    bank, held_bank, photos = data.bank, data.held_out, data.photos
    num_frequencies, start_log = data.num_frequencies, data.start_log_amplitude
    network = MotionAmplitudeNet(num_frequencies=num_frequencies, width=config.width, initial_log_amplitude=start_log,
                                 kernel_size=config.kernel_size, dropout=config.dropout,
                                 feature_levels=tuple(config.feature_levels))
    network.attach_encoder(data.encoder)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    scheduler = one_cycle(optimizer, config.learning_rate, config.steps)
    step = 0
    checkpoint = out / CHECKPOINT_FILE
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        planned = state["scheduler"].get("total_steps", config.steps)
        if planned != config.steps:
            raise MotionError(f"gid train-amplitude: {checkpoint} is a run of {planned} steps, whose one-cycle "
                              f"learning rate cannot stretch to {config.steps}; resume it with --steps {planned} "
                              "or start a new --out folder.")
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
        LOGGER.info("resuming from step %d", step)
    rng = random.Random(config.seed + step)
    running = []
    with tqdm(total=config.steps, initial=step, unit="step", desc="amplitude", disable=not progress) as bar:
        while step < config.steps:
            network.train()
            picture, features, target, valid = bank.batch(bank.draw(rng, config.batch_size, config.film_share))
            loss = amplitude_loss(network.predict(features, picture), target, valid)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running.append(float(loss.detach()))
            step += 1
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                network.eval()
                row = {"step": step, "train_loss": float(np.mean(running))}
                running = []
                if held_bank is not None:
                    row["held_out_loss"], row["held_out_spearman"] = held_out_scores(network, held_bank)
                if photos:
                    aucs = photo_aucs(network, photos)
                    row["photo_auc_mean"] = float(np.mean(list(aucs.values())))
                    row["photo_auc_min"] = float(min(aucs.values()))
                _log_row(out / LOG_FILE, row)
                bar.set_postfix({k: round(v, 3) for k, v in row.items() if k != "step"})
                torch.save({"network": network.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "step": step}, checkpoint)
    network.eval()
    network.save(out / "motion_amplitude.safetensors")
    return network
