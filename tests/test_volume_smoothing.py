"""Gaussian smoothing of training volumes (gid_models/train/volume_smoothing.py) and where it reaches:
the VAE trainer records it, the denoiser's latents are made with it, a decoder-only fine-tune keeps it."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gid_models.networks import MotionModel
from gid_models.networks.denoiser import MotionDenoiser
from gid_models.networks.motion_model import TINY_DENOISER, TINY_VAE
from gid_models.networks.vae import MotionVAE
from gid_models.normalization import FrequencyNormalization, normalize_tensor
from gid_models.train.common import Runtime
from gid_models.train.latent_cache import LatentCacheDataset
from gid_models.train.train_vae import VaeTraining, train_vae
from gid_models.train.volume_smoothing import gaussian_kernel_1d, smooth_volume, training_slices

pytestmark = pytest.mark.usefixtures("one_thread")

K, SIZE = 4, 16


def examples(count: int = 4, seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    return [{"image": torch.rand(3, SIZE, SIZE, generator=generator),
             "coeffs": torch.randn(K, 4, SIZE, SIZE, generator=generator), "num_frames": 30, "fps": 30.0}
            for _ in range(count)]


def model_with_smoothing(sigma: float) -> MotionModel:
    torch.manual_seed(0)
    denoiser = MotionDenoiser(num_frequencies=K, sample_size=(SIZE, SIZE), **TINY_DENOISER)
    vae = MotionVAE(**TINY_VAE, training_smoothing_px=sigma)
    return MotionModel(vae, denoiser, FrequencyNormalization(torch.linspace(1.0, 0.3, K))).eval()


def test_an_impulse_becomes_a_unit_gaussian_of_the_given_sigma_and_a_constant_stays():
    impulse = torch.zeros(1, 2, 4, 33, 33)
    impulse[..., 16, 16] = 1.0
    blurred = smooth_volume(impulse, 2.0)
    assert blurred.shape == impulse.shape
    assert float(blurred[0, 0, 0].sum()) == pytest.approx(1.0, abs=1e-5)
    ys = torch.arange(33.0).view(-1, 1) - 16
    variance = float((blurred[0, 0, 0] * ys.square()).sum())
    assert math.sqrt(variance) == pytest.approx(2.0, rel=0.02)
    constant = torch.full((3, 4, 10, 12), -0.7)
    assert torch.allclose(smooth_volume(constant, 3.0), constant, atol=1e-6)  # edges replicated, weights sum to 1
    assert smooth_volume(impulse, 0.0) is impulse
    assert gaussian_kernel_1d(0.2).numel() == 3
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="smoothing sigma"):
            smooth_volume(impulse, bad)


def test_training_slices_blur_by_the_vaes_recorded_sigma_before_normalizing():
    coeffs = examples(1)[0]["coeffs"][None]
    raw = model_with_smoothing(0.0)
    smoothed = model_with_smoothing(1.5)
    scales = raw.normalization_scales
    assert torch.equal(training_slices(raw, coeffs), normalize_tensor(coeffs, scales))
    assert torch.allclose(training_slices(smoothed, coeffs), normalize_tensor(smooth_volume(coeffs, 1.5), scales))
    assert not torch.allclose(training_slices(smoothed, coeffs), training_slices(raw, coeffs))


def test_the_latent_cache_encodes_the_smoothed_volumes():
    model = model_with_smoothing(1.5)
    items = examples(2)
    cache = LatentCacheDataset(items, model, augment=False)
    with torch.no_grad():
        expected = model.encode(normalize_tensor(smooth_volume(items[1]["coeffs"][None], 1.5), model.normalization_scales))
    assert torch.allclose(cache.latents[1][0], expected[0], atol=1e-5)


def test_the_vae_trainer_records_its_smoothing_and_a_decoder_fine_tune_must_keep_it(tmp_path):
    items = examples(4)
    normalization = FrequencyNormalization(torch.linspace(1.0, 0.3, K))
    vae = train_vae(items, normalization, VaeTraining(steps=2, batch_size=2, size="tiny", smoothing_px=1.5),
                    out_dir=tmp_path, runtime=Runtime())
    assert vae.config.training_smoothing_px == 1.5
    assert json.loads((tmp_path / "motion_vae.json").read_text())["training_smoothing_px"] == 1.5
    with pytest.raises(ValueError, match="smoothed by 1.5 px"):
        train_vae(items, normalization, VaeTraining(steps=1, size="tiny", decoder_only=True), runtime=Runtime(), vae=vae)
    kept = train_vae(items, normalization, VaeTraining(steps=3, batch_size=2, size="tiny", decoder_only=True,
                                                       smoothing_px=1.5), runtime=Runtime(), vae=vae)
    assert kept.config.training_smoothing_px == 1.5
