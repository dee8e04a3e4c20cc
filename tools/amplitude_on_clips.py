"""Motion-amplitude networks against the measured motion of clips: where and how much.

    python -m tools.amplitude_on_clips CLIP [CLIP ...] --networks A.safetensors [B.safetensors ...]
        [--frames 150] [--size 256x160] [--frequencies 16]

Each clip's ground truth is made as `gid eval` makes it (first T frames, centre crop to the size,
optical flow from frame 0, drifting pixels zeroed). Each network sees frame 0 and predicts its log
amplitude per bin and axis on the 8 x 8 grid; printed per clip and network:
- Spearman of the predicted total-magnitude map with the truth's, cell by cell (where it moves);
- log10 of the predicted over the true power of bins 1..K-1, mean over the picture (how much;
  0 is right).
The sampler imposes these amplitudes on the diffusion sample, so this says, in seconds per clip,
what `gid eval` will find for the amplitude part of the model.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from gid_models.evaluation.metrics import spearman
from gid_models.evaluation.run import load_clip_frames
from gid_models.flow import spectral_volume_from_video
from gid_models.networks.motion_amplitude import MotionAmplitudeNet, cell_log_amplitude
from gid_models.train.shots import WindowThresholds, motion_stats, oscillation_mask, tracking_mismatch
from gid_models.train.train_amplitude import total_log_amplitude


def clip_truth(path: Path, width: int, height: int, num_frames: int, num_frequencies: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(frame 0 (1, 3, H, W) 0..1, true coefficients (1, K, 4, H, W) px with drift zeroed)."""
    frames, fps = load_clip_frames(path, width, height, num_frames)
    motion = spectral_volume_from_video(frames, fps, num_frequencies=num_frequencies)
    thresholds = WindowThresholds()
    mismatch = tracking_mismatch(frames, motion.trajectories, thresholds.mismatch_tolerance)
    mask = oscillation_mask(motion_stats(motion.trajectories), thresholds, width, mismatch)
    picture = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float() / 255.0
    return picture, motion.volume.coeffs * mask.to(motion.volume.coeffs)


@torch.no_grad()
def compare(network: MotionAmplitudeNet, picture: torch.Tensor, coeffs: torch.Tensor) -> tuple[float, float]:
    """(map Spearman, log10 predicted / true power of bins 1..K-1) of one network on one clip."""
    predicted = network(picture)
    truth = cell_log_amplitude(coeffs)
    rho = spearman(total_log_amplitude(predicted)[0], total_log_amplitude(truth)[0])
    # exp(2 log rms) per cell, summed over bins 1..K-1 and both axes, averaged over the cells: the
    # mean power per pixel (px^2), for the prediction and the truth alike
    true_power = float(torch.exp(2 * truth[0, 1:]).sum(dim=(0, 1)).mean())
    predicted_power = float(torch.exp(2 * predicted[0, 1:]).sum(dim=(0, 1)).mean())
    ratio = math.log10(max(predicted_power, 1e-12) / max(true_power, 1e-12))
    return rho, ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", help="video files")
    parser.add_argument("--networks", nargs="+", required=True, help="motion_amplitude.safetensors files")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", default="256x160", help="WIDTHxHEIGHT, multiples of 8")
    parser.add_argument("--frequencies", type=int, default=16)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    if width % 8 or height % 8:
        sys.stderr.write(f"amplitude_on_clips: --size {args.size} must be multiples of 8.\n")
        return 2
    networks = {Path(path).parent.name + "/" + Path(path).name: MotionAmplitudeNet.load(path).attach_encoder()
                for path in args.networks}
    print(f"{'clip':<28}{'network':<48}{'Spearman':>10}{'log10 power ratio':>20}")
    totals = {name: [] for name in networks}
    for clip in args.clips:
        picture, coeffs = clip_truth(Path(clip), width, height, args.frames, args.frequencies)
        for name, network in networks.items():
            rho, ratio = compare(network, picture, coeffs)
            totals[name].append((rho, ratio))
            print(f"{Path(clip).name:<28}{name[-47:]:<48}{rho:>10.3f}{ratio:>20.2f}")
    for name, rows in totals.items():
        values = np.array(rows)
        print(f"{'mean':<28}{name[-47:]:<48}{values[:, 0].mean():>10.3f}{values[:, 1].mean():>20.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
