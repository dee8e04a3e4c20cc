"""How much of a spectral volume survives the motion model's VAE, channel by channel.

    python -m tools.vae_roundtrip --model MODEL_DIR --scenes SCENES_DIR [--count 20]
    python -m tools.vae_roundtrip --scenes SCENES_DIR        # the bundled model

For the first `count` held-out records of a `gid scenes` folder (exact motion, never trained on),
each volume is normalized with the model's own scales (paper Eq. 4), encoded to the posterior
mean, decoded and denormalized: exactly the codec the sampler decodes through. Printed per
channel (Re x, Im x, Re y, Im y), as medians over the records, for bins 1..K-1:
- power kept: decoded power over true power (1 is right; the v1 VAE kept about 1 % of x);
- relative error: squared error over true power (0 is right, 1 is "nothing kept").
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from gid_models.networks import MotionModel
from gid_models.spectral import denormalize_tensor, normalize_tensor
from gid_models.train.scenes.records import list_records, read_record

CHANNELS = ("Re x", "Im x", "Re y", "Im y")


@torch.no_grad()
def channel_roundtrip(model: MotionModel, coeffs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """coeffs (K, 4, H, W) px -> (power kept (4,), relative squared error (4,)) over bins 1..K-1."""
    scales = model.normalization_scales
    truth = coeffs.float()[None]
    decoded = denormalize_tensor(model.decode(model.encode(normalize_tensor(truth, scales))), scales)[0]
    power = truth[0, 1:].square().mean(dim=(0, 2, 3)).clamp_min(1e-12)
    kept = decoded[1:].square().mean(dim=(0, 2, 3)) / power
    error = (decoded[1:] - truth[0, 1:]).square().mean(dim=(0, 2, 3)) / power
    return kept, error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="motion model folder or file (default: the bundled one)")
    parser.add_argument("--scenes", required=True, help="a `gid scenes` folder; its held-out records are used")
    parser.add_argument("--count", type=int, default=20, help="held-out records to use (default 20)")
    args = parser.parse_args(argv)
    records = list_records(args.scenes, "held_out")[: args.count]
    if not records:
        sys.stderr.write(f"vae_roundtrip: {args.scenes} holds no held-out scene records.\n")
        return 2
    model = (MotionModel.load(args.model) if args.model else MotionModel.from_bundled()).eval()
    rows = [channel_roundtrip(model, read_record(path)[1]) for path in records]
    kept = np.median(np.stack([r[0].numpy() for r in rows]), axis=0)
    error = np.median(np.stack([r[1].numpy() for r in rows]), axis=0)
    print(f"VAE round trip of {len(records)} held-out scenes ({args.model or 'bundled model'}); medians, bins 1..K-1")
    print(f"{'channel':<10}{'power kept':>12}{'relative error':>16}")
    for name, k, e in zip(CHANNELS, kept, error):
        print(f"{name:<10}{k:>12.3f}{e:>16.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
