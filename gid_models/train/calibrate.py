"""Per-frequency output gains and limits: sampled motion as strong, on average, as the training
motion, and never larger than any of it.

Why: the normalization's inverse squares the decoded slices (S = sign(n) n^2 s_k), so any shrinkage
of the normalized slices costs twice as much in amplitude. The motion VAE's decoder keeps about
0.65 of the RMS of a slice it round-trips, and DDIM samples of a denoiser trained on few examples
shrink further, so the shipped model's raw samples carried about 1% of the training power per bin.

Fit: sample the model (gains reset to 1, no loop guidance, the given steps and seeds) on the
pictures of the training shards and compare, per bin k, the mean power
P(k) = mean over examples and pixels of |S_k|^2 (Re and Im of x and y summed), pixels^2:
gains_k = sqrt(P_data(k) / P_sampled(k)). The sampler multiplies bin k of every volume it makes
(and what loop guidance sees) by gains_k. A gain changes the size of a bin's motion, never where
it is: the magnitude map's shape, and so its Spearman score, stay as they were.

Limits: L_k = the largest |Re| or |Im| of x or y motion of bin k over every pixel of every
training example, in pixels. After the gains, the sampler scales each pixel's four bin-k
coefficients down together (their direction kept) until the largest is at most L_k. Why: the
normalization's inverse squares, so a decoded outlier grows quadratically; the shipped model
made a few patches swing 35 to 60 px (the data's largest is 14 px in bin 0, 1 to 6 px above),
which the splatting renderer tears into a mosaic. Only those outliers change (about 0.03% of
pixel-bins on the bundled picture).

Command line (writes MODEL_DIR/calibration.safetensors and prints the per-bin table; `gid train`
runs it as its calibrate stage):
    gid calibrate --model MODEL_DIR --shards SHARDS [--steps 50] [--seeds 1] [--max-examples N]
    gid calibrate --model MODEL_DIR --shards SHARDS --limits-only   # refit the limits, keep the gains
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..cli import entry_point
from ..networks.motion_model import CALIBRATION_FILE, MotionModel
from ..sampling import DEFAULT_STEPS, sample_spectral_volume
from ..spectral import MotionError, SpectralVolume, power_spectrum
from .shards import SpectralShardDataset

LOGGER = logging.getLogger("gid.train")

MAX_GAIN = 100.0
"""Largest gain fitted: a bin the model leaves (nearly) still is not blown up from noise."""


def bin_power(volume: SpectralVolume) -> torch.Tensor:
    """(K,) float64 power per bin, pixels^2, averaged over the volume's batch (metrics.power_spectrum)."""
    return power_spectrum(volume).double().mean(0).cpu()


def fit_output_gains(
    model: MotionModel,
    dataset: Sequence[dict],
    *,
    steps: int = DEFAULT_STEPS,
    seeds: int = 1,
    max_examples: int | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, dict]:
    """Gains (K,) float32 and a record (per-bin powers, counts) from the model's raw samples on the
    first max_examples examples of dataset (all when None), seeds 0..seeds-1 each. The model's gains
    and limits are reset to none first, and left so. Items are the training dicts
    {"image" (3, H, W) 0..1, "coeffs" (K, 4, H, W) pixels, "num_frames", "fps"}; give an
    unaugmented dataset."""
    if len(dataset) == 0:
        raise ValueError("calibration needs at least one training example.")
    count = len(dataset) if max_examples is None else min(max_examples, len(dataset))
    model.set_output_gains(torch.ones(model.num_frequencies))
    model.set_output_limits(torch.full((model.num_frequencies,), math.inf))
    data_power = torch.zeros(model.num_frequencies, dtype=torch.float64)
    sampled_power = torch.zeros_like(data_power)
    done, total = 0, count * seeds
    for index in range(count):
        item = dataset[index]
        truth = SpectralVolume(item["coeffs"][None], num_frames=int(item["num_frames"]), fps=float(item["fps"]))
        if truth.num_frequencies != model.num_frequencies:
            raise ValueError(f"the shards hold K={truth.num_frequencies}, the model K={model.num_frequencies}.")
        data_power += bin_power(truth)
        picture = item["image"][None].to(model.compute_device())
        for seed in range(seeds):
            with torch.no_grad():
                sampled, _ = sample_spectral_volume(
                    model, picture, seed=seed, steps=steps, num_frames=truth.num_frames, fps=truth.fps)
            sampled_power += bin_power(sampled) / seeds
            done += 1
            if callback is not None:
                callback(done, total)
    ratio = data_power / sampled_power.clamp_min(1e-30)
    gains = ratio.sqrt().clamp(1.0 / MAX_GAIN, MAX_GAIN).float()
    record = {
        "examples": count, "seeds": seeds, "steps": steps,
        "data_power_px2": [round(float(p) / count, 6) for p in data_power],
        "sampled_power_px2": [round(float(p) / count, 8) for p in sampled_power],
        "gains": [round(float(g), 4) for g in gains],
    }
    return gains, record


def fit_output_limits(dataset: Sequence[dict]) -> torch.Tensor:
    """Limits (K,) float32, pixels: per bin, the largest |coefficient| (Re or Im, x or y) over every
    pixel of every example of dataset (unaugmented training dicts, "coeffs" (K, 4, H, W) pixels)."""
    if len(dataset) == 0:
        raise ValueError("calibration needs at least one training example.")
    limits = None
    for index in range(len(dataset)):
        peak = dataset[index]["coeffs"].float().abs().amax(dim=(1, 2, 3))
        limits = peak if limits is None else torch.maximum(limits, peak)
    # A bin that never moves in the data still gets a tiny positive limit, not a zero that stills it outright.
    return limits.clamp_min(1e-3)


def record_limits(record: dict, limits: torch.Tensor, examples: int) -> dict:
    """The record with the limits (pixels) and how many examples they were taken over."""
    return {**record, "limits_px": [round(float(v), 4) for v in limits], "limit_examples": examples}


def fit_calibration(model: MotionModel, dataset: Sequence[dict], **sampling) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(gains (K,), limits (K,) pixels, record): fit_output_gains with the given sampling keywords
    (steps, seeds, max_examples, callback) and fit_output_limits on every example."""
    gains, record = fit_output_gains(model, dataset, **sampling)
    limits = fit_output_limits(dataset)
    return gains, limits, record_limits(record, limits, len(dataset))


def write_calibration(directory: str | Path, gains: torch.Tensor, limits: torch.Tensor, record: dict) -> Path:
    """directory/calibration.safetensors: tensors "output_gains" and "output_limits" (K,), the record
    as metadata."""
    from safetensors.torch import save_file

    path = Path(directory) / CALIBRATION_FILE
    tensors = {"output_gains": gains.float().cpu().contiguous(), "output_limits": limits.float().cpu().contiguous()}
    save_file(tensors, str(path), metadata={"record": json.dumps(record)})
    return path


def read_calibration_record(directory: str | Path) -> dict:
    """The record stored in directory/calibration.safetensors ({} when there is none)."""
    from safetensors import safe_open

    path = Path(directory) / CALIBRATION_FILE
    if not path.is_file():
        return {}
    with safe_open(str(path), framework="pt") as handle:
        return json.loads((handle.metadata() or {}).get("record", "{}"))


def format_table(record: dict) -> str:
    """The per-bin table the command prints."""
    lines = ["bin  data power (px^2)  sampled power (px^2)  gain  limit (px)"]
    rows = zip(record["data_power_px2"], record["sampled_power_px2"], record["gains"], record["limits_px"])
    for k, (data, sampled, gain, limit) in enumerate(rows):
        lines.append(f"{k:>3}  {data:>17.6f}  {sampled:>20.8f}  {gain:>6.2f}  {limit:>10.3f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gid calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model folder (the shipped layout); calibration.safetensors is written there")
    parser.add_argument("--shards", required=True, nargs="+", help="training shard folders or files (never the validation split) and/or gid scenes "
                        "folders (their training seeds)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="DDIM steps per sample (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=1, help="samples per example (default %(default)s)")
    parser.add_argument("--max-examples", type=int, default=None, help="use only the first N examples")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--limits-only", action="store_true",
                        help="refit only the limits (seconds, no sampling) and keep the model's fitted gains")
    return parser


@entry_point("gid calibrate")
def main(argv: Sequence[str] | None = None) -> int:
    from tqdm import tqdm

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = MotionModel.load_directory(args.model).to(device)
    dataset = SpectralShardDataset(args.shards, augment=False)
    start = time.perf_counter()
    if args.limits_only:
        record = read_calibration_record(args.model)
        if not model.calibrated or "gains" not in record:
            raise MotionError(f"{args.model} has no fitted gains to keep; run without --limits-only.")
        gains, limits = model.output_gains.clone(), fit_output_limits(dataset)
        record = record_limits(record, limits, len(dataset))
    else:
        with tqdm(total=(min(len(dataset), args.max_examples or math.inf)) * args.seeds, desc="calibrate", unit="sample") as bar:
            gains, limits, record = fit_calibration(
                model, dataset, steps=args.steps, seeds=args.seeds, max_examples=args.max_examples,
                callback=lambda done, total: bar.update(done - bar.n))
        record["seconds"] = round(time.perf_counter() - start, 1)
    path = write_calibration(args.model, gains, limits, record)
    print(format_table(record))
    print(f"wrote {path} (gains: {record['examples']} examples x {record['seeds']} seeds, {record['steps']} steps, "
          f"{record['seconds']} s; limits: {record['limit_examples']} examples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
