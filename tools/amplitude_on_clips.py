"""Motion-amplitude networks against the measured motion of clips: where and how much.

    python -m tools.amplitude_on_clips CLIP [CLIP ...] --networks A.safetensors [B.safetensors ...]
        [--frames 150] [--size 256x160] [--frequencies 16] [--boxes BOXES.json] [--maps MAPS.png|.jpg]

Each clip's ground truth is made as `gid eval` makes it (first T frames, centre crop to the size,
optical flow from frame 0, drifting pixels zeroed). Each network sees frame 0 and predicts its log
amplitude per bin and axis on the 8 x 8 grid; printed per clip and network:
- Spearman of the predicted total-magnitude map with the truth's, cell by cell (where it moves);
- log10 of the predicted over the true power of bins 1..K-1, mean over the picture (how much;
  0 is right).
The sampler imposes these amplitudes on the diffusion sample, so this says, in seconds per clip,
what `gid eval` will find for the amplitude part of the model.

--boxes: a JSON object {clip file name: [[x0, y0, x1, y1], ...]} of boxes in pixels of the
--size frame (hand-drawn around the film's characters, say). Per clip it prints the boxes' share
of the area and of the true power (bins 1..K-1), and each network's Spearman on the cells outside
them. --maps: a picture (PNG or JPEG) with one row per clip: frame 0, the true map, each network's map (each map
stretched to its own log range, white = most motion; boxes outlined in red; .png or .jpg).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

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


def read_boxes(path: Path) -> dict[str, list[list[int]]]:
    """{clip file name: [[x0, y0, x1, y1], ...]} from a JSON file; ValueError when malformed."""
    boxes = json.loads(path.read_text())
    if not isinstance(boxes, dict):
        raise ValueError("expected a JSON object {clip file name: [[x0, y0, x1, y1], ...]}")
    for name, clip_boxes in boxes.items():
        for box in clip_boxes if isinstance(clip_boxes, list) else [None]:
            if (not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, int) for v in box)
                    or box[0] >= box[2] or box[1] >= box[3]):
                raise ValueError(f"{name}: box {box} is not [x0, y0, x1, y1] integers with x0 < x1, y0 < y1")
    return boxes


def box_mask(boxes: list[list[int]], height: int, width: int) -> torch.Tensor:
    """(height, width) bool: True inside any of the boxes [x0, y0, x1, y1] (pixels, end excluded)."""
    inside = torch.zeros(height, width, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        inside[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)] = True
    return inside


def power_share(coeffs: torch.Tensor, inside: torch.Tensor) -> float:
    """Share of the true power of bins 1..K-1 (coeffs (1, K, 4, H, W) px) that lies where inside (H, W)."""
    power = coeffs[0, 1:].pow(2).sum(dim=(0, 1))
    total = float(power.sum())
    return float(power[inside].sum()) / total if total > 0 else 0.0


def outside_cells(inside: torch.Tensor) -> torch.Tensor:
    """(H/8, W/8) bool: the 8 x 8 cells less than half covered by inside (H, W)."""
    return F.avg_pool2d(inside[None, None].float(), 8)[0, 0] < 0.5


def map_image(log_map: torch.Tensor, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 grey picture of a (h, w) cell map, stretched to its own range."""
    values = log_map.numpy()
    spread = values.max() - values.min()
    scaled = (values - values.min()) / spread if spread > 0 else np.zeros_like(values)
    grey = cv2.resize((scaled * 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return np.repeat(grey[..., None], 3, axis=2)


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
    parser.add_argument("--boxes", help="JSON {clip file name: [[x0, y0, x1, y1], ...]} in pixels of the --size frame")
    parser.add_argument("--maps", help="write a PNG or JPEG of frame 0, the true map and each network's map per clip")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    if width % 8 or height % 8:
        sys.stderr.write(f"amplitude_on_clips: --size {args.size} must be multiples of 8.\n")
        return 2
    boxes: dict[str, list[list[int]]] = {}
    if args.boxes:
        try:
            boxes = read_boxes(Path(args.boxes))
        except (OSError, ValueError) as error:
            sys.stderr.write(f"amplitude_on_clips: cannot read --boxes {args.boxes}: {error}\n")
            return 2
    if args.maps and (not args.maps.lower().endswith((".png", ".jpg")) or not Path(args.maps).resolve().parent.is_dir()):
        sys.stderr.write(f"amplitude_on_clips: --maps {args.maps} must be a .png or .jpg file in an existing folder.\n")
        return 2
    networks = {Path(path).parent.name + "/" + Path(path).name: MotionAmplitudeNet.load(path).attach_encoder()
                for path in args.networks}
    print(f"{'clip':<28}{'network':<48}{'Spearman':>10}{'log10 power ratio':>20}")
    totals = {name: [] for name in networks}
    rows = []
    for clip in args.clips:
        picture, coeffs = clip_truth(Path(clip), width, height, args.frames, args.frequencies)
        inside = box_mask(boxes.get(Path(clip).name, []), height, width)
        truth = total_log_amplitude(cell_log_amplitude(coeffs))[0]
        images = [np.ascontiguousarray((picture[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)),
                  map_image(truth, width, height)]
        for name, network in networks.items():
            rho, ratio = compare(network, picture, coeffs)
            totals[name].append((rho, ratio))
            print(f"{Path(clip).name:<28}{name[-47:]:<48}{rho:>10.3f}{ratio:>20.2f}")
            if inside.any():
                cells = outside_cells(inside)
                with torch.no_grad():
                    predicted = total_log_amplitude(network(picture))[0]
                rho_outside = spearman(predicted[cells], truth[cells])
                print(f"{'':<28}{'  outside the boxes':<48}{rho_outside:>10.3f}")
            if args.maps:
                with torch.no_grad():
                    images.append(map_image(total_log_amplitude(network(picture))[0], width, height))
        if inside.any():
            print(f"{'':<28}boxes: {float(inside.float().mean()):.0%} of the area, "
                  f"{power_share(coeffs, inside):.0%} of the true power")
        for image in images:
            for x0, y0, x1, y1 in boxes.get(Path(clip).name, []):
                cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), (255, 0, 0), 1)
        rows.append(np.concatenate(images, axis=1))
    if args.maps:
        cv2.imwrite(args.maps, cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
        print(f"maps: {args.maps}")
    for name, scores in totals.items():
        values = np.array(scores)
        print(f"{'mean':<28}{name[-47:]:<48}{values[:, 0].mean():>10.3f}{values[:, 1].mean():>20.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
