"""Cancel inside a sampling step: an interrupt requested in the middle of a pass (a denoiser
forward, the guidance loss, its backward) stops the sampler before the next pass, with ComfyUI's
interrupt exception reaching the node's caller; progress moves in passes; the CLI's path (no
interrupt check) gives the same motion as before. And inside a neural render's chunk."""

from __future__ import annotations

import contextlib
import importlib

import pytest
import torch

STEPS, RECURRENCE = 3, 2
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models_package(pack_models):
    """The conftest's models are built from the pack's classes, as the nodes expect."""
    return pack_models


@pytest.fixture(scope="module")
def sampling(pack):
    return importlib.import_module("comfyui_gid.gid_models.sampling")


def picture():
    return torch.rand(1, 20, 24, 3, generator=torch.Generator().manual_seed(1))


def run_node(pack, model, guidance=None):
    node = pack.NODE_CLASS_MAPPINGS["GIDSampleSpectralVolume"]()
    return node.sample(picture(), model, seed=3, steps=STEPS, cfg=1.75, num_frames=30, fps=30.0, guidance=guidance)


def loop_guidance(pack):
    return pack.NODE_CLASS_MAPPINGS["GIDLoopGuidance"]().build(200.0, RECURRENCE, True)[0]


@contextlib.contextmanager
def hooked(*handles):
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def counter(calls: list):
    """A forward hook counting the module's completed forwards."""
    return lambda *_: calls.append(1)


def hook_count(model) -> int:
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_interrupt_in_the_guidance_loss_stops_before_the_next_pass(pack, make_tiny_model, comfy_shim):
    model = make_tiny_model()
    utils = importlib.import_module("comfy.utils")
    denoiser_calls, decoder_calls, decoder_ends = [], [], []

    def request(*_):  # the user presses Cancel while the loss decodes the first pass's estimate
        decoder_calls.append(1)
        comfy_shim.INTERRUPT = True

    with hooked(model.denoiser.register_forward_hook(counter(denoiser_calls)),
                model.vae.decoder_mid.register_forward_hook(request),
                model.vae.decoder_out.register_forward_hook(counter(decoder_ends))):
        with pytest.raises(comfy_shim.InterruptProcessingException):
            run_node(pack, model, loop_guidance(pack))
    assert len(denoiser_calls) == 1 and len(decoder_calls) == 1  # no second pass
    assert decoder_ends == []  # nor the rest of that decode, its loss or its gradient
    assert utils.UPDATES == []  # not one pass finished
    assert hook_count(model) == 0 and not comfy_shim.INTERRUPT


def test_interrupt_in_the_gradient_stops_its_backward(pack, make_tiny_model, comfy_shim):
    """Requested when backward reaches the denoiser's last layer: the rest of backward is skipped."""
    model = make_tiny_model()
    reached_first_layer = []
    first_layer_hook = model.denoiser.conv_in.register_full_backward_hook(counter(reached_first_layer))
    with hooked(first_layer_hook):  # control: an uninterrupted guided run's backward reaches conv_in
        run_node(pack, model, loop_guidance(pack))
    assert reached_first_layer

    reached_first_layer.clear()

    def request(*_):
        comfy_shim.INTERRUPT = True

    with hooked(model.denoiser.conv_in.register_full_backward_hook(counter(reached_first_layer)),
                model.denoiser.conv_out.register_full_backward_pre_hook(request)):
        with pytest.raises(comfy_shim.InterruptProcessingException):
            run_node(pack, model, loop_guidance(pack))
    assert reached_first_layer == []


def test_interrupt_inside_a_cfg_pass_stops_it(pack, make_tiny_model, comfy_shim):
    """Unguided: requested while the first (batched conditional + empty) denoiser pass runs, that
    pass never completes."""
    model = make_tiny_model()
    completed, blocks_after = [], []
    first_block = model.denoiser.down_levels[0][0].resnet

    def request(*_):
        comfy_shim.INTERRUPT = True

    with hooked(model.denoiser.register_forward_hook(counter(completed)),
                first_block.register_forward_hook(request),
                model.denoiser.mid[0].register_forward_pre_hook(counter(blocks_after))):
        with pytest.raises(comfy_shim.InterruptProcessingException):
            run_node(pack, model)
    assert completed == [] and blocks_after == []
    assert hook_count(model) == 0


def test_progress_moves_in_passes(pack, tiny_model, comfy_shim):
    utils = importlib.import_module("comfy.utils")
    run_node(pack, tiny_model, loop_guidance(pack))
    total = STEPS * RECURRENCE
    assert utils.UPDATES == [(done, total) for done in range(1, total + 1)]


def test_sampler_checks_between_the_noise_estimate_and_its_gradient(sampling):
    """Plain functions, no network: a stop requested by the guidance loss of the second pass is
    seen before the third noise estimate."""
    ddim = importlib.import_module(f"{sampling.__name__}.ddim")
    noise_calls, loss_calls, checks, passes = [], [], [], []

    class Stop(Exception):
        pass

    def noise_fn(z, t):
        noise_calls.append(1)
        return z * 0.1

    def loss(clean):
        loss_calls.append(1)
        return clean.square().flatten(1).sum(1)

    def check():
        checks.append(1)
        if len(loss_calls) >= 2:
            raise Stop

    generator = torch.Generator().manual_seed(0)
    latents = ddim.randn((1, 2, 3, 4, 4), generator, torch.device("cpu"))
    with pytest.raises(Stop):
        ddim.sample_ddim(noise_fn, latents, steps=4, generator=generator, guidance_loss=loss, recurrence=2,
                         pass_callback=lambda done, total: passes.append((done, total)), check_interrupt=check)
    assert len(noise_calls) == 2 and len(loss_calls) == 2 and passes == [(1, 8)]


def test_cli_path_gives_the_same_motion_and_leaves_no_hooks(sampling, make_tiny_model):
    """The CLI passes no interrupt check: its result is the one a never-firing check gives, and an
    interrupted run leaves the model as it found it."""
    model = make_tiny_model()
    image = picture().movedim(-1, 1)
    guidance = sampling.LoopGuidance(u=200.0, recurrence=2)
    plain, _ = sampling.sample_spectral_volume(model, image, seed=5, steps=2, guidance=guidance)
    checked, _ = sampling.sample_spectral_volume(model, image, seed=5, steps=2, guidance=guidance,
                                                 check_interrupt=lambda: None)
    assert torch.equal(plain.coeffs, checked.coeffs)

    def ctrl_c():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sampling.sample_spectral_volume(model, image, seed=5, steps=2, guidance=guidance, check_interrupt=ctrl_c)
    assert hook_count(model) == 0
    again, _ = sampling.sample_spectral_volume(model, image, seed=5, steps=2, guidance=guidance)
    assert torch.equal(plain.coeffs, again.coeffs)


def test_interrupt_inside_a_neural_render_chunk_stops_it(pack, comfy_shim):
    """Requested while the neural renderer encodes the picture: the chunk's frames are never
    finished (its last layer never runs, no progress)."""
    rendering = importlib.import_module("comfyui_gid.gid_models.rendering")
    spectral = importlib.import_module("comfyui_gid.gid_models.spectral")
    utils = importlib.import_module("comfy.utils")
    torch.manual_seed(0)
    renderer = rendering.NeuralRenderer(channels=(8, 12))
    motion = spectral.MotionTexture(torch.randn(1, 5, 2, 10, 12, generator=torch.Generator().manual_seed(0)), fps=24.0)
    node = pack.NODE_CLASS_MAPPINGS["GIDRender"]()
    head_calls = []

    def request(*_):
        comfy_shim.INTERRUPT = True

    with hooked(renderer.encoder[0][2].register_forward_hook(request),
                renderer.head.register_forward_hook(counter(head_calls))):
        with pytest.raises(comfy_shim.InterruptProcessingException):
            node.render(picture(), motion, renderer=renderer)
    assert head_calls == [] and utils.UPDATES == []
    assert hook_count(renderer) == 0
