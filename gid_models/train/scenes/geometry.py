"""Mesh primitives in numpy for the scene engine: blades, tubes, leaves, rocks, boxes, terrain.

World frame (metres): z up, the ground is z = 0, the camera looks roughly along +y.
Every vertex carries three attributes the renderer writes into its attribute pass:
  part  (int)   index into the scene's PartTable, or -1 for still geometry
  s     (float) where along its part the vertex sits: 0 at the root/base, 1 at the tip
  col   (3,)    linear RGB base colour
so that each visible pixel can be traced back to the oscillator that moves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STILL = -1


@dataclass
class MeshBuilder:
    """Accumulates triangles of one material; `arrays()` gives what the Blender script builds."""

    material: str
    vertices: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    parts: list = field(default_factory=list)
    stations: list = field(default_factory=list)
    colours: list = field(default_factory=list)
    _count: int = 0

    def add(self, vertices: np.ndarray, faces: np.ndarray, part: np.ndarray | int, s: np.ndarray | float,
            colour: np.ndarray) -> None:
        """vertices (V, 3) m; faces (F, 3) local indices; part, s per vertex or scalar; colour (V, 3) or (3,)."""
        count = len(vertices)
        self.vertices.append(np.asarray(vertices, np.float32).reshape(-1, 3))
        self.faces.append(np.asarray(faces, np.int64).reshape(-1, 3) + self._count)
        self.parts.append(np.broadcast_to(np.asarray(part, np.int32), (count,)).copy())
        self.stations.append(np.broadcast_to(np.asarray(s, np.float32), (count,)).copy())
        self.colours.append(np.broadcast_to(np.asarray(colour, np.float32), (count, 3)).copy())
        self._count += count

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.vertices:
            return {}
        return {"vertices": np.concatenate(self.vertices), "faces": np.concatenate(self.faces).astype(np.int32),
                "part": np.concatenate(self.parts), "s": np.concatenate(self.stations),
                "col": np.concatenate(self.colours)}


def strip_faces(num_strips: int, levels: int) -> np.ndarray:
    """Triangles of num_strips ladders of `levels` rungs (2 vertices a rung, rung-major per strip)."""
    i = np.arange(levels - 1)
    a, b, c, d = 2 * i, 2 * i + 1, 2 * i + 2, 2 * i + 3
    one = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    offsets = (np.arange(num_strips) * 2 * levels)[:, None, None]
    return (one[None] + offsets).reshape(-1, 3)


def blades(roots: np.ndarray, heights: np.ndarray, widths: np.ndarray, leans: np.ndarray,
           facing: np.ndarray, levels: int = 5, taper: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curved tapering strips (grass blades, reeds, stems), one per root.

    roots (B, 3) m; heights, widths (B,) m; leans (B, 2) horizontal tip offset per metre of height;
    facing (B,) radians, the direction the flat side faces. Returns vertices (B * 2 * levels, 3),
    faces, and s (per vertex, 0 at the root, 1 at the tip).
    """
    xi = np.linspace(0.0, 1.0, levels, dtype=np.float32)  # (L,)
    count = len(roots)
    centre = np.repeat(roots[:, None, :], levels, 1).astype(np.float32)
    centre[..., 2] += heights[:, None] * xi[None]
    # a parabolic lean keeps the root vertical and bends the tip over
    centre[..., :2] += (heights[:, None, None] * xi[None, :, None] ** 2) * leans[:, None, :]
    across = np.stack([np.cos(facing), np.sin(facing), np.zeros_like(facing)], 1).astype(np.float32)  # (B, 3)
    half = 0.5 * widths[:, None] * (1.0 - taper * xi[None] ** 1.5)  # (B, L)
    left = centre - half[..., None] * across[:, None]
    right = centre + half[..., None] * across[:, None]
    vertices = np.stack([left, right], 2).reshape(-1, 3)
    s = np.repeat(np.tile(xi, count), 2)
    return vertices, strip_faces(count, levels), s


def tube(path: np.ndarray, radii: np.ndarray, sides: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A tube along path (N, 3) with radii (N,); returns vertices (N * sides, 3) and faces."""
    tangent = np.gradient(path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    helper = np.where(np.abs(tangent[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    u = np.cross(tangent, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(tangent, u)
    angle = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring = np.cos(angle)[None, :, None] * u[:, None] + np.sin(angle)[None, :, None] * v[:, None]
    vertices = path[:, None] + radii[:, None, None] * ring
    n = len(path)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(sides), indexing="ij")
    a = i * sides + j
    b = i * sides + (j + 1) % sides
    faces = np.concatenate([np.stack([a, b, b + sides], -1).reshape(-1, 3), np.stack([a, b + sides, a + sides], -1).reshape(-1, 3)])
    return vertices.reshape(-1, 3), faces


def leaves(bases: np.ndarray, directions: np.ndarray, normals: np.ndarray, lengths: np.ndarray,
           widths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diamond leaves: base, two sides at 40% and the tip; directions and normals (N, 3) unit.

    Returns vertices (N * 4, 3), faces (N * 2, 3) and s (0 at the base, 1 at the tip).
    """
    side = np.cross(normals, directions)
    side /= np.linalg.norm(side, axis=1, keepdims=True) + 1e-9
    tip = bases + directions * lengths[:, None]
    middle = bases + directions * (0.4 * lengths)[:, None]
    half = (0.5 * widths)[:, None] * side
    vertices = np.stack([bases, middle - half, middle + half, tip], 1).reshape(-1, 3)
    offsets = 4 * np.arange(len(bases))[:, None, None]
    faces = (np.array([[[0, 1, 3], [0, 3, 2]]]) + offsets).reshape(-1, 3)
    s = np.tile(np.array([0.0, 0.4, 0.4, 1.0], np.float32), len(bases))
    return vertices, faces, s


def sphere(rings: int = 6, segments: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A unit UV sphere: vertices (rings * segments + 2, 3), faces."""
    theta = np.linspace(0, np.pi, rings + 2)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    body = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    vertices = np.concatenate([[[0, 0, 1]], body, [[0, 0, -1]]])
    faces = []
    for j in range(segments):
        k = (j + 1) % segments
        faces.append([0, 1 + j, 1 + k])
        last = 1 + (rings - 1) * segments
        faces.append([len(vertices) - 1, last + k, last + j])
    for i in range(rings - 1):
        for j in range(segments):
            k = (j + 1) % segments
            a, b = 1 + i * segments + j, 1 + i * segments + k
            faces.extend([[a, a + segments, b + segments], [a, b + segments, b]])
    return vertices, np.array(faces)


def rock(rng: np.random.Generator, centre: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """A lumpy half-buried boulder of about `size` metres."""
    vertices, faces = sphere(7, 12)
    lumps = rng.normal(size=(4, 3))
    bumps = 1.0 + 0.18 * np.sin(vertices @ lumps.T * 2.3 + rng.uniform(0, 6, 4)).sum(1)
    scale = size * np.array([1.0, rng.uniform(0.6, 1.1), rng.uniform(0.4, 0.8)])
    vertices = vertices * bumps[:, None] * scale
    vertices[:, 2] -= 0.25 * scale[2]
    return vertices + centre, faces


def view_axes(yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit ground vectors (2,): along a camera heading of yaw (radians from +y towards -x) and
    across it, to the camera's right."""
    along = np.array([-np.sin(yaw), np.cos(yaw)])
    return along, np.array([along[1], -along[0]])


def winding_line(forward: np.ndarray, offset: float, drift: float, bend: float, wavelength: float) -> np.ndarray:
    """Side offset (m) of a winding course (a path, a stream) at forward distances (N,) m along
    the view: offset + drift forward + bend sin(2 pi forward / wavelength)."""
    return offset + drift * forward + bend * np.sin(forward / wavelength * 2 * np.pi)


def box(centre: np.ndarray, size: np.ndarray, yaw: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """An axis box of size (3,) m turned by yaw about z."""
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)]) * size
    c, s = np.cos(yaw), np.sin(yaw)
    corners = corners @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return corners + centre, faces


def terrain(rng: np.random.Generator, x_range: tuple[float, float], y_range: tuple[float, float],
            height: float, resolution: tuple[int, int] = (48, 12), ridge: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A height-field grid; heights are a few random sines scaled to `height` metres, zero at the near edge
    unless ridge > 0 (a distant mountain range lifted everywhere)."""
    nx, ny = resolution
    x, y = np.meshgrid(np.linspace(*x_range, nx), np.linspace(*y_range, ny), indexing="xy")
    z = np.zeros_like(x)
    for _ in range(5):
        k = rng.uniform(0.5, 4.0) / (x_range[1] - x_range[0]) * 2 * np.pi
        angle = rng.uniform(0, np.pi)
        z += rng.uniform(0.3, 1.0) * np.sin(k * (np.cos(angle) * x + np.sin(angle) * y) + rng.uniform(0, 6))
    z = (z - z.min()) / (np.ptp(z) + 1e-9)
    rise = (y - y_range[0]) / (y_range[1] - y_range[0])
    z = height * z * np.clip(rise * 1.5, 0, 1) + ridge * rise
    vertices = np.stack([x, y, z], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(ny - 1), np.arange(nx - 1), indexing="ij")
    a = i * nx + j
    faces = np.concatenate([np.stack([a, a + 1, a + nx + 1], -1).reshape(-1, 3), np.stack([a, a + nx + 1, a + nx], -1).reshape(-1, 3)])
    return vertices, faces
