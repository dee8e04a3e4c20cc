"""Evaluation metrics, baselines and the end-to-end `gid eval` driver on one short clip."""

import math

import pytest
import torch

from gid_models.evaluation import baselines, metrics
from gid_models.evaluation.run import METRIC_TITLES, MOTION_ROWS, RENDER_ROWS, main
from gid_models.spectral import SpectralVolume, trajectories_to_spectral
from synthetic_clips import write_sway_clip


def random_volume(generator, k=6, height=20, width=32, frames=32):
    return SpectralVolume(torch.randn(1, k, 4, height, width, generator=generator), num_frames=frames, fps=24.0)


def test_spearman_is_rank_based_and_handles_ties():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert metrics.spearman(a, a.exp()) == pytest.approx(1.0)
    assert metrics.spearman(a, -a) == pytest.approx(-1.0)
    assert metrics.spearman(a, torch.ones(5)) == 0.0
    ranks = metrics.average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0]))
    assert ranks.tolist() == [2.5, 0.0, 2.5, 1.0]


def test_magnitude_spearman_ignores_overall_scale(generator):
    truth = random_volume(generator)
    scaled = SpectralVolume(truth.coeffs * 7.0, truth.num_frames, truth.fps)
    assert metrics.magnitude_spearman(scaled, truth, size=(10, 16))[0] == pytest.approx(1.0)


def test_log_power_error_counts_decades(generator):
    truth = random_volume(generator)
    louder = SpectralVolume(truth.coeffs * 10.0, truth.num_frames, truth.fps)  # 100x the power
    assert metrics.log_power_error(louder, truth).item() == pytest.approx(2.0, abs=1e-4)
    zero = baselines.zero_motion(truth)
    expected = (metrics.power_spectrum(truth)[0, 1:].log10() - math.log10(metrics.POWER_FLOOR_PX2)).mean()
    assert metrics.log_power_error(zero, truth).item() == pytest.approx(expected.item(), rel=1e-4)


def test_seam_error_is_zero_for_still_and_positive_for_motion(generator):
    frames = 32
    t = torch.arange(frames, dtype=torch.float32).view(1, -1, 1, 1, 1)
    sway = trajectories_to_spectral(3.0 * torch.sin(2 * math.pi * 2 * t / frames).expand(1, frames, 2, 4, 4),
                                    fps=24.0, num_frequencies=4)
    assert metrics.seam_error(baselines.zero_motion(sway)).item() == 0.0
    # F_t = 3 sin(theta t): |F_31 - F_0| = 3 sin(theta); velocities F_31 - F_30 and F_1 - F_0 differ
    # by 3 (2 sin(theta) - sin(2 theta))
    theta = 2 * math.pi * 2 / frames
    expected = 3 * math.sin(theta) + 3 * (2 * math.sin(theta) - math.sin(2 * theta))
    assert metrics.seam_error(sway).item() == pytest.approx(expected, rel=1e-4)


def test_psnr_and_ssim_on_known_frames(generator):
    frames = torch.rand(3, 3, 24, 24, generator=generator)
    assert metrics.psnr(frames + 0.1, frames) == pytest.approx(20.0, abs=1e-3)
    assert metrics.ssim(frames, frames) == pytest.approx(1.0, abs=1e-5)
    assert metrics.ssim(torch.rand(3, 3, 24, 24, generator=generator), frames) < 0.2


def test_mean_spectrum_baseline_has_the_given_power_and_still_start(generator):
    truth = random_volume(generator)
    power = baselines.mean_power([truth])
    baseline = baselines.mean_spectrum_motion(power, truth)
    assert baseline.coeffs.shape == truth.coeffs.shape
    assert metrics.log_power_error(baseline, truth).item() < 1e-4
    from gid_models.spectral import spectral_to_trajectories

    assert spectral_to_trajectories(baseline)[:, 0].abs().max().item() < 1e-4


def test_eval_runs_end_to_end_on_one_short_clip_and_prints_every_metric(tmp_path, capsys):
    clip = tmp_path / "sway.mp4"
    write_sway_clip(clip, seed=0)

    from gid_models.rendering import NeuralRenderer

    torch.manual_seed(0)
    NeuralRenderer(channels=(4, 8)).save(tmp_path / "renderer.safetensors")
    code = main([str(clip), "--size", "64x40", "--frames", "32", "--frequencies", "4", "--seeds", "1", "--steps", "2",
                 "--model", str(tmp_path / "no_such_model"), "--renderer", str(tmp_path / "renderer.safetensors"),
                 "--per-clip"])
    out = capsys.readouterr().out
    assert code == 0
    for name in list(MOTION_ROWS) + list(RENDER_ROWS) + list(METRIC_TITLES.values()):
        assert name in out, name
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    assert "missing: see note 1" in lines["model"] and "1. no trained motion model" in out  # said clearly, no numbers
    assert "missing" not in lines["neural renderer"] and "missing" not in lines["zero motion"]
    truth_line = next(line for line in out.splitlines() if line.startswith("ground truth"))
    assert [float(v) for v in truth_line.split()[2:4]] == [1.0, 0.0]  # truth vs itself
    pixel_line = next(line for line in out.splitlines() if line.startswith("pixel renderer"))
    assert float(pixel_line.split()[2]) > 15.0  # PSNR of rendering with the clip's own motion
