"""tools.plot_losses: the training-loss figure from CSVs in the trainers' formats (fast, no torch)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from tools.plot_losses import (
    denoiser_panel, draw_figure, ema, latest_rows, main, plot_losses, read_panels, smoothing_weight, uses_log_scale,
)

RENDERER_FIELDS = ["step", "split", "loss", "l1", "gradient", "ssim", "l1_pixel_renderer", "lr", "seconds"]


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Small logs of every stage, written the way the trainers write them."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "training_logs"
    folder.mkdir()
    steps = np.arange(0, 2000, 50)
    decay = np.exp(-steps / 600)
    l1 = 0.05 + 0.4 * decay * rng.lognormal(0, 0.2, len(steps))
    gradient = 0.1 + 0.2 * decay
    kl = 100 + 900 * (1 - decay)  # the KL grows while l1 falls: spans decades, log axis
    _write(folder / "vae_losses.csv", ["step", "loss", "l1", "gradient", "kl"],
           [[s, a + 0.2 * g + 1e-6 * k, a, g, k] for s, a, g, k in zip(steps, l1, gradient, kl)])
    for stage in (1, 2):
        noise = 0.3 + 0.6 * decay * rng.lognormal(0, 0.3, len(steps))
        _write(folder / f"denoiser_stage{stage}_losses.csv", ["step", "loss"], [[s, v] for s, v in zip(steps, noise)])
    _write(folder / "denoiser_stage1_validation.csv", ["step", "train_fixed_noise", "val_fixed_noise"],
           [[s, 0.2 + 0.5 * d, 0.35 + 0.4 * d] for s, d in zip(steps[::5], decay[::5])])
    rows = []
    for step, value in zip(steps + 25, l1):
        rows.append([step, "train", 1.5 * value, value, 0.02, 0.1, "", "1.000e-04", step / 10])
        if step % 500 == 25:
            rows.append([step, "val", 1.6 * value, 1.1 * value, 0.02, 0.1, 0.045, "", step / 10])
    _write(folder / "renderer_losses.csv", RENDERER_FIELDS, rows)
    return folder


def _coloured_pixels(picture: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of a curve colour (background, grid, text and axes are grey)."""
    return cv2.cvtColor(picture, cv2.COLOR_BGR2HSV)[..., 1] > 60


def test_figure_has_a_panel_with_curves_per_stage(logs: Path, tmp_path: Path):
    out = tmp_path / "docs" / "training_losses.png"
    main(["--logs", str(logs), "--out", str(out)])
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape == (900, 1600, 3)
    coloured = _coloured_pixels(picture)
    # 2x2 grid under a 40-pixel title strip; a legend alone colours a few hundred pixels, curves thousands
    for top in (40, 470):
        for left in (0, 800):
            assert coloured[top: top + 430, left: left + 800].sum() > 1500, (top, left)


def test_size_is_an_argument_and_a_missing_file_is_skipped(logs: Path, tmp_path: Path, caplog):
    (logs / "renderer_losses.csv").unlink()
    (logs / "denoiser_stage2_losses.csv").unlink()
    with caplog.at_level(logging.WARNING, logger="plot_losses"):
        out = plot_losses(logs, tmp_path / "two.png", width=1200, height=500)
    assert "renderer_losses.csv" in caplog.text and "denoiser_stage2_losses.csv" in caplog.text
    picture = cv2.imread(str(out))
    assert picture.shape == (500, 1200, 3)
    coloured = _coloured_pixels(picture)
    assert coloured[40:, :600].sum() > 1500 and coloured[40:, 600:].sum() > 1500  # two panels side by side


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("step,loss\n", "no logged rows"),
    ("loss,l1\n0.5,0.4\n", "no 'step' column"),
    ("step,loss\n0,0.5\n50,abc\n", "line 3: column 'loss' holds 'abc'"),
    ("step,loss\n0,0.5\n50,0.4,9\n", "line 3: not one value for each of the 2 columns"),
    ("step,loss\n0,0.5\n50\n", "line 3: not one value for each of the 2 columns"),
])
def test_malformed_file_is_named_in_the_error(logs: Path, tmp_path: Path, text: str, message: str):
    (logs / "denoiser_stage1_losses.csv").write_text(text)
    with pytest.raises(ValueError, match="denoiser_stage1_losses.csv") as error:
        plot_losses(logs, tmp_path / "out.png")
    assert message in str(error.value)
    assert not (tmp_path / "out.png").exists()


def test_denoiser_validation_log_adds_markers(logs: Path):
    with_validation = denoiser_panel(logs / "denoiser_stage1_losses.csv", "stage 1")
    assert [s.name for s in with_validation.series] == [
        "loss", "fixed-noise loss, train examples", "fixed-noise loss, validation"]
    assert all(s.markers for s in with_validation.series[1:]) and len(with_validation.series[1].steps) == 8
    assert len(denoiser_panel(logs / "denoiser_stage2_losses.csv", "stage 2").series) == 1
    (logs / "denoiser_stage1_validation.csv").write_text("step,val_fixed_noise\n0,oops\n")
    with pytest.raises(ValueError, match="denoiser_stage1_validation.csv, line 2"):
        denoiser_panel(logs / "denoiser_stage1_losses.csv", "stage 1")


def test_command_line_reports_errors_without_a_traceback(logs: Path, tmp_path: Path, capsys):
    _write(logs / "renderer_losses.csv", RENDERER_FIELDS, [[25, "test", 0.1, 0.05, 0.02, 0.1, "", "", 1]])
    with pytest.raises(SystemExit) as exit_info:
        main(["--logs", str(logs), "--out", str(tmp_path / "out.png")])
    assert exit_info.value.code == 1
    assert "renderer_losses.csv" in capsys.readouterr().err


def test_empty_log_folder_is_an_error(tmp_path: Path):
    with pytest.raises(ValueError, match="no training loss CSV"):
        plot_losses(tmp_path, tmp_path / "out.png")


def test_resumed_run_keeps_the_last_rows_of_repeated_steps():
    steps = np.array([0, 50, 100, 50, 100, 150], dtype=float)
    assert latest_rows(steps, np.arange(6)).tolist() == [0, 3, 4, 5]


def test_panels_axes_and_legends(logs: Path):
    """One panel per stage log; a log y axis only where the values span a decade (the VAE's KL)."""
    figure = draw_figure(read_panels(logs), smoothing=0.9)
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title().split(" (")[0] for axes in panels] == [
        "Motion VAE", "Denoiser stage 1: 2D U-Net", "Denoiser stage 2: frequency attention", "Neural renderer"]
    assert [axes.get_yscale() for axes in panels[:3]] == ["log", "linear", "linear"]
    legends = [[text.get_text() for text in axes.get_legend().get_texts()] for axes in panels]
    assert legends[0] == ["loss", "l1", "gradient", "kl"]
    assert legends[3] == ["train loss", "train l1", "val l1", "val l1, pixel renderer"]
    renderer_lines = panels[3].get_lines()  # raw + smoothed line for each train curve, markers for val
    assert [line.get_marker() for line in renderer_lines] == ["None", "None", "None", "None", "o", "s"]


def test_smoothing_and_scale_helpers():
    np.testing.assert_allclose(ema(np.full(5, 2.0), 0.9), 2.0)
    smoothed = ema(np.array([0.0, 1.0] * 20), 0.9)
    assert smoothed[-10:].std() < 0.1
    assert smoothing_weight(0.9, 1000) == 0.9 and smoothing_weight(0.9, 40) == 0.5 and smoothing_weight(0.9, 10) == 0.0
    assert uses_log_scale(np.array([0.05, 2.0])) and not uses_log_scale(np.array([0.3, 1.2]))
    assert not uses_log_scale(np.array([0.0, 5.0]))
