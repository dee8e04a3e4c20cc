"""Spectral volume <-> motion texture maths and frequency-adaptive normalization."""

import math

import pytest
import torch

from gid_models.normalization import (
    FrequencyNormalization,
    denormalize,
    denormalize_tensor,
    fit_normalization,
    normalize,
    normalize_tensor,
)
from gid_models.spectral import (
    MotionError,
    MotionTexture,
    SpectralVolume,
    spectral_to_motion,
    spectral_to_trajectories,
    trajectories_to_spectral,
)


def band_limited_trajectories(generator, batch=2, frames=150, height=6, width=7, num_frequencies=16):
    """Random trajectories whose spectrum lies in bins 0..K-1, so truncation loses nothing."""
    t = torch.arange(frames, dtype=torch.float64)
    out = torch.zeros(batch, frames, 2, height, width, dtype=torch.float64)
    for k in range(num_frequencies):
        amp = torch.randn(batch, 1, 2, height, width, generator=generator, dtype=torch.float64)
        phase = torch.rand(batch, 1, 2, height, width, generator=generator, dtype=torch.float64) * 6.28
        out += amp * torch.cos(2 * math.pi * k * t.view(1, -1, 1, 1, 1) / frames + phase)
    return out.float()


def test_fft_round_trip_is_exact_for_band_limited_motion(generator):
    trajectories = band_limited_trajectories(generator)
    volume = trajectories_to_spectral(trajectories, fps=30.0)
    assert volume.coeffs.shape == (2, 16, 4, 6, 7)
    assert volume.num_frames == 150 and volume.fps == 30.0 and not volume.normalized
    torch.testing.assert_close(spectral_to_trajectories(volume), trajectories, atol=2e-5, rtol=0)


def test_coefficients_are_in_pixels():
    frames, amplitude, k = 150, 3.0, 4
    t = torch.arange(frames, dtype=torch.float64)
    trajectory = torch.zeros(1, frames, 2, 1, 1)
    trajectory[0, :, 0, 0, 0] = (amplitude * torch.cos(2 * math.pi * k * t / frames + 0.3)).float()
    volume = trajectories_to_spectral(trajectory)
    x = torch.complex(volume.coeffs[0, k, 0, 0, 0], volume.coeffs[0, k, 1, 0, 0])
    assert abs(x.abs().item() - amplitude / 2) < 1e-4
    assert abs(x.angle().item() - 0.3) < 1e-4
    assert volume.frequencies_hz()[k].item() == pytest.approx(k * 30 / 150)


def test_frame_t_equals_frame_zero_and_slow_motion_interpolates(generator):
    volume = trajectories_to_spectral(band_limited_trajectories(generator, batch=1))
    times = torch.tensor([0.0, 150.0, 10.0, 10.5, 11.0], dtype=torch.float64)
    out = spectral_to_trajectories(volume, times)
    torch.testing.assert_close(out[:, 0], out[:, 1], atol=1e-4, rtol=0)
    slow = spectral_to_motion(volume, num_output_frames=300, speed=0.5)
    assert slow.num_frames == 300
    torch.testing.assert_close(slow.displacements[:, 21], out[:, 3], atol=1e-4, rtol=0)


def test_gain_scales_the_whole_motion_so_frame_0_stays_at_rest(generator):
    volume = trajectories_to_spectral(band_limited_trajectories(generator, batch=1))
    base = spectral_to_trajectories(volume)
    doubled = spectral_to_trajectories(volume, gain=2.0)
    torch.testing.assert_close(doubled, 2 * base, atol=1e-4, rtol=1e-4)
    assert spectral_to_trajectories(volume, gain=0.0).abs().max() == 0


def test_normalization_inverse_is_exact_and_stats_round_trip(tmp_path, generator):
    volumes = [trajectories_to_spectral(band_limited_trajectories(generator)) for _ in range(3)]
    stats = fit_normalization(volumes)
    assert stats.scales.shape == (16,)
    normalized = normalize(volumes[0], stats)
    assert normalized.normalized
    # the 95th percentile of |S| maps to 1 after normalization
    ratio = (normalized.coeffs.abs() <= 1.0).float().mean().item()
    assert 0.85 < ratio <= 1.0
    torch.testing.assert_close(denormalize(normalized).coeffs, volumes[0].coeffs, atol=1e-5, rtol=1e-5)
    path = tmp_path / "norm.safetensors"
    stats.save(str(path))
    loaded = FrequencyNormalization.load(str(path))
    torch.testing.assert_close(loaded.scales, stats.scales)


def test_eq4_on_raw_tensors_is_what_normalize_does(generator):
    """normalize_tensor (training, on batches of raw coefficients) is the one definition of Eq. 4."""
    volume = trajectories_to_spectral(band_limited_trajectories(generator))
    stats = FrequencyNormalization(torch.rand(16, generator=generator) + 0.1)
    normalized = normalize_tensor(volume.coeffs, stats.scales)
    torch.testing.assert_close(normalized, normalize(volume, stats).coeffs, rtol=0, atol=0)
    torch.testing.assert_close(denormalize_tensor(normalized, stats.scales), volume.coeffs, rtol=1e-5, atol=1e-5)


def test_normalized_volume_is_refused_where_pixels_are_needed(generator):
    volume = trajectories_to_spectral(band_limited_trajectories(generator, batch=1))
    normalized = normalize(volume, fit_normalization([volume]))
    with pytest.raises(MotionError, match="GIDDenormalizeSpectralVolume"):
        spectral_to_trajectories(normalized)


def test_resize_keeps_motion_consistent():
    frames = 150
    t = torch.arange(frames, dtype=torch.float64)
    trajectory = torch.zeros(1, frames, 2, 40, 64)
    trajectory[:, :, 0] = (2.0 * torch.sin(2 * math.pi * 3 * t / frames)).float().view(1, -1, 1, 1)
    trajectory[:, :, 1] = (1.0 * torch.cos(2 * math.pi * 5 * t / frames)).float().view(1, -1, 1, 1)
    volume = trajectories_to_spectral(trajectory)
    big = volume.resized(80, 96)  # x scaled by 1.5, y by 2
    motion = spectral_to_motion(big)
    torch.testing.assert_close(motion.displacements[0, :, 0, 10, 10], 1.5 * trajectory[0, :, 0, 0, 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(motion.displacements[0, :, 1, 10, 10], 2.0 * trajectory[0, :, 1, 0, 0], atol=1e-4, rtol=0)
    # resizing a motion texture directly agrees with resizing the volume
    direct = MotionTexture(spectral_to_trajectories(volume)).resized(80, 96)
    torch.testing.assert_close(direct.displacements, motion.displacements, atol=1e-4, rtol=0)
    # a normalized volume resized then denormalized equals the pixel volume resized
    stats = fit_normalization([volume])
    torch.testing.assert_close(
        denormalize(normalize(volume, stats).resized(80, 96)).coeffs, big.coeffs, atol=1e-4, rtol=1e-4
    )


def test_bad_shapes_and_short_clips_are_refused():
    with pytest.raises(MotionError, match="too few"):
        trajectories_to_spectral(torch.zeros(1, 20, 2, 4, 4), num_frequencies=16)
    with pytest.raises(MotionError, match=r"\(B, K, 4, H, W\)"):
        SpectralVolume(torch.zeros(1, 16, 2, 4, 4))
    with pytest.raises(MotionError, match="NaN"):
        trajectories_to_spectral(torch.full((1, 40, 2, 4, 4), float("nan")))


def test_volume_file_round_trip_and_refusal(tmp_path, generator):
    from gid_models.volume_io import load_volume, save_volume

    volume = trajectories_to_spectral(band_limited_trajectories(generator, batch=1), fps=24.0)
    path = tmp_path / "v.safetensors"
    save_volume(volume, str(path))
    loaded = load_volume(str(path))
    assert loaded.num_frames == 150 and loaded.fps == 24.0 and not loaded.normalized
    torch.testing.assert_close(loaded.coeffs, volume.coeffs)
    normalized = normalize(volume, fit_normalization([volume]))
    save_volume(normalized, str(path))
    assert load_volume(str(path)).normalized
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(MotionError, match="cannot read"):
        load_volume(str(tmp_path / "bad.safetensors"))


def test_normalization_fit_keeps_a_bounded_uniform_sample_of_many_volumes():
    from gid_models.normalization import _merge_uniform_sample

    # 40 volumes, each of one value: volume i holds |S| = i + 1 everywhere, so a fit that kept
    # mostly early or mostly late volumes would miss the 95th percentile of all of them
    volumes = [SpectralVolume(torch.full((1, 2, 4, 8, 16), float(i + 1)), num_frames=30, fps=30.0) for i in range(40)]
    full = fit_normalization(volumes)
    bounded = fit_normalization(volumes, max_samples_per_frequency=2_000)
    everything = torch.cat([v.coeffs[:, 0].abs().flatten() for v in volumes]).double()
    assert full.scales[0].item() == pytest.approx(torch.quantile(everything, 0.95).item(), rel=1e-6)
    assert bounded.scales[0].item() == pytest.approx(full.scales[0].item(), abs=1.5)

    generator = torch.Generator().manual_seed(1)
    sample, seen = None, 0
    for value in (1.0, 2.0, 2.0, 2.0):  # one part of ones, three of twos
        sample, seen = _merge_uniform_sample(sample, seen, torch.full((3, 5_000), value), 4_000, generator)
        assert sample.shape[0] == 3 and sample.shape[1] <= 4_000
    assert seen == 20_000 and sample.shape[1] == 4_000
    assert (sample == 1.0).float().mean().item() == pytest.approx(0.25, abs=0.01)
