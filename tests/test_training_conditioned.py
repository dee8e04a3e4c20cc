"""Training the picture-conditioned denoiser (motion model v2): built from a v1 denoiser, new layers
at a higher learning rate, encoder features computed once per picture, condition dropout = empty pass."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import default_collate

from gid_models.networks import MotionModel
from gid_models.networks.denoiser import MotionDenoiser
from gid_models.networks.motion_model import TINY_DENOISER, TINY_VAE
from gid_models.networks.vae import MotionVAE
from gid_models.normalization import FrequencyNormalization
from gid_models.train.common import Runtime
from gid_models.train.conditioned import NEW_LAYERS, optimizer_groups, use_cached_features, with_image_conditioning
from gid_models.train.latent_cache import LatentCacheDataset
from gid_models.train.train_denoiser import DenoiserTraining, denoiser_step_loss, train_denoiser

K, SIZE = 3, 32
pytestmark = pytest.mark.usefixtures("one_thread")


def examples(count: int = 4, seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    return [{"image": torch.rand(3, SIZE, SIZE, generator=generator),
             "coeffs": torch.randn(K, 4, SIZE, SIZE, generator=generator), "num_frames": 30, "fps": 30.0}
            for _ in range(count)]


def v1_model() -> MotionModel:
    torch.manual_seed(0)
    denoiser = MotionDenoiser(num_frequencies=K, sample_size=(SIZE, SIZE), **TINY_DENOISER)
    return MotionModel(MotionVAE(**TINY_VAE), denoiser, FrequencyNormalization(torch.ones(K))).eval()


def conditioned_model(injection: str = "film") -> MotionModel:
    model = v1_model()
    model.denoiser = with_image_conditioning(model.denoiser, "efficientnet-lite0", injection)
    return model


def test_conditioned_denoiser_starts_as_the_v1_denoiser():
    model = v1_model()
    conditioned = with_image_conditioning(model.denoiser, "efficientnet-lite0", "film")
    assert conditioned.config.image_features == "efficientnet-lite0"
    v1_state = model.denoiser.state_dict()
    for name, value in conditioned.state_dict().items():
        if not name.startswith(NEW_LAYERS):
            assert torch.equal(value, v1_state[name]), name
    sample = torch.randn(2, K, 4, SIZE // 2, SIZE // 2)
    picture = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        expected = model.denoiser(sample, torch.tensor([10, 500]), picture, torch.arange(K))
        got = conditioned.eval()(sample, torch.tensor([10, 500]), picture, torch.arange(K))
    assert torch.allclose(got, expected, atol=1e-6)
    assert with_image_conditioning(conditioned, "efficientnet-lite0", "film") is conditioned
    with pytest.raises(ValueError, match="already conditioned"):
        with_image_conditioning(conditioned, "efficientnet-lite0", "add")
    with pytest.raises(ValueError, match="--image-feature-injection"):
        with_image_conditioning(model.denoiser, "efficientnet-lite0", "concat")


def test_new_layers_get_the_scaled_learning_rate():
    denoiser = conditioned_model().denoiser
    groups = optimizer_groups(denoiser, 1e-4, 10.0)
    assert [group["lr"] for group in groups] == [1e-4, 1e-3]
    new_ids = {id(p) for name, p in denoiser.named_parameters() if name.startswith(NEW_LAYERS)}
    assert {id(p) for p in groups[1]["params"]} == new_ids and new_ids
    assert not new_ids & {id(p) for p in groups[0]["params"]}
    assert len(optimizer_groups(v1_model().denoiser, 1e-4, 10.0)) == 1


def test_latent_cache_holds_the_encoder_features_of_each_variant():
    model = conditioned_model()
    items = examples(2)
    cache = LatentCacheDataset(items, model, augment=True)
    conditioning = model.denoiser.image_conditioning
    flipped = cache.images[1][1]
    assert torch.equal(flipped, items[1]["image"].flip(-1))
    expected = conditioning.encoder(flipped[None] * 2 - 1)
    for got, want in zip(cache.features[1][1], expected):
        assert got.shape == want.shape[1:] and torch.allclose(got, want[0], atol=1e-6)
    assert set(cache[0]) == {"image", "latents", "features"}
    assert "features" not in LatentCacheDataset(items, v1_model(), augment=False)[0]


@pytest.mark.parametrize("injection", ["film", "add"])
def test_cached_features_give_the_same_loss_as_running_the_encoder(injection):
    model = conditioned_model(injection)
    with torch.no_grad():  # trained-looking heads, so the picture features matter
        for head in model.denoiser.image_conditioning.heads:
            head.weight.normal_(0, 0.1)
    items = examples(3)
    cached = default_collate([LatentCacheDataset(items, model, augment=False)[i] for i in range(3)])
    plain = {key: value for key, value in cached.items() if key != "features"}
    settings = DenoiserTraining(stage=1, batch_size=3, condition_dropout=0.5)
    losses = []
    for batch in (plain, cached):
        generator = torch.Generator().manual_seed(3)
        with torch.no_grad():
            losses.append(denoiser_step_loss(model, model.denoiser, batch, settings, generator, torch.device("cpu")))
    assert losses[1].item() == pytest.approx(losses[0].item(), rel=1e-5)


def test_dropped_condition_matches_the_samplers_empty_pass():
    denoiser = conditioned_model().denoiser
    with torch.no_grad():
        for head in denoiser.image_conditioning.heads:
            head.weight.normal_(0, 0.1)
            head.bias.normal_(0, 0.1)
    picture = torch.rand(1, 3, SIZE, SIZE)
    features = list(denoiser.image_conditioning.encode(picture * 2 - 1))
    sample = torch.randn(1, K, 4, SIZE // 2, SIZE // 2)
    with torch.no_grad():
        empty = denoiser(sample, 100, torch.zeros(1, 3, SIZE, SIZE), torch.arange(K))
        dropped = torch.zeros(1, 3, SIZE, SIZE)
        use_cached_features(denoiser, dropped, features, torch.tensor([False]))
        assert torch.equal(denoiser(sample, 100, dropped, torch.arange(K)), empty)


def test_training_step_uses_the_cache_and_changes_only_the_trainable_layers(tmp_path):
    model = conditioned_model()
    dataset = LatentCacheDataset(examples(4), model, augment=True)
    calls = []
    model.denoiser.image_conditioning.encoder.register_forward_hook(lambda *_: calls.append(1))
    before = {name: value.clone() for name, value in model.denoiser.state_dict().items()}
    train_denoiser(dataset, model, DenoiserTraining(stage=1, steps=3, batch_size=2, learning_rate=1e-3, val_every=10**6),
                   out_dir=tmp_path, runtime=Runtime())
    assert not calls, "the frozen encoder ran during training although the cache holds its features"
    after = model.denoiser.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(name.startswith(NEW_LAYERS + "heads.") for name in changed)
    assert not any("frequency_attention" in name for name in changed)
    assert any(name.startswith("conv_in") for name in changed)
    saved = (tmp_path / "denoiser.json").read_text()
    assert '"image_features": "efficientnet-lite0"' in saved


def test_checkpoint_resume_keeps_the_two_learning_rates(tmp_path):
    model = conditioned_model()
    dataset = LatentCacheDataset(examples(2), model, augment=False)
    settings = DenoiserTraining(stage=1, steps=2, batch_size=2, learning_rate=1e-3, save_every=1, val_every=10**6,
                                new_layer_lr_scale=5.0)
    train_denoiser(dataset, model, settings, out_dir=tmp_path, runtime=Runtime())
    state = (tmp_path / "checkpoints" / "denoiser_stage1" / "state.json").read_text()
    groups = json.loads(state)["optimizer"]["param_groups"]
    assert [group["lr"] for group in groups] == [1e-3, 5e-3]
    resumed = conditioned_model()
    settings.steps = 3
    train_denoiser(LatentCacheDataset(examples(2), resumed, augment=False), resumed, settings, out_dir=tmp_path,
                   runtime=Runtime())
    assert json.loads((tmp_path / "checkpoints" / "denoiser_stage1" / "state.json").read_text())["step"] == 3
