"""The frozen EfficientNet-Lite0 image encoder: converted weights, reference outputs, shapes,
refusal of wrong files."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gid_models.networks.image_encoder import (
    FEATURE_CHANNELS, FORMAT_TAG, WEIGHTS_FILE, EfficientNetLite0Features,
)
from gid_models.spectral import MotionError
from tools.convert_image_encoder import reference_picture

REFERENCE = Path(__file__).resolve().parent / "fixtures" / "image_encoder_reference.json"
FP16_TOLERANCE = 0.05  # of the map's std: fp16 weights moved single values by at most 0.023 std at conversion


@pytest.fixture(scope="module")
def encoder():
    return EfficientNetLite0Features.load()


def test_bundled_weights_are_small_fp16_and_frozen(encoder):
    assert WEIGHTS_FILE.stat().st_size <= 16 * 2**20
    assert {t.dtype for t in load_file(str(WEIGHTS_FILE)).values()} == {torch.float16}
    assert not encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())


def test_converted_weights_give_the_original_networks_outputs(encoder):
    reference = json.loads(REFERENCE.read_text())["features"]
    with torch.no_grad():
        features = encoder(reference_picture())
    for name, ours in zip(("stride8", "stride16", "stride32"), features):
        expected = reference[name]
        assert list(ours.shape) == expected["shape"], name
        scale = expected["std"]
        assert float(ours.mean()) == pytest.approx(expected["mean"], abs=0.01 * scale), name
        assert float(ours.std()) == pytest.approx(scale, rel=0.01), name
        channel_means = ours[0, :8].mean(dim=(1, 2))
        assert torch.allclose(channel_means, torch.tensor(expected["channel_means"]), atol=0.01 * scale), name
        values = torch.tensor([float(ours[0, c, y, x]) for c, y, x in expected["positions"]])
        assert torch.allclose(values, torch.tensor(expected["values"]), atol=FP16_TOLERANCE * scale), name


@pytest.mark.parametrize("size", [(64, 96), (50, 75)])
def test_feature_shapes_are_the_ceiling_of_each_stride(encoder, size, generator):
    height, width = size
    picture = torch.rand(2, 3, height, width, generator=generator) * 2 - 1
    with torch.no_grad():
        features = encoder(picture)
    for stride, channels, tensor in zip((8, 16, 32), FEATURE_CHANNELS, features):
        assert tensor.shape == (2, channels, -(-height // stride), -(-width // stride))
        assert torch.isfinite(tensor).all()


def test_mismatched_or_damaged_files_are_refused(tmp_path):
    tensors = load_file(str(WEIGHTS_FILE))
    missing = dict(tensors)
    missing.pop("stem.bias")
    save_file(missing, str(tmp_path / "missing.safetensors"), metadata={"format": FORMAT_TAG})
    with pytest.raises(MotionError, match="does not match"):
        EfficientNetLite0Features.load(tmp_path / "missing.safetensors")

    reshaped = dict(tensors, **{"stem.weight": torch.zeros(16, 3, 3, 3, dtype=torch.float16)})
    save_file(reshaped, str(tmp_path / "reshaped.safetensors"), metadata={"format": FORMAT_TAG})
    with pytest.raises(MotionError, match="wrong shape"):
        EfficientNetLite0Features.load(tmp_path / "reshaped.safetensors")

    save_file(tensors, str(tmp_path / "untagged.safetensors"))
    with pytest.raises(MotionError, match="not the GID image encoder"):
        EfficientNetLite0Features.load(tmp_path / "untagged.safetensors")

    (tmp_path / "truncated.safetensors").write_bytes(WEIGHTS_FILE.read_bytes()[:5000])
    with pytest.raises(MotionError, match="corrupt or truncated"):
        EfficientNetLite0Features.load(tmp_path / "truncated.safetensors")

    with pytest.raises(MotionError, match="convert_image_encoder"):
        EfficientNetLite0Features.load(tmp_path / "absent.safetensors")
