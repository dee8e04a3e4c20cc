"""One PNG of the training losses logged by gid_models.train (drawn with matplotlib).

    python -m tools.plot_losses                                   # the shipped logs -> docs/
    python -m tools.plot_losses --logs MODEL_DIR --out losses.png

Reads, from the log folder, whichever of these exist (a missing one is skipped with a note):
  vae_losses.csv                 step + every loss part (loss, l1, gradient, kl)   train_vae
  vae_decoder_losses.csv         the same, for a decoder-only fine-tune           train_vae --decoder-only
  denoiser_stage1_losses.csv     step, loss                                        train_denoiser
  denoiser_stage2_losses.csv     step, loss                                        train_denoiser
    + denoiser_stage{1,2}_validation.csv, when present: step, train_fixed_noise, val_fixed_noise
  renderer_losses.csv            step, split (train / val), loss, l1, ..., l1_pixel_renderer
                                 (train_renderer writes it as losses.csv)
  amplitude_losses.csv           step, train_loss, held_out_loss, held_out_spearman, photo_auc_*
                                                                                   train_amplitude
  amplitude_member2_losses.csv   the same, for the second network merged into the shipped one
                                 (gid merge-amplitude)
One panel per stage in a grid: every loss column as a curve, validation figures as markers (the
denoiser's fixed-noise loss on training and validation examples; the renderer's validation l1,
neural and pixel renderer, under its train loss and l1 curves). Lines are the raw values (thin,
light) under their exponential moving average (thick); the y axis is logarithmic where a panel's
values span a decade. Needs matplotlib (the `dev` extra: pip install -e ".[dev]").
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

LOGGER = logging.getLogger("plot_losses")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOGS = REPO_ROOT / "gid_models" / "weights" / "training_logs"
DEFAULT_OUT = REPO_ROOT / "docs" / "training_losses.png"
DPI = 100  # figure inches x DPI = the picture's size in pixels
MARKERS = {"circle": "o", "square": "s"}
TEXT_COLUMNS = {"split"}


@dataclass(frozen=True)
class Series:
    """One curve: values (N,) at training steps (N,). markers None: raw + smoothed line;
    "circle" or "square": one marker per value (validation figures)."""

    name: str
    steps: np.ndarray
    values: np.ndarray
    markers: str | None = None


@dataclass(frozen=True)
class Panel:
    """One chart of the grid: a title over its curves."""

    title: str
    series: list[Series]


def read_log(path: Path) -> dict[str, np.ndarray]:
    """A trainer's loss CSV as {column: (N,) array}: float64 (an empty cell is NaN), 'split' as str.
    ValueError naming the file (and line) when it is unreadable, empty, has no 'step' column, a
    ragged row or a cell that is not a number; blank lines are ignored."""
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            rows = [(reader.line_num, row) for row in reader]
            header = reader.fieldnames
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path} is not a readable CSV file: {error}") from error
    if not header:
        raise ValueError(f"{path} is empty; expected a header row with a 'step' column, then one row per logged step.")
    if "step" not in header:
        raise ValueError(f"{path}: the header {header} has no 'step' column; is this a gid training loss log?")
    if not rows:
        raise ValueError(f"{path} has a header but no logged rows.")
    for line, row in rows:
        if None in row or None in row.values():  # DictReader's marks of too many / too few values
            raise ValueError(f"{path}, line {line}: not one value for each of the {len(header)} columns {header}.")
    columns = {}
    for name in header:
        cells = [(line, row[name].strip()) for line, row in rows]
        columns[name] = np.array([cell for _, cell in cells]) if name in TEXT_COLUMNS else np.array(
            [_number(cell, f"{path}, line {line}: column {name!r}") for line, cell in cells])
    if np.isnan(columns["step"]).any():
        raise ValueError(f"{path}: a row has no step value.")
    return columns


def _number(cell: str, where: str) -> float:
    try:
        return float(cell) if cell else math.nan
    except ValueError:
        raise ValueError(f"{where} holds {cell!r}, not a number.") from None


def latest_rows(steps: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Indices of `rows` sorted by step, keeping the last row of each step: a run resumed from an
    earlier checkpoint logs those steps again, and the later rows belong to the kept weights."""
    backwards = rows[::-1]  # np.unique gives the first index of each value: the last row here
    _, first = np.unique(steps[backwards], return_index=True)
    return backwards[first]


def _series(name: str, steps: np.ndarray, values: np.ndarray, markers: str | None = None) -> Series | None:
    finite = np.isfinite(values)
    return Series(name, steps[finite], values[finite], markers) if finite.any() else None


def _latest_series(log: dict[str, np.ndarray], names: dict[str, str], markers: tuple[str | None, ...]) -> list[Series]:
    """One series per column in names ({column: legend name}), from the last row of each step;
    markers cycles over the series. Columns without a finite value are left out."""
    rows = latest_rows(log["step"], np.arange(len(log["step"])))
    series = [_series(legend, log["step"][rows], log[column][rows], markers[index % len(markers)])
              for index, (column, legend) in enumerate(names.items())]
    return [s for s in series if s is not None]


def stage_panel(path: Path, title: str) -> Panel:
    """A trainer CsvLog (VAE or denoiser stage): every column but step is a loss curve."""
    log = read_log(path)
    columns = [name for name in log if name != "step"]
    series = _latest_series(log, {name: name for name in columns}, (None,))
    if not series:
        raise ValueError(f"{path}: no loss values besides 'step' (columns {columns}).")
    return Panel(title, series)


VALIDATION_NAMES = {"train_fixed_noise": "fixed-noise loss, train examples",
                    "val_fixed_noise": "fixed-noise loss, validation"}


def denoiser_panel(path: Path, title: str) -> Panel:
    """A denoiser stage's loss curve, plus as markers the columns of its sibling
    *_validation.csv (train_denoiser --val-shards) when there is one."""
    panel = stage_panel(path, title)
    validation = path.with_name(path.name.replace("_losses.csv", "_validation.csv"))
    if not validation.is_file():
        return panel
    log = read_log(validation)
    names = {name: VALIDATION_NAMES.get(name, name) for name in log if name != "step"}
    return Panel(title, panel.series + _latest_series(log, names, ("circle", "square")))


def renderer_panel(path: Path, title: str) -> Panel:
    """train_renderer's losses.csv: train loss and l1 as lines, validation l1 (and the pixel
    renderer's l1 on the same held-out pairs, the figure to beat) as markers."""
    log = read_log(path)
    missing = [name for name in ("split", "loss", "l1") if name not in log]
    if missing:
        raise ValueError(f"{path}: no {missing} column(s); expected train_renderer's CSV (step, split, loss, l1, ...).")
    unknown = sorted(set(log["split"]) - {"train", "val"})
    if unknown:
        raise ValueError(f"{path}: split values {unknown}; expected 'train' or 'val'.")
    train = latest_rows(log["step"], np.flatnonzero(log["split"] == "train"))
    val = latest_rows(log["step"], np.flatnonzero(log["split"] == "val"))
    wanted = [("train loss", "loss", train, None), ("train l1", "l1", train, None), ("val l1", "l1", val, "circle"),
              ("val l1, pixel renderer", "l1_pixel_renderer", val, "square")]
    series = [_series(name, log["step"][rows], log[column][rows], markers)
              for name, column, rows, markers in wanted if column in log and len(rows)]
    series = [s for s in series if s is not None]
    if not series:
        raise ValueError(f"{path}: no loss values in its train or val rows.")
    return Panel(title, series)


AMPLITUDE_NAMES = {"train_loss": "train loss (L1, log px)", "held_out_loss": "held-out scenes: loss",
                   "held_out_spearman": "held-out scenes: magnitude Spearman",
                   "photo_auc_mean": "real photos: mean AUC (a record)"}


def amplitude_panel(path: Path, title: str) -> Panel:
    """train_amplitude's log: the train loss as a line, held-out and photo scores as markers."""
    log = read_log(path)
    if "train_loss" not in log:
        raise ValueError(f"{path}: no train_loss column; expected gid train-amplitude's amplitude_losses.csv.")
    series = _latest_series(log, {"train_loss": AMPLITUDE_NAMES["train_loss"]}, (None,))
    scores = {name: legend for name, legend in AMPLITUDE_NAMES.items() if name != "train_loss" and name in log}
    return Panel(title, series + _latest_series(log, scores, ("circle", "square")))


STAGES: list[tuple[str, str, Callable[[Path, str], Panel]]] = [
    ("vae_losses.csv", "Motion VAE", stage_panel),
    ("vae_decoder_losses.csv", "Motion VAE decoder fine-tune", stage_panel),
    ("denoiser_stage1_losses.csv", "Denoiser stage 1: 2D U-Net", denoiser_panel),
    ("denoiser_stage2_losses.csv", "Denoiser stage 2: frequency attention", denoiser_panel),
    ("renderer_losses.csv", "Neural renderer", renderer_panel),
    ("amplitude_losses.csv", "Amplitude v2, member 1", amplitude_panel),
    ("amplitude_member2_losses.csv", "Amplitude v2, member 2", amplitude_panel),
]


def read_panels(log_dir: Path) -> list[Panel]:
    """A panel for each known log file present in log_dir (a missing file is logged and skipped)."""
    panels = []
    for file_name, title, read in STAGES:
        path = log_dir / file_name
        if not path.is_file():
            LOGGER.warning("no %s in %s; its panel is left out", file_name, log_dir)
            continue
        panels.append(read(path, f"{title} ({file_name})"))
    if not panels:
        raise ValueError(f"no training loss CSV in {log_dir}; expected any of {[name for name, _, _ in STAGES]}.")
    return panels


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing) of (N,) values, weight in [0, 1)."""
    out = np.empty(len(values))
    running = 0.0
    for index, value in enumerate(values):
        running = weight * running + (1.0 - weight) * value
        out[index] = running / (1.0 - weight ** (index + 1))
    return out


def smoothing_weight(weight: float, count: int) -> float:
    """The EMA weight for a curve of count points: at most `weight`, and with a time constant of
    at most 5% of the curve, since a long average on a short log lags behind a falling loss."""
    return max(0.0, min(weight, 1.0 - 1.0 / max(1.0, 0.05 * count)))


def uses_log_scale(values: np.ndarray) -> bool:
    """Log y when every value is positive and the largest is at least 10x the smallest."""
    return bool(values.min() > 0 and values.max() >= 10 * values.min())


def draw_panel(axes: Axes, panel: Panel, smoothing: float) -> None:
    """One panel: raw values thin and light under their EMA (see smoothing_weight), markers for
    validation figures, a log y axis where the values span a decade."""
    for index, series in enumerate(panel.series):
        color = f"C{index}"
        if series.markers:
            axes.plot(series.steps, series.values, MARKERS[series.markers], color=color, markeredgecolor="0.15",
                      label=series.name)
        else:
            weight = smoothing_weight(smoothing, len(series.values))
            axes.plot(series.steps, series.values, color=color, alpha=0.35, linewidth=0.8)
            axes.plot(series.steps, ema(series.values, weight), color=color, linewidth=2, label=series.name)
    log_y = uses_log_scale(np.concatenate([series.values for series in panel.series]))
    if log_y:
        axes.set_yscale("log")
    axes.set(title=panel.title, xlabel="step", ylabel="loss (log scale)" if log_y else "loss")
    axes.grid(True, color="0.9")
    axes.legend(loc="best", fontsize="small")


def draw_figure(panels: list[Panel], width: int = 1600, height: int = 900, smoothing: float = 0.9) -> Figure:
    """A width x height pixel figure: a title over a grid of panels, at least as many columns as rows."""
    columns = math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    figure.suptitle("GID training losses (thin light lines: logged values; thick lines: their exponential moving "
                    "average)")
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, panel in zip(grid.flat, panels):
        draw_panel(axes, panel, smoothing)
    for axes in grid.flat[len(panels):]:
        axes.set_visible(False)
    return figure


def plot_losses(log_dir: str | Path = DEFAULT_LOGS, out: str | Path = DEFAULT_OUT, width: int = 1600,
                height: int = 900, smoothing: float = 0.9) -> Path:
    """Read the loss CSVs of log_dir and write the figure to out (PNG). Returns out."""
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}.")
    figure = draw_figure(read_panels(Path(log_dir)), width, height, smoothing)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        figure.savefig(out, format="png")
    except OSError as error:
        raise ValueError(f"could not write {out}: {error}; use a path in a writable folder.") from error
    LOGGER.info("wrote %s (%dx%d)", out, width, height)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", default=str(DEFAULT_LOGS), help="folder of the loss CSVs")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="PNG to write")
    parser.add_argument("--width", type=int, default=1600, help="picture width (pixels)")
    parser.add_argument("--height", type=int, default=900, help="picture height (pixels)")
    parser.add_argument("--smoothing", type=float, default=0.9,
                        help="largest EMA weight of the thick lines, 0..<1 (less on short logs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        plot_losses(args.logs, args.out, args.width, args.height, args.smoothing)
    except ValueError as error:
        parser.exit(1, f"plot_losses: {error}\n")


if __name__ == "__main__":
    main()
