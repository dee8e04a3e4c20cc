"""Hostile input to the node classes as ComfyUI runs them (issue 18).

Every case asserts its outcome: an error that names the node, the input and the fix, raised
before any slow step (huge pictures and clips are zero-stride views that would take gigabytes
once converted, so a check that came late would run out of memory or time), or a correct
result. Inputs are never modified and every case runs under a time limit.
"""

from __future__ import annotations

import importlib
import json
import os

import pytest
import torch

CASE_LIMIT_S = 60

pytestmark = pytest.mark.usefixtures("case_time_limit")


@pytest.fixture
def models(pack_models):
    return pack_models


@pytest.fixture
def tiny_model(pack_models):
    normalization = importlib.import_module("comfyui_gid.gid_models.normalization")
    torch.manual_seed(0)
    stats = normalization.FrequencyNormalization(torch.tensor([0.5, 1.0, 0.5, 0.25]))
    return pack_models.networks.MotionModel.create("tiny", num_frequencies=4, sample_size=(16, 16),
                                                   normalization=stats).eval()


def node(pack, name):
    return pack.NODE_CLASS_MAPPINGS[name]()


def picture(height=20, width=24, batch=1):
    return torch.rand(batch, height, width, 3, generator=torch.Generator().manual_seed(1))


def huge_image(batch, height, width):
    """A (batch, height, width, 3) IMAGE that costs no memory until someone converts it."""
    return torch.full((1, 1, 1, 3), 0.5).expand(batch, height, width, 3)


# --- GIDSampleSpectralVolume ----------------------------------------------------------------

def sample(pack, model, image, **overrides):
    args = dict(seed=3, steps=2, cfg=1.75, num_frames=30, fps=30.0)
    args.update(overrides)
    return node(pack, "GIDSampleSpectralVolume").sample(image, model, **args)


@pytest.mark.parametrize("image, overrides, pattern", [
    (torch.rand(1, 1, 1, 3), {}, r"image is 1x1 pixels.*at least 16"),
    (torch.rand(1, 8, 300, 3), {}, r"image is 300x8 pixels"),
    (None, {"seed": 2**70}, r"seed must be between 0 and .*2\*\*64"),
    (None, {"fps": float("inf")}, r"fps must be a finite number"),
    (None, {"steps": 0}, r"steps must be between 1"),
    (None, {"num_frames": 10**9}, r"num_frames must be between"),
], ids=["1x1", "8 px high", "seed 70 bits", "fps inf", "steps 0", "num_frames 1e9"])
def test_sampling_refuses_bad_settings_by_name(pack, tiny_model, image, overrides, pattern):
    image = picture() if image is None else image
    with pytest.raises(ValueError, match=r"^\[GIDSampleSpectralVolume\] " + pattern):
        sample(pack, tiny_model, image, **{"steps": 1000, **overrides})


def test_a_huge_picture_is_refused_with_the_estimate_before_anything_is_allocated(pack, tiny_model):
    """8192x8192: three full-size float32 volumes would be 51 GiB; refused before conversion (a
    converted copy alone would be 805 MB) and before the first of 1000 steps."""
    with pytest.raises(RuntimeError, match=r"^\[GIDSampleSpectralVolume\] ran out of memory \(the spectral volumes "
                                           r"of 1 picture\(s\) of 8192x8192 .*GiB.*scale the image down"):
        sample(pack, tiny_model, huge_image(1, 8192, 8192), steps=1000)


def test_uint8_images_are_converted_not_turned_white(pack, tiny_model):
    as_bytes = (picture() * 255).round().to(torch.uint8)
    before = as_bytes.clone()
    from_bytes = sample(pack, tiny_model, as_bytes)[0]
    from_floats = sample(pack, tiny_model, as_bytes.float() / 255.0)[0]
    assert torch.equal(as_bytes, before)
    assert torch.allclose(from_bytes.coeffs, from_floats.coeffs)
    with pytest.raises(ValueError, match=r"^\[GIDSampleSpectralVolume\] image is a torch.int32 tensor"):
        sample(pack, tiny_model, as_bytes.to(torch.int32))


# --- GIDMotionFromVideo ------------------------------------------------------------------------

def extract(pack, frames, **overrides):
    args = dict(fps=24.0, num_frequencies=4, method="dis", remove_camera_motion=False, max_frames=0)
    args.update(overrides)
    return node(pack, "GIDMotionFromVideo").extract(frames, **args)


def test_frames_too_small_for_optical_flow_are_refused(pack):
    with pytest.raises(ValueError, match=r"^\[GIDMotionFromVideo\] frames is 8x8 pixels.*at least 16"):
        extract(pack, torch.rand(12, 8, 8, 3))


def test_a_clip_too_big_for_memory_is_refused_before_conversion(pack):
    """300 frames of 4K: refused from the shape alone (converting them would take 30 GB)."""
    with pytest.raises(RuntimeError, match=r"^\[GIDMotionFromVideo\] ran out of memory \(the motion of 300 frames "
                                           r"of 3840x2160 .*GiB.*lower max_frames"):
        extract(pack, huge_image(300, 2160, 3840))


@pytest.mark.parametrize("fps", [float("nan"), float("inf"), 0.0])
def test_extraction_needs_a_usable_frame_rate(pack, fps):
    with pytest.raises(ValueError, match=r"^\[GIDMotionFromVideo\] fps must be"):
        extract(pack, torch.rand(12, 16, 16, 3), fps=fps)


# --- GIDSpectralToMotion -----------------------------------------------------------------------

@pytest.mark.parametrize("overrides, pattern", [
    ({"fps": float("inf")}, "fps must be a finite number"),
    ({"gain": float("nan")}, "gain must be a finite number"),
    ({"frames": 0}, "frames must be between 1"),
    ({"speed": 0.0}, "speed must be above 0"),
])
def test_motion_synthesis_names_the_bad_setting(pack, models, overrides, pattern):
    volume = models.spectral.SpectralVolume(torch.randn(1, 4, 4, 8, 8), num_frames=30, fps=30.0)
    args = dict(frames=12, fps=24.0, gain=1.0, speed=1.0)
    args.update(overrides)
    with pytest.raises(ValueError, match=r"^\[GIDSpectralToMotion\] " + pattern):
        node(pack, "GIDSpectralToMotion").synthesize(volume, **args)


# --- GIDModalSimulation ------------------------------------------------------------------------

def simulate(pack, models, drags, **overrides):
    coeffs = torch.randn(1, 5, 4, 12, 16, generator=torch.Generator().manual_seed(0))
    volume = models.spectral.SpectralVolume(coeffs, num_frames=150, fps=30.0)
    args = dict(damping=0.05, stiffness_scale=1.0, mass_scale=1.0, frames=12, fps=24.0, hold_frames=4)
    args.update(overrides)
    return node(pack, "GIDModalSimulation").simulate(volume, drags, **args)


ONE_DRAG = json.dumps({"version": 1, "drags": [{"x": 0.5, "y": 0.5, "dx": 0.1, "dy": 0.0}]})


@pytest.mark.parametrize("overrides, pattern", [
    ({"damping": 5.0}, r"damping must be at least 0 and at most 1"),
    ({"damping": float("nan")}, r"damping must be a finite number"),
    ({"hold_frames": -5}, r"hold_frames must be at least 0"),
    ({"fps": float("inf")}, r"fps must be a finite number"),
    ({"frames": 10**7}, r"frames must be between 1 and 10000"),
    ({"mass_scale": 0.0}, r"mass_scale must be above 0"),
])
def test_simulation_blames_the_right_setting(pack, models, overrides, pattern):
    with pytest.raises(ValueError, match=r"^\[GIDModalSimulation\] " + pattern):
        simulate(pack, models, ONE_DRAG, **overrides)


def _drag(**fields):
    return {"x": 0.5, "y": 0.5, "dx": 0.1, "dy": 0.0, **fields}


@pytest.mark.parametrize("text, pattern", [
    (json.dumps({"version": 1, "drags": [_drag()] * 200_000}), r"characters long.*at most 64 drags"),
    (json.dumps({"version": 1, "drags": [_drag()] * 65}), r"holds 65 drags; at most 64"),
    ('{"version": 1, "drags": ' + "[" * 20_000 + "]" * 20_000 + "}", r"nested too deeply"),
    ('{"version": 1, "drags": [{"x": 1' + "0" * 5000 + ', "y": 0.5, "dx": 0.1, "dy": 0}]}', r"x=inf.*finite"),
    (json.dumps({"version": 1, "drags": [_drag(dx=1e300)]}), r"picture widths and heights"),
    (json.dumps({"version": 1, "drags": [_drag(hold=1e12)]}), r"frames must be at most"),
    ('{"version": 1, "drags": [{"x": NaN, "y": 0.5, "dx": 0.1, "dy": 0}]}', r"finite number"),
], ids=["200k drags", "65 drags", "deep nesting", "huge integer", "huge vector", "huge hold", "NaN"])
def test_drags_json_is_bounded(pack, models, text, pattern):
    with pytest.raises(ValueError, match=r"^\[GIDModalSimulation\] .*" + pattern):
        simulate(pack, models, text)


# --- GIDRender and GIDLoadRenderer ------------------------------------------------------------

def test_render_refuses_motion_that_leaves_the_picture(pack, models):
    motion = models.spectral.MotionTexture(torch.full((1, 3, 2, 12, 16), 1e30), fps=24.0)
    with pytest.raises(ValueError, match=r"^\[GIDRender\] render_motion: frame 0 came out"):
        node(pack, "GIDRender").render(picture(24, 32), motion)


def test_render_converts_uint8_pictures(pack, models):
    motion = models.spectral.MotionTexture(torch.randn(1, 3, 2, 12, 16, generator=torch.Generator().manual_seed(2)),
                                           fps=24.0)
    as_bytes = (picture(24, 32) * 255).round().to(torch.uint8)
    frames = node(pack, "GIDRender").render(as_bytes, motion)[0]
    expected = node(pack, "GIDRender").render(as_bytes.float() / 255.0, motion)[0]
    assert torch.equal(frames, expected) and 0.1 < float(frames.mean()) < 0.9


@pytest.fixture
def gid_folder(comfy_shim):
    folder_paths = importlib.import_module("folder_paths")
    path = os.path.join(folder_paths.models_dir, "gid")
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        os.remove(os.path.join(path, name))
    return path


def test_renderer_files_get_the_motion_models_checks(pack, models, gid_folder):
    from safetensors.torch import save_file

    renderer = models.rendering.NeuralRenderer(channels=(4,))
    state = {k: torch.full_like(v, float("nan")) for k, v in renderer.state_dict().items()}
    save_file(state, os.path.join(gid_folder, "renderer_nan.safetensors"),
              metadata={"format": "gid-neural-renderer", "config": '{"channels": [4]}'})
    with open(os.path.join(gid_folder, "renderer_pickle.safetensors"), "wb") as handle:
        handle.write(b"\x80\x04\x95" + bytes(64))
    loader = node(pack, "GIDLoadRenderer")
    with pytest.raises(ValueError, match=r"^\[GIDLoadRenderer\] .*NaN or infinite values"):
        loader.load("renderer_nan.safetensors")
    with pytest.raises(ValueError, match=r"^\[GIDLoadRenderer\] .*pickled"):
        loader.load("renderer_pickle.safetensors")


def test_model_files_are_only_taken_from_the_model_folders(pack, gid_folder):
    adapter = importlib.import_module("comfyui_gid.nodes._comfy")
    folder_paths = importlib.import_module("folder_paths")
    outside = os.path.join(folder_paths.models_dir, "secret.safetensors")
    with open(outside, "wb") as handle:
        handle.write(b"{}")
    inside = os.path.join(gid_folder, "renderer_ok.safetensors")
    with open(inside, "wb") as handle:
        handle.write(b"{}")
    assert adapter.model_file_path("renderer_ok.safetensors") == adapter.Path(inside)
    for name in ("../secret.safetensors", outside, "../../../../etc/passwd", "sub/../../secret.safetensors"):
        with pytest.raises(FileNotFoundError, match="not found in the gid model folders"):
            adapter.model_file_path(name)
