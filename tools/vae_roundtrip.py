"""How much of a spectral volume survives the motion model's VAE, channel by channel.

    python -m tools.vae_roundtrip --model MODEL_DIR --scenes SCENES_DIR [--count 20]
    python -m tools.vae_roundtrip --scenes SCENES_DIR        # the bundled model
    python -m tools.vae_roundtrip --run RUN_DIR --scenes SCENES_DIR [--normalized]
    python -m tools.vae_roundtrip --clips CLIP [CLIP ...]   # flow-measured motion of video clips

For the first `count` held-out records of a `gid scenes` folder (exact motion, never trained on),
or for clips (their motion measured by optical flow from frame 0 as `gid eval` measures it), each
volume is normalized with the model's own scales (paper Eq. 4), encoded to the posterior
mean, decoded and denormalized: exactly the codec the sampler decodes through. Printed per
channel (Re x, Im x, Re y, Im y), as medians over the records, for bins 1..K-1:
- power kept: decoded power over true power (1 is right; the v1 VAE kept about 1 % of x);
- relative error: squared error over true power (0 is right, 1 is "nothing kept").

--run: a `gid train --out` folder mid-training: its latest VAE checkpoint (checkpoints/vae/, or
with --checkpoint vae_decoder a decoder-only fine-tune's) and its normalization take the place of
the model's; give its --vae-smooth as --smooth. --raw-truth: score such a smoothing VAE against
the exact volumes instead (the blur's loss and the VAE's together). --normalized: compare in
normalized units (what the VAE is trained on), not pixels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from gid_models.networks import MotionModel
from gid_models.normalization import FrequencyNormalization, denormalize_tensor, normalize_tensor
from gid_models.train.scenes.records import list_records, read_record
from gid_models.train.volume_smoothing import training_slices
from tools.amplitude_on_clips import clip_truth

CHANNELS = ("Re x", "Im x", "Re y", "Im y")


@torch.no_grad()
def channel_roundtrip(model: MotionModel, coeffs: torch.Tensor, normalized: bool = False,
                      raw_truth: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """coeffs (K, 4, H, W) px -> (power kept (4,), relative squared error (4,)) over bins 1..K-1,
    in pixels or (normalized=True) in the model's normalized units. A VAE trained on smoothed
    volumes gets the blurred volume and is scored against it (what it was taught to give back),
    or with raw_truth against the exact volume (the blur's loss and the VAE's together)."""
    scales = model.normalization_scales
    truth = training_slices(model, coeffs.float()[None])
    decoded = model.decode(model.encode(truth))[0]
    if raw_truth:
        truth = normalize_tensor(coeffs.float()[None], scales)
    if not normalized:
        truth, decoded = denormalize_tensor(truth, scales), denormalize_tensor(decoded, scales)
    power = truth[0, 1:].square().mean(dim=(0, 2, 3)).clamp_min(1e-12)
    kept = decoded[1:].square().mean(dim=(0, 2, 3)) / power
    error = (decoded[1:] - truth[0, 1:]).square().mean(dim=(0, 2, 3)) / power
    return kept, error


def use_run_checkpoint(model: MotionModel, run: Path, name: str = "vae") -> int:
    """Put RUN/checkpoints/NAME/weights.safetensors and RUN/normalization.safetensors into model
    (NAME "vae", or "vae_decoder" for a decoder-only fine-tune).
    Returns the checkpoint's step; OSError / RuntimeError / ValueError / SafetensorError when they
    are missing, corrupt or do not fit the model's VAE."""
    checkpoint = run / "checkpoints" / name
    if not (checkpoint / "state.json").is_file():
        raise ValueError(f"{checkpoint} holds no VAE checkpoint (state.json)")
    model.vae.load_state_dict(load_file(str(checkpoint / "weights.safetensors")))
    model.set_normalization(FrequencyNormalization.load(str(run / "normalization.safetensors")))
    return int(json.loads((checkpoint / "state.json").read_text())["step"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="motion model folder or file (default: the bundled one)")
    source_group = parser.add_mutually_exclusive_group(required=True)
    source_group.add_argument("--scenes", help="a `gid scenes` folder; its held-out records are used")
    source_group.add_argument("--clips", nargs="+", metavar="CLIP",
                              help="video clips; their motion measured as `gid eval` measures it")
    parser.add_argument("--size", default="256x160", help="with --clips: WIDTHxHEIGHT crop (default 256x160)")
    parser.add_argument("--frames", type=int, default=150, help="with --clips: frames measured (default 150)")
    parser.add_argument("--count", type=int, default=20, help="held-out records to use (default 20)")
    parser.add_argument("--run", help="a `gid train --out` folder: use its latest VAE checkpoint and normalization")
    parser.add_argument("--checkpoint", choices=["vae", "vae_decoder"], default="vae",
                        help="with --run: the VAE's checkpoint (default) or a decoder-only fine-tune's")
    parser.add_argument("--smooth", type=float, default=None, metavar="PX",
                        help="with --run: the run's --vae-smooth (a checkpoint does not record it; default 0)")
    parser.add_argument("--raw-truth", action="store_true",
                        help="score a smoothing VAE against the exact volumes, not the blurred ones")
    parser.add_argument("--normalized", action="store_true", help="compare in normalized units, not pixels")
    args = parser.parse_args(argv)
    if args.smooth is not None and (not args.run or not args.smooth >= 0):
        sys.stderr.write("vae_roundtrip: --smooth goes with --run and is a number of pixels >= 0.\n")
        return 2
    if args.scenes:
        records = list_records(args.scenes, "held_out")[: args.count]
        if not records:
            sys.stderr.write(f"vae_roundtrip: {args.scenes} holds no held-out scene records.\n")
            return 2
    else:
        missing = [clip for clip in args.clips if not Path(clip).is_file()]
        if missing:
            sys.stderr.write(f"vae_roundtrip: no such clip: {', '.join(missing)}.\n")
            return 2
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            sys.stderr.write(f"vae_roundtrip: --size {args.size} must be WIDTHxHEIGHT, e.g. 256x160.\n")
            return 2
    model = (MotionModel.load(args.model) if args.model else MotionModel.from_bundled()).eval()
    source = args.model or "bundled model"
    if args.run:
        try:
            step = use_run_checkpoint(model, Path(args.run), args.checkpoint)
            model.vae.register_to_config(training_smoothing_px=float(args.smooth or 0.0))
        except (OSError, RuntimeError, ValueError, SafetensorError) as error:
            sys.stderr.write(f"vae_roundtrip: cannot use the VAE checkpoint of --run {args.run}: {error}\n")
            return 2
        source = f"{args.run}, {args.checkpoint} step {step}"
    if args.scenes:
        volumes = [read_record(path)[1] for path in records]
        what = f"{len(records)} held-out scenes"
    else:
        volumes = [clip_truth(Path(clip), width, height, args.frames, model.num_frequencies)[1][0]
                   for clip in args.clips]
        what = f"{len(volumes)} clips' measured motion"
    rows = [channel_roundtrip(model, volume, args.normalized, args.raw_truth) for volume in volumes]
    kept = np.median(np.stack([r[0].numpy() for r in rows]), axis=0)
    error = np.median(np.stack([r[1].numpy() for r in rows]), axis=0)
    units = "normalized units" if args.normalized else "pixels"
    smoothing = float(model.vae.config.training_smoothing_px)
    if smoothing:
        units += (f", fed the volumes blurred by {smoothing:g} px as in its training, scored against the "
                  + ("exact volumes" if args.raw_truth else "blurred ones"))
    print(f"VAE round trip of {what} ({source}); medians, bins 1..K-1, {units}")
    print(f"{'channel':<10}{'power kept':>12}{'relative error':>16}")
    for name, k, e in zip(CHANNELS, kept, error):
        print(f"{name:<10}{k:>12.3f}{e:>16.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
