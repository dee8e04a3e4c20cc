"""One PNG of the training losses logged by gid_models.train (drawn by tools.line_chart).

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
One panel per stage in a grid: every loss column as a curve, validation figures as markers (the
denoiser's fixed-noise loss on training and validation examples; the renderer's validation l1,
neural and pixel renderer, under its train loss and l1 curves).
"""

from __future__ import annotations

import argparse
import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .line_chart import Panel, Series, draw_figure

LOGGER = logging.getLogger("plot_losses")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOGS = REPO_ROOT / "gid_models" / "weights" / "training_logs"
DEFAULT_OUT = REPO_ROOT / "docs" / "training_losses.png"


@dataclass(frozen=True)
class LossTable:
    """A loss CSV as text: its header, cells[row][column] and the file line number of each row."""

    path: Path
    header: list[str]
    cells: list[list[str]]
    lines: list[int]

    @classmethod
    def read(cls, path: Path) -> "LossTable":
        """ValueError naming the file when it is unreadable, empty, lacks a 'step' column or has a
        ragged row; blank lines are ignored."""
        try:
            with open(path, newline="") as handle:
                reader = csv.reader(handle)
                rows = [(reader.line_num, row) for row in reader if row]
        except (UnicodeDecodeError, csv.Error) as error:
            raise ValueError(f"{path} is not a readable CSV file: {error}") from error
        if not rows:
            raise ValueError(f"{path} is empty; expected a header row with a 'step' column, "
                             "then one row per logged step.")
        header, body = rows[0][1], rows[1:]
        if "step" not in header:
            raise ValueError(f"{path}: the header {header} has no 'step' column; is this a gid training loss log?")
        if not body:
            raise ValueError(f"{path} has a header but no logged rows.")
        for line, row in body:
            if len(row) != len(header):
                raise ValueError(f"{path}, line {line}: {len(row)} values for the {len(header)} columns {header}.")
        return cls(path, header, [row for _, row in body], [line for line, _ in body])

    def text(self, column: str) -> list[str]:
        index = self.header.index(column)
        return [row[index].strip() for row in self.cells]

    def numbers(self, column: str) -> np.ndarray:
        """(N,) float64 of one column; empty cells are NaN, any other non-number is an error."""
        values = np.full(len(self.cells), np.nan)
        for index, cell in enumerate(self.text(column)):
            if cell:
                try:
                    values[index] = float(cell)
                except ValueError:
                    raise ValueError(f"{self.path}, line {self.lines[index]}: column {column!r} holds {cell!r}, "
                                     "not a number.") from None
        if column == "step" and np.isnan(values).any():
            raise ValueError(f"{self.path}: a row has no step value.")
        return values


def latest_rows(steps: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Indices of `rows` sorted by step, keeping the last row of each step: a run resumed from an
    earlier checkpoint logs those steps again, and the later rows belong to the kept weights."""
    last: dict[float, int] = {}
    for row in rows:
        last[float(steps[row])] = int(row)
    return np.array([last[step] for step in sorted(last)], dtype=np.int64)


def _series(name: str, steps: np.ndarray, values: np.ndarray, markers: str | None = None) -> Series | None:
    finite = np.isfinite(values)
    return Series(name, steps[finite], values[finite], markers) if finite.any() else None


def stage_panel(path: Path, title: str) -> Panel:
    """A trainer CsvLog (VAE or denoiser stage): every column but step is a loss curve."""
    table = LossTable.read(path)
    steps = table.numbers("step")
    rows = latest_rows(steps, np.arange(len(steps)))
    columns = [name for name in table.header if name != "step"]
    series = [_series(name, steps[rows], table.numbers(name)[rows]) for name in columns]
    series = [s for s in series if s is not None]
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
    table = LossTable.read(validation)
    steps = table.numbers("step")
    rows = latest_rows(steps, np.arange(len(steps)))
    columns = [name for name in table.header if name != "step"]
    markers = [_series(VALIDATION_NAMES.get(name, name), steps[rows], table.numbers(name)[rows],
                       ("circle", "square")[index % 2]) for index, name in enumerate(columns)]
    return Panel(title, panel.series + [s for s in markers if s is not None])


def renderer_panel(path: Path, title: str) -> Panel:
    """train_renderer's losses.csv: train loss and l1 as lines, validation l1 (and the pixel
    renderer's l1 on the same held-out pairs, the figure to beat) as markers."""
    table = LossTable.read(path)
    missing = [name for name in ("split", "loss", "l1") if name not in table.header]
    if missing:
        raise ValueError(f"{path}: no {missing} column(s); expected train_renderer's CSV (step, split, loss, l1, ...).")
    steps = table.numbers("step")
    splits = np.array(table.text("split"))
    unknown = sorted(set(splits) - {"train", "val"})
    if unknown:
        raise ValueError(f"{path}: split values {unknown}; expected 'train' or 'val'.")
    train = latest_rows(steps, np.flatnonzero(splits == "train"))
    val = latest_rows(steps, np.flatnonzero(splits == "val"))
    wanted = [("train loss", "loss", train, None), ("train l1", "l1", train, None), ("val l1", "l1", val, "circle"),
              ("val l1, pixel renderer", "l1_pixel_renderer", val, "square")]
    series = [_series(name, steps[rows], table.numbers(column)[rows], markers)
              for name, column, rows, markers in wanted if column in table.header and len(rows)]
    series = [s for s in series if s is not None]
    if not series:
        raise ValueError(f"{path}: no loss values in its train or val rows.")
    return Panel(title, series)


STAGES: list[tuple[str, str, Callable[[Path, str], Panel]]] = [
    ("vae_losses.csv", "Motion VAE", stage_panel),
    ("vae_decoder_losses.csv", "Motion VAE decoder fine-tune", stage_panel),
    ("denoiser_stage1_losses.csv", "Denoiser stage 1: 2D U-Net", denoiser_panel),
    ("denoiser_stage2_losses.csv", "Denoiser stage 2: frequency attention", denoiser_panel),
    ("renderer_losses.csv", "Neural renderer", renderer_panel),
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


def plot_losses(log_dir: str | Path = DEFAULT_LOGS, out: str | Path = DEFAULT_OUT, width: int = 1600,
                height: int = 900, smoothing: float = 0.9) -> Path:
    """Read the loss CSVs of log_dir and write the figure to out (PNG). Returns out."""
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}.")
    canvas = draw_figure(read_panels(Path(log_dir)), width, height, smoothing)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), canvas):
        raise ValueError(f"could not write {out}; use a .png path in a writable folder.")
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
