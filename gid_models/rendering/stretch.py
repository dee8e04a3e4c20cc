"""Local geometry of a warp x -> x + d(x): Jacobian determinant (folds) and largest stretch."""

from __future__ import annotations

import torch


def displacement_gradient(displacements: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(du/dx, du/dy, dv/dx, dv/dy), each (N, H, W), of displacements (N, 2, H, W) pixels = (u, v).

    Central differences inside, one-sided at the border (torch.gradient); a side of one pixel has
    no gradient (zeros).
    """
    def along(field: torch.Tensor, dim: int) -> torch.Tensor:
        if field.shape[dim] < 2:
            return torch.zeros_like(field)
        return torch.gradient(field, dim=dim)[0]

    u, v = displacements[:, 0], displacements[:, 1]
    return along(u, 2), along(u, 1), along(v, 2), along(v, 1)


def jacobian_stats(
    gradient: tuple[torch.Tensor, ...], scale: float | torch.Tensor = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(det, largest singular value) of J = I + scale * grad d, each shaped like the gradient parts.

    det < 0 where the warp folds (the picture turns inside out there); the singular value is the
    largest local stretch factor (1 = no stretch).
    """
    ux, uy, vx, vy = gradient
    a, b, c, d = 1.0 + scale * ux, scale * uy, scale * vx, 1.0 + scale * vy
    det = a * d - b * c
    frobenius = a * a + b * b + c * c + d * d
    discriminant = (frobenius.square() - 4.0 * det.square()).clamp_min(0.0)
    return det, torch.sqrt(0.5 * (frobenius + torch.sqrt(discriminant)))


def warp_jacobian(displacements: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(det, largest singular value), each (N, H, W), of x -> x + d(x) for d (N, 2, H, W) pixels."""
    return jacobian_stats(displacement_gradient(displacements))
