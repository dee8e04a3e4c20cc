"""Plants for the scene engine: grass, reeds, flowers on stems, trees and bushes.

Each function adds triangles to a MeshBuilder and oscillators to a PartTable, drawing every choice
from the rng it is given. Natural frequencies follow the cantilever law f_n ~ 1/L (longer, thinner
parts sway slower); gains (m of tip motion per m/s of gust) grow with length.
"""

from __future__ import annotations

import numpy as np

from .geometry import MeshBuilder, blades, leaves, sphere, tube
from .oscillators import CANTILEVER, FLUTTER, PartTable

GRASS_COLOURS = {  # linear RGB: (base, tip) per season
    "spring": ((0.03, 0.16, 0.02), (0.12, 0.32, 0.04)),
    "summer": ((0.03, 0.11, 0.02), (0.10, 0.22, 0.04)),
    "dry": ((0.14, 0.10, 0.03), (0.42, 0.33, 0.12)),
    "autumn": ((0.08, 0.08, 0.02), (0.30, 0.20, 0.05)),
}
LEAF_COLOURS = {
    "spring": (0.10, 0.30, 0.03), "summer": (0.04, 0.15, 0.02), "dry": (0.22, 0.20, 0.04),
    "autumn": (0.45, 0.15, 0.02),
}
PETAL_COLOURS = [(0.8, 0.8, 0.75), (0.85, 0.6, 0.02), (0.6, 0.05, 0.05), (0.35, 0.12, 0.6), (0.85, 0.3, 0.5)]


def _jitter(rng: np.random.Generator, colour, count: int, spread: float = 0.25) -> np.ndarray:
    return np.clip(np.asarray(colour)[None] * rng.uniform(1 - spread, 1 + spread, (count, 3)), 0, 1)


def _blade_colours(rng, season: str, count: int, levels: int) -> np.ndarray:
    base, tip = (np.asarray(c) for c in GRASS_COLOURS[season])
    per_blade = rng.uniform(0.7, 1.3, (count, 1, 1))
    xi = np.linspace(0, 1, levels)[None, :, None]
    colour = (base + (tip - base) * xi) * per_blade  # (B, L, 3)
    return np.repeat(colour, 2, axis=1).reshape(-1, 3)


def blade_frequency(rng: np.random.Generator, h: np.ndarray, stiffness: float = 1.0) -> np.ndarray:
    """Natural frequencies (Hz) of grass blades of heights h (m): the cantilever law f_n ~ L^-0.7,
    scattered by +-25 % and kept within 0.5-5 Hz."""
    return np.clip(stiffness * 0.45 / h ** 0.7 * rng.uniform(0.8, 1.25, len(h)), 0.5, 5.0)


def grass(rng: np.random.Generator, mesh: MeshBuilder, parts: PartTable, roots: np.ndarray, season: str,
          height: tuple[float, float], width_per_metre: float, stiffness: float = 1.0, levels: int = 5) -> None:
    """Blades at roots (B, 3); width grows with distance from the camera (far blades stand for clumps)."""
    count = len(roots)
    if count == 0:
        return
    h = rng.uniform(*height, count)
    distance = np.linalg.norm(roots[:, :2], axis=1)
    w = rng.uniform(0.004, 0.009, count) * (1.0 + width_per_metre * distance)
    lean_angle = rng.uniform(0, 2 * np.pi, count)
    lean = rng.uniform(0.0, 0.5, count)[:, None] * np.stack([np.cos(lean_angle), np.sin(lean_angle)], 1)
    vertices, faces, s = blades(roots, h, w, lean, rng.uniform(0, np.pi, count), levels)
    frequency = blade_frequency(rng, h, stiffness)
    ids = parts.add(CANTILEVER, roots, frequency, rng.uniform(0.08, 0.2, count), 0.04 * h)
    mesh.add(vertices, faces, np.repeat(ids, 2 * levels), s, _blade_colours(rng, season, count, levels))


def reeds(rng, mesh: MeshBuilder, parts: PartTable, roots: np.ndarray, season: str) -> None:
    """Tall thin blades (reeds, wheat-like stalks) with a seed head on some."""
    grass(rng, mesh, parts, roots, season, height=(0.8, 1.8), width_per_metre=0.1, stiffness=1.2, levels=7)


def flowers(rng, stems: MeshBuilder, heads: MeshBuilder, parts: PartTable, roots: np.ndarray, season: str) -> None:
    """Stems with a daisy (petal disc) or a dandelion-like puff on top; the head rides the stem tip."""
    count = len(roots)
    if count == 0:
        return
    h = rng.uniform(0.12, 0.6, count)
    lean = rng.normal(0, 0.12, (count, 2))
    levels = 5
    vertices, faces, s = blades(roots, h, np.full(count, 0.004), lean, rng.uniform(0, np.pi, count), levels, taper=0.3)
    frequency = np.clip(0.5 / h ** 0.7 * rng.uniform(0.8, 1.2, count), 0.6, 4.0)
    ids = parts.add(CANTILEVER, roots, frequency, rng.uniform(0.05, 0.12, count), 0.04 * h)
    stems.add(vertices, faces, np.repeat(ids, 2 * levels), s, _jitter(rng, GRASS_COLOURS[season][0], 1)[0])
    tips = roots + np.concatenate([h[:, None] * lean, h[:, None]], 1)
    style = rng.integers(0, 2)  # one kind of flower per patch looks more natural
    petal = np.asarray(PETAL_COLOURS[rng.integers(len(PETAL_COLOURS))])
    unit, unit_faces = sphere(4, 8)
    for i in range(count):
        size = rng.uniform(0.012, 0.03)
        if style == 0:  # daisy: flattened disc with a yellow centre
            v = unit * np.array([size, size, size * 0.25])
            colour = np.where(np.abs(unit[:, 2:3]) > 0.8, [[0.7, 0.45, 0.02]], petal[None])
        else:  # dandelion puff
            v = unit * size * 0.8
            colour = np.tile([[0.75, 0.75, 0.7]] if rng.uniform() < 0.6 else [[0.8, 0.55, 0.02]], (len(unit), 1))
        heads.add(v + tips[i], unit_faces, ids[i], 1.0, colour * rng.uniform(0.85, 1.1))


def _leaf_cloud(rng, mesh: MeshBuilder, parts: PartTable, branch_ids: np.ndarray, paths: list[np.ndarray],
                count_per_branch: int, length: float, width: float, colour, droop: float, spread: float = 0.15,
                start: float = 0.3) -> None:
    """Leaves spread along the outer part of each branch (within `spread` of its length around it),
    fluttering about their bases."""
    bases, directions, normals, attach, owners = [], [], [], [], []
    for branch, path in zip(branch_ids, paths):
        t = rng.uniform(start, 1.0, count_per_branch)
        index = t * (len(path) - 1)
        low = np.floor(index).astype(int).clip(0, len(path) - 2)
        point = path[low] + (index - low)[:, None] * (path[low + 1] - path[low])
        reach = spread * np.linalg.norm(path[-1] - path[0]) + 0.4 * length
        bases.append(point + rng.normal(0, reach, (count_per_branch, 3)))
        d = rng.normal(size=(count_per_branch, 3))
        d[:, 2] -= droop
        directions.append(d / np.linalg.norm(d, axis=1, keepdims=True))
        n = rng.normal(size=(count_per_branch, 3))
        n[:, 2] += 1.0
        normals.append(n / np.linalg.norm(n, axis=1, keepdims=True))
        attach.append(t)
        owners.append(np.full(count_per_branch, branch))
    bases, directions, normals = np.concatenate(bases), np.concatenate(directions), np.concatenate(normals)
    normals = normals - (normals * directions).sum(1, keepdims=True) * directions
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-9
    count = len(bases)
    lengths = length * rng.uniform(0.7, 1.3, count)
    ids = parts.add(FLUTTER, bases, rng.uniform(2.0, 6.0, count), rng.uniform(0.08, 0.2, count), 0.06 * lengths,
                    parent=np.concatenate(owners), attach=np.concatenate(attach), axis=normals)
    vertices, faces, s = leaves(bases, directions, normals, lengths, width * lengths / length)
    mesh.add(vertices, faces, np.repeat(ids, 4), s, np.repeat(_jitter(rng, colour, count), 4, axis=0))


def tree(rng, wood: MeshBuilder, foliage: MeshBuilder, parts: PartTable, base: np.ndarray, form: str,
         season: str, scale: float = 1.0) -> None:
    """One tree: a trunk oscillator, branches hung on it, leaves (or needles) hung on the branches.

    form: broadleaf, conifer, bare or palm.
    """
    height = scale * {"broadleaf": 6.0, "conifer": 9.0, "bare": 6.0, "palm": 8.0}[form] * rng.uniform(0.6, 1.3)
    lean = rng.normal(0, 0.05, 2) if form != "palm" else rng.normal(0, 0.15, 2)
    xi = np.linspace(0, 1, 8)
    trunk_path = base + np.stack([lean[0] * height * xi ** 2, lean[1] * height * xi ** 2, height * xi], 1)
    trunk_radius = scale * height * (0.025 if form == "palm" else 0.03) * (1.0 - 0.7 * xi)
    trunk = parts.add(CANTILEVER, base, rng.uniform(0.25, 0.6), rng.uniform(0.02, 0.05), 0.002 * height)[0]
    vertices, faces = tube(trunk_path, trunk_radius, 8)
    bark = _jitter(rng, (0.05, 0.035, 0.025), 1)[0] if form != "bare" else _jitter(rng, (0.08, 0.07, 0.06), 1)[0]
    wood.add(vertices, faces, trunk, np.repeat(xi, 8), bark)
    if form == "palm":
        count, start, droop, up = rng.integers(7, 12), 0.98, 1.2, 0.3
    elif form == "conifer":
        count, start, droop, up = rng.integers(14, 26), 0.15, 0.4, -0.25
    else:
        count, start, droop, up = rng.integers(6, 14), 0.35, 0.2, 0.6
    attach = np.sort(rng.uniform(start, 1.0, count)) if form != "palm" else np.full(count, 1.0)
    paths, ids = [], []
    for a in attach:
        length = height * (0.45 * (1.15 - a) if form == "conifer" else rng.uniform(0.25, 0.5))
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(angle), np.sin(angle), up + rng.normal(0, 0.15)])
        direction /= np.linalg.norm(direction)
        t = np.linspace(0, 1, 6)[:, None]
        root = trunk_path[0] + (trunk_path[-1] - trunk_path[0]) * a
        path = root + length * (t * direction - droop * 0.3 * t ** 2 * np.array([0, 0, 1]))
        radius = trunk_radius[min(int(a * 7), 7)] * 0.5 * (1.0 - 0.8 * t[:, 0])
        frequency = np.clip(1.1 / length ** 0.5 * rng.uniform(0.8, 1.2), 0.4, 3.0)
        branch = parts.add(CANTILEVER, root, frequency, rng.uniform(0.03, 0.08), 0.015 * length,
                           parent=trunk, attach=a)[0]
        if form != "palm":
            vertices, faces = tube(path, radius, 5)
            wood.add(vertices, faces, branch, np.repeat(t[:, 0], 5), bark)
        paths.append(path)
        ids.append(branch)
    ids = np.asarray(ids)
    if form == "broadleaf":
        _leaf_cloud(rng, foliage, parts, ids, paths, int(rng.integers(150, 300)), scale * 0.22, scale * 0.16,
                    LEAF_COLOURS[season], droop=0.5, spread=0.22)
    elif form == "conifer":
        _leaf_cloud(rng, foliage, parts, ids, paths, int(rng.integers(120, 220)), scale * 0.4, scale * 0.12,
                    np.asarray(LEAF_COLOURS["summer"]) * 0.6, droop=1.5, spread=0.1, start=0.05)
    elif form == "palm":
        _leaf_cloud(rng, foliage, parts, ids, paths, int(rng.integers(40, 70)), scale * 0.6, scale * 0.1,
                    LEAF_COLOURS["summer" if season == "autumn" else season], droop=2.0)
    else:  # bare: twigs as thin dark leaves
        _leaf_cloud(rng, wood, parts, ids, paths, int(rng.integers(20, 50)), scale * 0.3, scale * 0.012, bark, droop=-0.5)


def bush(rng, wood: MeshBuilder, foliage: MeshBuilder, parts: PartTable, base: np.ndarray, season: str,
         size: float) -> None:
    """Stems from one root fanning out, densely leaved."""
    count = int(rng.integers(5, 10))
    ids, paths = [], []
    for _ in range(count):
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([0.6 * np.cos(angle), 0.6 * np.sin(angle), 1.0])
        direction /= np.linalg.norm(direction)
        length = size * rng.uniform(0.7, 1.2)
        t = np.linspace(0, 1, 5)[:, None]
        path = base + length * t * direction
        branch = parts.add(CANTILEVER, base, np.clip(0.9 / length ** 0.5, 0.6, 3.5), rng.uniform(0.04, 0.1),
                           0.025 * length)[0]
        vertices, faces = tube(path, size * 0.02 * (1.0 - 0.7 * t[:, 0]), 5)
        wood.add(vertices, faces, branch, np.repeat(t[:, 0], 5), (0.08, 0.06, 0.04))
        ids.append(branch)
        paths.append(path)
    _leaf_cloud(rng, foliage, parts, np.asarray(ids), paths, int(rng.integers(100, 200)), size * 0.1,
                size * 0.07, LEAF_COLOURS[season], droop=0.3, spread=0.3)
