"""Exact motion of every moving part: modal oscillators driven by a turbulent, travelling wind.

Each moving part (grass blade, stem, reed, branch, trunk, leaf) is one damped oscillator of natural
frequency f_n (Hz) and damping ratio zeta, whose shape along the part is a fixed mode shape phi(s):
  cantilever (blades, stems, branches, trunks): the first bending mode of a clamped-free beam,
  flutter (leaves, petals): a rigid turn about the leaf base, phi(s) = s.
A part hangs on its parent at station `attach`, so its points also carry the parent's motion there.

The wind is periodic over the T frames of an example, so everything lives on the FFT bins
f_k = k fps / T, k = 0..T/2, and the steady-state response is exact in closed form:
  Q_p(f_k) = gain_p * H_p(f_k) * F_p(f_k),   H(f) = 1 / (1 - (f/f_n)^2 + 2i zeta f/f_n)
with F the gust (m/s) at the part's root: a 1/f power spectrum (steepening to f^-5/3 above
KNEE_HZ) travelling along the wind direction
at the gust speed (coherent across the scene), mixed with an independent share per part, plus a
weaker cross-wind component. Leaves add independent flutter along their normal. The displacement
(m) of the point at station s of part p is then Base_p(f) + phi(s) Q_p(f), with Base_p the parent's
displacement at the attach station. No k = 0 term: the mean bend is part of the rest shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CANTILEVER, FLUTTER = 0, 1
KNEE_HZ = 0.4  # gust spectrum: 1/f power below, f^(-5/3) (inertial range) above
_BETA = 1.8751040687  # first root of 1 + cos(b) cosh(b) = 0
_SIGMA = (np.cosh(_BETA) + np.cos(_BETA)) / (np.sinh(_BETA) + np.sin(_BETA))


def cantilever_shape(s: np.ndarray) -> np.ndarray:
    """First bending mode of a clamped-free beam at stations s in [0, 1], scaled to 1 at the tip."""
    s = np.clip(np.asarray(s, np.float64), 0.0, 1.0)
    def raw(x):
        return np.cosh(_BETA * x) - np.cos(_BETA * x) - _SIGMA * (np.sinh(_BETA * x) - np.sin(_BETA * x))
    return raw(s) / raw(1.0)


def mode_shape(kind: np.ndarray, s: np.ndarray) -> np.ndarray:
    """phi(s) for parts of the given kinds (arrays of equal shape)."""
    return np.where(kind == FLUTTER, np.clip(s, 0.0, 1.0), cantilever_shape(s))


@dataclass
class PartTable:
    """Moving parts, parents before children. Arrays grow with `add`; index -1 means still."""

    kind: list = field(default_factory=list)
    parent: list = field(default_factory=list)
    attach: list = field(default_factory=list)
    root: list = field(default_factory=list)       # (3,) m, where the part meets its parent/ground
    frequency: list = field(default_factory=list)  # f_n, Hz
    damping: list = field(default_factory=list)    # zeta
    gain: list = field(default_factory=list)       # m of tip motion per m/s of gust, static limit
    axis: list = field(default_factory=list)       # (3,) unit flutter direction (leaves); unused for cantilevers

    def __len__(self) -> int:
        return len(self.kind)

    def add(self, kind: int, root: np.ndarray, frequency: np.ndarray, damping: np.ndarray, gain: np.ndarray,
            parent: np.ndarray | int = -1, attach: np.ndarray | float = 0.0, axis: np.ndarray | None = None) -> np.ndarray:
        """Add len(root) parts; returns their indices (N,)."""
        root = np.atleast_2d(np.asarray(root, np.float64))
        count = len(root)
        start = len(self.kind)
        parent_index = np.broadcast_to(np.asarray(parent, np.int64), (count,))
        if np.any(parent_index >= start):
            raise ValueError("PartTable.add: a part's parent must be added before it.")
        self.kind.extend([kind] * count)
        self.parent.extend(parent_index.tolist())
        self.attach.extend(np.broadcast_to(np.asarray(attach, np.float64), (count,)).tolist())
        self.root.extend(root.tolist())
        for name, value in (("frequency", frequency), ("damping", damping), ("gain", gain)):
            getattr(self, name).extend(np.broadcast_to(np.asarray(value, np.float64), (count,)).tolist())
        axis = np.zeros((count, 3)) if axis is None else np.broadcast_to(np.asarray(axis, np.float64), (count, 3))
        self.axis.extend(axis.tolist())
        return np.arange(start, start + count)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"kind": np.asarray(self.kind, np.int64), "parent": np.asarray(self.parent, np.int64),
                "attach": np.asarray(self.attach), "root": np.asarray(self.root).reshape(-1, 3),
                "frequency": np.asarray(self.frequency), "damping": np.asarray(self.damping),
                "gain": np.asarray(self.gain), "axis": np.asarray(self.axis).reshape(-1, 3)}


@dataclass
class Wind:
    """Gusts of rms `gust` m/s with a 1/f power spectrum, travelling along `direction` (radians in the
    ground plane) at `speed` m/s; `independence` is the share of each part's forcing that is its own,
    `cross` the rms of the cross-wind component relative to the along-wind one; leaves flutter with
    an independent forcing of rms `flutter` m/s-equivalent."""

    gust: float = 1.5
    direction: float = 0.0
    speed: float = 5.0
    independence: float = 0.35
    cross: float = 0.6
    flutter: float = 1.0


def gust_spectrum(num_frames: int, fps: float, num_frequencies: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin frequencies f_k (F,) Hz and one-sided amplitudes a_k (F,) with 1/f power and unit rms:
    a series sum_k 2 Re(a_k e^{i(2 pi f_k t + phase)}) has variance sum 2 a_k^2 = 1.

    Bins from num_frequencies on carry nothing, so the K-bin spectral volume holds the whole motion
    (above K fps / T, 3.2 Hz at 30 fps and T = 150, wind-driven sway has little power anyway).
    """
    freqs = np.fft.rfftfreq(num_frames, d=1.0 / fps)
    amplitude = np.zeros_like(freqs)
    f = freqs[1:num_frequencies]
    # power 1/f below KNEE_HZ, turning to Kolmogorov's f^(-5/3) above it
    amplitude[1:num_frequencies] = np.sqrt(1.0 / f * (1.0 + (f / KNEE_HZ) ** 2) ** (-1.0 / 3.0))
    amplitude /= np.sqrt(2.0 * np.sum(amplitude ** 2))
    return freqs, amplitude


def _complex_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)) / np.sqrt(2.0)


def part_forces(parts: dict[str, np.ndarray], wind: Wind, num_frames: int, fps: float, num_frequencies: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bin frequencies (F,) Hz and the forcing (P, F, 3) complex, m/s of gust, on each part's root
    (leaves: along their normal), on the first F = num_frequencies rfft bins of T = num_frames
    frames ('forward' norm); the bins above carry no wind (gust_spectrum), so they are left out."""
    freqs, amplitude = gust_spectrum(num_frames, fps, num_frequencies)
    count, bins = len(parts["kind"]), len(freqs)
    kept = min(num_frequencies, bins)
    along = np.array([np.cos(wind.direction), np.sin(wind.direction), 0.0])
    across = np.array([-along[1], along[0], 0.0])
    # Every draw is made for all T/2 + 1 bins, as before the bins above K were left out, so that
    # each seed keeps its motion; only the first K bins are used.
    phase_along, phase_across = rng.uniform(size=bins)[:kept], rng.uniform(size=bins)[:kept]
    own_along = _complex_normal(rng, (count, bins))[:, :kept]
    own_across = _complex_normal(rng, (count, bins))[:, :kept]
    flutter = _complex_normal(rng, (count, bins))[:, :kept]
    freqs, amplitude = freqs[:kept], amplitude[:kept]
    # coherent gusts: one random phase per bin, delayed by travel time to each root
    delay = parts["root"] @ along / wind.speed  # (P,) s
    travel = np.exp(-2j * np.pi * freqs[None] * delay[:, None])  # (P, F)
    coherent_along = np.exp(2j * np.pi * phase_along)[None] * travel
    coherent_across = np.exp(2j * np.pi * phase_across)[None] * travel
    mix = np.sqrt(1.0 - wind.independence ** 2)
    force_along = wind.gust * amplitude[None] * (mix * coherent_along + wind.independence * own_along)
    force_across = wind.cross * wind.gust * amplitude[None] * (mix * coherent_across + wind.independence * own_across)
    force = force_along[..., None] * along + force_across[..., None] * across  # (P, F, 3)
    leaf_force = (wind.flutter * amplitude[None] * flutter)[..., None] * parts["axis"][:, None, :]
    return freqs, np.where((parts["kind"] == FLUTTER)[:, None, None], leaf_force, force)


def frequency_response(freqs: np.ndarray, natural: np.ndarray, damping: np.ndarray) -> np.ndarray:
    """H (P, F) of x'' + 2 zeta w_n x' + w_n^2 x = w_n^2 f: unit static gain."""
    ratio = freqs[None] / natural[:, None]
    return 1.0 / (1.0 - ratio ** 2 + 2j * damping[:, None] * ratio)


def part_spectra(parts: dict[str, np.ndarray], wind: Wind, num_frames: int, fps: float, num_frequencies: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Own tip motion Q (P, F, 3) and inherited base motion Base (P, F, 3), complex, metres, on
    the first F = num_frequencies rfft bins of T = num_frames frames ('forward' norm:
    x(t) = irfft(X, n=T, norm='forward'), the bins above being zero)."""
    freqs, force = part_forces(parts, wind, num_frames, fps, num_frequencies, rng)
    count = len(parts["kind"])
    response = frequency_response(freqs, parts["frequency"], parts["damping"])  # (P, F)
    own = (parts["gain"][:, None] * response)[..., None] * force
    own[:, 0] = 0.0
    base = np.zeros_like(own)
    parent = parts["parent"]
    depth = np.zeros(count, np.int64)
    for p in np.flatnonzero(parent >= 0):  # parents come first, so their depth is known
        depth[p] = depth[parent[p]] + 1
    for level in range(1, int(depth.max(initial=0)) + 1):
        child = np.flatnonzero(depth == level)
        up = parent[child]
        shape = mode_shape(parts["kind"][up], parts["attach"][child])
        base[child] = base[up] + shape[:, None, None] * own[up]
    return own.astype(np.complex64), base.astype(np.complex64)
