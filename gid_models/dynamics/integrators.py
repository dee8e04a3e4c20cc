"""Per-frame propagators of the free damped modal oscillators (modal.py, steps 5 and 6)."""

from __future__ import annotations

import math

import torch

from ..spectral import MotionError

INTEGRATORS = ("exact", "euler")
EULER_STEP_BOUND = 0.1  # h * omega per semi-implicit Euler sub-step (notes section 9)
MAX_EULER_SUBSTEPS = 10_000


def step_matrices(
    omegas: torch.Tensor, damping: float | torch.Tensor, step: float, integrator: str = "exact"
) -> torch.Tensor:
    """(J, 2, 2) float64 matrices P_j with [q, v](t + step) = P_j [q, v](t) for the free oscillator.

    omegas: (J,) rad/s; damping: ratio zeta >= 0, one for all modes or (J,) per mode; step: seconds.
    See modal.py's docstring, step 5.
    """
    omegas = omegas.double()
    zeta = torch.as_tensor(damping, dtype=torch.float64).expand_as(omegas)
    if integrator == "exact":
        decay = torch.exp(-zeta * omegas * step)
        # Under-, critically and over-damped modes, each with its own ratio; the unused branches are
        # computed on clamped arguments so that they stay finite.
        under = omegas * torch.sqrt((1.0 - zeta * zeta).clamp_min(1e-300))
        over = omegas * torch.sqrt((zeta * zeta - 1.0).clamp_min(1e-300))
        c = torch.where(zeta < 1.0, decay * torch.cos(under * step), decay * torch.cosh(over * step))
        s = torch.where(zeta < 1.0, decay * torch.sin(under * step) / under, decay * torch.sinh(over * step) / over)
        critical = zeta == 1.0
        c = torch.where(critical, decay, c)
        s = torch.where(critical, decay * step, s)
        rows = [torch.stack([c + zeta * omegas * s, s], -1), torch.stack([-omegas.square() * s, c - zeta * omegas * s], -1)]
        return torch.stack(rows, -2)
    if integrator == "euler":
        substeps = euler_substeps(omegas, step)
        hs = step / substeps
        w2 = omegas.square()
        friction = 1.0 - 2.0 * zeta * omegas * hs
        rows = [torch.stack([1.0 - hs * hs * w2, hs * friction], -1), torch.stack([-hs * w2, friction], -1)]
        return torch.linalg.matrix_power(torch.stack(rows, -2), substeps)
    raise MotionError(f"unknown integrator '{integrator}'; use one of {', '.join(INTEGRATORS)}.")


def euler_substeps(omegas: torch.Tensor, step: float) -> int:
    """Semi-implicit Euler sub-steps per frame so that h_sub * omega_max <= EULER_STEP_BOUND."""
    worst = float(omegas.max()) * step if omegas.numel() else 0.0
    substeps = max(1, math.ceil(worst / EULER_STEP_BOUND - 1e-9))
    if substeps > MAX_EULER_SUBSTEPS:
        raise MotionError(
            f"the Euler integrator would need {substeps} sub-steps per frame (omega_max {float(omegas.max()):.1f} "
            f"rad/s at a {step:.4g} s frame step, limit {MAX_EULER_SUBSTEPS}); lower stiffness_scale, raise fps, "
            "or use the exact integrator."
        )
    return substeps


def settled_dynamics(
    omegas: torch.Tensor, damping: float, settle_seconds: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(omegas', zetas') (J,) float64 of the free motion after a release, so that it dies within
    settle_seconds (modal.py, step 6).

    Every mode decays at least at the rate sigma_min = ln(100) / settle_seconds (1/s), i.e. to 1%
    of its amplitude envelope in settle_seconds: zeta_j = max(damping, sigma_min / omega_j). A mode
    too slow for that even when critically damped (omega_j < sigma_min) swings back critically
    damped at omega' = sigma_min. settle_seconds None or 0 keeps omegas and damping as they are.
    """
    omegas = omegas.double()
    if not settle_seconds:
        return omegas, torch.full_like(omegas, float(damping))
    if not (math.isfinite(settle_seconds) and settle_seconds > 0):
        raise MotionError(f"settle_seconds must be a positive number (or 0 for no limit), got {settle_seconds}.")
    rate = math.log(100.0) / float(settle_seconds)
    released = omegas.clamp_min(rate)
    zetas = (rate / released).clamp_min(float(damping))
    return released, zetas
