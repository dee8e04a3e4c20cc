"""The GPU path gives the CPU's results: rendering, sampling, loop guidance and modal simulation.

Every test here needs CUDA and is skipped without it (CI has no GPU); they run on a GPU machine
with `pytest tests/test_cuda.py`. The CPU result is the reference. The sampler and the neural
renderer compute in bf16 on CUDA, so their tolerances are relative, the rest agree to float32
rounding (atomics sum in another order).
"""

from __future__ import annotations

import math

import pytest
import torch

from gid_models.dynamics import Drag, simulate
from gid_models.evaluation.metrics import seam_error
from gid_models.networks import MotionModel
from gid_models.rendering import NeuralRenderer, render_motion
from gid_models.sampling import LoopGuidance, sample_spectral_volume
from gid_models.spectral import MotionTexture, SpectralVolume, spectral_to_motion

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value.double().cpu() - reference.double()).norm() / reference.double().norm().clamp_min(1e-12))


def _sway(frames: int, height: int, width: int, seed: int) -> MotionTexture:
    """A smooth oscillation of a few pixels: (1, frames, 2, height, width)."""
    generator = torch.Generator().manual_seed(seed)
    field = torch.nn.functional.interpolate(
        torch.randn(1, 4, 4, 6, generator=generator), size=(height, width), mode="bicubic", align_corners=False
    )
    t = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1) * (2 * math.pi / frames)
    return MotionTexture((3.0 * (field[:, :2] * torch.cos(t) + field[:, 2:] * torch.sin(t)))[None], fps=30.0)


def _picture(height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 8, width // 8, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def test_pixel_renderer_matches_cpu():
    picture, motion = _picture(96, 160, 0), _sway(12, 24, 40, 1)
    cpu = render_motion(picture, motion)
    gpu = render_motion(picture.cuda(), motion.to("cuda"), output_device="cpu")
    assert gpu.shape == cpu.shape == (12, 3, 96, 160)
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)


def test_neural_renderer_matches_cpu_within_bf16():
    torch.manual_seed(0)
    renderer = NeuralRenderer().eval()
    with torch.no_grad():  # a non-zero head, so the decoder's output reaches the frames
        renderer.head.weight.normal_(0.0, 0.02)
    picture, motion = _picture(96, 160, 2), _sway(6, 24, 40, 3)
    cpu = render_motion(picture, motion, renderer=renderer)
    gpu = render_motion(picture.cuda(), motion.to("cuda"), renderer=renderer.cuda(), output_device="cpu")
    assert torch.isfinite(gpu).all()
    assert _relative_error(gpu, cpu) < 2e-2


@pytest.fixture(scope="module")
def shipped_model() -> MotionModel:
    return MotionModel.from_bundled().eval()


def test_sampling_gives_the_same_motion_on_cuda(shipped_model):
    picture = _picture(160, 256, 4)
    cpu, _ = sample_spectral_volume(shipped_model, picture, seed=7, steps=6)
    gpu, _ = sample_spectral_volume(shipped_model.to("cuda"), picture.cuda(), seed=7, steps=6)
    shipped_model.to("cpu")
    assert gpu.coeffs.device.type == "cuda" and gpu.coeffs.shape == cpu.coeffs.shape
    # bf16 on CUDA: the same seed gives the same motion up to low-precision rounding
    assert _relative_error(gpu.coeffs, cpu.coeffs) < 0.1


def test_loop_guidance_on_cuda_lowers_the_seam(shipped_model):
    model = shipped_model.to("cuda")
    picture = _picture(160, 256, 5).cuda()
    plain, _ = sample_spectral_volume(model, picture, seed=3, steps=8)
    guided, _ = sample_spectral_volume(model, picture, seed=3, steps=8, guidance=LoopGuidance())
    model.to("cpu")
    assert torch.isfinite(guided.coeffs).all()
    assert float(seam_error(guided.to("cpu"))) < float(seam_error(plain.to("cpu")))


def test_modal_simulation_matches_cpu():
    generator = torch.Generator().manual_seed(6)
    coeffs = torch.randn(1, 16, 4, 20, 32, generator=generator) / torch.arange(1, 17).view(1, 16, 1, 1, 1)
    volume = SpectralVolume(coeffs, num_frames=150, fps=30.0)
    drags = [Drag(x=10.0, y=8.0, dx=4.0, dy=-2.0, start=0.0, hold=5.0)]
    cpu = simulate(volume, drags, num_frames=40, fps=30.0)
    gpu = simulate(volume.to("cuda"), drags, num_frames=40, fps=30.0)
    torch.testing.assert_close(gpu.displacements.cpu(), cpu.displacements, atol=1e-3, rtol=1e-3)


def test_loop_texture_on_cuda_matches_cpu():
    generator = torch.Generator().manual_seed(8)
    volume = SpectralVolume(torch.randn(1, 16, 4, 20, 32, generator=generator), num_frames=150, fps=30.0)
    cpu = spectral_to_motion(volume, num_output_frames=30, output_fps=30.0)
    gpu = spectral_to_motion(volume.to("cuda"), num_output_frames=30, output_fps=30.0)
    torch.testing.assert_close(gpu.displacements.cpu(), cpu.displacements, atol=1e-4, rtol=1e-4)


def test_graph_replayed_sampling_equals_eager_sampling(shipped_model, monkeypatch):
    from gid_models.sampling.cuda_graph import DISABLE_VARIABLE, GraphedNoise

    model = shipped_model.to("cuda")
    picture = _picture(160, 256, 9).cuda()
    graphed, _ = sample_spectral_volume(model, picture, seed=11, steps=5)
    monkeypatch.setenv(DISABLE_VARIABLE, "1")
    eager, _ = sample_spectral_volume(model, picture, seed=11, steps=5)
    model.to("cpu")
    assert _relative_error(graphed.coeffs, eager.coeffs.cpu()) < 1e-3

    calls = []
    replayed = GraphedNoise(lambda z, t: calls.append(1) or z * t)
    z = torch.rand(2, 3, 4, device="cuda")
    outputs = [replayed(z, torch.tensor(step, device="cuda")) for step in (2, 3, 4)]
    assert not replayed.failed and replayed.graph is not None
    assert len(calls) == 3  # two warm-up calls and the capture; later steps only replay
    for step, output in zip((2, 3, 4), outputs):  # every output is its own tensor
        torch.testing.assert_close(output, z * step)
    with pytest.raises(ValueError, match="captured for latents"):
        replayed(torch.rand(3, 3, 4, device="cuda"), torch.tensor(1, device="cuda"))


def test_chunk_size_does_not_shrink_after_a_render():
    """Blocks the caching allocator keeps after a render count as free: the next render of the same
    job gets the same chunks (new shapes would make cuDNN autotune again, every run)."""
    from gid_models.rendering import pick_chunk_size

    device = torch.device("cuda")
    renderer = NeuralRenderer().eval().cuda()
    before = pick_chunk_size(288, 512, 150, device, renderer)
    render_motion(_picture(288, 512, 10).cuda(), _sway(150, 72, 128, 11).to("cuda"), renderer=renderer)
    assert pick_chunk_size(288, 512, 150, device, renderer) == before
