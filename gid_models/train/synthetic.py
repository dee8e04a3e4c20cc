"""Procedural training scenes with exact, physically plausible motion.

A scene is a painted picture (sky, textured ground, a few plants with leaves or flowers) and the
spectral volume of its motion, built directly in the frequency domain, so the ground truth has
no optical-flow error:
- each plant is a cantilever fixed at its root: its deflection is a sum of the first three
  Euler-Bernoulli cantilever mode shapes phi_n(s) (s = 0 at the root, 1 at the tip) with
  natural frequencies in the cantilever ratios beta_n^2 (1 : 6.27 : 17.5);
- wind is a random force with a 1/f-like power spectrum (random complex Gaussian per bin),
  shared between plants with a travel delay plus an independent gust part;
- every mode responds to the force as a damped oscillator, q_n(f) = G_n W(f) / (w_n^2 - w^2 +
  2 i zeta w_n w), and moves its pixels perpendicular to the plant's stem;
- bin 0 is set so the displacement at the start frame is exactly zero, like volumes from video.
Everything is drawn from numpy's Generator(seed), so a seed always gives the same scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..spectral import SpectralVolume

CANTILEVER_BETA = (1.87510407, 4.69409113, 7.85475744)  # beta_n L of a clamped-free beam
MODE_PARTICIPATION = (0.78, 0.43, 0.25)  # share of a uniform load taken by each mode


@dataclass(frozen=True)
class SyntheticScene:
    """image: (3, H, W) uint8 RGB; volume: (1, K, 4, H, W) pixels; seed: what made it."""

    image: torch.Tensor
    volume: SpectralVolume
    seed: int


def cantilever_mode(s: np.ndarray, mode: int) -> np.ndarray:
    """Mode shape n (0-based) of a clamped-free beam at s in 0..1, scaled so the tip moves by 1."""
    beta = CANTILEVER_BETA[mode]
    sigma = (math.cosh(beta) + math.cos(beta)) / (math.sinh(beta) + math.sin(beta))

    def shape(x: np.ndarray) -> np.ndarray:
        return np.cosh(beta * x) - np.cos(beta * x) - sigma * (np.sinh(beta * x) - np.sin(beta * x))

    return shape(s) / shape(np.ones(1))[0]


def wind_force(frequencies_hz: np.ndarray, rng: np.random.Generator, exponent: float = 1.0, corner_hz: float = 0.1) -> np.ndarray:
    """(K,) complex wind force per bin: power ~ 1/f^exponent above corner_hz, random Gaussian phase
    and magnitude (a stationary random process); bin 0 (no oscillation) is 0."""
    power = np.maximum(frequencies_hz**2 + corner_hz**2, 1e-12) ** (-exponent / 2)
    force = np.sqrt(power / 2) * (rng.standard_normal(frequencies_hz.shape) + 1j * rng.standard_normal(frequencies_hz.shape))
    force[0] = 0
    return force


def modal_response(frequencies_hz: np.ndarray, natural_hz: float, damping: float) -> np.ndarray:
    """(K,) complex receptance of a damped oscillator, 1 / (w_n^2 - w^2 + 2 i zeta w_n w)."""
    w, wn = 2 * math.pi * frequencies_hz, 2 * math.pi * natural_hz
    return 1.0 / (wn**2 - w**2 + 2j * damping * wn * w)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """(H, W) float32 noise in about -1..1 with features about width/cells pixels across."""
    small = rng.standard_normal((max(2, cells * height // width), cells)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _paint_background(rng: np.random.Generator, height: int, width: int, horizon: int) -> np.ndarray:
    """(H, W, 3) float32 RGB 0..1: sky gradient above the horizon, textured ground below."""
    image = np.zeros((height, width, 3), np.float32)
    rows = np.linspace(0, 1, max(horizon, 1))[:, None]
    top, bottom = rng.uniform([0.2, 0.4, 0.7], [0.5, 0.6, 0.95]), rng.uniform([0.6, 0.7, 0.8], [0.9, 0.9, 1.0])
    image[:horizon] = (top * (1 - rows) + bottom * rows)[:, None, :]
    image[:horizon] += 0.05 * _smooth_noise(rng, horizon, width, 6)[..., None]
    ground = rng.uniform([0.2, 0.35, 0.1], [0.45, 0.6, 0.25])
    texture = 0.08 * _smooth_noise(rng, height - horizon, width, 24) + 0.05 * rng.standard_normal((height - horizon, width))
    image[horizon:] = ground + texture[..., None].astype(np.float32)
    return image


def _stem_points(rng: np.random.Generator, root: tuple[float, float], length: float, points: int = 24) -> np.ndarray:
    """(points, 2) x, y pixel positions from root (s = 0) to tip (s = 1) of a gently curved stem."""
    s = np.linspace(0, 1, points)
    lean, bend = rng.uniform(-0.35, 0.35), rng.uniform(-0.4, 0.4)
    angle = lean + bend * s  # radians from vertical
    step = length / (points - 1)
    dx, dy = np.sin(angle) * step, -np.cos(angle) * step
    xy = np.stack([np.concatenate([[0], np.cumsum(dx[1:])]), np.concatenate([[0], np.cumsum(dy[1:])])], axis=1)
    return xy + np.asarray(root)


def _draw_plant(
    rng: np.random.Generator, image: np.ndarray, labels: np.ndarray, along: np.ndarray, plant: int, stem: np.ndarray, width: int
) -> None:
    """Paint one plant into image and write its id (labels) and stem coordinate s (along) per pixel."""
    thickness = max(1, round(rng.uniform(1.0, 3.0) * width / 256))
    stem_colour = rng.uniform([0.25, 0.2, 0.1], [0.45, 0.5, 0.2])
    count = len(stem)
    for i in range(count - 1):
        a, b = tuple(np.round(stem[i]).astype(int)), tuple(np.round(stem[i + 1]).astype(int))
        s = (i + 0.5) / (count - 1)
        cv2.line(image, a, b, stem_colour.tolist(), thickness)
        cv2.line(labels, a, b, float(plant), thickness)
        cv2.line(along, a, b, s, thickness)
    leaf_colour = rng.uniform([0.1, 0.35, 0.05], [0.5, 0.75, 0.25])
    flower = rng.random() < 0.4
    for _ in range(int(rng.integers(4, 12))):
        i = int(rng.integers(count // 3, count))
        centre = tuple(np.round(stem[i] + rng.normal(0, 2.0 * width / 256, 2)).astype(int))
        axes = tuple(int(max(1, v)) for v in rng.uniform(2, 7, 2) * width / 256)
        colour = rng.uniform([0.7, 0.2, 0.2], [1.0, 0.9, 0.6]) if flower and rng.random() < 0.5 else leaf_colour * rng.uniform(0.8, 1.2)
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(image, centre, axes, angle, 0, 360, np.clip(colour, 0, 1).tolist(), -1)
        cv2.ellipse(labels, centre, axes, angle, 0, 360, float(plant), -1)
        cv2.ellipse(along, centre, axes, angle, 0, 360, i / (count - 1), -1)


def make_scene(
    seed: int,
    height: int = 160,
    width: int = 256,
    num_frequencies: int = 16,
    num_frames: int = 150,
    fps: float = 24.0,
    num_plants: tuple[int, int] = (3, 9),
) -> SyntheticScene:
    """A deterministic procedural scene: picture plus its exact spectral volume (pixels)."""
    rng = np.random.default_rng(seed)
    horizon = int(height * rng.uniform(0.3, 0.6))
    image = _paint_background(rng, height, width, horizon)
    labels = np.full((height, width), -1.0, np.float32)
    along = np.zeros((height, width), np.float32)
    frequencies = np.arange(num_frequencies) * fps / num_frames
    shared_wind = wind_force(frequencies, rng, exponent=rng.uniform(0.8, 1.7))
    wind_speed = rng.uniform(0.5, 2.0) * width  # pixels per second: gusts cross the picture in ~1 s
    spectra, directions = [], []
    plants = int(rng.integers(num_plants[0], num_plants[1] + 1))
    for plant in range(plants):  # drawn back to front: later plants hide earlier ones
        root = (rng.uniform(0, width), rng.uniform(horizon, height + 0.2 * height))
        stem = _stem_points(rng, root, rng.uniform(0.3, 0.9) * height)
        _draw_plant(rng, image, labels, along, plant, stem, width)
        chord = stem[-1] - stem[0]
        directions.append(np.array([-chord[1], chord[0]]) / max(np.linalg.norm(chord), 1e-6))
        delay = np.exp(-2j * math.pi * frequencies * root[0] / wind_speed)
        force = 0.8 * shared_wind * delay + 0.6 * wind_force(frequencies, rng)
        fundamental = math.exp(rng.uniform(math.log(0.3), math.log(1.6)))
        damping = rng.uniform(0.03, 0.1)
        modes = [
            MODE_PARTICIPATION[n] * force
            * modal_response(frequencies, fundamental * (CANTILEVER_BETA[n] / CANTILEVER_BETA[0]) ** 2, damping)
            for n in range(len(CANTILEVER_BETA))
        ]
        tip = sum(modes)  # modes are tip-normalised: the tip moves by their sum
        tip_rms = math.sqrt(2 * float(np.sum(np.abs(tip[1:]) ** 2)))
        amplitude = rng.uniform(0.5, 4.0) * width / 256  # RMS tip motion, pixels
        spectra.append([m * amplitude / max(tip_rms, 1e-12) for m in modes])
    coeffs = np.zeros((num_frequencies, 2, height, width), np.complex128)
    for plant, (modes, direction) in enumerate(zip(spectra, directions)):
        where = labels == plant
        s = along[where].astype(np.float64)
        deflection = sum(cantilever_mode(s, n)[None, :] * modes[n][:, None] for n in range(len(modes)))  # (K, P)
        coeffs[:, 0, where] = deflection * direction[0]
        coeffs[:, 1, where] = deflection * direction[1]
    coeffs[0] = -2 * coeffs[1:].real.sum(axis=0)  # displacement at the start frame is exactly zero
    stacked = np.stack([coeffs[:, 0].real, coeffs[:, 0].imag, coeffs[:, 1].real, coeffs[:, 1].imag], axis=1)
    volume = SpectralVolume(torch.from_numpy(stacked).float()[None], num_frames=num_frames, fps=float(fps))
    picture = torch.from_numpy((np.clip(image, 0, 1) * 255).round().astype(np.uint8)).permute(2, 0, 1).contiguous()
    return SyntheticScene(image=picture, volume=volume, seed=seed)
