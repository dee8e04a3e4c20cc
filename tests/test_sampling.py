"""DDIM sampling, seeds, odd picture sizes and mask guidance with a tiny untrained model on CPU."""

from __future__ import annotations

import pytest
import torch

from gid_models.normalization import denormalize, denormalize_tensor
from gid_models.sampling import LoopGuidance, sample_spectral_volume, sampling_margin, working_size
from gid_models.sampling.ddim import randn, sample_ddim
from gid_models.sampling.guidance import (
    LOOP_REFERENCE_CELLS, amplitude_bound, loop_seam_loss, feathered_mask, limit_amplitudes, loop_loss, loop_weight,
    make_guidance_loss, seam_frames,
)
from gid_models.spectral import anchor_start_frame, MotionError, SpectralVolume, spectral_to_trajectories

K, T = 4, 30  # K: frequencies of the conftest's tiny_model
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def picture() -> torch.Tensor:
    return torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_shapes_and_normalized_output(tiny_model, picture):
    volume, normalized = sample_spectral_volume(tiny_model, picture, seed=0, steps=3, num_frames=T, fps=15.0)
    assert volume.coeffs.shape == (1, K, 4, 16, 16)
    assert volume.num_frames == T and volume.fps == 15.0 and not volume.normalized
    assert normalized.normalized
    torch.testing.assert_close(denormalize(normalized).coeffs, volume.coeffs, rtol=1e-4, atol=1e-6)


def test_same_seed_same_volume_other_seed_differs(tiny_model, picture):
    first, _ = sample_spectral_volume(tiny_model, picture, seed=7, steps=3, num_frames=T)
    again, _ = sample_spectral_volume(tiny_model, picture, seed=7, steps=3, num_frames=T)
    other, _ = sample_spectral_volume(tiny_model, picture, seed=8, steps=3, num_frames=T)
    assert torch.equal(first.coeffs, again.coeffs)
    assert (first.coeffs - other.coeffs).abs().mean() > 1e-3 * first.coeffs.abs().mean()


def test_output_gains_scale_each_bin_of_the_sampled_motion(make_tiny_model, picture):
    model = make_tiny_model()
    plain, _ = sample_spectral_volume(model, picture, seed=3, steps=3, num_frames=T, fps=15.0)
    gains = torch.tensor([2.0, 5.0, 0.5, 9.0])
    model.set_output_gains(gains)
    scaled, normalized = sample_spectral_volume(model, picture, seed=3, steps=3, num_frames=T, fps=15.0)
    torch.testing.assert_close(scaled.coeffs[:, 1:], plain.coeffs[:, 1:] * gains[1:].view(1, K - 1, 1, 1, 1),
                               rtol=1e-4, atol=1e-6)
    # bin 0 is not sampled: it holds frame 0 at rest whatever the gains
    torch.testing.assert_close(scaled.coeffs, anchor_start_frame(scaled.coeffs))
    torch.testing.assert_close(denormalize(normalized).coeffs, scaled.coeffs, rtol=1e-4, atol=1e-6)


def test_limit_amplitudes_caps_each_bin_keeping_direction_with_finite_gradients():
    pixels = torch.tensor([3.0, -4.0, 1.0, 0.5]).view(1, 1, 4, 1, 1).repeat(1, 3, 1, 2, 2)
    pixels[:, :, :, 1, 1] *= 0.1  # this pixel is within every limit
    pixels.requires_grad_(True)
    limits = torch.tensor([2.0, float("inf"), 8.0])
    limited = limit_amplitudes(pixels, limits)
    assert torch.allclose(limited[0, 0, :, 0, 0], torch.tensor([1.5, -2.0, 0.5, 0.25]))  # largest |.| now 2, same direction
    assert torch.equal(limited[0, 1], pixels[0, 1]) and torch.equal(limited[0, 2], pixels[0, 2])  # inf, and within 8
    assert torch.equal(limited[0, 0, :, 1, 1], pixels[0, 0, :, 1, 1])
    (gradient,) = torch.autograd.grad(limited.sum(), pixels)
    assert torch.isfinite(gradient).all() and torch.equal(gradient[0, 1], torch.ones_like(gradient[0, 1]))


def test_output_limits_bound_each_bin_of_the_sampled_motion(make_tiny_model, picture):
    model = make_tiny_model()
    plain, _ = sample_spectral_volume(model, picture, seed=3, steps=3, num_frames=T, fps=15.0)
    peaks = plain.coeffs.abs().amax(dim=(0, 2, 3, 4))
    limits = peaks * torch.tensor([0.5, 2.0, 0.25, 1.0])
    model.set_output_limits(limits)
    limited, normalized = sample_spectral_volume(model, picture, seed=3, steps=3, num_frames=T, fps=15.0)
    # bins 1.. are limited; bin 0 is not sampled but holds frame 0 at rest
    assert (limited.coeffs[:, 1:].abs().amax(dim=(0, 2, 3, 4)) <= limits[1:] * (1 + 1e-5)).all()
    torch.testing.assert_close(limited.coeffs[:, 1], plain.coeffs[:, 1])  # bin 1 stays within its limit
    expected = anchor_start_frame(limit_amplitudes(plain.coeffs, limits))
    torch.testing.assert_close(limited.coeffs, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(denormalize(normalized).coeffs, limited.coeffs, rtol=1e-4, atol=1e-6)


def test_sampling_canvas_has_a_reflected_margin_that_is_cropped_away(tiny_model):
    """The denoiser samples a canvas larger than the picture by a reflected margin on every side
    (its zero-padding edge band falls there); the volume is the picture's size and its motion
    depends on the picture, not on the canvas border."""
    assert tiny_model.downsample_factor == 4
    # about a tenth of the shorter side, in whole multiples of the model's factor (at least one)
    assert sampling_margin(tiny_model, 160, 256) == 16 and sampling_margin(tiny_model, 16, 16) == 4
    assert sampling_margin(tiny_model, 4, 64) == 0  # a reflection must be narrower than the picture
    seen, conditions = [], []
    original = tiny_model.denoiser.forward

    def spy(sample, timestep, condition, frequency_index):
        seen.append((tuple(sample.shape), tuple(condition.shape)))
        conditions.append(condition)
        return original(sample, timestep, condition, frequency_index)

    tiny_model.denoiser.forward = spy
    try:
        picture = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))  # the model's own size
        volume, _ = sample_spectral_volume(tiny_model, picture, seed=0, steps=2, num_frames=T, fps=15.0)
    finally:
        del tiny_model.denoiser.forward
    # canvas 16 + 2 * 4 pixels, latent half of it (VAE factor 2); conditional and empty pictures
    assert seen[0] == ((2, K, 4, 12, 12), (2, 3, 24, 24))
    assert volume.coeffs.shape == (1, K, 4, 16, 16)
    condition = conditions[0][0]
    torch.testing.assert_close(condition[:, 4:20, 4:20], picture[0] * 2 - 1)
    torch.testing.assert_close(condition[:, :, 3], condition[:, :, 5])  # mirrored about the edge pixel
    torch.testing.assert_close(condition[:, 0], condition[:, 8])


def test_noise_comes_from_the_cpu_generator():
    a = randn((2, 3), torch.Generator(device="cpu").manual_seed(5), torch.device("cpu"))
    torch.testing.assert_close(a, torch.randn((2, 3), generator=torch.Generator().manual_seed(5)))


def test_odd_picture_size_is_resized_not_crashed(tiny_model, caplog):
    picture = torch.rand(1, 3, 18, 23, generator=torch.Generator().manual_seed(2))
    with caplog.at_level("INFO"):
        volume, _ = sample_spectral_volume(tiny_model, picture, seed=0, steps=2, num_frames=T)
    assert volume.coeffs.shape[-2:] == (18, 23)
    assert "resized" in caplog.text
    assert working_size(18, 23, 4, 16 * 16) == (16, 20)
    assert working_size(160 * 4, 256 * 4, 16, 160 * 256) == (160, 256)


def test_callback_sees_every_step(tiny_model, picture):
    seen = []
    sample_spectral_volume(tiny_model, picture, seed=0, steps=4, num_frames=T, callback=lambda i, n: seen.append((i, n)))
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_bad_inputs_are_refused(tiny_model, picture):
    with pytest.raises(MotionError, match="picture must be"):
        sample_spectral_volume(tiny_model, picture[:, :2], seed=0, steps=2)
    with pytest.raises(MotionError, match="num_frames"):
        sample_spectral_volume(tiny_model, picture, seed=0, steps=2, num_frames=5)
    with pytest.raises(ValueError, match="self-recurrence"):
        LoopGuidance(recurrence=0)


def test_seam_frames_give_the_full_loop_seam_loss():
    coeffs = torch.randn(2, K, 4, 5, 6, generator=torch.Generator().manual_seed(3))
    full = loop_seam_loss(spectral_to_trajectories(SpectralVolume(coeffs, num_frames=T)))
    torch.testing.assert_close(loop_loss(coeffs, T, 30.0), full, rtol=1e-5, atol=1e-6)
    assert seam_frames(T).tolist() == [0.0, 1.0, T - 2.0, T - 1.0]


def test_loop_guidance_gradient_reaches_the_latent(tiny_model):
    latents = torch.randn(1, K, 4, 8, 8, generator=torch.Generator().manual_seed(4), requires_grad=True)
    loss = make_guidance_loss(tiny_model, LoopGuidance(), None, T, 30.0)(latents)
    (gradient,) = torch.autograd.grad(loss.sum(), latents)
    assert loss.shape == (1,) and gradient.abs().sum() > 0


def test_loop_weight_grows_with_the_latent_area_so_one_u_fits_every_size(tiny_model):
    """L_g is a mean over pixels, so its gradient on each latent element falls as the latent grows;
    its weight is u x latent cells / 64: u itself on an 8x8 latent, 40 u on the shipped model's
    64x40 latent (256x160 pixels, factor 4). The same motion per pixel over 4x the area weighs 4x."""
    assert LOOP_REFERENCE_CELLS == 64
    assert loop_weight(200.0, (16, 16), 2) == 200.0
    assert loop_weight(200.0, (160, 256), 4) == 8000.0
    tile = torch.randn(1, K, 4, 16, 16, generator=torch.Generator().manual_seed(7))
    losses = []
    for cells in (8, 16):  # latent side; the tiny model decodes 2x larger
        latents = torch.zeros(1, K, 4, cells, cells)
        same_motion = lambda pixels: tile.repeat(1, 1, 1, pixels.shape[-2] // 16, pixels.shape[-1] // 16)  # noqa: E731
        losses.append(make_guidance_loss(tiny_model, LoopGuidance(), None, T, 30.0, place=same_motion)(latents))
    torch.testing.assert_close(losses[1], 4.0 * losses[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses[0], 200.0 * loop_loss(tile, T, 30.0), rtol=1e-5, atol=1e-6)


def test_loop_guidance_scores_the_placed_motion_and_mask_guidance_the_decoded(tiny_model):
    """With a placing step (the motion-amplitude network) the loop loss is taken on the motion the
    sampler returns, not on the decoded motion that placing rescales; the mask loss stays on the
    decoded motion. Both losses are linear in the coefficients' scale, so placing x3 triples the first."""
    latents = torch.randn(1, K, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    outside = torch.zeros(1, 16, 16)
    outside[:, :, :8] = 1
    triple = lambda pixels: 3.0 * pixels  # noqa: E731
    loop = make_guidance_loss(tiny_model, LoopGuidance(), None, T, 30.0)(latents)
    loop_placed = make_guidance_loss(tiny_model, LoopGuidance(), None, T, 30.0, place=triple)(latents)
    torch.testing.assert_close(loop_placed, 3.0 * loop, rtol=1e-4, atol=1e-7)
    assert float(loop.detach()) > 0
    mask = make_guidance_loss(tiny_model, None, outside, T, 30.0)(latents)
    mask_placed = make_guidance_loss(tiny_model, None, outside, T, 30.0, place=triple)(latents)
    torch.testing.assert_close(mask_placed, mask)


def test_mask_guidance_steers_sampling_not_just_the_output(tiny_model):
    """Motion decoded straight from the sampler (before the final hard zero) is much smaller
    outside the mask with mask guidance than without."""
    outside = torch.ones(1, 16, 16)
    outside[:, :, 8:] = 0  # right half may move
    shape = (1, K, 4, 8, 8)
    condition = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5)) * 2 - 1
    condition[1] = 0

    def noise_fn(z, t):
        eps = tiny_model.denoiser(torch.cat([z, z]), t, condition, torch.arange(K))
        return 2.75 * eps[:1] - 1.75 * eps[1:]

    def amplitude_outside(loss_fn):
        generator = torch.Generator().manual_seed(6)
        latents = sample_ddim(noise_fn, randn(shape, generator, torch.device("cpu")), steps=6,
                              generator=generator, guidance_loss=loss_fn)
        with torch.no_grad():
            pixels = denormalize_tensor(tiny_model.decode(latents), tiny_model.normalization_scales)
        return float((amplitude_bound(pixels) * outside).sum() / outside.sum())

    free = amplitude_outside(None)
    guided = amplitude_outside(make_guidance_loss(tiny_model, None, outside, T, 30.0))
    assert guided < 0.5 * free


def test_mask_zeroes_motion_outside_with_a_soft_edge(tiny_model, picture):
    mask = torch.zeros(1, 16, 16)
    mask[:, 4:12, 4:12] = 1
    free, _ = sample_spectral_volume(tiny_model, picture, seed=3, steps=3, num_frames=T)
    masked, _ = sample_spectral_volume(tiny_model, picture, seed=3, steps=3, num_frames=T, mask=mask)
    outside = (mask == 0)[0]
    assert masked.coeffs[..., outside].abs().max() == 0
    assert free.coeffs[..., outside].abs().max() > 0
    assert masked.coeffs[..., 6:10, 6:10].abs().mean() > 0
    soft = feathered_mask(torch.ones(1, 1, 8, 8).tril(), 1)
    assert ((soft > 0) & (soft < 1)).any() and (soft[0, 0][torch.ones(8, 8).tril() == 0] == 0).all()


def test_guidance_under_inference_mode_is_refused_with_the_fix(make_tiny_model, picture):
    """Hosts that run under torch.inference_mode() leave it themselves (nodes/diffusion.py does);
    the sampler says so rather than fail inside autograd, and never rewrites the model."""
    guidance = LoopGuidance(u=200.0, recurrence=1)
    with torch.inference_mode():
        made_inside = make_tiny_model()
        with pytest.raises(MotionError, match="inference_mode"):
            sample_spectral_volume(made_inside, picture, seed=3, steps=2, guidance=guidance)
        plain, _ = sample_spectral_volume(made_inside, picture, seed=3, steps=2)  # no gradients needed: fine
    parameters = list(made_inside.parameters())
    with pytest.raises(MotionError, match="created or moved under torch.inference_mode"):
        sample_spectral_volume(made_inside, picture, seed=3, steps=2, guidance=guidance)
    assert all(a is b for a, b in zip(parameters, made_inside.parameters()))
    guided, _ = sample_spectral_volume(make_tiny_model(), picture, seed=3, steps=2, guidance=guidance)
    assert torch.isfinite(guided.coeffs).all() and not torch.equal(guided.coeffs, plain.coeffs)


def test_cuda_graph_replay_is_only_used_on_cuda_and_can_be_switched_off(monkeypatch):
    from gid_models.sampling.cuda_graph import DISABLE_VARIABLE, cuda_graphs_enabled

    assert not cuda_graphs_enabled(torch.device("cpu"))
    monkeypatch.setenv(DISABLE_VARIABLE, "1")
    assert not cuda_graphs_enabled(torch.device("cuda"))
    monkeypatch.setenv(DISABLE_VARIABLE, "0")
    assert cuda_graphs_enabled(torch.device("cuda"))


def test_graphed_noise_falls_back_to_eager_when_capture_fails(caplog):
    """Where no graph can be captured (here: CPU tensors), every call runs the function itself."""
    from gid_models.sampling.cuda_graph import GraphedNoise

    calls = []

    def noise_fn(z, t):
        calls.append(int(t))
        return z * 2 + t

    graphed = GraphedNoise(noise_fn)
    z = torch.rand(1, 2, 3, 4, 4)
    with caplog.at_level("INFO", logger="gid_models.sampling.cuda_graph"):
        first = graphed(z, torch.tensor(5))
        second = graphed(z, torch.tensor(7))
    assert graphed.failed and graphed.graph is None
    torch.testing.assert_close(first, z * 2 + 5)
    torch.testing.assert_close(second, z * 2 + 7)
    assert calls == [5, 7]
    assert "sampling eagerly" in caplog.text
