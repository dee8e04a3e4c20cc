"""Recipe 2 of the scene engine: textured still scenery, and ground that is a moving grass field.

Recipe 1 taught the motion model that every textured thing moves: its plants were the only
textured surfaces, its ground a flat still plane. Real photographs show textured things that
stay still (clouds, rock faces, snowy mountains, buildings, gravel paths) and fine grass that
moves (lawns and meadows whose blades are far smaller than a pixel). Recipe 2 adds both:

- the ground is a field of cells, each one a short cantilever (the unresolved grass in it) whose
  texture sways with it, except on paths and bare ground, which stay still; beyond a shore some
  scenes have a lake whose cells ripple (a glossy `water` surface, small and faster motion);
- a rocky mountain range with snow above a snow line, near rock outcrops and houses, all still;
- a cloud layer in the physical sky (a world-shader texture, still: drift is not oscillation).

Every choice comes from the scene's second random stream, `np.random.default_rng([seed, 2])`,
so recipe 1's draws, and so its scenes, are unchanged.
"""

from __future__ import annotations

import numpy as np

from . import water
from .geometry import STILL, MeshBuilder, box, rock, view_axes, winding_line
from .oscillators import CANTILEVER, PartTable
from .plants import blade_frequency

RECIPES = (1, 2, 3, 4, 5)
LATEST_RECIPE = RECIPES[-1]
FIELD_ROWS, FIELD_COLUMNS = 48, 56  # cells from the camera to the horizon, and across the view
GROUND_KINDS = ("lawn", "meadow", "bare")
DIRT = np.array([0.16, 0.11, 0.07])
ROCK = np.array([0.24, 0.23, 0.21])
SNOW = np.array([0.85, 0.87, 0.9])
WALLS = ((0.35, 0.14, 0.08), (0.6, 0.55, 0.45), (0.5, 0.5, 0.48), (0.7, 0.68, 0.6))
ROOFS = ((0.25, 0.07, 0.04), (0.12, 0.12, 0.13), (0.3, 0.2, 0.12))


def scenery_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2])


def _wedge_cells(near: float, far: float, half_angle: float, yaw: float, rows: int, columns: int):
    """Corners (N, 4, 3) and centres (N, 3) of ground cells on a polar grid around the camera's view:
    rows spaced geometrically in distance (a cell keeps about the same size in pixels)."""
    radii = np.geomspace(near, far, rows + 1)
    angles = np.linspace(-half_angle, half_angle, columns + 1) + yaw
    r0, a0 = np.meshgrid(radii[:-1], angles[:-1], indexing="ij")
    r1, a1 = np.meshgrid(radii[1:], angles[1:], indexing="ij")

    def point(r, a):
        return np.stack([-r * np.sin(a), r * np.cos(a), np.zeros_like(r)], -1)

    corners = np.stack([point(r0, a0), point(r0, a1), point(r1, a1), point(r1, a0)], 2).reshape(-1, 4, 3)
    return corners, point(np.sqrt(r0 * r1), 0.5 * (a0 + a1)).reshape(-1, 3)


def _view_coordinates(points: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """(forward, side) m of ground points (N, 3) along the camera's heading and across it."""
    along, across = view_axes(yaw)
    return points[:, :2] @ along, points[:, :2] @ across


def _path_mask(rng: np.random.Generator, centres: np.ndarray, yaw: float) -> np.ndarray:
    """(N,) bool: cells whose centre lies on a winding path leading away from the camera."""
    forward, side = _view_coordinates(centres, yaw)
    offset = rng.uniform(-1.5, 1.5)
    drift = rng.uniform(-0.25, 0.25)
    bend, wavelength = rng.uniform(0.5, 3.0), rng.uniform(8.0, 30.0)
    half_width = 0.5 * rng.uniform(0.5, 2.0)
    return (np.abs(side - winding_line(forward, offset, drift, bend, wavelength)) < half_width) & (forward > 0)


def _lake_mask(rng: np.random.Generator, centres: np.ndarray, yaw: float) -> np.ndarray:
    """(N,) bool: cells beyond a wavy shore line across the view."""
    forward, side = _view_coordinates(centres, yaw)
    shore = rng.uniform(3.0, 60.0)
    wiggle = shore * rng.uniform(0.0, 0.3) * np.sin(side / (shore * rng.uniform(0.3, 1.5)) + rng.uniform(0, 6))
    return forward > shore + wiggle


def ground_field(rng: np.random.Generator, ground: MeshBuilder, field: MeshBuilder, water_mesh: MeshBuilder,
                 parts: PartTable, ground_colour: np.ndarray, yaw: float, half_angle: float, kind: str,
                 near: float, recipe_three: np.random.Generator | None = None, focal_mm: float = 35.0) -> dict:
    """Cover the visible ground with cells: grass cells sway (one cantilever each, `field` material),
    path and bare cells stay still (`ground` material). Cells nearer than `near` (m) sway less, by
    (distance / near)^2, as the scene's plants keep away from the lens. With recipe 3's random
    stream (water.py) lakes are more common, some scenes get a stream, and water ripples are sized
    in pixels through a lens of focal_mm. Returns what the log records (and the stream's course,
    under "stream_line")."""
    corners, centres = _wedge_cells(0.05, 300.0, half_angle * 1.4, yaw, FIELD_ROWS, FIELD_COLUMNS)
    count = len(centres)
    on_path = _path_mask(rng, centres, yaw) if rng.uniform() < 0.35 else np.zeros(count, bool)
    lake = _lake_mask(rng, centres, yaw) if rng.uniform() < 0.2 else np.zeros(count, bool)
    stream = np.zeros(count, bool)
    line = None
    if recipe_three is not None:
        view = _view_coordinates(centres, yaw)
        if not lake.any() and recipe_three.uniform() < 0.15:
            lake = _lake_mask(recipe_three, centres, yaw)
        if recipe_three.uniform() < 0.25:
            line = water.stream_line(recipe_three)
            stream = water.stream_mask(line, *view) & ~lake
    wet = lake | stream
    on_path &= ~wet
    grass = ~on_path & ~wet & (kind != "bare")
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    tint = rng.uniform(0.8, 1.2, (count, 1))
    colour = np.where(grass[:, None], ground_colour[None] * tint, DIRT[None] * rng.uniform(0.7, 1.5) * tint)
    part = np.full(count, STILL)
    if grass.any():
        height = {"lawn": (0.03, 0.08), "meadow": (0.15, 0.5)}[kind]
        h = rng.uniform(*height, int(grass.sum()))
        frequency = blade_frequency(rng, h)
        closeness = np.clip(np.linalg.norm(centres[grass, :2], axis=1) / near, 0.0, 1.0) ** 2
        part[grass] = parts.add(CANTILEVER, centres[grass], frequency, rng.uniform(0.08, 0.2, len(h)), 0.04 * h * closeness)
    if recipe_three is not None:
        colour[wet] = water.water_colours(recipe_three, lake, stream, view[0], tint)[wet]
        ripples = water.ripple_parts(recipe_three, parts, centres, lake, stream, focal_mm)
        part[wet] = ripples[wet]
    elif lake.any():
        ripples = int(lake.sum())
        colour[lake] = water.WATER * rng.uniform(0.6, 1.6, 3) * tint[lake]
        part[lake] = parts.add(CANTILEVER, centres[lake], rng.uniform(0.8, 2.5, ripples), rng.uniform(0.05, 0.15, ripples),
                               rng.uniform(0.003, 0.015) * rng.uniform(0.7, 1.3, ripples))
    for builder, keep in ((field, grass), (water_mesh, wet), (ground, ~grass & ~wet)):
        index = np.flatnonzero(keep)
        if len(index):
            local = (faces[None] + 4 * np.arange(len(index))[:, None, None]).reshape(-1, 3)
            builder.add(corners[index].reshape(-1, 3), local, np.repeat(part[index], 4), 1.0,
                        np.repeat(colour[index], 4, axis=0))
    kinds = {"ground": kind, "path": bool(on_path.any()), "field_cells": int(grass.sum()), "water_cells": int(lake.sum())}
    if line is not None:
        kinds.update(stream_cells=int(stream.sum()), stream_line=line)
    return kinds


def mountains(rng: np.random.Generator, mesh: MeshBuilder, yaw: float, haze_colour: np.ndarray) -> dict:
    """A rocky range far away, snow-capped when tall; still. Its relief is ridged multi-octave
    noise (sums of |sin| in random directions), jagged from ranges down to crags."""
    far = rng.uniform(300.0, 1500.0)
    peak = far * rng.uniform(0.06, 0.3)
    x, y = np.meshgrid(np.linspace(-1.8 * far, 1.8 * far, 256), np.linspace(far, 1.6 * far, 32), indexing="xy")
    z = np.zeros_like(x)
    for octave in range(6):
        wavelength = far * 0.6 / 2.0 ** octave
        for _ in range(2):
            angle = rng.uniform(0, np.pi)
            phase = rng.uniform(0, 2 * np.pi)
            along = np.cos(angle) * x + np.sin(angle) * y
            z += 0.55 ** octave * (1.0 - np.abs(np.sin(np.pi * along / wavelength + phase)))
    z = (z - z.min()) / (np.ptp(z) + 1e-9)
    rise = np.clip((y - far) / (0.25 * far), 0.0, 1.0)  # the range's foot meets the ground at the near edge
    z = peak * z ** 1.5 * rise
    vertices = np.stack([x, y, z], -1).reshape(-1, 3)
    nx, ny = x.shape[1], x.shape[0]
    i, j = np.meshgrid(np.arange(ny - 1), np.arange(nx - 1), indexing="ij")
    a = (i * nx + j).ravel()
    faces = np.concatenate([np.stack([a, a + 1, a + nx + 1], -1), np.stack([a, a + nx + 1, a + nx], -1)])
    vertices[:, :2] = vertices[:, :2] @ np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
    haze = rng.uniform(0.1, 0.45)
    rock_colour = ROCK * rng.uniform(0.6, 1.4, 3)
    snow_line = peak * rng.uniform(0.35, 1.1)
    snowy = (vertices[:, 2] > snow_line + peak * 0.05 * rng.normal(size=len(vertices)))[:, None]
    colour = np.where(snowy, SNOW, rock_colour) * (1 - haze) + haze * haze_colour
    mesh.add(vertices, faces, STILL, 0.0, colour)
    return {"mountain_m": round(float(peak), 1), "snow": bool(snowy.any())}


def outcrops(rng: np.random.Generator, mesh: MeshBuilder, spots: np.ndarray) -> None:
    """Large still rocks (cliffs, boulders) of 2-15 m at the given ground spots (N, 3)."""
    for spot in spots:
        vertices, faces = rock(rng, spot, rng.uniform(2.0, 15.0))
        mesh.add(vertices, faces, STILL, 0.0, ROCK * rng.uniform(0.6, 1.5, 3))


def house(rng: np.random.Generator, walls: MeshBuilder, roofs: MeshBuilder, spot: np.ndarray, yaw: float) -> None:
    """A box house with a pitched roof at a ground spot (3,); still."""
    width, depth, height = rng.uniform(5, 12), rng.uniform(4, 9), rng.uniform(2.5, 7)
    vertices, faces = box(spot + [0, 0, height / 2], np.array([width, depth, height]), yaw)
    walls.add(vertices, faces, STILL, 0.0, np.asarray(WALLS[rng.integers(len(WALLS))]) * rng.uniform(0.8, 1.2))
    rise = rng.uniform(1.0, 4.0)
    x, y = width / 2 + 0.3, depth / 2 + 0.3
    local = np.array([[-x, -y, 0], [x, -y, 0], [x, y, 0], [-x, y, 0], [-x, 0, rise], [x, 0, rise]])
    c, s = np.cos(yaw), np.sin(yaw)
    roof = local @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]) + spot + [0, 0, height]
    roof_faces = np.array([[0, 1, 5], [0, 5, 4], [3, 4, 5], [3, 5, 2], [0, 4, 3], [1, 2, 5]])
    roofs.add(roof, roof_faces, STILL, 0.0, np.asarray(ROOFS[rng.integers(len(ROOFS))]) * rng.uniform(0.8, 1.2))


def clouds(rng: np.random.Generator) -> dict:
    """Settings of the world shader's cloud layer: cover (share of the sky), feature scale,
    brightness relative to the sky around them, and the noise's offset."""
    return {"cover": float(rng.uniform(0.1, 0.7)), "scale": float(rng.uniform(0.6, 3.0)),
            "brightness": float(rng.uniform(1.0, 2.5)), "offset": float(rng.uniform(0, 100)),
            "softness": float(rng.uniform(0.03, 0.12))}
