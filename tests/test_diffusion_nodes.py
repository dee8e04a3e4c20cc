"""GIDLoadMotionModel, GIDLoopGuidance and GIDSampleSpectralVolume as ComfyUI runs them."""

from __future__ import annotations

import importlib
import os

import pytest
import torch

K = 4  # frequencies of the conftest's tiny_model
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models_package(pack_models):
    """The conftest's tiny_model is built from the pack's classes, as the nodes expect."""
    return pack_models


@pytest.fixture
def networks(pack):
    return importlib.import_module("comfyui_gid.gid_models.networks")


@pytest.fixture
def gid_folder(comfy_shim):
    """ComfyUI/models/gid of the shim, created empty for the test."""
    folder_paths = importlib.import_module("folder_paths")
    path = os.path.join(folder_paths.models_dir, "gid")
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        os.remove(os.path.join(path, name))
    return path


def picture(height=20, width=24, batch=1):
    return torch.rand(batch, height, width, 3, generator=torch.Generator().manual_seed(1))


def sample(pack, model, image, **kwargs):
    node = pack.NODE_CLASS_MAPPINGS["GIDSampleSpectralVolume"]()
    args = dict(seed=3, steps=3, cfg=1.75, num_frames=30, fps=30.0)
    args.update(kwargs)
    return node.sample(image, model, **args)


def test_loader_lists_and_loads_user_files(pack, tiny_model, gid_folder):
    tiny_model.save_file(os.path.join(gid_folder, "gid_motion_tiny.safetensors"))
    loader = pack.NODE_CLASS_MAPPINGS["GIDLoadMotionModel"]
    choices = loader.INPUT_TYPES()["required"]["model_name"][0]
    assert choices[0] == "bundled" and "gid_motion_tiny.safetensors" in choices
    (model,) = loader().load("gid_motion_tiny.safetensors")
    assert model.num_frequencies == K


def test_loader_refuses_pickles_with_the_node_name(pack, tiny_model, gid_folder):
    torch.save(tiny_model.state_dict(), os.path.join(gid_folder, "gid_motion_pickled.safetensors"))
    with pytest.raises(ValueError, match=r"\[GIDLoadMotionModel\].*pickled"):
        pack.NODE_CLASS_MAPPINGS["GIDLoadMotionModel"]().load("gid_motion_pickled.safetensors")
    with pytest.raises(ValueError, match=r"\[GIDLoadMotionModel\].*not found"):
        pack.NODE_CLASS_MAPPINGS["GIDLoadMotionModel"]().load("gid_motion_missing.safetensors")


@pytest.fixture
def weights_dir(networks, tmp_path, monkeypatch):
    """An empty stand-in for gid_models/weights/, where the bundled motion model ships."""
    monkeypatch.setattr(networks.motion_model, "BUNDLED_DIR", tmp_path)
    return tmp_path


def test_loader_loads_the_bundled_model_folder(pack, tiny_model, weights_dir):
    tiny_model.save(weights_dir)
    (model,) = pack.NODE_CLASS_MAPPINGS["GIDLoadMotionModel"]().load("bundled")
    assert model.num_frequencies == K and model.sample_size == (16, 16) and not model.training


def test_loader_without_bundled_weights_says_what_to_do(pack, weights_dir):
    with pytest.raises(ValueError, match=r"\[GIDLoadMotionModel\] the bundled motion model is missing.*gid_motion_"):
        pack.NODE_CLASS_MAPPINGS["GIDLoadMotionModel"]().load("bundled")


def test_shipped_model_loads_or_says_it_is_missing(pack, networks):
    """The real gid_models/weights/, with or without the shipped model."""
    loader = pack.NODE_CLASS_MAPPINGS["GIDLoadMotionModel"]()
    if networks.MotionModel.bundled_available():
        (model,) = loader.load("bundled")
        assert model.num_frequencies > 0 and all(side % model.downsample_factor == 0 for side in model.sample_size)
    else:
        with pytest.raises(ValueError, match=r"\[GIDLoadMotionModel\] the bundled motion model is missing"):
            loader.load("bundled")


def test_sample_odd_size_with_progress_and_untouched_input(pack, tiny_model, comfy_shim):
    utils = importlib.import_module("comfy.utils")
    image = picture()
    before = image.clone()
    volume, normalized = sample(pack, tiny_model, image)
    assert volume.coeffs.shape == (1, K, 4, 20, 24) and not volume.normalized
    assert normalized.normalized and normalized.coeffs.shape == volume.coeffs.shape
    assert volume.num_frames == 30 and torch.isfinite(volume.coeffs).all()
    assert torch.equal(image, before)
    assert utils.UPDATES[-1] == (3, 3)
    assert comfy_shim.LOADED and comfy_shim.LOADED[-1].model.network is tiny_model  # through model management


def test_seed_decides_the_motion(pack, tiny_model):
    first = sample(pack, tiny_model, picture(), seed=11)[0].coeffs
    assert torch.equal(first, sample(pack, tiny_model, picture(), seed=11)[0].coeffs)
    assert not torch.equal(first, sample(pack, tiny_model, picture(), seed=12)[0].coeffs)


def test_guidance_and_mask_inputs(pack, tiny_model):
    (guidance,) = pack.NODE_CLASS_MAPPINGS["GIDLoopGuidance"]().build(200.0, 2, True)
    assert (guidance.u, guidance.recurrence, guidance.through_denoiser) == (200.0, 2, True)
    mask = torch.zeros(1, 20, 24)
    mask[:, 5:15, 6:18] = 1
    volume = sample(pack, tiny_model, picture(), steps=2, guidance=guidance, mask=mask)[0]
    assert volume.coeffs[..., mask[0] == 0].abs().max() == 0
    assert volume.coeffs[..., 8:12, 10:14].abs().mean() > 0


def test_loop_guidance_with_a_model_loaded_under_inference_mode(pack, tiny_model, gid_folder):
    """ComfyUI runs every node (the loader included) under torch.inference_mode(); guidance still
    works, and the cached model keeps its very parameter objects (the sampler does not rewrite it)."""
    tiny_model.save_file(os.path.join(gid_folder, "gid_motion_tiny.safetensors"))
    (guidance,) = pack.NODE_CLASS_MAPPINGS["GIDLoopGuidance"]().build(200.0, 1, True)
    with torch.inference_mode():
        (model,) = pack.NODE_CLASS_MAPPINGS["GIDLoadMotionModel"]().load("gid_motion_tiny.safetensors")
        parameters = list(model.parameters())
        before = [p.clone() for p in parameters]
        guided = sample(pack, model, picture(), steps=2, guidance=guidance)[0]
        plain = sample(pack, model, picture(), steps=2)[0]
    assert all(a is b for a, b in zip(parameters, model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert torch.isfinite(guided.coeffs).all() and not torch.equal(guided.coeffs, plain.coeffs)


def test_interrupt_stops_sampling(pack, tiny_model, comfy_shim):
    comfy_shim.INTERRUPT = True
    with pytest.raises(comfy_shim.InterruptProcessingException):
        sample(pack, tiny_model, picture())


def test_bad_inputs_name_the_node(pack, tiny_model):
    with pytest.raises(ValueError, match=r"\[GIDSampleSpectralVolume\].*GIDLoadMotionModel"):
        sample(pack, "not a model", picture())
    with pytest.raises(ValueError, match=r"\[GIDSampleSpectralVolume\].*num_frames"):
        sample(pack, tiny_model, picture(), num_frames=4)
    with pytest.raises(ValueError, match=r"\[GIDSampleSpectralVolume\].*mask batch"):
        sample(pack, tiny_model, picture(), mask=torch.ones(3, 20, 24))
    with pytest.raises(ValueError, match=r"\[GIDSampleSpectralVolume\].*channels"):
        sample(pack, tiny_model, torch.rand(1, 20, 24, 2))
