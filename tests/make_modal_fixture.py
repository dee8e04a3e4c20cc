"""Write tests/fixtures/modal_vectors.json: shared test vectors for the browser's modal simulation.

The Python simulation (gid_models/dynamics/modal.py) is the reference. This script builds a small
modal basis from a seeded spectral volume, runs a few interaction cases (drags, pokes, overlapping
gestures, scaled and critically/over-damped systems) and stores the modal coordinates q (N, J) and
the displacements F_t(p) at chosen frames and pixels. web/js/tests/preview_modal_sim.test.mjs
must reproduce them within 1e-3 (`node --test web/js/tests/`); tests/test_interactive_preview.py
checks that the file still matches modal.py.

Run from the repository root after changing modal.py: python -m tests.make_modal_fixture
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gid_models.dynamics import SETTLE_SECONDS, ModalBasis, drags_from_json, simulate_modal_coordinates, synthesize_motion
from gid_models.dynamics.basis_export import build_preview_basis, load_preview_basis, save_preview_basis
from gid_models.spectral import SpectralVolume

FIXTURE_PATH = Path(__file__).resolve().parent / "fixtures" / "modal_vectors.json"
BASIS_FILE_PATH = FIXTURE_PATH.with_name("preview_basis.safetensors")
BASIS_FILE_PARAMS = {"damping": 0.07, "fps": 24.0, "frames": 60, "hold_frames": 12, "integrator": "exact"}
WIDTH, HEIGHT, BINS, WINDOW, VOLUME_FPS = 12, 9, 5, 150, 30.0
DIGITS = 12

CASES: list[dict[str, Any]] = [
    {
        "name": "single drag, node defaults",
        "drags": [{"x": 0.5, "y": 0.4, "dx": 0.05, "dy": 0.0, "start": 0, "hold": 15, "kind": "drag"}],
        "params": {"damping": 0.05, "stiffness_scale": 1.0, "mass_scale": 1.0, "fps": 30.0},
        "num_frames": 48,
    },
    {
        "name": "drag then poke, scaled system",
        "drags": [
            {"x": 0.2, "y": 0.7, "dx": -0.03, "dy": 0.04, "start": 2, "hold": 9, "kind": "drag"},
            {"x": 0.8, "y": 0.25, "dx": 0.02, "dy": -0.05, "start": 14, "kind": "poke"},
        ],
        "params": {"damping": 0.1, "stiffness_scale": 2.5, "mass_scale": 0.6, "fps": 24.0},
        "num_frames": 40,
    },
    {
        "name": "overlapping drags, fractional frames, default hold, release after the end",
        "drags": [
            {"x": 0.35, "y": 0.5, "dx": 0.0, "dy": 0.06, "start": 1.5, "hold": 6.4},
            {"x": 0.95, "y": 0.05, "dx": 0.04, "dy": 0.01, "start": 4},
            {"x": 0.6, "y": 0.9, "dx": -0.02, "dy": 0.0, "start": 30, "hold": 20},
        ],
        "params": {"damping": 0.03, "stiffness_scale": 1.0, "mass_scale": 1.0, "fps": 30.0, "hold_frames": 10},
        "num_frames": 36,
    },
    {
        "name": "critically damped poke",
        "drags": [{"x": 0.1, "y": 0.1, "dx": 0.05, "dy": 0.05, "start": 3, "kind": "poke"}],
        "params": {"damping": 1.0, "stiffness_scale": 4.0, "mass_scale": 1.0, "fps": 12.0, "settle_seconds": 0.5},
        "num_frames": 20,
    },
    {
        "name": "over-damped drag, zero hold",
        "drags": [{"x": 0.45, "y": 0.55, "dx": 0.05, "dy": -0.02, "start": 5, "hold": 0}],
        "params": {"damping": 1.7, "stiffness_scale": 0.5, "mass_scale": 3.0, "fps": 30.0, "settle_seconds": 0},
        "num_frames": 25,
    },
    {
        "name": "paper's Euler stepping (sub-stepped)",
        "drags": [{"x": 0.3, "y": 0.3, "dx": 0.12, "dy": 0.06, "start": 0, "hold": 5}],
        "params": {"damping": 0.05, "stiffness_scale": 3.0, "mass_scale": 1.0, "fps": 8.0, "integrator": "euler"},
        "num_frames": 30,
    },
]
SAMPLE_FRAMES = (0, 5, 11, 19)
SAMPLE_PIXELS = ((0, 0), (5, 4), (11, 8), (3, 7))


def fixture_basis() -> ModalBasis:
    """Modes of a seeded, spatially smooth spectral volume (BINS bins at HEIGHT x WIDTH pixels)."""
    generator = torch.Generator().manual_seed(1234)
    coarse = torch.randn(1, BINS * 4, 3, 4, generator=generator, dtype=torch.float64)
    coeffs = F.interpolate(coarse, size=(HEIGHT, WIDTH), mode="bilinear", align_corners=True)
    coeffs = coeffs.reshape(1, BINS, 4, HEIGHT, WIDTH) / torch.arange(1, BINS + 1).view(1, BINS, 1, 1, 1)
    volume = SpectralVolume(coeffs.float(), num_frames=WINDOW, fps=VOLUME_FPS)
    return ModalBasis.from_volume(volume)


def _rounded(values: torch.Tensor) -> list:
    return [float(f"{v:.{DIGITS}g}") for v in values.flatten().tolist()]


def basis_record(basis: ModalBasis) -> dict[str, Any]:
    """The basis as basis_format.js's makeBasis expects it: shapes (J, H, W, 4) channel-last, flat."""
    shapes = torch.stack(
        [basis.shapes[:, 0].real, basis.shapes[:, 0].imag, basis.shapes[:, 1].real, basis.shapes[:, 1].imag], dim=-1
    )
    return {
        "numModes": basis.num_modes,
        "width": basis.width,
        "height": basis.height,
        "sourceWidth": basis.width,
        "sourceHeight": basis.height,
        "shapes": [float(v) for v in shapes.flatten().tolist()],  # float32 values, exact in JSON
        "omegas": _rounded(basis.omegas),
        "masses": _rounded(basis.masses),
    }


def run_case(basis: ModalBasis, case: dict[str, Any]) -> dict[str, Any]:
    params = case["params"]
    text = json.dumps({"version": 1, "drags": case["drags"]})
    drags = drags_from_json(text, basis.width, basis.height, default_hold=params.get("hold_frames", 15))
    q = simulate_modal_coordinates(
        basis,
        drags,
        case["num_frames"],
        params["fps"],
        damping=params["damping"],
        stiffness_scale=params["stiffness_scale"],
        mass_scale=params["mass_scale"],
        integrator=params.get("integrator", "exact"),
        settle_seconds=params.get("settle_seconds", SETTLE_SECONDS),
    )
    motion = synthesize_motion(basis, q, params["fps"]).displacements[0].double()  # (N, 2, H, W)
    samples = [
        {"frame": n, "x": x, "y": y, "dx": float(f"{motion[n, 0, y, x]:.{DIGITS}g}"), "dy": float(f"{motion[n, 1, y, x]:.{DIGITS}g}")}
        for n in SAMPLE_FRAMES
        if n < case["num_frames"]
        for x, y in SAMPLE_PIXELS
    ]
    return {
        "name": case["name"],
        "drags_json": text,
        "params": params,
        "num_frames": case["num_frames"],
        "q_re": _rounded(q.real),
        "q_im": _rounded(q.imag),
        "displacements": samples,
    }


def write_basis_file(basis: ModalBasis, path: Path) -> dict[str, Any]:
    """Export 3 of the fixture's modes on an 8-pixel grid to `path` (float16, as the node does) and
    return what basis_format.js must read back from it."""
    save_preview_basis(build_preview_basis(basis, max_modes=3, max_side=8), path, BASIS_FILE_PARAMS)
    stored, params = load_preview_basis(path)
    return {
        "file": path.name,
        "numModes": stored.num_modes,
        "height": stored.grid_size[0],
        "width": stored.grid_size[1],
        "sourceWidth": stored.source_width,
        "sourceHeight": stored.source_height,
        "modeIndices": list(stored.mode_indices),
        "params": params,
        "shapes": [float(v) for v in stored.shapes.flatten().tolist()],
        "omegas": [float(v) for v in stored.omegas.tolist()],
        "masses": [float(v) for v in stored.masses.tolist()],
    }


def build_fixture(basis_file: Path = BASIS_FILE_PATH) -> dict[str, Any]:
    """The whole fixture as a JSON-ready dict (deterministic); also writes the basis file."""
    torch.set_num_threads(1)
    basis = fixture_basis()
    return {
        "about": "made by tests/make_modal_fixture.py from gid_models/dynamics/modal.py; do not edit",
        "basis": basis_record(basis),
        "cases": [run_case(basis, case) for case in CASES],
        "basis_file": write_basis_file(basis, basis_file),
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    FIXTURE_PATH.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE_PATH.write_text(json.dumps(build_fixture(), indent=1) + "\n")
    logging.info("wrote %s and %s", FIXTURE_PATH, BASIS_FILE_PATH)


if __name__ == "__main__":
    main()
