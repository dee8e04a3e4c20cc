"""`gid merge-amplitude`: one motion-amplitude network that predicts the mean of several.

    gid merge-amplitude RUN_A/motion_amplitude.safetensors RUN_B/motion_amplitude.safetensors \\
        --out MODEL_DIR/motion_amplitude.safetensors

Networks trained on different data make different mistakes on photographs: the one trained on
recipe-1 and -2 scenes takes mossy rock for moving, the one trained on recipe-4 scenes misses
some of the grass. Their mean log amplitude is better than either (MODEL_CARD.md, "Motion-
amplitude network"). The merged network is an ordinary MotionAmplitudeNet whose width is the sum
of the members' widths: each layer holds the members' weights as diagonal blocks (the 1x1
projections side by side, each trunk convolution block-diagonal, so no member reads another's
channels) and the head is the mean of their heads. It computes exactly the mean of the members'
predictions (up to float16 rounding of the file), and every loader, node and sampler takes it as it is.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

import torch
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
        for key in ("num_frequencies", "kernel_size", "feature_levels"):
            if tuple(_as_tuple(member.config[key])) != tuple(_as_tuple(first[key])):
                raise MotionError(f"gid merge-amplitude: {name} has {key} {member.config[key]} but {names[0]} has "
                                  f"{first[key]}; only networks of the same K, kernel and encoder levels can merge.")


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _trunk_convolutions(network: MotionAmplitudeNet) -> list[nn.Conv2d]:
    return [layer for layer in network.trunk if isinstance(layer, nn.Conv2d)]


@torch.no_grad()
def merge_networks(members: Sequence[MotionAmplitudeNet], names: Sequence[str] | None = None) -> MotionAmplitudeNet:
    """One MotionAmplitudeNet (float32, eval mode) whose prediction is the mean of the members'
    predictions (B, K, 2, H / 8, W / 8) log pixels. Members must share K, kernel and levels."""
    names = list(names) if names is not None else [f"network {i + 1}" for i in range(len(members))]
    _check_compatible(members, names)
    widths = [int(member.config.width) for member in members]
    total = sum(widths)
    config = dict(members[0].config)
    merged = MotionAmplitudeNet(
        num_frequencies=config["num_frequencies"], width=total,
        initial_log_amplitude=float(sum(m.config.initial_log_amplitude for m in members) / len(members)),
        kernel_size=config["kernel_size"], dropout=config["dropout"], feature_levels=tuple(config["feature_levels"]),
    )
    levels = len(merged.levels)
    for layer in [*merged.projections, *_trunk_convolutions(merged), merged.head]:
        layer.weight.zero_()
        layer.bias.zero_()
    merged_trunk = _trunk_convolutions(merged)
    offset = 0  # this member's first channel within each level of width `total`
    for member, width in zip(members, widths):
        own = slice(offset, offset + width)
        for target, source in zip(merged.projections, member.projections):
            target.weight[own] = source.weight
            target.bias[own] = source.bias
        # the first convolution reads [level 0 | level 1 | ... | colour (3)]: map the member's
        # input channels to where its projections now sit, and share the colour channels
        first, member_first = merged_trunk[0], _trunk_convolutions(member)[0]
        hidden = slice(2 * offset, 2 * (offset + width))
        for level in range(levels):
            first.weight[hidden, level * total + offset: level * total + offset + width] = \
                member_first.weight[:, level * width: (level + 1) * width]
        first.weight[hidden, levels * total:] = member_first.weight[:, levels * width:]
        first.bias[hidden] = member_first.bias
        for target, source in zip(merged_trunk[1:], _trunk_convolutions(member)[1:]):
            target.weight[hidden, hidden] = source.weight
            target.bias[hidden] = source.bias
        merged.head.weight[:, hidden] = member.head.weight / len(members)
        merged.head.bias += member.head.bias / len(members)
        offset += width
    return merged.eval().requires_grad_(False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gid merge-amplitude", description=__doc__.split("\n\n")[0])
    parser.add_argument("networks", nargs="+", help="motion_amplitude.safetensors files (gid train-amplitude --out)")
    parser.add_argument("--out", required=True, help="the merged network's .safetensors (a .json is written beside it)")
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
    merged = merge_networks(members, [str(path) for path in inputs])
    merged.save(out)
    LOGGER.info("gid merge-amplitude: wrote %s (width %d, %d parameters) and %s",
                out, merged.config.width, sum(p.numel() for p in merged.parameters()), out.with_suffix(".json"))


if __name__ == "__main__":
    raise SystemExit(main())
