"""GIDRender and GIDLoadRenderer as ComfyUI runs them (through the pack and the comfy shim)."""

from __future__ import annotations

import importlib
import math

import pytest
import torch


@pytest.fixture
def spectral(pack):
    return importlib.import_module("comfyui_gid.gid_models.spectral")


@pytest.fixture
def rendering(pack):
    return importlib.import_module("comfyui_gid.gid_models.rendering")


def picture_batch(generator, batch=1, height=24, width=32, channels=3):
    coarse = torch.rand(batch, channels, height // 4, width // 4, generator=generator)
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return image.movedim(1, -1).contiguous()


def motion(spectral, generator, batch=1, frames=5, height=12, width=16, fps=24.0):
    return spectral.MotionTexture(torch.randn(batch, frames, 2, height, width, generator=generator), fps=fps)


def test_render_returns_frames_and_fps_with_progress(pack, spectral, comfy_shim, generator):
    utils = importlib.import_module("comfy.utils")
    node = pack.NODE_CLASS_MAPPINGS["GIDRender"]()
    picture = picture_batch(generator)
    before = picture.clone()
    frames, fps, fps_int = node.render(picture, motion(spectral, generator, fps=23.976))
    assert frames.shape == (5, 24, 32, 3) and frames.dtype == torch.float32 and frames.is_contiguous()
    assert frames.min() >= 0 and frames.max() <= 1
    assert fps == pytest.approx(23.976) and fps_int == 24
    assert torch.equal(picture, before)
    assert utils.UPDATES and utils.UPDATES[-1] == (5, 5)


def test_render_matches_model_code_and_handles_alpha(pack, spectral, rendering, generator):
    node = pack.NODE_CLASS_MAPPINGS["GIDRender"]()
    rgb = picture_batch(generator)
    rgba = torch.cat([rgb, torch.rand(1, 24, 32, 1, generator=generator)], dim=-1)
    clip = motion(spectral, generator)
    frames = node.render(rgba, clip)[0]
    expected = rendering.render_motion(rgb.movedim(-1, 1), clip)
    assert torch.equal(frames, expected.movedim(1, -1))


def test_render_batches_pair_up_or_broadcast(pack, spectral, generator):
    node = pack.NODE_CLASS_MAPPINGS["GIDRender"]()
    pictures = picture_batch(generator, batch=2)
    clips = motion(spectral, generator, batch=2, frames=3)
    frames = node.render(pictures, clips)[0]
    assert frames.shape == (6, 24, 32, 3)
    second = node.render(pictures[1:], spectral.MotionTexture(clips.displacements[1:], fps=24.0))[0]
    assert torch.equal(frames[3:], second)
    assert node.render(pictures[:1], clips)[0].shape == (6, 24, 32, 3)
    with pytest.raises(ValueError, match=r"\[GIDRender\].*2 images but motion batch has 3"):
        node.render(pictures, motion(spectral, generator, batch=3, frames=3))


def test_render_freeze_mask_and_neural_renderer(pack, spectral, rendering, generator):
    node = pack.NODE_CLASS_MAPPINGS["GIDRender"]()
    picture = picture_batch(generator)
    clip = motion(spectral, generator)
    frozen = node.render(picture, clip, freeze_mask=torch.ones(1, 24, 32))[0]
    assert torch.equal(frozen, picture.expand(5, -1, -1, -1))
    renderer = rendering.NeuralRenderer(channels=(8, 12))
    neural = node.render(picture, clip, renderer=renderer)[0]
    torch.testing.assert_close(neural, node.render(picture, clip)[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("picture_size", "motion_size", "message"),
    [((24, 32), (12, 12), "aspect"), ((24, 32), (12, 16), None)],
)
def test_render_aspect_ratio(pack, spectral, generator, picture_size, motion_size, message):
    node = pack.NODE_CLASS_MAPPINGS["GIDRender"]()
    picture = picture_batch(generator, height=picture_size[0], width=picture_size[1])
    clip = motion(spectral, generator, height=motion_size[0], width=motion_size[1])
    if message is None:
        assert node.render(picture, clip)[0].shape[1:3] == picture_size
    else:
        with pytest.raises(ValueError, match=rf"\[GIDRender\].*{message}"):
            node.render(picture, clip)


def test_render_rejects_bad_inputs(pack, spectral, generator):
    node = pack.NODE_CLASS_MAPPINGS["GIDRender"]()
    picture = picture_batch(generator)
    nan_motion = motion(spectral, generator)
    nan_motion.displacements[0, 2, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"\[GIDRender\].*NaN"):
        node.render(picture, nan_motion)
    with pytest.raises(ValueError, match=r"\[GIDRender\].*empty"):
        node.render(picture, spectral.MotionTexture(torch.zeros(1, 3, 2, 0, 0)))
    with pytest.raises(ValueError, match=r"\[GIDRender\].*GID_MOTION"):
        node.render(picture, torch.zeros(1, 3, 2, 12, 16))
    with pytest.raises(ValueError, match=r"\[GIDRender\].*empty batch"):
        node.render(picture[:0], motion(spectral, generator))
    with pytest.raises(ValueError, match=r"\[GIDRender\].*freeze_mask batch"):
        node.render(picture, motion(spectral, generator), freeze_mask=torch.ones(3, 24, 32))


def test_frames_larger_than_memory_are_refused_before_rendering(pack, spectral, rendering, generator):
    """10,000 frames on a picture whose frames need 1.5x all of this machine's memory: a clear error
    naming the node and the fix, before the frame buffer is allocated (the kernel would otherwise
    kill the ComfyUI server); two clips are refused at half that size, as they are joined."""
    from comfyui_gid.gid_models.memory import total_memory_bytes

    node = pack.NODE_CLASS_MAPPINGS["GIDRender"]()
    side = math.ceil(math.sqrt(1.5 * total_memory_bytes("cpu") / (12 * 10000)))  # 12 bytes per pixel and frame
    picture = torch.full((1, side, side, 3), 0.5)
    long_motion = spectral.MotionTexture(torch.zeros(1, 10000, 2, 4, 4), fps=24.0)
    message = rf"10000 rendered frames at {side}x{side} needs about .* GiB, more than the .* free now; .*fewer frames"
    with pytest.raises(RuntimeError, match=rf"^\[GIDRender\] ran out of memory \({message}"):
        node.render(picture, long_motion)
    with pytest.raises(MemoryError, match=message):
        rendering.render_motion(picture.movedim(-1, 1), long_motion)
    half = math.ceil(side / math.sqrt(2.0))
    two_clips = spectral.MotionTexture(torch.zeros(2, 5000, 2, 4, 4), fps=24.0)
    with pytest.raises(RuntimeError, match=rf"^\[GIDRender\] ran out of memory \(10000 rendered frames at {half}x{half}"):
        node.render(torch.full((2, half, half, 3), 0.5), two_clips)


def test_render_is_interruptible(pack, spectral, comfy_shim, generator):
    node = pack.NODE_CLASS_MAPPINGS["GIDRender"]()
    comfy_shim.INTERRUPT = True
    with pytest.raises(comfy_shim.InterruptProcessingException):
        node.render(picture_batch(generator), motion(spectral, generator))


@pytest.fixture
def weights_dir(pack, comfy_shim, tmp_path, monkeypatch):
    """An empty stand-in for gid_models/weights/, where the bundled renderer ships."""
    monkeypatch.setattr(importlib.import_module("comfyui_gid.nodes._comfy"), "BUNDLED_WEIGHTS_DIR", tmp_path)
    render_net = importlib.import_module("comfyui_gid.gid_models.rendering.render_net")
    monkeypatch.setattr(render_net, "BUNDLED_WEIGHTS", tmp_path / "renderer.safetensors")
    return tmp_path


def renderer_choices(pack):
    return pack.NODE_CLASS_MAPPINGS["GIDLoadRenderer"].INPUT_TYPES()["required"]["renderer_name"]


def test_load_renderer_lists_and_loads_the_bundled_renderer(pack, rendering, weights_dir):
    rendering.NeuralRenderer(channels=(8, 12)).save(weights_dir / "renderer.safetensors")
    names, options = renderer_choices(pack)
    assert names == ["bundled"] and options["default"] == "bundled"  # the shipped file is not listed twice
    (renderer,) = pack.NODE_CLASS_MAPPINGS["GIDLoadRenderer"]().load("bundled")
    assert isinstance(renderer, rendering.NeuralRenderer) and renderer.config.channels == (8, 12)
    assert not renderer.training


def test_load_renderer_without_bundled_weights_says_what_to_do(pack, weights_dir):
    assert renderer_choices(pack)[0] == ["bundled"]
    loader = pack.NODE_CLASS_MAPPINGS["GIDLoadRenderer"]()
    with pytest.raises(ValueError, match=r"\[GIDLoadRenderer\] the bundled renderer is missing.*pixel renderer"):
        loader.load("bundled")
    with pytest.raises(ValueError, match=r"\[GIDLoadRenderer\] no renderer named 'renderer_gone.safetensors'"):
        loader.load("renderer_gone.safetensors")


def test_shipped_renderer_loads_or_says_it_is_missing(pack, rendering, comfy_shim):
    """The real gid_models/weights/, with or without the shipped renderer."""
    names = renderer_choices(pack)[0]
    assert names[0] == "bundled" and "renderer.safetensors" not in names
    loader = pack.NODE_CLASS_MAPPINGS["GIDLoadRenderer"]()
    if rendering.NeuralRenderer.bundled_available():
        assert isinstance(loader.load("bundled")[0], rendering.NeuralRenderer)
    else:
        with pytest.raises(ValueError, match=r"\[GIDLoadRenderer\] the bundled renderer is missing"):
            loader.load("bundled")


def test_load_renderer_reads_model_folder(pack, rendering, comfy_shim, tmp_path):
    import os

    import folder_paths

    folder = os.path.join(folder_paths.models_dir, "gid")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "renderer_tiny.safetensors")
    rendering.NeuralRenderer(channels=(8, 12)).save(path)
    try:
        loader = pack.NODE_CLASS_MAPPINGS["GIDLoadRenderer"]
        assert renderer_choices(pack)[0][0] == "bundled"
        assert "renderer_tiny.safetensors" in renderer_choices(pack)[0]
        (renderer,) = loader().load("renderer_tiny.safetensors")
        assert isinstance(renderer, rendering.NeuralRenderer) and renderer.config.channels == (8, 12)
    finally:
        os.remove(path)
        os.remove(os.path.splitext(path)[0] + ".json")


def test_neural_renderer_goes_through_model_management(pack, spectral, rendering, comfy_shim, generator):
    """ComfyUI's ModelPatcher writes `device` on the model it manages, which diffusers' ModelMixin
    (NeuralRenderer's base) keeps read-only: the renderer is managed inside a holder."""
    renderer = rendering.NeuralRenderer(channels=(8, 12))
    frames = pack.NODE_CLASS_MAPPINGS["GIDRender"]().render(picture_batch(generator), motion(spectral, generator),
                                                            renderer=renderer)[0]
    assert frames.shape == (5, 24, 32, 3)
    assert comfy_shim.LOADED[-1].model.network is renderer
