"""Spectral volumes and motion textures, and the maths between them.

A *motion texture* holds, for every pixel p of a picture, its displacement F_t(p) in pixels at
each of T frames. A *spectral volume* is the temporal Fourier transform of those trajectories,
truncated to the first K frequencies (paper notes, sections 1 and 2).

Conventions (ours):
- Coefficients use the forward-normalised DFT, ``c_k = (1/T) sum_t F_t exp(-2 pi i k t / T)``,
  so they are in pixels whatever T is: a sinusoid of amplitude A at bin k has |c_k| = A / 2.
- The four channels of a slice are (Re x, Im x, Re y, Im y).
- Frame t = 0 is the start frame. Bin k has frequency k * fps / T Hz.
- Times passed to the synthesis are in frames of the source trajectory (fractional allowed);
  the motion is periodic with period T frames, so frame T equals frame 0.

The frequency-adaptive normalization of a volume's coefficients lives in normalization.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .memory import require_memory

if TYPE_CHECKING:  # only an annotation here: normalization.py imports this module
    from .normalization import FrequencyNormalization

DEFAULT_NUM_FREQUENCIES = 16
DEFAULT_NUM_FRAMES = 150
DEFAULT_FPS = 30.0


class MotionError(ValueError):
    """Raised for motion data that cannot be used as given; the message says how to fix it."""


def _check_finite(tensor: torch.Tensor, what: str) -> None:
    if not torch.isfinite(tensor).all():
        raise MotionError(f"{what} contains NaN or infinite values; check the input that produced it.")


@dataclass(frozen=True)
class SpectralVolume:
    """First K temporal Fourier coefficients of per-pixel trajectories.

    coeffs: (B, K, 4, H, W) float32; channels (Re x, Im x, Re y, Im y) in pixels at H x W, or
        normalized values when ``normalization`` is set.
    num_frames: T, the trajectory length (frames) the coefficients describe.
    fps: frame rate (frames/s) of those T frames, so bin k is k * fps / T Hz.
    normalization: the statistics the coefficients were normalized with, or None for pixels.
    """

    coeffs: torch.Tensor
    num_frames: int = DEFAULT_NUM_FRAMES
    fps: float = DEFAULT_FPS
    normalization: FrequencyNormalization | None = None

    def __post_init__(self) -> None:
        if self.coeffs.ndim != 5 or self.coeffs.shape[2] != 4:
            raise MotionError(
                f"spectral volume coefficients must be (B, K, 4, H, W), got {tuple(self.coeffs.shape)}."
            )
        if self.num_frames < 2 * (self.coeffs.shape[1] - 1) + 1:
            raise MotionError(
                f"a volume with K={self.coeffs.shape[1]} frequencies needs trajectories of at least "
                f"{2 * self.coeffs.shape[1] - 1} frames, got T={self.num_frames}."
            )
        if not self.fps > 0:
            raise MotionError(f"fps must be positive, got {self.fps}.")

    @property
    def batch_size(self) -> int:
        return int(self.coeffs.shape[0])

    @property
    def num_frequencies(self) -> int:
        return int(self.coeffs.shape[1])

    @property
    def height(self) -> int:
        return int(self.coeffs.shape[-2])

    @property
    def width(self) -> int:
        return int(self.coeffs.shape[-1])

    @property
    def normalized(self) -> bool:
        return self.normalization is not None

    def frequencies_hz(self) -> torch.Tensor:
        """(K,) frequency of each bin in Hz."""
        return torch.arange(self.num_frequencies, dtype=torch.float32) * (self.fps / self.num_frames)

    def complex_modes(self) -> torch.Tensor:
        """(B, K, 2, H, W) complex64: per bin, the complex x and y coefficients (pixels)."""
        self.require_physical("complex_modes")
        c = self.coeffs.float()
        return torch.complex(c[:, :, 0::2], c[:, :, 1::2])

    def require_physical(self, consumer: str) -> None:
        if self.normalized:
            raise MotionError(
                f"{consumer} needs a spectral volume in pixels but got a normalized one; "
                "pass it through GIDDenormalizeSpectralVolume first."
            )

    def to(self, device: torch.device | str) -> "SpectralVolume":
        return replace(self, coeffs=self.coeffs.to(device))

    def select(self, index: int) -> "SpectralVolume":
        return replace(self, coeffs=self.coeffs[index : index + 1])

    def resized(self, height: int, width: int) -> "SpectralVolume":
        """Resample to height x width pixels; x and y coefficients scale with the resolution."""
        if (height, width) == (self.height, self.width):
            return self
        b, k = self.coeffs.shape[:2]
        if height < 1 or width < 1:
            raise MotionError(f"cannot resize a spectral volume to {width}x{height} pixels; sizes must be >= 1.")
        # the interpolated copy and its rescaled result exist at once (float32)
        require_memory(2 * 4 * b * k * 4 * height * width, self.coeffs.device,
                       f"a spectral volume of {b}x{k} frequencies at {width}x{height}",
                       "use a smaller picture (lower --max-side, or scale the image down first).")
        flat = self.coeffs.reshape(b, k * 4, self.height, self.width).float()
        out = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        out = out.reshape(b, k, 4, height, width)
        scale = torch.tensor(
            [width / self.width] * 2 + [height / self.height] * 2, dtype=out.dtype, device=out.device
        )
        if self.normalized:
            # sign(c S) sqrt(|c S| / s) = sqrt(c) * S' for c > 0, so normalized values scale by sqrt.
            scale = scale.sqrt()
        return replace(self, coeffs=out * scale.view(1, 1, 4, 1, 1))


@dataclass(frozen=True)
class MotionTexture:
    """Per-pixel displacements over time.

    displacements: (B, T, 2, H, W) float32, (dx, dy) in pixels at H x W, from the start frame.
    fps: frames per second of the T frames.
    """

    displacements: torch.Tensor
    fps: float = DEFAULT_FPS

    def __post_init__(self) -> None:
        if self.displacements.ndim != 5 or self.displacements.shape[2] != 2:
            raise MotionError(
                f"motion displacements must be (B, T, 2, H, W), got {tuple(self.displacements.shape)}."
            )
        if self.displacements.shape[1] < 1:
            raise MotionError("motion texture has no frames.")
        if not self.fps > 0:
            raise MotionError(f"fps must be positive, got {self.fps}.")

    @property
    def batch_size(self) -> int:
        return int(self.displacements.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.displacements.shape[1])

    @property
    def height(self) -> int:
        return int(self.displacements.shape[-2])

    @property
    def width(self) -> int:
        return int(self.displacements.shape[-1])

    def to(self, device: torch.device | str) -> "MotionTexture":
        return replace(self, displacements=self.displacements.to(device))

    def resized(self, height: int, width: int) -> "MotionTexture":
        """Resample to height x width pixels; dx scales by the width ratio, dy by the height ratio."""
        if (height, width) == (self.height, self.width):
            return self
        b, t = self.displacements.shape[:2]
        flat = self.displacements.reshape(b * t, 2, self.height, self.width).float()
        out = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        scale = torch.tensor([width / self.width, height / self.height], dtype=out.dtype, device=out.device)
        out = out * scale.view(1, 2, 1, 1)
        return replace(self, displacements=out.reshape(b, t, 2, height, width))


def trajectories_to_spectral(
    displacements: torch.Tensor,
    fps: float = DEFAULT_FPS,
    num_frequencies: int = DEFAULT_NUM_FREQUENCIES,
) -> SpectralVolume:
    """Fourier transform of trajectories, keeping the first K bins.

    displacements: (B, T, 2, H, W) pixels with T >= 2K - 1 frames (frame 0 is the start frame).
    Returns a SpectralVolume of (B, K, 4, H, W) coefficients in pixels.
    """
    if displacements.ndim != 5 or displacements.shape[2] != 2:
        raise MotionError(f"trajectories must be (B, T, 2, H, W), got {tuple(displacements.shape)}.")
    num_frames = int(displacements.shape[1])
    if num_frames < 2 * num_frequencies - 1:
        raise MotionError(
            f"{num_frames} frames are too few for K={num_frequencies} frequencies; "
            f"use a clip of at least {2 * num_frequencies} frames or lower K."
        )
    _check_finite(displacements, "trajectories")
    spectrum = torch.fft.rfft(displacements.float(), dim=1, norm="forward")[:, :num_frequencies]
    coeffs = torch.stack(
        [spectrum[:, :, 0].real, spectrum[:, :, 0].imag, spectrum[:, :, 1].real, spectrum[:, :, 1].imag],
        dim=2,
    )
    return SpectralVolume(coeffs=coeffs.contiguous(), num_frames=num_frames, fps=float(fps))


def frame_times(
    num_output_frames: int, volume_fps: float, output_fps: float | None = None, speed: float = 1.0
) -> torch.Tensor:
    """(T',) times in source frames for output frames 0..T'-1 shown at output_fps.

    speed < 1 gives slow motion (fractional source times), speed > 1 fast motion.
    """
    if num_output_frames < 1:
        raise MotionError(f"need at least one output frame, got {num_output_frames}.")
    output_fps = volume_fps if output_fps is None else output_fps
    if not output_fps > 0 or not speed > 0:
        raise MotionError(f"output fps and speed must be positive, got {output_fps} and {speed}.")
    step = speed * volume_fps / output_fps
    return torch.arange(num_output_frames, dtype=torch.float64) * step


def spectral_to_trajectories(
    volume: SpectralVolume, times: torch.Tensor | None = None, gain: float = 1.0
) -> torch.Tensor:
    """Evaluate the truncated Fourier series at the given times.

    times: (T',) in source frames (fractional allowed); default 0..T-1.
    gain: multiplies the whole motion, bin 0 included, so a volume whose frame 0 is at rest (every
        sampled one, and every one measured from video) keeps frame 0 at rest; 0 gives no motion.
    Returns (B, T', 2, H, W) displacements in pixels.
    """
    volume.require_physical("spectral_to_trajectories")
    if times is None:
        times = torch.arange(volume.num_frames, dtype=torch.float64)
    output_bytes = 4 * volume.batch_size * len(times) * 2 * volume.height * volume.width
    require_memory(2 * output_bytes, volume.coeffs.device, f"motion of {len(times)} frames at "
                   f"{volume.width}x{volume.height}", "make fewer frames or lower the resolution.")
    coeffs = volume.coeffs.float()
    k = torch.arange(volume.num_frequencies, dtype=torch.float64)
    angle = 2.0 * math.pi * torch.outer(times.double() % volume.num_frames, k) / volume.num_frames
    # Hermitian completion: bins 1..K-1 appear twice (k and T-k), bin 0 once.
    weight = torch.full((volume.num_frequencies,), 2.0 * gain, dtype=torch.float64)
    weight[0] = gain
    cos = (angle.cos() * weight).to(coeffs)
    sin = (angle.sin() * weight).to(coeffs)
    basis = torch.stack([cos, -sin], dim=-1)  # (T', K, 2): multiplies (Re, Im)
    real_imag = coeffs.view(*coeffs.shape[:2], 2, 2, *coeffs.shape[-2:])  # (B, K, xy, re/im, H, W)
    return torch.einsum("tkr,bkcrhw->btchw", basis, real_imag).contiguous()


def anchor_start_frame(coeffs: torch.Tensor) -> torch.Tensor:
    """coeffs (B, K, 4, H, W) px with bin 0 set to c_0 = -2 sum_{k>=1} Re c_k per axis (Im c_0 = 0),
    so the displacement at t = 0 is zero and frame 0 is the picture (volumes from video start at
    rest already, up to the truncation to K bins)."""
    out = coeffs.clone()
    out[:, 0] = 0.0
    out[:, 0, 0::2] = -2.0 * coeffs[:, 1:, 0::2].sum(dim=1)
    return out


def spectral_to_motion(
    volume: SpectralVolume,
    num_output_frames: int | None = None,
    output_fps: float | None = None,
    speed: float = 1.0,
    gain: float = 1.0,
) -> MotionTexture:
    """Motion texture of num_output_frames frames (default T) at output_fps (default the volume's)."""
    num_output_frames = volume.num_frames if num_output_frames is None else num_output_frames
    output_fps = volume.fps if output_fps is None else output_fps
    times = frame_times(num_output_frames, volume.fps, output_fps, speed)
    return MotionTexture(spectral_to_trajectories(volume, times, gain), fps=float(output_fps))


def power_spectrum(volume: SpectralVolume) -> torch.Tensor:
    """(B, K) P(j) = mean over pixels of |S_j|^2 (x and y together), px^2."""
    volume.require_physical("power_spectrum")
    return volume.coeffs.double().square().sum(dim=2).mean(dim=(-2, -1)).float()
