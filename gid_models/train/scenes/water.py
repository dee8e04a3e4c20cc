"""Recipe 3 of the scene engine: water that moves as visibly as grass, streams, pale rock.

Recipe 2's lake ripples moved each water cell by 3-15 mm whatever its distance: a twentieth of a
pixel or less, so a network trained on it learned that water stays still, while photographs
(and the photo masks) show rippled water moving. Recipe 3 changes the water and adds still rock:

- ripples sized in pixels: a water cell's gain is its distance times an angle times 35 mm over
  the focal length, so near and far water, through any lens, moves by about the same number of
  pixels (rms about 1.75 x gust x angle x 249 px in a 256-pixel-wide frame: 0.2-1.5 px for lakes,
  0.5-2.5 px for streams at a 1.2 m/s gust);
- streams: a winding band of water leading away from the camera, faster (1.5-4 Hz) than lakes,
  dark and calm or white with foam, its banks lined with pale boulders;
- pale limestone-grey boulders among the plants (the grey rock that recipe 2's network took for
  moving when it lay beside foliage). All rock is still.

Every choice comes from the scene's third random stream, `np.random.default_rng([seed, 3])`, so
recipes 1 and 2 are unchanged.
"""

from __future__ import annotations

import numpy as np

from .geometry import STILL, MeshBuilder, rock, view_axes, winding_line
from .oscillators import CANTILEVER, PartTable

WATER = np.array([0.03, 0.06, 0.07])
FOAM = np.array([0.75, 0.78, 0.8])
PALE_ROCK = np.array([0.45, 0.44, 0.41])
LAKE_ANGLE = (0.0004, 0.003)  # gain per metre of distance at 35 mm (see above)
STREAM_ANGLE = (0.001, 0.005)


def water_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 3])


def stream_line(rng: np.random.Generator) -> dict:
    """A stream's course: geometry.winding_line's parameters and the half_width, in m."""
    return {"offset": float(rng.uniform(-3.0, 3.0)), "drift": float(rng.uniform(-0.3, 0.3)),
            "bend": float(rng.uniform(0.5, 4.0)), "wavelength": float(rng.uniform(8.0, 40.0)),
            "half_width": float(rng.uniform(0.5, 3.0))}


def _centre_side(line: dict, forward: np.ndarray) -> np.ndarray:
    return winding_line(forward, line["offset"], line["drift"], line["bend"], line["wavelength"])


def stream_mask(line: dict, forward: np.ndarray, side: np.ndarray) -> np.ndarray:
    """(N,) bool: ground cells whose centre, at view coordinates forward, side (N,) m, lies in the stream."""
    return (np.abs(side - _centre_side(line, forward)) < line["half_width"]) & (forward > 0)


def ripple_parts(rng: np.random.Generator, parts: PartTable, centres: np.ndarray, lake: np.ndarray,
                 stream: np.ndarray, focal_mm: float) -> np.ndarray:
    """Add one cantilever per water cell (lake or stream, bool (N,); centres (N, 3) m from the
    camera's foot); returns the (N,) part index of every cell (STILL for cells that are not water).
    Gains grow with the cell's distance and shrink with the focal length (mm) so that ripples keep
    their size in pixels."""
    part = np.full(len(centres), STILL)
    distance = np.linalg.norm(centres[:, :2], axis=1) * (35.0 / focal_mm)
    for cells, angle, frequency in ((lake, LAKE_ANGLE, (0.8, 2.5)), (stream, STREAM_ANGLE, (1.5, 4.0))):
        count = int(cells.sum())
        if count:
            gain = distance[cells] * rng.uniform(*angle) * rng.uniform(0.7, 1.3, count)
            part[cells] = parts.add(CANTILEVER, centres[cells], rng.uniform(*frequency, count),
                                    rng.uniform(0.05, 0.15, count), gain)
    return part


def water_colours(rng: np.random.Generator, lake: np.ndarray, stream: np.ndarray, forward: np.ndarray,
                  tint: np.ndarray) -> np.ndarray:
    """(N, 3) base colours of water cells: lakes dark; a stream between dark and white foam, the
    foam coming in stretches along its course (forward (N,) m); tint (N, 1) only slightly varies
    water from cell to cell (a patchwork would read as paving)."""
    colour = np.zeros((len(lake), 3))
    shade = tint ** 0.25
    colour[lake] = WATER * rng.uniform(0.6, 1.6, 3) * shade[lake]
    if stream.any():
        wavelength, phase = rng.uniform(3.0, 20.0), rng.uniform(0, 2 * np.pi)
        stretches = 0.5 + 0.5 * np.sin(2 * np.pi * forward[stream] / wavelength + phase)
        foam = (rng.uniform(0.0, 0.9) * stretches)[:, None]
        colour[stream] = ((1 - foam) * WATER * rng.uniform(0.8, 2.0, 3) + foam * FOAM) * shade[stream]
    return colour


def pale_boulder(rng: np.random.Generator, mesh: MeshBuilder, spot: np.ndarray, size: float) -> None:
    vertices, faces = rock(rng, spot, size)
    mesh.add(vertices, faces, STILL, 0.0, PALE_ROCK * rng.uniform(0.7, 1.35) * rng.uniform(0.92, 1.08, 3))


def bank_boulders(rng: np.random.Generator, mesh: MeshBuilder, line: dict, yaw: float, near: float) -> int:
    """Still pale boulders along both banks of a stream; returns how many."""
    along, across = view_axes(yaw)
    count = int(rng.integers(4, 20))
    forward = np.geomspace(max(near, 1.0), 40.0, count) * rng.uniform(0.8, 1.2, count)
    bank = rng.choice([-1.0, 1.0], count)
    size = rng.uniform(0.3, 2.0, count) * np.minimum(1.0, forward / 6.0)  # none filling the view
    side = _centre_side(line, forward) + bank * (line["half_width"] + 0.4 * size + rng.uniform(0.0, 1.0, count))
    for u, v, s in zip(forward, side, size):
        pale_boulder(rng, mesh, np.array([*(u * along + v * across), 0.0]), s)
    return count
