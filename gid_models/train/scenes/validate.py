"""Check the engine's motion against Blender rendering the moved scene (end-point error in pixels).

The engine never renders frames after 0; it evaluates each frame-0 pixel's surface point in closed
form and projects it itself. This check moves every mesh vertex by the same oscillators to frame t,
lets Cycles render the moved scene's attribute pass at pixel centres (each pixel then reports the
frame-0 `rest` position, part and station of the point it sees), and compares the pixel centre
with the engine's prediction for that point: the projection of rest + d(t). The error covers the
camera model and projection, the attribute pass, and the mesh's linear interpolation of the mode
shape between vertices (the engine evaluates the mode shape exactly).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .compose import Scene, project
from .motion import point_displacements, scene_spectra
from .render import render

CHUNK = 2048


def displacements_at(scene: Scene, part: np.ndarray, s: np.ndarray, frame: int, num_frames: int, fps: float,
                     num_frequencies: int) -> np.ndarray:
    """(N, 3) m: displacement at `frame` relative to frame 0 of points (part, s); still (-1) points 0."""
    out = np.zeros((len(part), 3), np.float64)
    moving = np.flatnonzero(part >= 0)
    spectra = scene_spectra(scene, num_frames, fps, num_frequencies)
    for start in range(0, len(moving), CHUNK):
        index = moving[start:start + CHUNK]
        out[index] = point_displacements(scene, part[index], s[index], spectra, num_frames)[:, frame]
    return out


def end_point_error(scene: Scene, width: int, height: int, frame: int, num_frames: int = 150, fps: float = 30.0,
                    num_frequencies: int = 16, gain: float = 1.0) -> dict[str, float]:
    """Moved-scene render vs engine prediction at frame `frame`; gain scales the wind (a harder test).

    Returns mean / 95th percentile / max end-point error (px) over moving pixels, the mean motion
    there (px), and the projection error of still pixels (px, the camera model alone).
    """
    scene = replace(scene, camera=replace(scene.camera, fstop=0.0), wind=replace(scene.wind, gust=scene.wind.gust * gain))
    offsets = {name: displacements_at(scene, mesh["part"], mesh["s"], frame, num_frames, fps, num_frequencies)
               for name, mesh in scene.meshes.items()}
    moved = render(scene, width, height, samples=1, offsets=offsets).moved
    y, x = np.mgrid[0:height, 0:width]
    centres = np.stack([x + 0.5, y + 0.5], -1).astype(np.float64)  # (H, W, 2)
    rest = moved["rest"].astype(np.float64)
    seen = np.abs(rest).sum(-1) > 0  # the sky reports nothing
    moving = seen & (moved["part"] >= 0)
    still = seen & (moved["part"] < 0)
    d = displacements_at(scene, moved["part"][moving], moved["s"][moving], frame, num_frames, fps, num_frequencies)
    predicted = project(rest[moving] + d, scene.camera, width, height)
    error = np.linalg.norm(predicted - centres[moving], axis=-1)
    motion = np.linalg.norm(predicted - project(rest[moving], scene.camera, width, height), axis=-1)
    still_error = np.linalg.norm(project(rest[still], scene.camera, width, height) - centres[still], axis=-1)
    return {"moving_pixels": int(moving.sum()), "epe_mean_px": float(error.mean()), "epe_p95_px": float(np.percentile(error, 95)),
            "epe_max_px": float(error.max()), "motion_mean_px": float(motion.mean()), "motion_max_px": float(motion.max()),
            "still_projection_error_px": float(still_error.mean()) if still.any() else 0.0}
