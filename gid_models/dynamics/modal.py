"""Image-space modal simulation: pull, poke and release a picture (paper notes, sections 6 and 9).

Modes. Every kept bin k >= 1 of a spectral volume whose modal mass is at least MIN_RELATIVE_MASS
(1e-6) times the largest one is a mode j (lighter bins are flow or float noise: the calibration below
is blind to a mode's overall size, so noise would move as much as real motion), with shape
phi_j(p) = S_k(p) (complex x and y, pixels) blurred by a Gaussian of sigma = longer side / 128 px
(modes.smooth_shapes; none when that is under 0.5 px; the browser gets these smoothed shapes),
natural angular frequency omega_j = 2 pi k fps_volume / T (rad/s) and modal mass m_j = mean over
pixels of |phi_j(p)|^2 (|.|^2 summed over x and y). Bin 0 (the mean offset) is never a mode. The simulated system uses
omega_j^2 * stiffness_scale and m_j * mass_scale.

Each complex modal coordinate q_j obeys q'' + 2 zeta omega q' + omega^2 q = g(t) / m; its real and
imaginary parts are two independent real oscillators with the same coefficients. The output
displacement is F_t(p) = Re(sum_j phi_j(p) q_j(t)) pixels, a MotionTexture (synthesize_motion).

The algorithm, exactly (a browser port must reproduce q(t) from it):

1. Time. Output frame n = 0..N-1 is at t_n = n / fps seconds; one step is h = 1 / fps. The state
   (q_j, v_j = q_j') starts at zero. Event frames are integers: start and hold given as numbers are
   rounded with floor(x + 0.5).
2. Modal force of a drag or poke at pixel (u, v) with vector d = (dx, dy) pixels: phi_j(u, v) is
   sampled bilinearly (pixel centres at integer coordinates; u, v clamped to [0, W-1] x [0, H-1])
   and g_j = conj(phi_jx) dx + conj(phi_jy) dy.
3. Calibration on the unscaled system (stiffness_scale = mass_scale = 1), so the arrow d defines a
   force; scaling then changes how the object answers it:
   - drag: weights w_j = 1 / (m_j omega_j^2); force alpha g_j with alpha = |d|^2 / max(R, R_min),
     R = sum_j w_j |g_j|^2. The static response of the simulated system to it is
     s_j = alpha g_j / (stiffness_scale * mass_scale * m_j omega_j^2). At scale 1 and R >= R_min the
     dragged point moves exactly |d| along d (its displacement is d when the modes allow motion
     along d only).
   - poke: weights w_j = 1 / (m_j omega_j); force beta g_j with beta = |d|^2 / max(R, R_min) and R
     as above with these weights; the impulse gives the velocity jump
     dv_j = beta g_j / (mass_scale * m_j). At scale 1 and R >= R_min,
     sum_j |dv_j phi_j(p) . d/|d|| / omega_j = |d|: |d| bounds the poked point's swing along d
     (all modes start in phase).
   - force limit: R_min = MIN_RELATIVE_RESPONSE (0.01) * |d|^2 * max over pixels p' of
     sum_j w_j |phi_j(p')|^2. A point that barely moves in the volume is therefore pulled with a
     bounded force and moves less than d (a warning is logged) instead of flinging the rest of the
     picture: no pixel ever moves more than |d| / sqrt(MIN_RELATIVE_RESPONSE) = 10 |d| (statically).
4. Frame loop, for n = 0..N-1:
   a. Releases and pokes at frame n change the state: a drag released at n = start + hold adds its
      static response s_j to q_j (its velocity is zero); a poke at n = start adds dv_j to v_j.
   b. Output q_j(t_n) = state q_j + sum over drags held at n (start <= n < start + hold) of
      r((n - start) / hold) s_j, with the smoothstep r(x) = x^2 (3 - 2 x): the hand bends the
      object into its static shape and holds it there, arriving with zero velocity, so at release
      the object is let go from rest at the pulled shape (notes section 9).
   c. Step the state from t_n to t_{n+1} with no force: [q, v] <- P_j [q, v] (real and imaginary
      parts alike), with the per-frame 2x2 matrix P_j of the chosen integrator (step_matrices).
   Drags and pokes whose event frames fall at or after N have no effect on the N frames.
5. Integrators (step_matrices), computed once per simulation:
   - "exact" (default): the propagator of the free damped oscillator over h. With
     C = e^{-zeta omega h} cos(omega_d h), S = e^{-zeta omega h} sin(omega_d h) / omega_d,
     omega_d = omega sqrt(1 - zeta^2) (cosh/sinh with sqrt(zeta^2 - 1) when zeta > 1;
     C = e^{-omega h}, S = h e^{-omega h} when zeta = 1):
     P = [[C + zeta omega S, S], [-omega^2 S, C - zeta omega S]]. No stability bound; it
     matches the analytic solution to float precision and energy never grows for zeta >= 0.
   - "euler": the paper's explicit stepping as semi-implicit Euler (v += hs a; q += hs v) with
     n_sub = ceil(h omega_max / 0.1) sub-steps per frame (hs = h / n_sub): period and decay rate
     within about 1% (notes section 9); being first order, positions lag by about hs omega / 2 rad. Settings needing more than MAX_EULER_SUBSTEPS sub-steps
     per frame are refused. P = E^n_sub with E = [[1 - hs^2 omega^2, hs (1 - 2 zeta omega hs)],
     [-hs omega^2, 1 - 2 zeta omega hs]].
6. Settling (settled_dynamics, default settle_seconds = 2): the free motion after a release or poke
   uses per-mode omega'_j, zeta_j instead of omega_j, zeta: with sigma = ln(100) / settle_seconds,
   omega'_j = max(omega_j, sigma) and zeta_j = max(zeta, sigma / omega'_j), so every mode's envelope
   falls to 1% within settle_seconds (the slowest bins of a generated volume, ~0.2 Hz, would
   otherwise keep a pulled plant bent for many seconds). The hold (step 4b) and the calibration
   (step 3) keep omega_j. settle_seconds None or 0 turns this off.
7. Output (simulate only): F_t, then fold_limit.limit_warp per frame (default WarpLimit: det J >=
   0.25, stretch <= 2), which scales the displacement down smoothly where the warp would fold or
   over-stretch. The browser preview applies it too, on its reduced basis grid (warp_limit.js).
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

import torch

from ..memory import require_memory
from ..spectral import MotionError, MotionTexture, SpectralVolume
from .drags import Drag
from .fold_limit import DEFAULT_WARP_LIMIT, WarpLimit, limit_warp
from .integrators import INTEGRATORS, settled_dynamics, step_matrices
from .modes import MIN_RELATIVE_MASS, ModalBasis

__all__ = ["INTEGRATORS", "MIN_RELATIVE_MASS", "ModalBasis", "modal_force", "simulate", "simulate_modal_coordinates",
           "simulate_modal_state", "step_matrices", "synthesize_motion"]

LOGGER = logging.getLogger(__name__)

MIN_RELATIVE_RESPONSE = 0.01
SETTLE_SECONDS = 2.0  # default: every released mode decays to 1% of its envelope within this time


def modal_force(basis: ModalBasis, drag: Drag) -> torch.Tensor:
    """(J,) complex128 g_j = conj(phi_j(p)) . d for a drag or poke at pixel p with vector d."""
    phi = basis.sample(drag.x, drag.y)
    return phi[:, 0].conj() * drag.dx + phi[:, 1].conj() * drag.dy


def _largest_response(basis: ModalBasis, weights: torch.Tensor) -> float:
    """max over pixels p of sum_j w_j |phi_j(p)|^2: the response of the picture's most mobile point."""
    return float((weights.to(basis.pixel_power) @ basis.pixel_power).max())


def _calibrated_force(basis: ModalBasis, drag: Drag, weights: torch.Tensor, largest: float, what: str) -> torch.Tensor:
    """(J,) complex128 modal force |d|^2 g_j / max(R, R_min) (alpha g or beta g of the docstring)."""
    g = modal_force(basis, drag)
    length_sq = drag.dx**2 + drag.dy**2
    response = float((weights * g.abs().square()).sum())
    limit = MIN_RELATIVE_RESPONSE * largest * length_sq
    if response < limit:
        LOGGER.warning(
            "%s at pixel (%.1f, %.1f) is on a part of the picture that barely moves along (%.2f, %.2f) px in this "
            "motion; it moves %.0f%% of its arrow. Put it on a moving part for a bigger response.",
            what, drag.x, drag.y, drag.dx, drag.dy, 100.0 * response / limit,
        )
    return g * (length_sq / max(response, limit, 1e-300))


def _system(basis: ModalBasis, stiffness_scale: float, mass_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    if not (math.isfinite(stiffness_scale) and stiffness_scale > 0):
        raise MotionError(f"stiffness_scale must be a positive number, got {stiffness_scale}.")
    if not (math.isfinite(mass_scale) and mass_scale > 0):
        raise MotionError(f"mass_scale must be a positive number, got {mass_scale}.")
    return basis.omegas * math.sqrt(stiffness_scale), basis.masses * mass_scale


def _event_frame(value: float) -> int:
    return int(math.floor(value + 0.5))


def simulate_modal_coordinates(
    basis: ModalBasis,
    drags: Sequence[Drag],
    num_frames: int,
    fps: float,
    damping: float = 0.05,
    stiffness_scale: float = 1.0,
    mass_scale: float = 1.0,
    integrator: str = "exact",
    settle_seconds: float | None = SETTLE_SECONDS,
) -> torch.Tensor:
    """Modal coordinates q (num_frames, J) complex128 of the drags and pokes (module docstring).

    drags: in pixels of the basis, start/hold in frames at fps; num_frames >= 1; fps > 0 frames/s;
    damping: ratio zeta in [0, 1] or more; settle_seconds: step 6 (None or 0: off).
    """
    return simulate_modal_state(
        basis, drags, num_frames, fps, damping, stiffness_scale, mass_scale, integrator, settle_seconds
    )[0]


def simulate_modal_state(
    basis: ModalBasis,
    drags: Sequence[Drag],
    num_frames: int,
    fps: float,
    damping: float = 0.05,
    stiffness_scale: float = 1.0,
    mass_scale: float = 1.0,
    integrator: str = "exact",
    settle_seconds: float | None = SETTLE_SECONDS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(q, v): q as simulate_modal_coordinates and v (num_frames, J) complex128, the velocity of the
    free state at each frame (the hand's motion during holds is not included)."""
    if num_frames < 1:
        raise MotionError(f"need at least one frame, got {num_frames}.")
    if not (math.isfinite(fps) and fps > 0):
        raise MotionError(f"fps must be a positive number, got {fps}.")
    if not (math.isfinite(damping) and damping >= 0):
        raise MotionError(f"damping must be a number >= 0, got {damping}.")
    omegas, masses = _system(basis, stiffness_scale, mass_scale)
    released, zetas = settled_dynamics(omegas, damping, settle_seconds)
    propagator = step_matrices(released, zetas, 1.0 / fps, integrator).to(torch.complex128)
    holds, releases, pokes = _schedule(basis, drags, omegas, masses)

    state = torch.zeros(basis.num_modes, 2, dtype=torch.complex128)  # (J, [q, v])
    q = torch.empty(num_frames, basis.num_modes, dtype=torch.complex128)
    v = torch.empty_like(q)
    for n in range(num_frames):
        if n in releases:
            state[:, 0] += releases[n]
        if n in pokes:
            state[:, 1] += pokes[n]
        q[n], v[n] = state[:, 0], state[:, 1]
        for start, hold, static in holds:
            if start <= n < start + hold:
                x = (n - start) / hold
                q[n] += x * x * (3.0 - 2.0 * x) * static
        state = torch.einsum("jab,jb->ja", propagator, state)
    if not torch.isfinite(torch.view_as_real(q)).all():
        raise MotionError("the simulation produced non-finite values; lower stiffness_scale or the drag sizes.")
    return q, v


def _schedule(
    basis: ModalBasis, drags: Sequence[Drag], omegas: torch.Tensor, masses: torch.Tensor
) -> tuple[list[tuple[int, int, torch.Tensor]], dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Calibrated events: holds [(start, hold, static response s_j)], releases {frame: sum s_j},
    pokes {frame: sum dv_j}; all (J,) complex128."""
    weights = {"drag": 1.0 / (basis.masses * basis.omegas.square()), "poke": 1.0 / (basis.masses * basis.omegas)}
    largest: dict[str, float] = {}
    holds: list[tuple[int, int, torch.Tensor]] = []
    releases: dict[int, torch.Tensor] = {}
    pokes: dict[int, torch.Tensor] = {}
    zero = torch.zeros(basis.num_modes, dtype=torch.complex128)
    for index, drag in enumerate(drags):
        if drag.kind not in weights:
            raise MotionError(f"drag {index + 1} has unknown kind '{drag.kind}'; use 'drag' or 'poke'.")
        if drag.kind not in largest:
            largest[drag.kind] = _largest_response(basis, weights[drag.kind])
        force = _calibrated_force(basis, drag, weights[drag.kind], largest[drag.kind], f"{drag.kind} {index + 1}")
        start = _event_frame(drag.start)
        if drag.kind == "poke":
            pokes[start] = pokes.get(start, zero) + force / masses
            continue
        static = force / (masses * omegas.square())
        hold = _event_frame(drag.hold)
        holds.append((start, hold, static))
        releases[start + hold] = releases.get(start + hold, zero) + static
    return holds, releases, pokes


def modal_energy(
    basis: ModalBasis, q: torch.Tensor, v: torch.Tensor, stiffness_scale: float = 1.0, mass_scale: float = 1.0
) -> torch.Tensor:
    """(N,) total energy sum_j m_j (|v_j|^2 + omega_j^2 |q_j|^2) / 2 of the simulated system."""
    omegas, masses = _system(basis, stiffness_scale, mass_scale)
    return 0.5 * (masses * (v.abs().square() + omegas.square() * q.abs().square())).sum(-1)


def require_motion_memory(volume: SpectralVolume, num_frames: int) -> None:
    """MemoryError (naming the fix) when the (B, num_frames, 2, H, W) float32 motion, held twice
    while the items are joined, would exceed all of the volume's device memory."""
    motion_bytes = 4 * volume.batch_size * num_frames * 2 * volume.height * volume.width
    require_memory(2 * motion_bytes, volume.coeffs.device, f"simulated motion of {num_frames} frames at "
                   f"{volume.width}x{volume.height}", "simulate fewer frames or lower the resolution.")


def synthesize_motion(basis: ModalBasis, q: torch.Tensor, fps: float) -> MotionTexture:
    """F_t = Re(sum_j phi_j q_j(t)) as a MotionTexture (1, N, 2, H, W) pixels, one matmul over frames.

    q: (N, J) complex modal coordinates; fps: frames/s of those N frames.
    """
    if q.ndim != 2 or q.shape[1] != basis.num_modes:
        raise MotionError(f"modal coordinates must be (frames, {basis.num_modes}), got {tuple(q.shape)}.")
    shapes = basis.shapes
    # Re(phi q) = Re(phi) Re(q) - Im(phi) Im(q): one real (N, 2J) x (2J, 2HW) product.
    real_shapes = torch.cat([shapes.real, -shapes.imag]).reshape(2 * basis.num_modes, -1)
    coords = torch.cat([q.real, q.imag], dim=1).to(real_shapes.device, real_shapes.dtype)
    flat = coords @ real_shapes
    return MotionTexture(flat.reshape(1, q.shape[0], 2, basis.height, basis.width), fps=float(fps))


def simulate(
    volume: SpectralVolume,
    drags: Sequence[Drag],
    num_frames: int,
    fps: float,
    damping: float = 0.05,
    stiffness_scale: float = 1.0,
    mass_scale: float = 1.0,
    integrator: str = "exact",
    max_modes: int | None = None,
    callback: Callable[[int, int], None] | None = None,
    settle_seconds: float | None = SETTLE_SECONDS,
    warp_limit: WarpLimit | None = DEFAULT_WARP_LIMIT,
) -> MotionTexture:
    """Motion texture (B, num_frames, 2, H, W) of every volume item answering the same drags (pixels of the volume).

    callback(item_index, B) after each batch item's motion is made (may raise to interrupt).
    settle_seconds: step 6 (None or 0: the modes keep their own frequency and damping);
    warp_limit: step 7, fold_limit.limit_warp on every frame (None: the raw modal sum).
    """
    require_motion_memory(volume, num_frames)
    motions = []
    for index in range(volume.batch_size):
        basis = ModalBasis.from_volume(volume, max_modes=max_modes, batch_index=index)
        q = simulate_modal_coordinates(
            basis, drags, num_frames, fps, damping, stiffness_scale, mass_scale, integrator, settle_seconds
        )
        displacements = synthesize_motion(basis, q, fps).displacements
        if warp_limit is not None:
            displacements = limit_warp(displacements[0], warp_limit)[None]
        motions.append(displacements)
        if callback is not None:
            callback(index, volume.batch_size)
    return MotionTexture(torch.cat(motions), fps=float(fps))
