"""The `gid` pipeline picks the shipped weights when gid_models/weights/ holds them, and says which
it used; without them it falls back (bundled clip's motion, pixel renderer) and says so."""

from __future__ import annotations

import logging

import pytest
import torch

from gid_models import pipeline
from gid_models.networks import motion_model
from gid_models.rendering import NeuralRenderer, render_motion, render_net
from gid_models.spectral import MotionTexture


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """An empty stand-in for gid_models/weights/."""
    monkeypatch.setattr(motion_model, "BUNDLED_DIR", tmp_path)
    monkeypatch.setattr(render_net, "BUNDLED_WEIGHTS", tmp_path / "renderer.safetensors")
    return tmp_path


def test_motion_comes_from_the_bundled_model_when_it_ships(weights_dir, tiny_model, monkeypatch):
    tiny_model.save(weights_dir)
    monkeypatch.setattr(pipeline, "volume_from_video", lambda *args, **kwargs: pytest.fail("used the clip"))
    picture = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(1))
    source = pipeline.motion_for_picture(picture, seed=1, steps=1, loop=False)
    assert source.volume.coeffs.shape == (1, 4, 4, 24, 32)
    assert "bundled motion model" in source.description and "seed 1, 1 steps" in source.description


def test_motion_falls_back_to_the_bundled_clip_and_says_why(weights_dir, monkeypatch, caplog):
    used = []

    def clip_motion(path, **_):  # records the clip instead of measuring its flow (seconds)
        used.append(path)
        return "clip motion"

    monkeypatch.setattr(pipeline, "volume_from_video", clip_motion)
    with caplog.at_level(logging.WARNING, logger=pipeline.LOGGER.name):
        assert pipeline.motion_for_picture(torch.rand(1, 3, 24, 32)) == "clip motion"
    assert used == [pipeline.BUNDLED_CLIP]
    assert "bundled motion model is missing" in caplog.text


@pytest.mark.parametrize("ships", [True, False])
def test_render_uses_the_bundled_neural_renderer_when_it_ships(weights_dir, caplog, ships):
    generator = torch.Generator().manual_seed(0)
    picture = torch.rand(1, 3, 24, 32, generator=generator)
    motion = MotionTexture(torch.randn(1, 3, 2, 24, 32, generator=generator), fps=24.0)
    if ships:
        renderer = NeuralRenderer(channels=(8, 12))
        torch.nn.init.normal_(renderer.head.weight, std=0.1)  # not the pixel renderer's frames
        renderer.save(weights_dir / "renderer.safetensors")
        expected = render_motion(picture, motion, renderer=NeuralRenderer.load(weights_dir / "renderer.safetensors"))
    else:
        expected = render_motion(picture, motion)
    with caplog.at_level(logging.INFO, logger=pipeline.LOGGER.name):
        frames = pipeline.render(picture, motion)
    torch.testing.assert_close(frames, expected)
    said = "rendering with the bundled neural renderer" if ships else "rendering with the pixel renderer"
    assert said in caplog.text


def test_loop_guidance_is_approximated_on_the_cpu_only_and_says_so(caplog):
    with caplog.at_level(logging.INFO, logger=pipeline.LOGGER.name):
        cpu = pipeline.loop_guidance(torch.device("cpu"))
    assert (cpu.recurrence, cpu.through_denoiser) == (1, False)
    assert "loop guidance approximated on the CPU" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=pipeline.LOGGER.name):
        exact = pipeline.loop_guidance(torch.device("cpu"), exact=True)
        gpu = pipeline.loop_guidance(torch.device("cuda"))
    assert (exact.recurrence, exact.through_denoiser) == (gpu.recurrence, gpu.through_denoiser) == (2, True)
    assert "approximated" not in caplog.text


def test_load_renderer_gives_the_network_a_choice_names(weights_dir, caplog):
    assert pipeline.load_renderer("pixel") is None
    assert pipeline.load_renderer("neural") is None  # no bundled weights in weights_dir: pixel renderer
    NeuralRenderer(channels=(8, 12)).save(weights_dir / "mine.safetensors")
    loaded = pipeline.load_renderer(str(weights_dir / "mine.safetensors"))
    assert isinstance(loaded, NeuralRenderer) and loaded.config.channels == (8, 12)
    with pytest.raises(pipeline.MotionError, match="--renderer"):
        pipeline.load_renderer("neural-ish")
