"""Line charts drawn with OpenCV and numpy (the pack does not depend on matplotlib): a grid of
panels, each with axes, ticks with numbers, a log y axis where values span a decade, a title and
a legend. Curves are drawn as their raw values (thin, light) under an exponential moving average
(thick); validation figures as markers. Pictures are (H, W, 3) uint8 BGR, as cv2.imwrite takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
GRID = (228, 228, 228)
PALETTE = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140)]  # tab10, BGR
HEADER_H = 40
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 78, 18, 38, 46


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
    x_label: str = "step"
    y_label: str = "loss"


# -- maths of the axes ----------------------------------------------------------------------------

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


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering low..high."""
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    spacing = min((m * power for m in (1, 2, 5, 10)), key=lambda candidate: abs(math.log(candidate / raw)))
    first = math.ceil(low / spacing - 1e-9)
    return [k * spacing for k in range(first, int(math.floor(high / spacing + 1e-9)) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten in low..high, with 2x and 5x in between when the range spans few decades."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    multiples = (1, 2, 5) if last - first <= 2 else (1,)
    ticks = [m * 10.0**p for p in range(first, last + 1) for m in multiples]
    return [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]


def tick_label(value: float) -> str:
    """Short number text: 0.05, 2e-04, 1.5k, 20k."""
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:.0e}" if 0 < abs(value) < 1e-3 else f"{value:.4g}"


@dataclass(frozen=True)
class Axes:
    """Maps steps and loss values to pixel coordinates of a plot area width x height (pixels)."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]  # log10 of the values when log_y
    log_y: bool
    width: int
    height: int

    @classmethod
    def fit(cls, series: list[Series], width: int, height: int) -> "Axes":
        steps = np.concatenate([s.steps for s in series])
        values = np.concatenate([s.values for s in series])
        x0, x1 = float(steps.min()), float(steps.max())
        x_pad = 0.015 * (x1 - x0) if x1 > x0 else 1.0
        log_y = uses_log_scale(values)
        y = np.log10(values) if log_y else values
        y0, y1 = float(y.min()), float(y.max())
        pad = 0.06 * (y1 - y0) if y1 > y0 else max(0.05 * abs(y0), 0.01)
        return cls((x0 - x_pad, x1 + x_pad), (y0 - pad, y1 + pad), log_y, width, height)

    def to_pixels(self, steps: np.ndarray, values: np.ndarray) -> np.ndarray:
        """(N, 2) float pixel coordinates (x right, y down) inside the plot area."""
        y = np.log10(values) if self.log_y else values
        px = (steps - self.x_range[0]) / (self.x_range[1] - self.x_range[0]) * (self.width - 1)
        py = (1 - (y - self.y_range[0]) / (self.y_range[1] - self.y_range[0])) * (self.height - 1)
        return np.stack([px, py], axis=1)

    def y_ticks(self) -> list[float]:
        if self.log_y:
            return log_ticks(10 ** self.y_range[0], 10 ** self.y_range[1])
        return nice_ticks(*self.y_range)


# -- drawing --------------------------------------------------------------------------------------

def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, color=INK, thickness: int = 1,
          align: str = "left", middle: bool = False) -> None:
    """Text at origin: align "left", "center" or "right" in x; baseline at origin y, or centred
    on it when middle."""
    (width, height), _ = cv2.getTextSize(text, FONT, scale, thickness)
    x = origin[0] - {"left": 0, "center": width // 2, "right": width}[align]
    y = origin[1] + (height // 2 if middle else 0)
    cv2.putText(image, text, (x, y), FONT, scale, color, thickness, cv2.LINE_AA)


def _vertical_text(image: np.ndarray, text: str, center: tuple[int, int], scale: float) -> None:
    """Text read bottom to top, centred on center (cv2 only draws horizontal text)."""
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, 1)
    strip = np.full((height + baseline + 4, width + 4, 3), BACKGROUND, np.uint8)
    cv2.putText(strip, text, (2, height + 2), FONT, scale, INK, 1, cv2.LINE_AA)
    strip = np.ascontiguousarray(np.rot90(strip))
    top, left = center[1] - strip.shape[0] // 2, center[0] - strip.shape[1] // 2
    if top >= 0 and left >= 0:
        image[top: top + strip.shape[0], left: left + strip.shape[1]] = strip


def _lighter(color: tuple[int, int, int], amount: float = 0.6) -> tuple[int, int, int]:
    return tuple(int(round(c + (255 - c) * amount)) for c in color)


def _polyline(plot: np.ndarray, points: np.ndarray, color, thickness: int) -> None:
    if len(points) == 1:
        cv2.circle(plot, tuple(int(v) for v in np.round(points[0])), thickness + 1, color, -1, cv2.LINE_AA)
        return
    # 4 fractional bits: smoother anti-aliased curves than whole-pixel vertices
    fixed = np.round(points * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(plot, [fixed], False, color, thickness, cv2.LINE_AA, shift=4)


def _marker(image: np.ndarray, center: tuple[int, int], shape: str, color, size: int = 4) -> None:
    """A filled "square" or circle with a dark outline."""
    x, y = center
    for fill, thickness in ((color, -1), (INK, 1)):
        if shape == "square":
            cv2.rectangle(image, (x - size, y - size), (x + size, y + size), fill, thickness)
        else:
            cv2.circle(image, center, size + 1, fill, thickness, cv2.LINE_AA)


def _legend(plot: np.ndarray, series: list[Series], colors: list, points: np.ndarray) -> None:
    """Box in the corner of the plot area that covers the fewest of the (N, 2) curve points."""
    scale, row_h, swatch = 0.45, 20, 26
    width = max(cv2.getTextSize(s.name, FONT, scale, 1)[0][0] for s in series) + swatch + 22
    box_h = row_h * len(series) + 8
    corners = [(plot.shape[1] - 8 - width, 8), (plot.shape[1] - 8 - width, plot.shape[0] - 8 - box_h),
               (8, 8), (8, plot.shape[0] - 8 - box_h)]

    def covered(corner: tuple[int, int]) -> int:
        inside = (points >= corner) & (points <= (corner[0] + width, corner[1] + box_h))
        return int(inside.all(axis=1).sum())

    left, top = min(corners, key=covered)
    right, bottom = left + width, top + box_h
    cv2.rectangle(plot, (left, top), (right, bottom), BACKGROUND, -1)
    cv2.rectangle(plot, (left, top), (right, bottom), (170, 170, 170), 1)
    for index, (item, color) in enumerate(zip(series, colors)):
        y = top + 14 + row_h * index
        if item.markers:
            _marker(plot, (left + 8 + swatch // 2, y), item.markers, color)
        else:
            cv2.line(plot, (left + 8, y), (left + 8 + swatch, y), color, 2, cv2.LINE_AA)
        _text(plot, item.name, (left + 14 + swatch, y), scale, middle=True)


def draw_panel(cell: np.ndarray, panel: Panel, smoothing: float) -> None:
    """Draw one panel into cell ((H, W, 3) uint8 BGR view of the canvas), in place; smoothing is
    the largest EMA weight of the thick lines (see smoothing_weight)."""
    height, width = cell.shape[:2]
    plot_w, plot_h = width - MARGIN_LEFT - MARGIN_RIGHT, height - MARGIN_TOP - MARGIN_BOTTOM
    axes = Axes.fit(panel.series, plot_w, plot_h)
    _text(cell, panel.title, (MARGIN_LEFT + plot_w // 2, 26), 0.62, thickness=2, align="center")
    plot = cell[MARGIN_TOP: MARGIN_TOP + plot_h, MARGIN_LEFT: MARGIN_LEFT + plot_w]
    for value in axes.y_ticks():
        y = int(round(axes.to_pixels(np.array([axes.x_range[0]]), np.array([value]))[0, 1]))
        cv2.line(plot, (0, y), (plot_w - 1, y), GRID, 1)
        cv2.line(cell, (MARGIN_LEFT - 5, MARGIN_TOP + y), (MARGIN_LEFT, MARGIN_TOP + y), INK, 1)
        _text(cell, tick_label(value), (MARGIN_LEFT - 8, MARGIN_TOP + y), 0.42, align="right", middle=True)
    for step in nice_ticks(*axes.x_range, count=6):
        x = int(round(axes.to_pixels(np.array([step]), np.array([1.0]))[0, 0]))
        cv2.line(plot, (x, 0), (x, plot_h - 1), GRID, 1)
        cv2.line(cell, (MARGIN_LEFT + x, MARGIN_TOP + plot_h), (MARGIN_LEFT + x, MARGIN_TOP + plot_h + 5), INK, 1)
        _text(cell, tick_label(step), (MARGIN_LEFT + x, MARGIN_TOP + plot_h + 20), 0.42, align="center")
    _text(cell, panel.x_label, (MARGIN_LEFT + plot_w // 2, height - 8), 0.48, align="center")
    _vertical_text(cell, f"{panel.y_label} (log scale)" if axes.log_y else panel.y_label, (14, MARGIN_TOP + plot_h // 2), 0.48)
    colors = [PALETTE[index % len(PALETTE)] for index in range(len(panel.series))]
    lines = [(s, c) for s, c in zip(panel.series, colors) if not s.markers]
    for item, color in lines:
        _polyline(plot, axes.to_pixels(item.steps, item.values), _lighter(color), 1)
    for item, color in lines:
        smoothed = ema(item.values, smoothing_weight(smoothing, len(item.values)))
        _polyline(plot, axes.to_pixels(item.steps, smoothed), color, 2)
    for item, color in zip(panel.series, colors):
        if item.markers:
            for x, y in np.round(axes.to_pixels(item.steps, item.values)).astype(int):
                _marker(plot, (int(x), int(y)), item.markers, color)
    cv2.rectangle(cell, (MARGIN_LEFT - 1, MARGIN_TOP - 1), (MARGIN_LEFT + plot_w, MARGIN_TOP + plot_h), INK, 1)
    points = np.concatenate([axes.to_pixels(s.steps, s.values) for s in panel.series])
    _legend(plot, panel.series, colors, points)


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) for count panels, at least as many columns as rows."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def draw_figure(panels: list[Panel], width: int = 1600, height: int = 900, smoothing: float = 0.9,
                title: str = "GID training losses",
                note: str = "thin light lines: logged values; thick lines: their exponential moving average") -> np.ndarray:
    """(height, width, 3) uint8 BGR picture: a title strip over a grid of panels."""
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    _text(canvas, title, (16, 28), 0.75, thickness=2)
    _text(canvas, note, (width - 16, 28), 0.48, color=(90, 90, 90), align="right")
    rows, columns = grid_shape(len(panels))
    cell_w, cell_h = width // columns, (height - HEADER_H) // rows
    for index, panel in enumerate(panels):
        top, left = HEADER_H + (index // columns) * cell_h, (index % columns) * cell_w
        draw_panel(canvas[top: top + cell_h, left: left + cell_w], panel, smoothing)
    return canvas


