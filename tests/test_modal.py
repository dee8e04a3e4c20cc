"""Modal simulation: analytic oscillators, calibration, linearity, energy, stability, synthetic clips."""

from __future__ import annotations

import math

import pytest
import torch

from gid_models.dynamics import (
    Drag,
    ModalBasis,
    drags_from_json,
    modal_energy,
    simulate,
    simulate_modal_coordinates,
    simulate_modal_state,
    step_matrices,
    synthesize_motion,
)
from gid_models.spectral import MotionError, SpectralVolume

FPS = 30.0


def single_mode_volume(bin_index: int = 3, height: int = 12, width: int = 16) -> SpectralVolume:
    """One mode at bin_index (0.2 Hz steps at T=150, 30 fps) that moves every pixel in x by 1 px."""
    coeffs = torch.zeros(1, 6, 4, height, width)
    coeffs[0, bin_index, 0] = 1.0
    return SpectralVolume(coeffs, num_frames=150, fps=FPS)


def random_volume(generator: torch.Generator, height: int = 12, width: int = 16, bins: int = 6) -> SpectralVolume:
    """Several modes with random smooth complex shapes, decaying with frequency like natural motion."""
    coarse = torch.randn(1, bins, 4, 3, 4, generator=generator)
    shapes = torch.nn.functional.interpolate(coarse.flatten(1, 2), size=(height, width), mode="bilinear")
    decay = torch.exp(-0.3 * torch.arange(bins, dtype=torch.float32)).view(1, bins, 1, 1, 1)
    return SpectralVolume(shapes.view(1, bins, 4, height, width) * decay, num_frames=150, fps=FPS)


def test_basis_drops_f0_and_keeps_frequencies_masses():
    basis = ModalBasis.from_volume(single_mode_volume(bin_index=3))
    assert basis.shapes.shape == (1, 2, 12, 16) and basis.shapes.dtype == torch.complex64
    assert basis.frequency_indices.tolist() == [3]
    assert basis.omegas[0].item() == pytest.approx(2 * math.pi * 3 * FPS / 150)
    assert basis.masses[0].item() == pytest.approx(1.0)


def test_max_modes_keeps_heaviest_in_frequency_order(generator):
    volume = random_volume(generator)
    full = ModalBasis.from_volume(volume)
    kept = ModalBasis.from_volume(volume, max_modes=2)
    heaviest = full.frequency_indices[torch.argsort(full.masses, descending=True)[:2]].sort().values
    assert kept.frequency_indices.tolist() == heaviest.tolist()


@pytest.mark.parametrize("damping", [0.0, 0.05, 0.3])
def test_poke_matches_analytic_damped_oscillator(damping):
    basis = ModalBasis.from_volume(single_mode_volume())
    omega = basis.omegas[0].item()
    poke = Drag(x=5, y=5, dx=2.0, dy=0.0, kind="poke")
    q = simulate_modal_coordinates(basis, [poke], 200, FPS, damping=damping, settle_seconds=None)
    t = torch.arange(200, dtype=torch.float64) / FPS
    damped = omega * math.sqrt(1 - damping**2)
    # Calibration: the impulse sets v0 so that the undamped amplitude v0 / omega equals |d| = 2 px.
    expected = 2.0 * omega * torch.exp(-damping * omega * t) * torch.sin(damped * t) / damped
    assert torch.allclose(q[:, 0].real, expected, atol=1e-9 * 2.0)
    assert q[:, 0].imag.abs().max() < 1e-12


def _peaks(signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Times (samples, parabolic refinement) and heights of the positive local maxima."""
    s = signal
    idx = torch.nonzero((s[1:-1] > s[:-2]) & (s[1:-1] >= s[2:]) & (s[1:-1] > 0)).flatten() + 1
    left, mid, right = s[idx - 1], s[idx], s[idx + 1]
    offset = 0.5 * (left - right) / (left - 2 * mid + right)
    return idx.double() + offset, mid - 0.25 * (left - right) * offset


@pytest.mark.parametrize("integrator", ["exact", "euler"])
@pytest.mark.parametrize("damping", [0.0, 0.05])
def test_released_drag_oscillates_at_omega_and_decays_at_zeta_omega(integrator, damping):
    basis = ModalBasis.from_volume(single_mode_volume(bin_index=5))
    omega = basis.omegas[0].item()
    drag = Drag(x=5, y=5, dx=3.0, dy=0.0, start=2, hold=10)
    q = simulate_modal_coordinates(basis, [drag], 300, FPS, damping=damping, integrator=integrator, settle_seconds=None)[:, 0].real
    release = 12
    t = (torch.arange(300 - release, dtype=torch.float64)) / FPS
    damped = omega * math.sqrt(1 - damping**2)
    analytic = 3.0 * torch.exp(-damping * omega * t) * (
        torch.cos(damped * t) + damping * omega / damped * torch.sin(damped * t)
    )
    if integrator == "exact":
        assert (q[release:] - analytic).abs().max() < 1e-9
    times, heights = _peaks(q[release:])
    period = (times[-1] - times[0]).item() / (len(times) - 1) / FPS
    assert period == pytest.approx(2 * math.pi / damped, rel=0.02)
    rate = -torch.log(heights[-1] / heights[0]).item() / ((times[-1] - times[0]).item() / FPS)
    assert rate == pytest.approx(damping * omega, abs=0.02 * damping * omega + 1e-3)


def test_zero_force_gives_zero_motion(generator):
    volume = random_volume(generator)
    motion = simulate(volume, [], 20, FPS)
    assert motion.displacements.shape == (1, 20, 2, 12, 16)
    assert motion.displacements.abs().max() == 0


def test_response_is_linear_in_force(generator):
    basis = ModalBasis.from_volume(random_volume(generator))
    a = Drag(x=4, y=6, dx=1.5, dy=-0.5, start=0, hold=8)
    b = Drag(x=11, y=3, dx=0.0, dy=1.0, start=5, kind="poke")
    q_a = simulate_modal_coordinates(basis, [a], 60, FPS)
    q_b = simulate_modal_coordinates(basis, [b], 60, FPS)
    for scale in (2.5, -0.7):
        scaled = Drag(x=a.x, y=a.y, dx=a.dx * scale, dy=a.dy * scale, start=a.start, hold=a.hold)
        assert torch.allclose(simulate_modal_coordinates(basis, [scaled], 60, FPS), scale * q_a, atol=1e-9)
    assert torch.allclose(simulate_modal_coordinates(basis, [a, b], 60, FPS), q_a + q_b, atol=1e-9)


@pytest.mark.parametrize("damping", [0.0, 0.02, 1.0, 1.5])
def test_energy_never_grows_after_release(generator, damping):
    basis = ModalBasis.from_volume(random_volume(generator))
    drags = [Drag(x=4, y=6, dx=1.5, dy=-0.5, start=0, hold=8), Drag(x=9, y=2, dx=1, dy=1, start=3, kind="poke")]
    q, v = simulate_modal_state(basis, drags, 120, FPS, damping=damping, settle_seconds=None)
    energy = modal_energy(basis, q, v)[8:]
    assert energy[0] > 0
    assert (energy[1:] <= energy[:-1] * (1 + 1e-12)).all()
    if damping == 0.0:
        assert torch.allclose(energy, energy[0].expand_as(energy), rtol=1e-9)


def test_dragged_point_reaches_d_at_release(generator):
    volume = random_volume(generator)
    drag = drags_from_json('{"version": 1, "drags": [{"x": 0.40625, "y": 0.375, "dx": 0.1, "dy": 0.05, "hold": 12}]}',
                           volume.width, volume.height)[0]
    assert (drag.x, drag.y, drag.dx, drag.dy) == (6.0, 4.0, 1.6, 0.6000000000000001)
    motion = simulate(volume, [drag], 20, FPS)
    at_point = motion.displacements[0, :, :, 4, 6].double()
    direction = torch.tensor([drag.dx, drag.dy], dtype=torch.float64)
    along = at_point @ direction / direction.norm()
    assert along[12].item() == pytest.approx(direction.norm().item(), rel=1e-4)
    assert along[0] == 0 and 0 < along[6] < along[12]  # smooth pull during the hold
    # With x-only modes the whole displacement is along d.
    single = simulate(single_mode_volume(), [Drag(x=5, y=5, dx=2.0, dy=0.0, hold=12)], 20, FPS)
    assert single.displacements[0, 12, :, 5, 5].tolist() == pytest.approx([2.0, 0.0], abs=1e-5)


def test_drag_on_a_still_point_is_force_limited(generator, caplog):
    coeffs = random_volume(generator).coeffs.clone()
    coeffs[..., :, 8:] *= 1e-4  # the right half barely moves
    volume = SpectralVolume(coeffs, num_frames=150, fps=FPS)
    with caplog.at_level("WARNING"):
        motion = simulate(volume, [Drag(x=12, y=6, dx=2.0, dy=1.0, hold=5)], 30, FPS, damping=0.0)
    assert "barely moves" in caplog.text
    assert motion.displacements.norm(dim=2).max() < 0.05  # no flinging of the moving half
    still = single_mode_volume()  # moves in x only: a pull along y moves nothing, and yields no NaN
    q = simulate_modal_coordinates(ModalBasis.from_volume(still), [Drag(x=3, y=3, dx=0.0, dy=1.0)], 5, FPS)
    assert q.abs().max() == 0


def test_euler_substeps_stiff_settings_and_refuses_absurd_ones():
    basis = ModalBasis.from_volume(single_mode_volume(bin_index=5))
    drag = Drag(x=5, y=5, dx=1.0, dy=0.0, hold=3)
    exact = simulate_modal_coordinates(basis, [drag], 40, FPS, damping=0.05, stiffness_scale=100.0)
    euler = simulate_modal_coordinates(basis, [drag], 40, FPS, damping=0.05, stiffness_scale=100.0, integrator="euler")
    assert torch.isfinite(torch.view_as_real(euler)).all()
    assert (euler - exact).abs().max() < 0.1 * exact.abs().max()
    with pytest.raises(MotionError, match="sub-steps"):
        simulate_modal_coordinates(basis, [drag], 40, FPS, stiffness_scale=1e9, integrator="euler")
    huge = simulate_modal_coordinates(basis, [drag], 40, 1.0, stiffness_scale=1e9)
    assert torch.isfinite(torch.view_as_real(huge)).all()


def test_step_matrices_are_continuous_across_critical_damping():
    omegas = torch.tensor([1.0, 7.0], dtype=torch.float64)
    below = step_matrices(omegas, 1.0 - 1e-7, 0.05)
    at = step_matrices(omegas, 1.0, 0.05)
    above = step_matrices(omegas, 1.0 + 1e-7, 0.05)
    assert torch.allclose(below, at, atol=1e-6) and torch.allclose(above, at, atol=1e-6)


def test_bad_simulation_inputs_are_refused(generator):
    basis = ModalBasis.from_volume(random_volume(generator))
    with pytest.raises(MotionError, match="no motion above f_0"):
        ModalBasis.from_volume(SpectralVolume(torch.zeros(1, 4, 4, 8, 8).index_fill_(1, torch.tensor([0]), 1.0)))
    with pytest.raises(MotionError, match="integrator"):
        simulate_modal_coordinates(basis, [], 5, FPS, integrator="rk4")
    for kwargs in ({"fps": 0.0}, {"damping": -0.1}, {"stiffness_scale": 0.0}, {"mass_scale": float("nan")}):
        args = {"fps": FPS, **kwargs}
        with pytest.raises(MotionError):
            simulate_modal_coordinates(basis, [Drag(x=3, y=3, dx=1.0, dy=0.0)], 5, **args)


def test_synthesis_is_real_part_of_mode_sum(generator):
    basis = ModalBasis.from_volume(random_volume(generator))
    q = torch.randn(7, basis.num_modes, dtype=torch.complex128, generator=generator)
    motion = synthesize_motion(basis, q, FPS)
    reference = torch.einsum("tj,jchw->tchw", q, basis.shapes.to(torch.complex128)).real
    assert torch.allclose(motion.displacements[0].double(), reference, atol=1e-5)
    assert motion.fps == FPS


def test_poke_on_synthetic_clip_moves_only_that_region():
    from synthetic_clips import OscillatingRegion, render_clip

    from gid_models.flow import spectral_volume_from_video

    region = OscillatingRegion(left=8, top=10, right=44, bottom=54, amplitude=2.5, frequency_bin=3, phase=0.3)
    clip = render_clip([region], height=64, width=96, num_frames=48)
    volume = spectral_volume_from_video(clip.frames, fps=FPS, num_frequencies=8).volume
    poke = Drag(x=26, y=32, dx=2.0, dy=0.0, kind="poke")
    motion = simulate(volume, [poke], 60, FPS, damping=0.05).displacements[0]
    magnitude = motion.norm(dim=1).amax(0)  # (H, W) largest displacement of each pixel
    inside = magnitude[clip.region_masks[0]]
    outside = magnitude[clip.static_mask]
    assert inside.median() > 1.0  # the poke asks for a swing of up to 2 px
    assert torch.quantile(outside, 0.99) < 0.05 * inside.median()
    assert outside.mean() < 0.01 * inside.median()


def test_simulate_reports_each_batch_item_to_its_callback(generator):
    items = [random_volume(generator), single_mode_volume()]
    volume = SpectralVolume(torch.cat([v.coeffs for v in items]), num_frames=150, fps=FPS)
    drag = Drag(x=6, y=4, dx=1.0, dy=0.5, hold=5)
    calls = []
    motion = simulate(volume, [drag], 10, FPS, callback=lambda index, total: calls.append((index, total)))
    assert calls == [(0, 2), (1, 2)]
    for index, item in enumerate(items):  # each item simulated on its own modes, as without a callback
        alone = simulate(item, [drag], 10, FPS).displacements[0]
        torch.testing.assert_close(motion.displacements[index], alone)
