"""`gid merge-amplitude`: one motion-amplitude network that predicts the mean of several.

    gid merge-amplitude RUN_A/motion_amplitude.safetensors RUN_B/motion_amplitude.safetensors \\
        --out MODEL_DIR/motion_amplitude.safetensors [--weights 0.5 0.5]

Networks trained on different data make different mistakes on photographs: the one trained on
recipe-1 and -2 scenes takes mossy rock for moving, the one trained on recipe-4 scenes misses
some of the grass. Their mean log amplitude is better than either (MODEL_CARD.md, "Motion-
amplitude network"). The merged network is an ordinary MotionAmplitudeNet whose width is the sum
of the members' widths: each layer holds the members' weights as diagonal blocks (the 1x1
projections side by side, each trunk convolution block-diagonal, so no member reads another's
channels) and the head is the mean of their heads. It computes exactly the mean of the members'
predictions (up to float16 rounding of the file), and every loader, node and sampler takes it as it is.
`--weights` makes it a weighted mean (positive, summing to 1): a merged network given as one member
with weight 0.5 beside two others with 0.25 each keeps its own members at 0.25 each. Members may
have different (odd) kernel sizes: a smaller kernel sits in the middle of the largest one with
zeros around it, which computes the same convolution at the same padding.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..cli import entry_point
from ..networks.motion_amplitude import MotionAmplitudeNet
from ..spectral import MotionError

LOGGER = logging.getLogger(__name__)


def _check_compatible(members: Sequence[MotionAmplitudeNet], names: Sequence[str]) -> None:
    if len(members) < 2:
        raise MotionError("gid merge-amplitude needs at least two networks to merge.")
    first = members[0].config
    for member, name in zip(members[1:], names[1:]):
        for key in ("num_frequencies", "feature_levels"):
            if tuple(_as_tuple(member.config[key])) != tuple(_as_tuple(first[key])):
                raise MotionError(f"gid merge-amplitude: {name} has {key} {member.config[key]} but {names[0]} has "
                                  f"{first[key]}; only networks of the same K and encoder levels can merge.")
    for member, name in zip(members, names):
        if int(member.config.kernel_size) % 2 == 0:
            raise MotionError(f"gid merge-amplitude: {name} has an even kernel size {member.config.kernel_size}; "
                              "only odd kernels (centred, padded by half) can merge.")


def _check_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """The members' weights (equal shares when None); MotionError unless `count` positive values summing to 1."""
    if weights is None:
        return [1.0 / count] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise MotionError(f"gid merge-amplitude: {len(weights)} weights for {count} networks; give one per network.")
    if any(not w > 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise MotionError(f"gid merge-amplitude: weights {weights} must be positive and sum to 1 (a weighted mean).")
    return weights


def _centred(weight: torch.Tensor, size: int) -> torch.Tensor:
    """A (out, in, k, k) kernel in the middle of a (out, in, size, size) one, zeros around it."""
    pad = (size - weight.shape[-1]) // 2
    return F.pad(weight, (pad, pad, pad, pad))


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _trunk_convolutions(network: MotionAmplitudeNet) -> list[nn.Conv2d]:
    return [layer for layer in network.trunk if isinstance(layer, nn.Conv2d)]


@torch.no_grad()
def merge_networks(members: Sequence[MotionAmplitudeNet], names: Sequence[str] | None = None,
                   weights: Sequence[float] | None = None) -> MotionAmplitudeNet:
    """One MotionAmplitudeNet (float32, eval mode) whose prediction is the mean (weighted by
    `weights`, positive and summing to 1; equal when None) of the members' predictions
    (B, K, 2, H / 8, W / 8) log pixels. Members must share K and encoder levels."""
    names = list(names) if names is not None else [f"network {i + 1}" for i in range(len(members))]
    _check_compatible(members, names)
    weights = _check_weights(weights, len(members))
    widths = [int(member.config.width) for member in members]
    total = sum(widths)
    kernel = max(int(member.config.kernel_size) for member in members)
    config = dict(members[0].config)
    merged = MotionAmplitudeNet(
        num_frequencies=config["num_frequencies"], width=total,
        initial_log_amplitude=float(sum(w * m.config.initial_log_amplitude for w, m in zip(weights, members))),
        kernel_size=kernel, dropout=config["dropout"], feature_levels=tuple(config["feature_levels"]),
    )
    levels = len(merged.levels)
    for layer in [*merged.projections, *_trunk_convolutions(merged), merged.head]:
        layer.weight.zero_()
        layer.bias.zero_()
    merged_trunk = _trunk_convolutions(merged)
    offset = 0  # this member's first channel within each level of width `total`
    for member, width, weight in zip(members, widths, weights):
        own = slice(offset, offset + width)
        for target, source in zip(merged.projections, member.projections):
            target.weight[own] = source.weight
            target.bias[own] = source.bias
        member_trunk = [_centred(layer.weight, kernel) for layer in _trunk_convolutions(member)]
        # the first convolution reads [level 0 | level 1 | ... | colour (3)]: map the member's
        # input channels to where its projections now sit, and share the colour channels
        first = merged_trunk[0]
        hidden = slice(2 * offset, 2 * (offset + width))
        for level in range(levels):
            first.weight[hidden, level * total + offset: level * total + offset + width] = \
                member_trunk[0][:, level * width: (level + 1) * width]
        first.weight[hidden, levels * total:] = member_trunk[0][:, levels * width:]
        first.bias[hidden] = _trunk_convolutions(member)[0].bias
        for target, source, source_weight in zip(merged_trunk[1:], _trunk_convolutions(member)[1:], member_trunk[1:]):
            target.weight[hidden, hidden] = source_weight
            target.bias[hidden] = source.bias
        merged.head.weight[:, hidden] = member.head.weight * weight
        merged.head.bias += member.head.bias * weight
        offset += width
    return merged.eval().requires_grad_(False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gid merge-amplitude", description=__doc__.split("\n\n")[0])
    parser.add_argument("networks", nargs="+", help="motion_amplitude.safetensors files (gid train-amplitude --out)")
    parser.add_argument("--out", required=True, help="the merged network's .safetensors (a .json is written beside it)")
    parser.add_argument("--weights", type=float, nargs="+", help="one weight per network, positive, summing to 1 "
                        "(default: equal weights)")
    return parser


@entry_point("gid merge-amplitude")
def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = Path(args.out)
    inputs = [Path(path) for path in args.networks]
    if out.suffix != ".safetensors":
        raise MotionError(f"--out {out} must end in .safetensors.")
    for path in inputs:
        if not path.is_file():
            raise MotionError(f"{path} is not a file; give the motion_amplitude.safetensors of each run.")
        if path.resolve() == out.resolve() or path.with_suffix(".json").resolve() == out.with_suffix(".json").resolve():
            raise MotionError(f"--out {out} would overwrite the input {path}; write the merged network elsewhere.")
    members = [MotionAmplitudeNet.load(path) for path in inputs]
    merged = merge_networks(members, [str(path) for path in inputs], args.weights)
    merged.save(out)
    LOGGER.info("gid merge-amplitude: wrote %s (width %d, %d parameters) and %s",
                out, merged.config.width, sum(p.numel() for p in merged.parameters()), out.with_suffix(".json"))


if __name__ == "__main__":
    raise SystemExit(main())
