"""Video frames -> per-pixel trajectories -> spectral volume, with OpenCV optical flow.

Trajectories follow the paper's recipe (notes section 7): the flow from the start frame 0 directly
to every frame t (never chained, so errors do not accumulate), giving F_t(p) in pixels, then the
temporal FFT keeps the first K bins (gid_models.spectral.trajectories_to_spectral).

Two flow methods, both coarse-to-fine:
- ``"dis"`` (default): OpenCV DIS (dense inverse search), MEDIUM preset refined up to full
  resolution (finest scale 0; the preset alone stops at half resolution and under-reads small
  regions by 5-20%).
- ``"farneback"``: OpenCV Farneback polynomial expansion (4 levels, 9 px window).

Figures (benchmarks/motion_from_video.py prints them; synthetic clips of tests/synthetic_clips.py,
regions swaying 3 px and 2 px, median over each region's interior; speed on 2 shared CPU cores):

| method    | amplitude ratio 96x64 | 256x160     | static mean abs F | 256x160 fps | 512x288 fps |
|-----------|-----------------------|-------------|-------------------|-------------|-------------|
| dis       | 0.985, 0.972          | 0.997, 1.007| 0.0006 px         | 48          | 21          |
| farneback | 0.975, 0.968          | 0.995, 1.011| 0.0023-0.0042 px  | 49          | 13.5        |

Speeds above were taken with the 2 cores lightly loaded; with the cores shared by ~8 busy
processes the same script gave DIS 10 / 6.2 and Farneback 17 / 7.7 frames/s (256x160 / 512x288),
and the whole extraction (flow, camera fit and removal, FFT) 5.8 / 4.5 frames/s.
DIS is the default: as accurate or better everywhere, a quarter of the static drift, and faster at
512x288 (the paper's fine-tuning size) on an idle machine. Farneback stays as a second opinion for footage where DIS
struggles (large textureless areas).

Memory: trajectories are float32 (T, 2, H, W): 150 frames at 512x288 take 177 MB, at 1024x576
708 MB, on top of the decoded frames (T*H*W*3 bytes). Callers bound T with max_frames.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
import torch

from .memory import require_memory
from .spectral import DEFAULT_NUM_FREQUENCIES, MotionError, SpectralVolume, trajectories_to_spectral

LOGGER = logging.getLogger(__name__)

FLOW_METHODS = ("dis", "farneback")
DEFAULT_METHOD = "dis"
CAMERA_WARNING_PX = 1.0
StepCallback = Callable[[int, int], None]
# Peak bytes per pixel and frame of an extraction: decoded RGB (3) and grey (1) frames, float32
# trajectories (8), their camera-corrected copy (8), the FFT's complex spectrum (8) and margin.
FLOW_BYTES_PER_PIXEL_FRAME = 40
MIN_FLOW_SIDE = 16  # OpenCV's flow pyramids need about 12 pixels per side


def require_flow_memory(num_frames: int, height: int, width: int, what: str, fix: str) -> None:
    """MemoryError naming `what`, the figures and `fix` when extracting the motion of num_frames
    frames of width x height would not fit in the CPU memory free now (checked before decoding)."""
    require_memory(FLOW_BYTES_PER_PIXEL_FRAME * num_frames * height * width, "cpu", what, fix)


def _gray_frames(frames: np.ndarray | torch.Tensor) -> list[np.ndarray]:
    """(T, H, W, 3) RGB, torch float 0..1 or numpy uint8 -> T grey (H, W) uint8 images."""
    if isinstance(frames, torch.Tensor):
        if frames.ndim != 4 or frames.shape[-1] not in (3, 4):
            raise MotionError(f"frames must be (T, H, W, 3), got {tuple(frames.shape)}.")
        if not torch.isfinite(frames).all():
            raise MotionError("frames contain NaN or infinite values; check the node that produced them.")
        frames = (frames[..., :3].detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
    elif frames.dtype != np.uint8:
        raise MotionError(f"numpy frames must be uint8 (T, H, W, 3), got {frames.dtype}.")
    if frames.ndim != 4 or frames.shape[-1] not in (3, 4):
        raise MotionError(f"frames must be (T, H, W, 3), got {tuple(frames.shape)}.")
    if frames.shape[0] == 0:
        raise MotionError("no frames were given; a clip needs at least 2 frames.")
    if min(frames.shape[1:3]) < MIN_FLOW_SIDE:
        raise MotionError(f"frames of {frames.shape[2]}x{frames.shape[1]} pixels are too small for optical flow; "
                          f"give frames of at least {MIN_FLOW_SIDE} pixels on each side.")
    return [cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY) for frame in frames]


class _DisFlow:
    def __init__(self) -> None:
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.dis.setFinestScale(0)  # refine up to full resolution (the preset stops at half)

    def __call__(self, start: np.ndarray, target: np.ndarray) -> np.ndarray:
        return self.dis.calc(start, target, None)


class _FarnebackFlow:
    def __call__(self, start: np.ndarray, target: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(
            start, target, None, pyr_scale=0.5, levels=4, winsize=9, iterations=5, poly_n=5, poly_sigma=1.1, flags=0
        )


def _flow_estimator(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    if method == "dis":
        return _DisFlow()
    if method == "farneback":
        return _FarnebackFlow()
    raise MotionError(f"unknown optical flow method '{method}'; use one of {FLOW_METHODS}.")


def estimate_trajectories(
    frames: np.ndarray | torch.Tensor, method: str = DEFAULT_METHOD, callback: StepCallback | None = None
) -> torch.Tensor:
    """Optical flow from frame 0 to every frame t.

    frames: (T, H, W, 3) RGB, torch float 0..1 or numpy uint8.
    callback(step, total) runs after each frame (step = frame index, total = T); it may raise to stop.
    Returns (1, T, 2, H, W) float32 displacements (dx, dy) in pixels; frame 0 is all zeros.
    """
    gray = _gray_frames(frames)
    estimate = _flow_estimator(method)
    height, width = gray[0].shape
    out = torch.zeros(1, len(gray), 2, height, width, dtype=torch.float32)
    for index, target in enumerate(gray):
        if index > 0:
            flow = estimate(gray[0], target)
            out[0, index] = torch.from_numpy(flow).permute(2, 0, 1)
        if callback is not None:
            callback(index, len(gray))
    if not torch.isfinite(out).all():
        raise MotionError(f"optical flow ({method}) produced non-finite values; try the other method.")
    return out


def _sample_grid(height: int, width: int, max_points: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Regular grid of pixel rows and columns (about max_points of them) for fitting."""
    stride = max(1, int(np.ceil(np.sqrt(height * width / max_points))))
    ys = torch.arange(stride // 2, height, stride)
    xs = torch.arange(stride // 2, width, stride)
    return torch.meshgrid(ys, xs, indexing="ij")


def _fit_affine(points: torch.Tensor, targets: torch.Tensor, threshold: float = 0.25, iterations: int = 6) -> torch.Tensor:
    """Robust affine fit targets ~ A [x, y, 1] to the largest coherent set of points.

    The dominant translation is the mode of the flow (the fullest cell of a 2D histogram with
    `threshold`-sized cells, refined by the mean of the points near it); oscillating regions move
    incoherently, so the static background wins even when it covers less than half the picture.
    Least squares on the agreeing points then refines a full affine, re-selecting inliers a few
    times; the affine is kept only when it explains at least 1.5 times as many points as the
    translation (a zoom or a rotation), because a free affine otherwise leans on the edges of
    moving regions. O(N) per frame. points, targets: (N, 2) pixels. Returns (2, 3).
    """
    flow = targets - points
    cells = torch.round(flow.clamp(-512.0, 512.0) / threshold).long()
    cells -= cells.min(dim=0).values
    keys = cells[:, 0] * (int(cells[:, 1].max()) + 1) + cells[:, 1]
    mode = flow[keys == torch.bincount(keys).argmax()].mean(dim=0)
    inliers = (flow - mode).norm(dim=1) <= threshold
    shift = flow[inliers].mean(dim=0)
    translation = torch.cat([torch.eye(2, dtype=points.dtype), shift[:, None]], dim=1)
    translation_support = int(((flow - shift).norm(dim=1) <= threshold).sum())
    design = torch.cat([points, torch.ones(points.shape[0], 1, dtype=points.dtype)], dim=1)  # (N, 3)
    affine = translation
    for _ in range(iterations):
        if int(inliers.sum()) < 6:
            break
        affine = torch.linalg.lstsq(design[inliers], targets[inliers]).solution.T
        refreshed = (design @ affine.T - targets).norm(dim=1) <= threshold
        if torch.equal(refreshed, inliers):
            break
        inliers = refreshed
    return affine if int(inliers.sum()) >= 1.5 * translation_support else translation


def estimate_camera_motion(trajectories: torch.Tensor) -> torch.Tensor:
    """Global (camera) motion of each frame relative to frame 0, fitted robustly to the flow.

    trajectories: (1, T, 2, H, W) or (T, 2, H, W) pixels.
    Returns (T, 2, 3) float32 affine maps A_t taking a frame-0 pixel (x, y, 1) to its position in
    frame t under the global motion alone; A_0 is the identity.
    """
    if trajectories.ndim == 5:
        if trajectories.shape[0] != 1:
            raise MotionError(f"camera motion is fitted per clip; got a batch of {trajectories.shape[0]}.")
        trajectories = trajectories[0]
    if trajectories.ndim != 4 or trajectories.shape[1] != 2:
        raise MotionError(f"trajectories must be (T, 2, H, W), got {tuple(trajectories.shape)}.")
    height, width = trajectories.shape[-2:]
    rows, cols = _sample_grid(height, width)
    points = torch.stack([cols.flatten(), rows.flatten()], dim=1).double()  # (N, 2) as (x, y)
    sampled = trajectories[:, :, rows.flatten(), cols.flatten()].double().cpu()  # (T, 2, N)
    affines = []
    for flow in sampled:
        affines.append(_fit_affine(points, points + flow.T))
    return torch.stack(affines).float()


def camera_displacement(camera_motion: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(T, 2, H, W) pixels: the displacement field A_t p - p each camera affine induces."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    grid = torch.stack([xs, ys, torch.ones_like(xs)])  # (3, H, W)
    moved = torch.einsum("tij,jhw->tihw", camera_motion.float(), grid)
    return moved - grid[:2]


def camera_shift_px(camera_motion: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(T,) per-frame magnitude of global motion in pixels: the largest shift over the picture's
    four corners and centre (catches translation, rotation and zoom alike)."""
    corners = torch.tensor(
        [[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1],
         [(width - 1) / 2, (height - 1) / 2, 1]],
        dtype=torch.float32,
    )  # (5, 3)
    moved = torch.einsum("tij,nj->tni", camera_motion.float(), corners)
    return (moved - corners[:, :2]).norm(dim=-1).amax(dim=1)


@dataclass
class VideoMotion:
    """What motion-from-video produced.

    volume: the spectral volume (pixels, T = number of frames used, their fps).
    trajectories: (1, T, 2, H, W) pixels used for it (camera motion removed if asked).
    camera_motion: (T, 2, 3) fitted global affine per frame (see estimate_camera_motion).
    max_camera_shift_px: largest per-frame global shift over the clip, pixels.
    warnings: human-readable notes for the user (camera motion, ...).
    """

    volume: SpectralVolume
    trajectories: torch.Tensor
    camera_motion: torch.Tensor
    max_camera_shift_px: float
    warnings: list[str] = field(default_factory=list)


def spectral_volume_from_video(
    frames: np.ndarray | torch.Tensor,
    fps: float,
    num_frequencies: int = DEFAULT_NUM_FREQUENCIES,
    method: str = DEFAULT_METHOD,
    remove_camera_motion: bool = False,
    callback: StepCallback | None = None,
    remove_drift: bool = False,
) -> VideoMotion:
    """Spectral volume of a clip: flow from frame 0 to every frame, optional camera-motion removal,
    optional drift removal, FFT over all T given frames (bin k is k * fps / T Hz).

    remove_drift: subtract from every pixel's trajectory the straight line from frame 0 that ends
    where the clip ends, (t / T) * (F_{T-1} - F_0), so that a pixel that drifts (grass leaning
    further, a cloud) comes back to its start within one step and the volume loops seamlessly.

    frames: (T, H, W, 3) RGB, torch float 0..1 or numpy uint8, T >= 2 * num_frequencies. Pass only
    the frames you want used (e.g. the first 150).
    """
    count = int(frames.shape[0]) if frames.ndim >= 1 else 0
    if num_frequencies < 1:
        raise MotionError(f"num_frequencies must be at least 1, got {num_frequencies}.")
    if count < 2 * num_frequencies:
        raise MotionError(
            f"{count} frames are too few for K={num_frequencies} frequencies: give at least "
            f"{2 * num_frequencies} frames (150 at 30 fps is the paper's window) or lower num_frequencies "
            f"to {max(1, count // 2)} or less."
        )
    if not (fps > 0 and math.isfinite(fps)):
        raise MotionError(f"fps must be a positive finite number, got {fps}.")
    if frames.ndim == 4:
        require_flow_memory(count, int(frames.shape[1]), int(frames.shape[2]), f"the motion of {count} frames",
                            "use fewer frames (max_frames) or smaller ones.")
    trajectories = estimate_trajectories(frames, method=method, callback=callback)
    height, width = trajectories.shape[-2:]
    camera_motion = estimate_camera_motion(trajectories)
    shifts = camera_shift_px(camera_motion, height, width)
    max_shift, end_shift = float(shifts.max()), float(shifts[-1])
    warnings = []
    if max(max_shift, end_shift) > CAMERA_WARNING_PX:
        action = "it was subtracted" if remove_camera_motion else "enable remove_camera_motion to subtract it"
        warnings.append(
            f"the camera moves: global shift up to {max_shift:.1f} px ({end_shift:.1f} px from first to last "
            f"frame); {action}, or use a clip from a fixed camera."
        )
    if remove_camera_motion:
        trajectories = trajectories - camera_displacement(camera_motion, height, width)[None]
    if remove_drift:
        ramp = torch.arange(count, dtype=trajectories.dtype).view(1, -1, 1, 1, 1) / count
        trajectories = trajectories - ramp * (trajectories[:, -1:] - trajectories[:, :1])
    volume = trajectories_to_spectral(trajectories, fps=float(fps), num_frequencies=num_frequencies)
    return VideoMotion(
        volume=volume, trajectories=trajectories, camera_motion=camera_motion,
        max_camera_shift_px=max_shift, warnings=warnings,
    )

