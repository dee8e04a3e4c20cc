"""Spectral volume files: one volume (pixels or normalized) with its T and fps, as safetensors."""

from __future__ import annotations

import os
from pathlib import Path

from .normalization import FrequencyNormalization
from .spectral import MotionError, SpectralVolume, _check_finite


def save_volume(volume: SpectralVolume, path: str) -> None:
    """Write a spectral volume (pixels or normalized, with its T and fps) as safetensors."""
    from safetensors.torch import save_file

    tensors = {"coeffs": volume.coeffs.detach().float().cpu().contiguous()}
    if volume.normalization is not None:
        tensors["normalization_scales"] = volume.normalization.scales.float().cpu().contiguous()
    metadata = {"format": "gid-spectral-volume", "num_frames": str(volume.num_frames), "fps": repr(volume.fps)}
    # written under a temporary name and renamed, so an interrupt never leaves half a file
    target = Path(path)
    temp = target.with_name(f".{target.name}.partial")
    try:
        save_file(tensors, str(temp), metadata=metadata)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def load_volume(path: str) -> SpectralVolume:
    """Read a file written by save_volume; refuses other files with a clear message."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            keys = set(handle.keys())
            if metadata.get("format") != "gid-spectral-volume" or "coeffs" not in keys:
                raise MotionError(f"{path} is not a GID spectral volume file (written by `gid extract`).")
            coeffs = handle.get_tensor("coeffs").float()
            scales = handle.get_tensor("normalization_scales").float() if "normalization_scales" in keys else None
    except MotionError:
        raise
    except Exception as error:  # safetensors raises several types for damaged files
        raise MotionError(f"cannot read spectral volume {path}: {error}") from error
    _check_finite(coeffs, f"spectral volume {path}")
    normalization = FrequencyNormalization(scales) if scales is not None else None
    return SpectralVolume(
        coeffs, num_frames=int(metadata["num_frames"]), fps=float(metadata["fps"]), normalization=normalization
    )
