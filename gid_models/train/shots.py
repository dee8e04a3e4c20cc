"""Clips -> shots (cut detection) -> static-camera windows of oscillating motion.

Cut detection compares colour histograms and grey levels of consecutive frames. Window selection
looks at the trajectories of one window (start frame -> every later frame, in pixels) and keeps
it only when the camera stands still and enough of the picture visibly sways. Pixels that drift
rather than oscillate (a character walking, clouds crossing the sky) or that the flow does not
track (the start frame's colour is not found where the flow says it went: something walked over
it, or the flow failed) are marked in a per-pixel oscillation mask; a window or crop where they cover too much is rejected,
and in kept examples prepare.py zeroes their motion (the model learns to keep them still).
Every decision carries a reason that prepare.py logs.

Pixel thresholds are given at a reference width of 256 pixels (the training resolution) and
scaled to the width the trajectories were measured at.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

REFERENCE_WIDTH = 256


@dataclass(frozen=True)
class Shot:
    """Frames [start, end) of a clip between two cuts."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def _thumbnails(frames: np.ndarray) -> list[np.ndarray]:
    """Frames shrunk to 64 pixels wide: cuts change the whole picture, noise and detail do not."""
    height, width = frames.shape[1:3]
    size = (64, max(1, round(64 * height / width)))
    return [cv2.resize(np.ascontiguousarray(frame), size, interpolation=cv2.INTER_AREA) for frame in frames]


def frame_histograms(thumbnails: list[np.ndarray], bins: tuple[int, int, int] = (16, 4, 4)) -> np.ndarray:
    """(T, prod(bins)) HSV colour histograms of RGB uint8 thumbnails, each summing to 1."""
    histograms = []
    for small in thumbnails:
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256]).ravel()
        histograms.append(hist / max(hist.sum(), 1.0))
    return np.stack(histograms).astype(np.float32)


def cut_scores(frames: np.ndarray) -> np.ndarray:
    """(T-1,) change between frame i and i+1 in 0..1 for (T, H, W, 3) uint8 RGB frames.

    The larger of the colour-histogram distance (0.5 * L1 = 1 - intersection) and twice the mean
    absolute grey-level difference of the thumbnails, so a cut between two scenes of similar
    colours is still seen.
    """
    thumbnails = _thumbnails(frames)
    histograms = frame_histograms(thumbnails)
    colour = 0.5 * np.abs(np.diff(histograms, axis=0)).sum(axis=1)
    grey = np.stack([cv2.cvtColor(t, cv2.COLOR_RGB2GRAY) for t in thumbnails]).astype(np.float32) / 255.0
    pixels = 2.0 * np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))
    return np.maximum(colour, pixels)


def detect_cuts(frames: np.ndarray, threshold: float = 0.3, contrast: float = 3.0, neighbourhood: int = 8) -> list[int]:
    """Frame indices where a new shot starts.

    A cut between frames i-1 and i needs a histogram distance above `threshold` and `contrast`
    times the median distance of the surrounding `neighbourhood` frame pairs, so fast but
    continuous motion (which raises every neighbouring distance) is not mistaken for a cut.
    """
    scores = cut_scores(frames)
    cuts = []
    for i, score in enumerate(scores):
        lo, hi = max(0, i - neighbourhood), min(len(scores), i + neighbourhood + 1)
        around = np.delete(scores[lo:hi], i - lo)
        local = float(np.median(around)) if around.size else 0.0
        if score > threshold and score > contrast * local:
            cuts.append(i + 1)
    return cuts


def split_shots(num_frames: int, cuts: list[int]) -> list[Shot]:
    """Shots between the cuts, covering frames 0..num_frames-1."""
    bounds = [0] + sorted(c for c in cuts if 0 < c < num_frames) + [num_frames]
    return [Shot(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def window_starts(shot: Shot, num_frames: int, stride: int, min_frames: int) -> tuple[list[int], int]:
    """Start frames of the windows of a shot, every `stride` frames, and the window length T.

    T = num_frames when the shot holds that many frames; a shorter shot gives one window of its
    whole length when that is at least min_frames, and none otherwise ([], 0).
    """
    if shot.length >= num_frames:
        return list(range(shot.start, shot.end - num_frames + 1, stride)), num_frames
    if shot.length >= min_frames:
        return [shot.start], shot.length
    return [], 0


@dataclass(frozen=True)
class WindowThresholds:
    """Limits of a usable window; pixels are at REFERENCE_WIDTH (256) pixels wide.

    max_camera_shift: largest camera displacement of any frame from the start frame (measured
        start -> frame t, so slow drift counts in full).
    max_amplitude: a pixel moving further than this from its start is not swaying (gross motion
        or a flow failure).
    min_trend_share, min_trend_span: a pixel whose linear trend explains at least this share of its
        motion variance over a span of at least this many pixels drifts rather than oscillates.
    dilate: drifting regions grow by this many pixels (flow bleeds across their edges).
    oscillation_rms, min_oscillating_area: at least this share of the picture must oscillate with
        an RMS of oscillation_rms pixels or more, else nothing visibly sways.
    max_drift_area: an example (a crop) is rejected when drift covers more of it; a whole window
        only when drift covers more than window_drift_area, since crops may avoid the drift.
    mismatch_tolerance, max_mismatch: a start-frame pixel whose grey level (0..255) differs by more
        than mismatch_tolerance from where the flow says it went, in more than max_mismatch of the
        frames, is not tracked (a character walks over it, it is occluded, or the flow failed).
    """

    max_camera_shift: float = 1.0
    max_amplitude: float = 16.0
    min_trend_share: float = 0.75
    min_trend_span: float = 1.0
    dilate: float = 2.0
    oscillation_rms: float = 0.25
    min_oscillating_area: float = 0.02
    max_drift_area: float = 0.5
    window_drift_area: float = 0.8
    mismatch_tolerance: float = 24.0
    max_mismatch: float = 0.2


@dataclass(frozen=True)
class MotionStats:
    """Per-pixel summary of a window's trajectories, in pixels at the measured width.

    rms: (H, W) RMS of displacement about its temporal mean. trend_share: (H, W) share of that
    variance explained by a straight line in time. trend_span: (H, W) displacement of the fitted
    line over the window. peak: (H, W) largest |displacement| from the start frame.
    """

    rms: torch.Tensor
    trend_share: torch.Tensor
    trend_span: torch.Tensor
    peak: torch.Tensor


def motion_stats(trajectories: torch.Tensor) -> MotionStats:
    """Summarise (1, T, 2, H, W) or (T, 2, H, W) trajectories (pixels, frame 0 = start frame)."""
    traj = trajectories[0] if trajectories.ndim == 5 else trajectories
    traj = traj.double()
    steps = traj.shape[0]
    centred = traj - traj.mean(dim=0, keepdim=True)
    variance = centred.square().sum(dim=1).mean(dim=0)  # (H, W) px^2, x and y together
    t = torch.arange(steps, dtype=torch.float64, device=traj.device)
    t = (t - t.mean()).view(-1, 1, 1, 1)
    slope = (centred * t).sum(dim=0) / t.square().sum().clamp_min(1e-12)  # (2, H, W) px/frame
    trend_variance = slope.square().sum(dim=0) * t.square().mean()
    return MotionStats(
        rms=variance.sqrt().float(),
        trend_share=(trend_variance / variance.clamp_min(1e-12)).clamp(0, 1).float(),
        trend_span=(slope.norm(dim=0) * max(steps - 1, 1)).float(),
        peak=traj.norm(dim=1).amax(dim=0).float(),
    )


def tracking_mismatch(frames: np.ndarray, trajectories: torch.Tensor, tolerance: float, max_samples: int = 50) -> torch.Tensor:
    """(H, W) share of frames t >= 1 (up to max_samples of them, evenly spaced) where the grey level
    of frame t at p + F_t(p) differs from the start frame's at p by more than tolerance (0..255).

    frames: (T, H, W, 3) uint8 RGB, the window the (1, T, 2, H, W) trajectories were measured on.
    """
    traj = (trajectories[0] if trajectories.ndim == 5 else trajectories).numpy()
    steps, _, height, width = traj.shape
    grey = [cv2.GaussianBlur(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY), (3, 3), 0).astype(np.float32)
            for f in frames]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    picks = np.unique(np.linspace(1, steps - 1, min(max_samples, steps - 1)).round().astype(int))
    mismatched = np.zeros((height, width), np.float32)
    for t in picks:
        warped = cv2.remap(grey[t], xs + traj[t, 0], ys + traj[t, 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mismatched += np.abs(warped - grey[0]) > tolerance
    return torch.from_numpy(mismatched / max(len(picks), 1))


def oscillation_mask(
    stats: MotionStats, thresholds: WindowThresholds, width: int, mismatch: torch.Tensor | None = None
) -> torch.Tensor:
    """(H, W) bool: True where the pixel's motion looks like oscillation (or it keeps still);
    False on drifting, grossly moving or untracked (mismatch, from tracking_mismatch) pixels and
    `dilate` pixels around them."""
    scale = width / REFERENCE_WIDTH
    drifting = (stats.trend_share >= thresholds.min_trend_share) & (
        stats.trend_span >= thresholds.min_trend_span * scale
    )
    bad = drifting | (stats.peak > thresholds.max_amplitude * scale)
    if mismatch is not None:
        bad = bad | (mismatch > thresholds.max_mismatch)
    radius = round(thresholds.dilate * scale)
    if radius > 0:
        bad = F.max_pool2d(bad[None, None].float(), 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0
    return ~bad


def camera_shift(camera_motion: torch.Tensor | None, trajectories: torch.Tensor, height: int, width: int) -> float:
    """Largest camera displacement (pixels) of any frame from the start frame.

    camera_motion: (T, 2, 3) affine maps of start-frame pixel coordinates into frame t, or None
    to use the per-frame median displacement of all pixels instead (robust when most of the
    picture is still).
    """
    if camera_motion is not None:
        corners = torch.tensor([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]],
                               dtype=torch.float64)
        moved = torch.einsum("tij,cj->tci", camera_motion.double().cpu(), corners)
        return float((moved - corners[None, :, :2]).norm(dim=-1).amax())
    traj = trajectories[0] if trajectories.ndim == 5 else trajectories
    median = traj.flatten(2).median(dim=2).values  # (T, 2)
    return float(median.norm(dim=1).amax())


@dataclass
class WindowDecision:
    """Why a window (or one crop of it) was kept or rejected; pixels at REFERENCE_WIDTH, areas as
    shares of the picture (or crop)."""

    clip: str
    start: int
    num_frames: int
    kept: bool
    reason: str
    camera_shift_px: float = 0.0
    motion_px: float = 0.0
    drift_area: float = 0.0
    oscillating_area: float = 0.0
    crop: str = ""
    code: str = ""  # kept, camera, still, drift or short: the reason in one word for summaries

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class MotionVerdict:
    """judge_motion's answer: code (kept, still or drift), reason, and the figures behind it."""

    code: str
    reason: str
    motion_px: float
    drift_area: float
    oscillating_area: float


def judge_motion(
    stats: MotionStats, mask: torch.Tensor, thresholds: WindowThresholds, width: int, max_drift_area: float
) -> MotionVerdict:
    """Judge the pixels of stats and mask (a window or a crop of it) measured at `width` pixels.

    motion_px: 99th percentile of RMS motion over the oscillating pixels, at 256 wide.
    """
    scale = REFERENCE_WIDTH / width
    rms = stats.rms * scale
    drift = float((~mask).float().mean())
    swaying = mask & (rms >= thresholds.oscillation_rms)
    oscillating = float(swaying.float().mean())
    kept_rms = rms[mask].flatten().double()
    motion = float(torch.quantile(kept_rms[:: max(1, kept_rms.numel() // 200_000)], 0.99)) if kept_rms.numel() else 0.0
    if drift > max_drift_area:
        reason = (f"non-oscillatory motion (e.g. a character walking) covers {100 * drift:.0f}% of the picture "
                  f"(limit {100 * max_drift_area:.0f}%)")
        return MotionVerdict("drift", reason, motion, drift, oscillating)
    if oscillating < thresholds.min_oscillating_area:
        reason = (f"too little oscillation: {100 * oscillating:.1f}% of the picture sways by >= "
                  f"{thresholds.oscillation_rms} px RMS (need {100 * thresholds.min_oscillating_area:.0f}%)")
        return MotionVerdict("still", reason, motion, drift, oscillating)
    return MotionVerdict("kept", "kept", motion, drift, oscillating)


def judge_window(
    clip: str,
    start: int,
    trajectories: torch.Tensor,
    camera_motion: torch.Tensor | None,
    thresholds: WindowThresholds,
    frames: np.ndarray | None = None,
) -> tuple[WindowDecision, MotionStats, torch.Tensor]:
    """Decide on one window from its (1, T, 2, H, W) trajectories (and, when given, its (T, H, W, 3)
    uint8 frames, to find untracked pixels); also return the per-pixel stats and oscillation mask
    (H, W) so crops can be judged without recomputing them."""
    height, width = trajectories.shape[-2:]
    steps = int(trajectories.shape[-4])
    shift = camera_shift(camera_motion, trajectories, height, width) * REFERENCE_WIDTH / width
    stats = motion_stats(trajectories)
    mismatch = None if frames is None else tracking_mismatch(frames, trajectories, thresholds.mismatch_tolerance)
    mask = oscillation_mask(stats, thresholds, width, mismatch)
    if not math.isfinite(shift) or shift > thresholds.max_camera_shift:
        reason = f"camera moves {shift:.2f} px from the start frame (limit {thresholds.max_camera_shift} px)"
        return WindowDecision(clip, start, steps, False, reason, shift, code="camera"), stats, mask
    verdict = judge_motion(stats, mask, thresholds, width, thresholds.window_drift_area)
    decision = WindowDecision(clip, start, steps, verdict.code == "kept", verdict.reason, shift, verdict.motion_px,
                              verdict.drift_area, verdict.oscillating_area, code=verdict.code)
    return decision, stats, mask
