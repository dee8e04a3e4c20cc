"""Per-pixel motion of a rendered scene from its attribute pass: exact trajectories -> spectral volume.

Each pixel of frame 0 sees one surface point: part p, station s along it, world position X (the
attribute pass). Its 3D displacement spectrum is Base_p + phi(s) Q_p (oscillators.part_spectra),
its displacement d(t) the inverse FFT of that; the pixel's trajectory is the exact perspective
projection of X + d(t) - d(0) minus that of X, so frame 0 is the rendered picture. The FFT of the
trajectory's T frames, first K bins, is the spectral volume in the training shards' convention
(`gid_models.spectral.trajectories_to_spectral`, 'forward' norm). Still pixels (part -1: ground,
rocks, fences, hills, sky) get exactly zero.
"""

from __future__ import annotations

import numpy as np
import torch

from ...spectral import SpectralVolume, trajectories_to_spectral
from .compose import Scene, project
from .oscillators import mode_shape, part_spectra

CHUNK = 4096  # pixels per step keeps the (pixels, T, 3) arrays near 10 MB
MIN_DEPTH_M = 0.05
MAX_MOTION_FRACTION = 0.25


def wind_rng(scene: Scene) -> np.random.Generator:
    """The wind's random stream, apart from the geometry's so that one does not shift the other."""
    return np.random.default_rng([scene.seed, 1])


def scene_spectra(scene: Scene, num_frames: int, fps: float, num_frequencies: int) -> tuple[np.ndarray, np.ndarray]:
    """(own, base) part spectra (P, K, 3) complex of a scene on its first K = num_frequencies bins
    (the wind puts nothing above them); deterministic per seed."""
    return part_spectra(scene.parts, scene.wind, num_frames, fps, num_frequencies, wind_rng(scene))


def point_displacements(scene: Scene, part: np.ndarray, s: np.ndarray, spectra: tuple[np.ndarray, np.ndarray],
                        num_frames: int) -> np.ndarray:
    """(N, T, 3) world displacements (m) relative to frame 0 of points (part (N,), station s (N,))."""
    own, base = spectra
    shape = mode_shape(scene.parts["kind"][part], s).astype(np.float32)
    spectrum = base[part] + shape[:, None, None] * own[part]  # (N, F, 3)
    displacement = np.fft.irfft(spectrum, n=num_frames, axis=1, norm="forward")
    return displacement - displacement[:, :1]


def pixel_trajectories(scene: Scene, attributes: dict[str, np.ndarray], num_frames: int, fps: float,
                       num_frequencies: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2, H, W) float32 pixel displacements (x right, y down) of every frame-0 pixel, and the
    (H, W) bool mask of pixels kept (False: dropped, see the module notes; their motion is 0)."""
    part, s, position = attributes["part"], attributes["s"], attributes["position"]
    height, width = part.shape
    out = np.zeros((num_frames, 2, height, width), np.float32)
    valid = np.ones((height, width), bool)
    rows, cols = np.nonzero(part >= 0)
    if len(rows) == 0:
        return out, valid
    spectra = scene_spectra(scene, num_frames, fps, num_frequencies)
    forward = -scene.camera.world_to_camera()[2]  # depth = forward[:3] . X + forward[3]
    for start in range(0, len(rows), CHUNK):
        r, c = rows[start:start + CHUNK], cols[start:start + CHUNK]
        d = point_displacements(scene, part[r, c], s[r, c], spectra, num_frames)  # (N, T, 3)
        x = position[r, c].astype(np.float64)
        moved = project(x[:, None] + d, scene.camera, width, height) - project(x, scene.camera, width, height)[:, None]
        depth = (x[:, None] + d) @ forward[:3] + forward[3]
        keep = (depth.min(axis=1) > MIN_DEPTH_M) & (np.abs(moved).max(axis=(1, 2)) <= MAX_MOTION_FRACTION * width)
        out[:, :, r, c] = np.where(keep[:, None, None], moved, 0.0).transpose(1, 2, 0)
        valid[r, c] = keep
    return out, valid


def spectral_volume(scene: Scene, attributes: dict[str, np.ndarray], num_frames: int, fps: float,
                    num_frequencies: int = 16) -> tuple[SpectralVolume, np.ndarray]:
    """The (1, K, 4, H, W) spectral volume in pixels of the rendered frame 0 and its (H, W) bool mask."""
    trajectories, valid = pixel_trajectories(scene, attributes, num_frames, fps, num_frequencies)
    return trajectories_to_spectral(torch.from_numpy(trajectories)[None], fps, num_frequencies), valid
