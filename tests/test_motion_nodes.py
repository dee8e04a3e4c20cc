"""Motion nodes on real tensors: video -> volume -> motion, normalization, and their error messages."""

import importlib
import math
import os
from pathlib import Path

import pytest
import torch

from synthetic_clips import two_region_clip


@pytest.fixture(scope="module")
def clip():
    return two_region_clip(num_frames=40)


@pytest.fixture(scope="module")
def spectral(pack):
    return importlib.import_module("comfyui_gid.gid_models.spectral")


def node(pack, name):
    return pack.NODE_CLASS_MAPPINGS[name]()


def test_every_motion_node_is_registered_with_tooltips(pack):
    for name in ("GIDMotionFromVideo", "GIDSpectralToMotion", "GIDNormalizeSpectralVolume",
                 "GIDDenormalizeSpectralVolume", "GIDPreviewSpectralVolume", "GIDPreviewMotion"):
        cls = pack.NODE_CLASS_MAPPINGS[name]
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[name].startswith("GID ")
        assert cls.CATEGORY in ("GID/motion", "GID/preview") and cls.DESCRIPTION
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS)
        for section in cls.INPUT_TYPES().values():
            for spec in section.values():
                assert spec[1]["tooltip"]


def test_motion_from_video_reports_progress_and_keeps_its_input(pack, spectral, clip, comfy_shim):
    frames = clip.frames.clone()
    (volume,) = node(pack, "GIDMotionFromVideo").extract(frames, 24.0, 8, "dis", False, 0)
    assert isinstance(volume, spectral.SpectralVolume)
    assert volume.coeffs.shape == (1, 8, 4, 64, 96) and volume.num_frames == 40 and volume.fps == 24.0
    assert not volume.normalized and torch.isfinite(volume.coeffs).all()
    torch.testing.assert_close(frames, clip.frames, atol=0, rtol=0)
    updates = importlib.import_module("comfy.utils").UPDATES
    assert updates[-1] == (40, 40) and len(updates) == 40
    # bin 3 of a 40-frame window at 24 fps: the 3 px region (x) shows its amplitude in pixels
    interior = clip.region_masks[0]
    amplitude = 2 * torch.complex(volume.coeffs[0, 3, 0], volume.coeffs[0, 3, 1]).abs()[interior].median()
    assert amplitude.item() == pytest.approx(3.0, rel=0.1)

    (short,) = node(pack, "GIDMotionFromVideo").extract(frames, 30.0, 16, "farneback", True, 32)
    assert short.num_frames == 32 and short.num_frequencies == 16


def test_motion_from_video_can_be_interrupted(pack, clip, comfy_shim):
    comfy_shim.INTERRUPT = True
    with pytest.raises(comfy_shim.InterruptProcessingException):
        node(pack, "GIDMotionFromVideo").extract(clip.frames, 30.0, 4, "dis", False, 0)


@pytest.mark.parametrize(
    "frames, message",
    [
        (torch.rand(1, 16, 16, 3), r"got 1 frame\(s\).*at least 32"),
        (torch.zeros(0, 16, 16, 3), "empty batch"),
        (torch.full((40, 16, 16, 3), float("nan")), "NaN"),
        (torch.rand(40, 16, 16), r"IMAGE batch \(B, H, W, C\)"),
    ],
)
def test_motion_from_video_refuses_bad_frames(pack, frames, message):
    with pytest.raises(ValueError, match=r"\[GIDMotionFromVideo\].*" + message):
        node(pack, "GIDMotionFromVideo").extract(frames, 30.0, 16, "dis", False, 150)


def test_spectral_to_motion_outputs_motion_and_fps(pack, spectral, generator):
    coeffs = torch.randn(2, 16, 4, 12, 20, generator=generator) * 0.5
    volume = spectral.SpectralVolume(coeffs, num_frames=150, fps=30.0)
    motion, fps = node(pack, "GIDSpectralToMotion").synthesize(volume, 48, 24.0, 1.0, 1.0)
    assert isinstance(motion, spectral.MotionTexture) and fps == 24.0 and isinstance(fps, float)
    assert motion.displacements.shape == (2, 48, 2, 12, 20) and motion.fps == 24.0
    expected = spectral.spectral_to_motion(volume, 48, 24.0).displacements
    torch.testing.assert_close(motion.displacements, expected)
    calm, _ = node(pack, "GIDSpectralToMotion").synthesize(volume, 48, 24.0, 0.0, 1.0)
    assert calm.displacements.abs().max() == 0  # gain 0: the picture stands still


def test_spectral_to_motion_refuses_motion_larger_than_memory(pack, spectral):
    """10,000 frames at a size whose motion needs 1.5x all of this machine's memory: a clear error
    naming the node and the fix, before anything that large is allocated."""
    from gid_models.memory import total_memory_bytes

    side = math.ceil(math.sqrt(1.5 * total_memory_bytes("cpu") / (16 * 10000)))  # 16 bytes per pixel and frame
    volume = spectral.SpectralVolume(torch.zeros(1, 2, 4, side, side), num_frames=150, fps=30.0)
    with pytest.raises(RuntimeError, match=rf"\[GIDSpectralToMotion\] ran out of memory \(motion of 10000 frames at "
                                           rf"{side}x{side} needs about .* GiB, more than the .* free now; .*fewer frames"):
        node(pack, "GIDSpectralToMotion").synthesize(volume, 10000, 30.0, 1.0, 1.0)


def test_normalize_round_trip_and_refusals(pack, spectral, generator, comfy_shim):
    coeffs = torch.randn(1, 16, 4, 10, 14, generator=generator)
    volume = spectral.SpectralVolume(coeffs, num_frames=150, fps=30.0)
    normalize_node = node(pack, "GIDNormalizeSpectralVolume")
    # the shipped model's statistics (gid_models/weights/, on the gid folder's search path) are listed when they ship
    shipped = Path(spectral.__file__).parent / "weights" / "normalization.safetensors"
    bundled = ["normalization.safetensors"] if shipped.is_file() else []
    assert normalize_node.INPUT_TYPES()["required"]["statistics"][0] == bundled + ["fit to this volume"]
    (normalized,) = normalize_node.normalize(volume, "fit to this volume")
    assert normalized.normalized and normalized.normalization.num_frequencies == 16
    (restored,) = node(pack, "GIDDenormalizeSpectralVolume").denormalize(normalized)
    torch.testing.assert_close(restored.coeffs, coeffs, atol=1e-5, rtol=1e-5)
    assert not restored.normalized

    with pytest.raises(ValueError, match=r"\[GIDSpectralToMotion\].*normalized.*GIDDenormalizeSpectralVolume"):
        node(pack, "GIDSpectralToMotion").synthesize(normalized, 10, 30.0, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"\[GIDDenormalizeSpectralVolume\].*already in pixels"):
        node(pack, "GIDDenormalizeSpectralVolume").denormalize(volume)
    with pytest.raises(ValueError, match=r"\[GIDNormalizeSpectralVolume\].*normalized one"):
        normalize_node.normalize(normalized, "fit to this volume")

    folder_paths = importlib.import_module("folder_paths")
    folder = os.path.join(folder_paths.models_dir, "gid")
    os.makedirs(folder, exist_ok=True)
    normalization = importlib.import_module("comfyui_gid.gid_models.normalization")
    normalization.FrequencyNormalization(torch.linspace(2.0, 0.1, 16)).save(os.path.join(folder, "normalization_test.safetensors"))
    choices = normalize_node.INPUT_TYPES()["required"]["statistics"][0]
    assert choices == sorted(bundled + ["normalization_test.safetensors"]) + ["fit to this volume"]
    (from_file,) = normalize_node.normalize(volume, "normalization_test.safetensors")
    torch.testing.assert_close(from_file.normalization.scales, torch.linspace(2.0, 0.1, 16))
    small = spectral.SpectralVolume(coeffs[:, :8], num_frames=150, fps=30.0)
    with pytest.raises(ValueError, match=r"\[GIDNormalizeSpectralVolume\].*K=16.*K=8"):
        normalize_node.normalize(small, "normalization_test.safetensors")
