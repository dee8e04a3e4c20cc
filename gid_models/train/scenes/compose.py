"""One random scene from one seed: camera, light, sky, wind, still ground and rocks, plants.

`compose(seed, recipe)` is pure numpy and deterministic: the same seed and recipe give the same
Scene on any machine. Recipe 2 adds scenery.py's textured still things and moving grass ground
to recipe 1's scene; recipe 3 adds water.py's visibly rippling lakes, streams and pale rock to
that; recipe 4 adds gorge.py's rocky banks close to the lens and weathered rock; recipe 5 (the
default) adds bloom.py's big flower and seed heads close to the lens, some of them backlit.
Earlier recipes are kept so that earlier data sets can be rebuilt.
The Scene is everything the Blender script needs to build and render it (meshes per material,
camera, sun, sky) and everything the motion needs (the PartTable and the Wind).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import bloom, gorge, plants, scenery, water
from .geometry import STILL, MeshBuilder, box, rock, terrain
from .oscillators import PartTable, Wind

HDRIS = ("forest", "courtyard", "sunrise", "sunset", "city")  # CC0, shipped with Blender
MATERIALS = ("ground", "grass", "stems", "heads", "wood", "foliage", "rock", "distant", "fence",
             "field", "water", "mountain", "walls", "roof")


@dataclass
class Camera:
    """Blender camera: location (3,) m, pitch (radians above the horizon), yaw (radians from +y
    towards -x), focal length and sensor width in mm, f-stop and focus distance (m) or 0 for none."""

    location: tuple[float, float, float]
    pitch: float
    yaw: float
    focal_mm: float
    sensor_mm: float = 36.0
    fstop: float = 0.0
    focus_m: float = 10.0

    def world_to_camera(self) -> np.ndarray:
        """(3, 4): camera coordinates (x right, y up, -z forward) from world points."""
        forward = np.array([-np.sin(self.yaw) * np.cos(self.pitch), np.cos(self.yaw) * np.cos(self.pitch), np.sin(self.pitch)])
        right = np.array([np.cos(self.yaw), np.sin(self.yaw), 0.0])
        up = np.cross(right, forward)
        rotation = np.stack([right, up, -forward])
        return np.concatenate([rotation, -(rotation @ np.asarray(self.location))[:, None]], 1)

    def euler(self) -> tuple[float, float, float]:
        """Blender XYZ Euler angles of this camera (its default looks down -z)."""
        return (np.pi / 2 + self.pitch, 0.0, self.yaw)


def project(points: np.ndarray, camera: Camera, width: int, height: int) -> np.ndarray:
    """Pixel coordinates (..., 2) (x right, y down, pixel centres at i + 0.5) of world points (..., 3)."""
    m = camera.world_to_camera()
    c = points @ m[:, :3].T + m[:, 3]
    focal_px = camera.focal_mm / camera.sensor_mm * max(width, height)
    depth = np.maximum(-c[..., 2], 1e-6)
    return np.stack([width / 2 + focal_px * c[..., 0] / depth, height / 2 - focal_px * c[..., 1] / depth], -1)


@dataclass
class Scene:
    seed: int
    camera: Camera
    sun: dict
    sky: dict
    wind: Wind
    meshes: dict
    parts: dict
    description: dict = field(default_factory=dict)
    recipe: int = 1
    looks: dict = field(default_factory=dict)  # material -> settings of its look (recipe 4: "rock", gorge.rock_look)


def _ground_points(rng, count: int, near: float, far: float, half_angle: float, yaw: float) -> np.ndarray:
    """Points on z = 0 spread evenly over the ground area the camera sees between near and far."""
    r = np.sqrt(rng.uniform(near ** 2, far ** 2, count))
    a = rng.uniform(-half_angle, half_angle, count) + yaw
    return np.stack([-r * np.sin(a), r * np.cos(a), np.zeros(count)], 1)


def compose(seed: int, recipe: int = scenery.LATEST_RECIPE) -> Scene:
    if recipe not in scenery.RECIPES:
        raise ValueError(f"compose: recipe must be one of {scenery.RECIPES}, got {recipe!r}")
    rng = np.random.default_rng(seed)
    shot = rng.choice(["meadow", "closeup", "trees", "reeds", "landscape"], p=[0.3, 0.2, 0.25, 0.1, 0.15])
    season = str(rng.choice(["spring", "summer", "dry", "autumn"], p=[0.3, 0.4, 0.15, 0.15]))
    if shot == "closeup":
        height, focal, pitch = rng.uniform(0.15, 0.7), rng.uniform(35, 100), rng.uniform(-0.25, 0.05)
    elif shot == "landscape":
        height, focal, pitch = rng.uniform(1.2, 5.0), rng.uniform(18, 40), rng.uniform(-0.12, 0.05)
    else:
        height, focal, pitch = rng.uniform(0.5, 2.2), rng.uniform(24, 70), rng.uniform(-0.3, 0.08)
    yaw = rng.uniform(-0.3, 0.3)
    camera = Camera((0.0, 0.0, float(height)), float(pitch), float(yaw), float(focal))
    half_angle = np.arctan(18.0 / focal) * 1.25
    look = height / max(np.tan(-pitch), 0.05) if pitch < -0.02 else 8.0
    if shot == "closeup" or rng.uniform() < 0.25:
        camera.fstop = float(rng.uniform(1.4, 5.6))
        camera.focus_m = float(np.clip(look * rng.uniform(0.3, 1.0), 0.3, 30.0))

    meshes = {name: MeshBuilder(name) for name in MATERIALS}
    parts = PartTable()
    ground_colour = np.asarray(plants.GRASS_COLOURS[season][0]) * rng.uniform(0.8, 1.5)
    g = 300.0
    if recipe == 1:
        meshes["ground"].add(np.array([[-g, -5, 0], [g, -5, 0], [g, g, 0], [-g, g, 0]]), np.array([[0, 1, 2], [0, 2, 3]]),
                             STILL, 0.0, ground_colour)

    # distant hills or mountains (still), hazed towards the sky colour
    if rng.uniform() < 0.75:
        for layer in range(int(rng.integers(1, 3))):
            far = rng.uniform(60, 250) * (1 + layer)
            hill_height = rng.uniform(3, 25) * (1 + layer) * (3 if rng.uniform() < 0.3 else 1)
            vertices, faces = terrain(rng, (-2.5 * far, 2.5 * far), (far, far * 1.6), hill_height)
            vertices[:, :2] = vertices[:, :2] @ np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
            haze = 0.35 + 0.25 * layer
            colour = (1 - haze) * ground_colour + haze * np.array([0.25, 0.35, 0.5])
            meshes["distant"].add(vertices, faces, STILL, 0.0, colour * rng.uniform(0.7, 1.1))

    kinds: dict[str, int] = {}
    grass_far = {"closeup": 4.0, "landscape": 25.0}.get(shot, 12.0)
    grass_count = int(rng.integers(3000, 8000))
    # nothing moving nearer than this: a blade swaying a few cm right before a long lens would cross the frame
    near = max(0.4 if shot == "closeup" else 0.8, 0.008 * focal)
    close = grass_count * 6 // 10  # most blades near the camera, where each covers many pixels
    roots = np.concatenate([_ground_points(rng, close, near, min(grass_far, 4.0), half_angle, yaw),
                            _ground_points(rng, grass_count - close, near, grass_far, half_angle, yaw)])
    plants.grass(rng, meshes["grass"], parts, roots, season, (0.06, rng.uniform(0.2, 0.7)), width_per_metre=0.25)
    kinds["grass_blades"] = grass_count
    if shot in ("meadow", "closeup") or rng.uniform() < 0.3:
        count = int(rng.integers(15, 120 if shot == "closeup" else 250))
        far = 2.5 if shot == "closeup" else 12.0
        plants.flowers(rng, meshes["stems"], meshes["heads"], parts, _ground_points(rng, count, near, far, half_angle, yaw), season)
        kinds["flowers"] = count
    if shot == "reeds" or rng.uniform() < 0.15:
        count = int(rng.integers(150, 600))
        plants.reeds(rng, meshes["grass"], parts, _ground_points(rng, count, near * 2, 10.0, half_angle, yaw), season)
        kinds["reeds"] = count
    if shot in ("trees", "landscape") or rng.uniform() < 0.3:
        forms = []
        for _ in range(int(rng.integers(1, 4 if shot != "landscape" else 7))):
            form = str(rng.choice(["broadleaf", "conifer", "bare", "palm"], p=[0.55, 0.25, 0.12, 0.08]))
            spot = _ground_points(rng, 1, 6.0, 40.0 if shot == "landscape" else 18.0, half_angle * 0.8, yaw)[0]
            plants.tree(rng, meshes["wood"], meshes["foliage"], parts, spot, form, season)
            forms.append(form)
        kinds["trees"] = forms
    if rng.uniform() < 0.4:
        count = int(rng.integers(1, 5))
        for spot in _ground_points(rng, count, 2.0, 14.0, half_angle, yaw):
            plants.bush(rng, meshes["wood"], meshes["foliage"], parts, spot, season, rng.uniform(0.4, 1.3))
        kinds["bushes"] = count
    if rng.uniform() < 0.45:
        count = int(rng.integers(1, 8))
        for spot in _ground_points(rng, count, 1.0, 20.0, half_angle, yaw):
            vertices, faces = rock(rng, spot, rng.uniform(0.1, 1.2))
            meshes["rock"].add(vertices, faces, STILL, 0.0, np.array([0.2, 0.19, 0.17]) * rng.uniform(0.5, 1.5))
        kinds["rocks"] = count
    if rng.uniform() < 0.2:
        distance, posts = rng.uniform(3, 15), int(rng.integers(4, 12))
        angle = rng.uniform(-0.6, 0.6)
        along = np.array([np.cos(angle), np.sin(angle), 0.0])
        start = np.array([-0.5 * posts * 2.0 * along[0], distance, 0.0])
        for i in range(posts):
            centre = start + 2.0 * i * along
            vertices, faces = box(centre + [0, 0, 0.6], np.array([0.1, 0.1, 1.2]), angle)
            meshes["fence"].add(vertices, faces, STILL, 0.0, (0.18, 0.13, 0.08))
        for z in (0.5, 1.0):
            vertices, faces = box(start + (posts - 1) * along + [0, 0, z], np.array([2.0 * (posts - 1), 0.05, 0.08]), angle)
            meshes["fence"].add(vertices, faces, STILL, 0.0, (0.18, 0.13, 0.08))
        kinds["fence_posts"] = posts
    elif rng.uniform() < 0.15:  # a dry-stone wall
        distance, length, angle = rng.uniform(3, 20), rng.uniform(6, 30), rng.uniform(-0.6, 0.6)
        stones = int(length / 0.5)
        along = np.array([np.cos(angle), np.sin(angle), 0.0])
        for i in range(stones):
            for z in (0.2, 0.55):
                centre = np.array([-0.5 * length * along[0], distance, 0.0]) + (i + 0.5 * (z > 0.3)) * 0.5 * along
                vertices, faces = rock(rng, centre + [0, 0, z], rng.uniform(0.22, 0.3))
                meshes["rock"].add(vertices, faces, STILL, 0.0, np.array([0.22, 0.21, 0.19]) * rng.uniform(0.6, 1.3))
        kinds["wall_m"] = round(float(length), 1)

    sun_elevation = float(rng.uniform(0.05, 1.2))
    sun_azimuth = float(rng.uniform(0, 2 * np.pi))
    if rng.uniform() < 0.3:
        sky = {"kind": "hdri", "name": str(rng.choice(HDRIS)), "strength": float(rng.uniform(0.6, 1.4)),
               "rotation": float(rng.uniform(0, 2 * np.pi))}
    else:
        sky = {"kind": "sky", "strength": float(rng.uniform(0.15, 0.35)), "dust": float(rng.uniform(0.0, 3.0)),
               "air": float(rng.uniform(0.5, 2.0))}
    sun = {"elevation": sun_elevation, "azimuth": sun_azimuth, "strength": float(rng.uniform(1.5, 4.5) * min(1.0, sun_elevation * 3 + 0.2)),
           "angle": float(rng.uniform(0.01, 0.1))}
    wind = Wind(gust=float(rng.lognormal(np.log(1.2), 0.5)), direction=float(rng.uniform(0, 2 * np.pi)),
                speed=float(rng.uniform(3.0, 9.0)), independence=float(rng.uniform(0.2, 0.5)),
                flutter=float(rng.uniform(0.5, 1.5)))
    stream = None
    if recipe >= 2:
        added, stream = _add_scenery(scenery.scenery_rng(seed), meshes, parts, sky, shot, season, ground_colour,
                                     yaw, half_angle, near, water.water_rng(seed) if recipe >= 3 else None, camera.focal_mm)
        kinds.update(added)
    looks = {}
    if recipe >= 4:
        recipe_four = gorge.gorge_rng(seed)
        looks["rock"] = gorge.rock_look(recipe_four, season)
        if recipe_four.uniform() < 0.35:
            kinds.update(gorge.rock_banks(recipe_four, meshes, parts, stream, yaw, near, season))
        kinds["rock_look"] = {key: round(value, 2) for key, value in looks["rock"].items() if isinstance(value, float)}
    if recipe >= 5:
        recipe_five = bloom.bloom_rng(seed)
        if recipe_five.uniform() < 0.6:
            record, nearest = bloom.hero_flowers(recipe_five, meshes, parts, camera, near, wind.gust)
            kinds.update(record)
            if nearest is not None and bloom.backlight(recipe_five, sun, camera, nearest):
                kinds["backlit"] = True
    description = {"seed": seed, "recipe": recipe, "shot": str(shot), "season": season, "camera_height_m": round(float(height), 2),
                   "focal_mm": round(float(focal), 1), "fstop": round(camera.fstop, 2), "sky": sky.get("name", "physical"),
                   "sun_elevation_deg": round(np.degrees(sun["elevation"]), 1), "gust_rms_m_s": round(wind.gust, 2),
                   "moving_parts": len(parts), **kinds}
    built = {name: m.arrays() for name, m in meshes.items() if m.vertices}
    return Scene(seed, camera, sun, sky, wind, built, parts.arrays(), description, recipe, looks)


def _add_scenery(rng: np.random.Generator, meshes: dict, parts: PartTable, sky: dict, shot: str, season: str,
                 ground_colour: np.ndarray, yaw: float, half_angle: float, near: float,
                 recipe_three: np.random.Generator | None, focal_mm: float) -> tuple[dict, dict | None]:
    """Recipe 2's additions (scenery.py) and, given recipe 3's random stream, its water and pale
    rock (water.py), each from its own random stream; returns what the log records and the
    stream's course (water.stream_line; None without a stream)."""
    bare = 0.5 if season == "dry" else 0.15
    kind = str(rng.choice(scenery.GROUND_KINDS, p=[(1 - bare) * 0.45, (1 - bare) * 0.55, bare]))
    kinds = scenery.ground_field(rng, meshes["ground"], meshes["field"], meshes["water"], parts, ground_colour, yaw,
                                 half_angle, kind, near, recipe_three, focal_mm)
    line = kinds.pop("stream_line", None)
    if recipe_three is not None:
        if line is not None:
            kinds["bank_boulders"] = water.bank_boulders(recipe_three, meshes["rock"], line, yaw, near)
        if recipe_three.uniform() < 0.4:
            count = int(recipe_three.integers(2, 12))
            for spot in _ground_points(recipe_three, count, max(near, 1.5), 25.0, half_angle, yaw):
                size = recipe_three.uniform(0.3, 2.5) * min(1.0, np.linalg.norm(spot) / 6.0)  # none filling the view
                water.pale_boulder(recipe_three, meshes["rock"], spot, size)
            kinds["pale_boulders"] = count
    if rng.uniform() < (0.6 if shot == "landscape" else 0.35):
        kinds.update(scenery.mountains(rng, meshes["mountain"], yaw, np.array([0.25, 0.35, 0.5])))
    if rng.uniform() < 0.3:
        count = int(rng.integers(1, 4))
        scenery.outcrops(rng, meshes["rock"], _ground_points(rng, count, 12.0, 80.0, half_angle, yaw))
        kinds["outcrops"] = count
    if rng.uniform() < 0.2:
        count = int(rng.integers(1, 5))
        for spot in _ground_points(rng, count, 12.0, 90.0, half_angle, yaw):
            scenery.house(rng, meshes["walls"], meshes["roof"], spot, yaw + rng.uniform(-0.8, 0.8))
        kinds["houses"] = count
    if sky["kind"] == "sky" and rng.uniform() < 0.65:
        sky["clouds"] = scenery.clouds(rng)
        kinds["cloud_cover"] = round(sky["clouds"]["cover"], 2)
    return kinds, line
