"""Procedural scenes: deterministic, exact start frame, physically shaped motion."""

import numpy as np
import pytest
import torch

from gid_models.spectral import spectral_to_trajectories
from gid_models.train.synthetic import CANTILEVER_BETA, cantilever_mode, make_scene, modal_response, wind_force


def test_same_seed_same_scene_and_different_seed_different_scene():
    a, b, c = make_scene(7, 40, 64, 8, 32), make_scene(7, 40, 64, 8, 32), make_scene(8, 40, 64, 8, 32)
    assert torch.equal(a.image, b.image) and torch.equal(a.volume.coeffs, b.volume.coeffs)
    assert not torch.equal(a.image, c.image)
    assert a.image.shape == (3, 40, 64) and a.image.dtype == torch.uint8
    assert a.volume.coeffs.shape == (1, 8, 4, 40, 64)
    assert (a.volume.num_frames, a.volume.fps) == (32, 24.0)


def test_start_frame_has_zero_displacement_and_motion_is_bounded():
    scene = make_scene(3, 80, 128, 16, 150)
    motion = spectral_to_trajectories(scene.volume)
    assert motion[:, 0].abs().max().item() < 1e-4  # the picture is the start frame
    peak = motion.norm(dim=2).amax().item()
    assert 0.2 < peak < 30.0  # visible but plausible sway at 128 px wide
    moving = motion.norm(dim=2).amax(dim=1)[0] > 1e-3
    assert 0.01 < moving.float().mean().item() < 0.8  # plants move, the sky and ground do not


def test_cantilever_modes_are_clamped_at_the_root_and_unit_at_the_tip():
    s = np.linspace(0, 1, 201)
    for n in range(3):
        shape = cantilever_mode(s, n)
        assert abs(shape[0]) < 1e-9 and shape[-1] == pytest.approx(1.0)
        assert np.sum(np.diff(np.sign(shape[1:])) != 0) == n  # mode n crosses zero n times
    # different modes are orthogonal along the beam (uniform mass)
    assert abs(np.trapezoid(cantilever_mode(s, 0) * cantilever_mode(s, 1), s)) < 1e-3
    assert (CANTILEVER_BETA[1] / CANTILEVER_BETA[0]) ** 2 == pytest.approx(6.27, abs=0.01)


def test_wind_is_one_over_f_and_oscillators_resonate():
    rng = np.random.default_rng(0)
    f = np.array([0.0, 0.5, 1.0, 2.0, 4.0])
    power = np.mean([np.abs(wind_force(f, rng, exponent=1.0, corner_hz=0.0)) ** 2 for _ in range(4000)], axis=0)
    assert power[0] == 0
    assert power[1] / power[3] == pytest.approx(4.0, rel=0.15)  # 1/f: 4x frequency, 1/4 power
    response = np.abs(modal_response(np.array([0.5, 1.0, 2.0]), natural_hz=1.0, damping=0.05))
    assert response[1] > 5 * response[0] and response[1] > 5 * response[2]


def test_power_falls_with_frequency_on_average():
    powers = []
    for seed in range(6):
        coeffs = make_scene(seed, 40, 64, 16, 150).volume.coeffs[0]
        powers.append(coeffs.square().sum(dim=1).mean(dim=(1, 2)))
    mean = torch.stack(powers).mean(0)
    assert mean[1:4].mean() > 10 * mean[12:16].mean()


def test_synthetic_scenes_go_through_prepare_into_shards(tmp_path):
    from gid_models.train.prepare import PrepareConfig, run
    from gid_models.train.shards import SpectralShardDataset

    config = PrepareConfig(num_frames=32, num_frequencies=4, size=(64, 40), synthetic=2, synthetic_seed=5)
    paths, decisions = run([], tmp_path, config)
    dataset = SpectralShardDataset(paths)
    assert len(dataset) == 2 and decisions == []
    assert [r["source"] for r in dataset.records] == ["synthetic:5", "synthetic:6"]
    item = dataset[1]
    assert item["coeffs"].shape == (4, 4, 40, 64) and (item["num_frames"], item["fps"]) == (32, 24.0)
    exact = make_scene(6, 40, 64, 4, 32).volume.coeffs[0]
    torch.testing.assert_close(item["coeffs"], exact, atol=2e-3, rtol=1e-3)  # stored as fp16
