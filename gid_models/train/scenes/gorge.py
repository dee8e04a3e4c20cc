"""Recipe 4 of the scene engine: rocky banks close to the lens and weathered rock.

The motion-amplitude network trained on recipes 1-3 still takes the mossy limestone of a forest
stream (`shared/data/pictures/forest_stream.jpg`, AUC about 0.70) for moving. Recipe 3's rock is
smooth, plain grey and kept small in the view, while a real rock face carries texture at the
scale of foliage (moss, lichen, leaf litter, cracks) and often fills half the picture. Recipe 4
adds to recipe 3:

- rocky banks in about a third of the scenes: 6-24 large ledged rocks (0.8-4 m) close to the
  camera on both sides of the stream (or of a dry gully when there is none), able to fill much of
  the view, with trees or bushes growing above them; all rock stays still;
- a weathered look for all of the scene's rock (moss on faces turned up, lichen spots, fallen
  leaves, darker crevices), its amounts drawn per scene (`rock_look`) and drawn by the Blender
  script's rock material.

Every choice comes from the scene's fourth random stream, `np.random.default_rng([seed, 4])`,
so recipes 1-3 are unchanged.
"""

from __future__ import annotations

import numpy as np

from . import plants
from .geometry import STILL, MeshBuilder, sphere, view_axes, winding_line
from .oscillators import PartTable

LIMESTONE = np.array([0.42, 0.41, 0.38])
DARK_ROCK = np.array([0.16, 0.15, 0.14])
MOSS = {"spring": (0.12, 0.2, 0.04), "summer": (0.09, 0.15, 0.04), "dry": (0.16, 0.15, 0.07), "autumn": (0.13, 0.16, 0.05)}
LITTER = {"spring": (0.2, 0.13, 0.06), "summer": (0.22, 0.15, 0.07), "dry": (0.3, 0.2, 0.09), "autumn": (0.38, 0.17, 0.05)}


def gorge_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 4])


def rock_look(rng: np.random.Generator, season: str) -> dict:
    """Per-scene amounts (0..1) of moss, lichen and fallen leaves on rock, and their colours (linear RGB)."""
    return {"moss": float(rng.uniform(0.0, 0.9) if rng.uniform() < 0.75 else 0.0),
            "moss_colour": [float(c) for c in np.asarray(MOSS[season]) * rng.uniform(0.7, 1.4)],
            "lichen": float(rng.uniform(0.0, 0.5)),
            "litter": float(rng.uniform(0.0, 0.6) if rng.uniform() < 0.6 else 0.0),
            "litter_colour": [float(c) for c in np.asarray(LITTER[season]) * rng.uniform(0.7, 1.3)],
            "crevices": float(rng.uniform(0.3, 1.0))}


def ledge_rock(rng: np.random.Generator, centre: np.ndarray, size: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """A half-buried block of limestone about size m across and height m high, lumpy at several
    scales and stepped into ledges (vertices (V, 3) m, faces (F, 3))."""
    vertices, faces = sphere(14, 28)
    bumps = np.ones(len(vertices))
    for octave in range(3):
        directions = rng.normal(size=(4, 3))
        frequency, amplitude = 2.0 * 2.2 ** octave, 0.16 / 2.0 ** octave
        bumps += amplitude * np.sin(vertices @ directions.T * frequency + rng.uniform(0, 2 * np.pi, 4)).sum(1)
    scale = np.array([size, size * rng.uniform(0.6, 1.2), height]) * 0.5
    points = vertices * np.maximum(bumps, 0.4)[:, None] * scale
    step = height * rng.uniform(0.15, 0.35)
    points[:, 2] += rng.uniform(0.4, 0.8) * (np.round(points[:, 2] / step) * step - points[:, 2])  # ledges
    turn = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    points = points @ rotation.T
    points[:, 2] += scale[2] * rng.uniform(0.3, 0.7)  # part of it buried
    return points + centre, faces


def rock_banks(rng: np.random.Generator, meshes: dict[str, MeshBuilder], parts: PartTable, line: dict | None,
               yaw: float, near: float, season: str) -> dict:
    """Large still rocks close to the camera along both banks of a stream's course (`line`, see
    water.stream_line; a dry gully of its own when None), and plants above them; returns what the
    log records."""
    along, across = view_axes(yaw)
    if line is None:
        line = {"offset": float(rng.uniform(-1.0, 1.0)), "drift": float(rng.uniform(-0.2, 0.2)),
                "bend": float(rng.uniform(0.3, 2.0)), "wavelength": float(rng.uniform(8.0, 30.0)),
                "half_width": float(rng.uniform(0.4, 1.5))}
    count = int(rng.integers(6, 25))
    size = rng.uniform(0.8, 4.0, count)
    forward = np.maximum(np.geomspace(1.5, 30.0, count) * rng.uniform(0.8, 1.2, count), near + 0.6 * size)
    size = np.minimum(size, forward / 1.5)  # a near rock may fill much of the view, never the lens
    bank = rng.choice([-1.0, 1.0], count)
    centre = winding_line(forward, line["offset"], line["drift"], line["bend"], line["wavelength"])
    side = centre + bank * (line["half_width"] + 0.5 * size + rng.uniform(0.0, 0.6, count))
    dark = rng.uniform(0.0, 0.6)
    for u, v, s in zip(forward, side, size):
        tone = (1 - dark) * LIMESTONE + dark * DARK_ROCK
        vertices, faces = ledge_rock(rng, np.array([*(u * along + v * across), 0.0]), s, s * rng.uniform(0.4, 1.0))
        meshes["rock"].add(vertices, faces, STILL, 0.0, tone * rng.uniform(0.75, 1.3) * rng.uniform(0.93, 1.07, 3))
    # plants growing on top of and behind the banks: the moving texture beside still texture
    plant_spots = []
    for _ in range(int(rng.integers(1, 5))):
        u = rng.uniform(4.0, 16.0)
        v = winding_line(np.array([u]), line["offset"], line["drift"], line["bend"], line["wavelength"])[0]
        v += rng.choice([-1.0, 1.0]) * (line["half_width"] + rng.uniform(2.0, 5.0))
        plant_spots.append(np.array([*(u * along + v * across), 0.0]))
    trees = []
    for spot in plant_spots:
        if rng.uniform() < 0.6:
            form = str(rng.choice(["broadleaf", "conifer", "bare"], p=[0.7, 0.2, 0.1]))
            plants.tree(rng, meshes["wood"], meshes["foliage"], parts, spot, form, season)
            trees.append(form)
        else:
            plants.bush(rng, meshes["wood"], meshes["foliage"], parts, spot, season, rng.uniform(0.6, 1.6))
    return {"bank_rocks": count, "bank_trees": trees, "bank_bushes": len(plant_spots) - len(trees)}
