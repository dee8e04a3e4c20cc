"""Recipe 5 of the scene engine: big flower and seed heads close to the lens.

The motion-amplitude network trained on recipes 1-4 holds the big backlit dandelion head of the
bundled picture (`gid_models/assets/dandelion_meadow.jpg`) almost still: it reads a bright fuzzy
ball filling a quarter of the frame as sky or cloud. Recipes 1-4 only grow flower heads of 1-2.4 cm
far from the lens, a few pixels across. Recipe 5 adds to recipe 4, in about 30 % of the scenes:

- 1-4 "hero" flowers on stems of 0.08-1.2 m where the camera sees them, their heads mostly
  20-120 px across at 256 px wide, no nearer than half the distance of the scene's other plants
  (`near`) nor than 0.25 m: mostly dandelion clocks (a brown core inside a halo of 400-900 thin
  radial seed filaments with a tuft on each, in the translucent "heads" material, so they glow
  against the light), else daisies (a tilted disc of petals with a yellow centre); their stems
  are stiffer and better damped than recipe 1's flowers, so that a head near the lens sways by a
  fraction of its own size;
- in half of those scenes a low sun in front of the camera (backlight) and a shallow depth of
  field focused on the nearest head.

The heads ride their stem's tip (cantilever modes, as recipe 1's flowers). Every choice comes
from the scene's fifth random stream, `np.random.default_rng([seed, 5])`, so recipe 4's scene
is kept, apart from the sun and focus when recipe 5 changes them.
"""

from __future__ import annotations

import numpy as np

from .geometry import MeshBuilder, blades, sphere
from .oscillators import CANTILEVER, PartTable
from .plants import PETAL_COLOURS

CLOCK_WHITE = np.array([0.78, 0.78, 0.72])
CLOCK_CORE = np.array([0.2, 0.14, 0.07])
DAISY_CENTRE = np.array([0.7, 0.45, 0.02])
STEM_GREEN = np.array([0.09, 0.18, 0.03])
ASPECT = 1.6  # width / height of the scene engine's pictures (256 x 160)


def bloom_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 5])


def view_ray(camera, u: float, v: float) -> np.ndarray:
    """Unit world direction (3,) through the point (u, v) of the picture, both 0..1 from its top-left."""
    rotation = camera.world_to_camera()[:, :3]  # rows: right, up, -forward
    focal = camera.focal_mm / camera.sensor_mm  # in picture widths
    direction = rotation.T @ np.array([(u - 0.5) / focal, (0.5 - v) / (focal * ASPECT), -1.0])
    return direction / np.linalg.norm(direction)


def dandelion_clock(rng: np.random.Generator, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seed head about `radius` m: vertices (V, 3) around the origin, faces (F, 3), colours (V, 3).
    Filaments are thin triangles from the core to the radius, each with a small tuft at its end."""
    count = int(rng.integers(400, 900))
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    side = np.cross(directions, rng.normal(size=(count, 3)))
    side /= np.linalg.norm(side, axis=1, keepdims=True) + 1e-9
    other = np.cross(directions, side)
    core = 0.22 * radius
    length = radius * rng.uniform(0.85, 1.05, (count, 1))
    filament = np.stack([directions * core + side * 0.012 * radius, directions * core - side * 0.012 * radius,
                         directions * length], 1)  # (N, 3, 3)
    tuft_size = radius * rng.uniform(0.05, 0.1, (count, 1))
    tip = directions * length
    tuft = np.stack([tip + side * tuft_size, tip - 0.5 * side * tuft_size + other * tuft_size,
                     tip - 0.5 * side * tuft_size - other * tuft_size], 1)
    unit, unit_faces = sphere(4, 8)
    vertices = np.concatenate([unit * core, filament.reshape(-1, 3), tuft.reshape(-1, 3)])
    triangles = np.arange(2 * count * 3).reshape(-1, 3) + len(unit)
    faces = np.concatenate([unit_faces, triangles])
    shade = rng.uniform(0.85, 1.1, (2 * count, 1)).repeat(3, 0)
    colours = np.concatenate([np.tile(CLOCK_CORE, (len(unit), 1)), CLOCK_WHITE * shade])
    return vertices, faces, colours


def daisy(rng: np.random.Generator, radius: float, petal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flower head `radius` m across its petals: a flat disc facing a random way (vertices, faces, colours)."""
    unit, faces = sphere(5, 16)
    vertices = unit * np.array([radius, radius, 0.2 * radius])
    tilt = rng.uniform(-0.8, 0.8, 2)
    cx, sx, cy, sy = np.cos(tilt[0]), np.sin(tilt[0]), np.cos(tilt[1]), np.sin(tilt[1])
    rotation = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    colours = np.where(np.linalg.norm(unit[:, :2], axis=1, keepdims=True) < 0.35, DAISY_CENTRE, petal)
    return vertices @ rotation.T, faces, colours


def hero_flowers(rng: np.random.Generator, meshes: dict[str, MeshBuilder], parts: PartTable, camera, near: float,
                 gust: float) -> tuple[dict, float | None]:
    """1-4 big flower heads on stems where the camera sees them (none when every draw falls out
    of reach), in a wind of `gust` m/s rms; returns what the log records and the nearest head's
    distance (m) or None."""
    focal = camera.focal_mm / camera.sensor_mm
    closest = max(0.25, 0.5 * near)  # half the other plants' distance: the head sways by a fraction of its size
    added, kinds, distances = [], [], []
    wanted = int(rng.integers(1, 5))
    for _ in range(6 * wanted):  # draws that fall out of reach are drawn again, a few times
        if len(added) == wanted:
            break
        radius = rng.uniform(0.015, 0.045)
        across_px = rng.uniform(25.0, 120.0)  # head diameter in pixels at 256 wide
        distance = 2 * radius * focal * 256.0 / across_px
        if distance < closest:
            distance, across_px = closest, 2 * radius * focal * 256.0 / closest
        ray = view_ray(camera, rng.uniform(0.08, 0.92), rng.uniform(0.12, 0.75))
        head = np.asarray(camera.location) + distance * ray
        height = head[2]
        if not 0.08 <= height <= 1.2 or across_px < 12.0:
            continue  # a stem that tall or that short, or a head that small, is not what this recipe adds
        root = np.array([head[0] + rng.normal(0, 0.03), head[1] + rng.normal(0, 0.03), 0.0])
        lean = (head[:2] - root[:2]) / height
        width = rng.uniform(0.003, 0.006)
        vertices, faces, s = blades(root[None], np.array([height]), np.array([width]), lean[None],
                                    rng.uniform(0, np.pi, 1), levels=7, taper=0.6)
        frequency = np.clip(0.5 / height ** 0.7 * rng.uniform(0.8, 1.2), 0.6, 4.0)
        # stiffer and better damped than recipe 1's flowers (gain 0.04 m per m of height): near the
        # lens the head sways by a fraction of its own size in any wind, not by many times it
        gain = rng.uniform(0.02, 0.08) * 2 * radius / max(gust, 0.5)
        part = parts.add(CANTILEVER, root[None], frequency, rng.uniform(0.1, 0.2), gain)[0]
        meshes["stems"].add(vertices, faces, part, s, STEM_GREEN * rng.uniform(0.7, 1.3))
        tip = vertices[-2:].mean(0)  # the stem's top: where its head sits
        if rng.uniform() < 0.7:
            shape, shape_faces, colours = dandelion_clock(rng, radius)
            kinds.append("clock")
        else:
            petal = np.asarray(PETAL_COLOURS[rng.integers(len(PETAL_COLOURS))])
            shape, shape_faces, colours = daisy(rng, radius, petal)
            kinds.append("daisy")
        meshes["heads"].add(shape + tip, shape_faces, part, 1.0, colours * rng.uniform(0.9, 1.1))
        added.append(round(float(across_px), 1))
        distances.append(float(distance))
    record = {"hero_heads": kinds, "hero_head_px": added} if added else {}
    return record, (min(distances) if distances else None)


def backlight(rng: np.random.Generator, sun: dict, camera, focus_m: float) -> bool:
    """In half of the scenes with heroes: the sun low in front of the camera and focus on the
    nearest head (f/1.8-4). Changes sun and camera in place; returns whether it did."""
    if rng.uniform() >= 0.5:
        return False
    sun["elevation"] = float(rng.uniform(0.04, 0.3))
    # render_scene's lamp shines along the heading azimuth + pi/2 (radians from +y towards -x, as
    # the camera's yaw), so azimuth = yaw + pi/2 shines straight into the lens
    sun["azimuth"] = float(camera.yaw + np.pi / 2 + rng.uniform(-0.5, 0.5))
    sun["strength"] = float(rng.uniform(2.5, 4.5) * min(1.0, sun["elevation"] * 3 + 0.2))
    camera.fstop = float(rng.uniform(1.8, 4.0))
    camera.focus_m = float(focus_m)
    return True
