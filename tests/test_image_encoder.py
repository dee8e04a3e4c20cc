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


# --- the denoiser conditioned on the encoder's features (networks/image_conditioning.py) ---------

from gid_models.networks import MotionDenoiser, MotionModel, MotionVAE  # noqa: E402
from gid_models.networks.motion_model import TINY_DENOISER, TINY_VAE  # noqa: E402
from gid_models.normalization import FrequencyNormalization  # noqa: E402

K = 4


def tiny_denoiser(injection=None, seed=0, random_heads=True):
    torch.manual_seed(seed)
    extra = {} if injection is None else {"image_features": "efficientnet-lite0", "image_feature_injection": injection,
                                          "image_feature_width": 8}
    denoiser = MotionDenoiser(num_frequencies=K, sample_size=(32, 48), **TINY_DENOISER, **extra).eval()
    if injection is not None and random_heads:  # trained heads: zero-initialised ones inject nothing
        for head in denoiser.image_conditioning.heads:
            torch.nn.init.normal_(head.weight, std=0.3)
    return denoiser


def predict(denoiser, picture, generator_seed=1):
    g = torch.Generator().manual_seed(generator_seed)
    z = torch.randn(picture.shape[0], K, 4, picture.shape[-2] // 2, picture.shape[-1] // 2, generator=g)
    with torch.no_grad():
        return denoiser(z, torch.tensor([400]), picture, torch.arange(K))


def test_shipped_v2_denoiser_reads_the_picture_through_the_encoder_and_predicts_as_before():
    """The shipped denoiser (motion model v2; retrained on 2,000 recipe-5 scenes in sessions 26-27)
    has FiLM picture conditioning; its prediction on a fixed input is pinned, and it depends on the
    encoder path."""
    model = MotionModel.from_bundled()
    assert model.denoiser.image_conditioning is not None
    assert model.denoiser.image_conditioning.injection == "film"
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, 16, 4, 8, 12, generator=g)
    picture = torch.rand(1, 3, 32, 48, generator=g) * 2 - 1
    with torch.no_grad():
        eps = model.denoiser(z, torch.tensor([500]), picture, torch.arange(16))
        mirrored = model.denoiser(z, torch.tensor([500]), picture.flip(-1), torch.arange(16))
        for head in model.denoiser.image_conditioning.heads:  # the encoder path off
            head.weight.zero_()
            head.bias.zero_()
        without_features = model.denoiser(z, torch.tensor([500]), picture, torch.arange(16))
    # printed by the code and weights that shipped the retrained v2 denoiser (session 28; the
    # session-21 denoiser gave mean -0.00189, mean |eps| 0.6758, element -0.6087)
    assert eps.double().mean().item() == pytest.approx(0.01918296598038675, abs=1e-6)
    assert eps.double().abs().mean().item() == pytest.approx(0.7486815662823574, rel=1e-5)
    assert eps[0, 3, 1, 4, 5].item() == pytest.approx(-0.9139226675033569, abs=1e-5)
    assert (eps - mirrored).abs().mean() > 0.1  # measured 0.31
    assert (eps - without_features).abs().mean() > 0.1  # measured 0.26


@pytest.mark.parametrize("injection", ["film", "add"])
def test_conditioning_changes_the_prediction_when_the_picture_changes(injection, generator):
    pictures = [torch.rand(1, 3, 32, 48, generator=generator) * 2 - 1 for _ in range(2)]
    outputs = {}
    for name, features in (("with", injection), ("without", None)):
        denoiser = tiny_denoiser(features)
        with torch.no_grad():  # the picture reaches the network only through the encoder path now
            denoiser.conv_in.weight[:, 4:] = 0
        outputs[name] = [predict(denoiser, p) for p in pictures]
    assert torch.equal(outputs["without"][0], outputs["without"][1])
    assert (outputs["with"][0] - outputs["with"][1]).abs().mean() > 1e-3


def test_new_conditioning_starts_as_a_no_op(generator):
    picture = torch.rand(1, 3, 32, 48, generator=generator) * 2 - 1
    plain, conditioned = tiny_denoiser(None), tiny_denoiser("film", random_heads=False)
    conditioned.load_state_dict(plain.state_dict(), strict=False)
    assert torch.allclose(predict(plain, picture), predict(conditioned, picture), atol=1e-6)


def test_empty_picture_gets_no_features_as_in_training_dropout(generator):
    denoiser = tiny_denoiser("film")
    picture = torch.rand(1, 3, 32, 48, generator=generator) * 2 - 1
    empty = torch.zeros_like(picture)
    features = denoiser.image_conditioning.encode(torch.cat([picture, empty]))
    assert all(f[0].abs().sum() > 0 and f[1].abs().sum() == 0 for f in features)
    both = predict(denoiser, torch.cat([picture, empty]))
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, K, 4, 16, 24, generator=g)[1:]
    with torch.no_grad():
        alone = denoiser(z, torch.tensor([400]), empty, torch.arange(K))
    assert torch.allclose(both[1:], alone, atol=1e-5)


def test_encoder_runs_once_per_picture_while_sampling(generator):
    from gid_models.sampling import LoopGuidance, sample_spectral_volume

    model = MotionModel(MotionVAE(**TINY_VAE), tiny_denoiser("add"), FrequencyNormalization(torch.ones(K))).eval()
    calls = []
    model.denoiser.image_conditioning.encoder.register_forward_hook(lambda *_: calls.append(1))
    for count, picture in enumerate([torch.rand(1, 3, 32, 48, generator=generator) for _ in range(2)], start=1):
        volume, _ = sample_spectral_volume(model, picture, seed=0, steps=2, num_frames=16,
                                           guidance=LoopGuidance(recurrence=2))
        assert volume.coeffs.shape == (1, K, 4, 32, 48)
        assert len(calls) == count  # 2 steps x 2 recurrences x (conditional + empty) passes, one encoder run


@pytest.mark.parametrize("layout", ["directory", "single file"])
def test_conditioned_model_round_trips_and_mismatched_configs_are_refused(layout, tmp_path, generator):
    model = MotionModel(MotionVAE(**TINY_VAE), tiny_denoiser("film"), FrequencyNormalization(torch.ones(K))).eval()
    picture = torch.rand(1, 3, 32, 48, generator=generator) * 2 - 1
    path = tmp_path / ("model" if layout == "directory" else "gid_motion_v2.safetensors")
    model.save(path, dtype=torch.float32) if layout == "directory" else model.save_file(path, dtype=torch.float32)
    loaded = MotionModel.load(path)
    assert loaded.denoiser.config.image_features == "efficientnet-lite0"
    assert not any(".encoder." in name for name in loaded.state_dict())  # the encoder ships once, apart
    assert torch.equal(predict(model.denoiser, picture), predict(loaded.denoiser, picture))
    if layout == "directory":
        from safetensors.torch import load_file, save_file
        from safetensors import safe_open

        weights = path / "denoiser.safetensors"
        with safe_open(str(weights), framework="pt") as handle:
            metadata = handle.metadata()
        config = json.loads(metadata["config"])
        config.pop("image_features")
        save_file(load_file(str(weights)), str(weights), metadata={**metadata, "config": json.dumps(config)})
        with pytest.raises(MotionError, match="unexpected"):
            MotionModel.load(path)
