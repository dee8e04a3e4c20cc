"""Live poke preview, Python side: basis export, the node's UI payload, and the shared JS fixture."""

from __future__ import annotations

import importlib
import importlib.util
import json
import math

import pytest
import torch

from conftest import REPO_ROOT
from gid_models.dynamics import ModalBasis
from gid_models.dynamics.basis_export import (
    build_preview_basis,
    load_preview_basis,
    reduced_grid_size,
    save_preview_basis,
    select_dominant_modes,
)
from gid_models.spectral import SpectralVolume

PARAMS = {"damping": 0.05, "stiffness_scale": 1.0, "mass_scale": 1.0, "frames": 30, "fps": 30.0,
          "hold_frames": 15, "integrator": "exact"}


def _fixture_module():
    spec = importlib.util.spec_from_file_location("make_modal_fixture", REPO_ROOT / "tests" / "make_modal_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _close(actual, expected, path="fixture"):
    """Recursive comparison of JSON values; numbers within 1e-9 relative."""
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), path
        for key in expected:
            _close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected)):
            _close(a, e, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, path


def _smooth_volume(generator, bins=6, height=40, width=64, batch=1):
    coarse = torch.randn(batch, bins * 4, 3, 4, generator=generator)
    coeffs = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)
    return coeffs.reshape(batch, bins, 4, height, width)


def test_shared_fixture_is_up_to_date_with_modal_py(tmp_path):
    """tests/fixtures/modal_vectors.json (what the JS tests check against) equals what modal.py gives
    now; if this fails after a change to modal.py, run `python -m tests.make_modal_fixture`."""
    module = _fixture_module()
    fresh = module.build_fixture(basis_file=tmp_path / "preview_basis.safetensors")
    stored = json.loads(module.FIXTURE_PATH.read_text())
    _close(fresh, stored)
    fresh_basis, fresh_params = load_preview_basis(tmp_path / "preview_basis.safetensors")
    stored_basis, stored_params = load_preview_basis(module.BASIS_FILE_PATH)  # header order varies
    assert fresh_params == stored_params and fresh_basis.mode_indices == stored_basis.mode_indices
    for name in ("shapes", "omegas", "masses"):
        assert torch.equal(getattr(fresh_basis, name), getattr(stored_basis, name)), name
    assert len(stored["cases"]) >= 5 and all(c["displacements"] for c in stored["cases"])


def test_dominant_modes_are_the_heaviest_in_frequency_order():
    masses = torch.tensor([0.1, 3.0, 0.5, 3.0, 2.0], dtype=torch.float64)
    assert select_dominant_modes(masses, 3) == [1, 3, 4]
    assert select_dominant_modes(masses, 10) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="at least 1"):
        select_dominant_modes(masses, 0)


def test_reduced_grid_keeps_aspect_and_never_upscales():
    assert reduced_grid_size(288, 512, 256) == (144, 256)
    assert reduced_grid_size(512, 100, 256) == (256, 50)
    assert reduced_grid_size(40, 64, 256) == (40, 64)


def test_export_keeps_units_and_round_trips(generator, tmp_path):
    volume = SpectralVolume(_smooth_volume(generator, bins=12, height=24, width=40), num_frames=150, fps=30.0)
    basis = ModalBasis.from_volume(volume)
    same_size = build_preview_basis(basis, max_modes=4, max_side=64)
    kept = select_dominant_modes(basis.masses, 4)
    assert same_size.mode_indices == tuple(int(k) for k in basis.frequency_indices[kept])
    assert torch.equal(same_size.shapes[..., 0], basis.shapes[kept, 0].real)  # exact copy at full size
    assert torch.equal(same_size.shapes[..., 3], basis.shapes[kept, 1].imag)
    assert same_size.omegas.tolist() == pytest.approx(basis.omegas[kept].tolist(), rel=1e-6)

    reduced = build_preview_basis(basis, max_modes=4, max_side=20)
    assert reduced.grid_size == (12, 20) and (reduced.source_height, reduced.source_width) == (24, 40)
    # Values stay in source pixels: area downsampling preserves the mean displacement.
    assert reduced.shapes.mean((1, 2)) == pytest.approx(same_size.shapes.mean((1, 2)), abs=1e-5)

    path = tmp_path / "basis.safetensors"
    save_preview_basis(reduced, path, PARAMS)
    loaded, params = load_preview_basis(path)
    assert params == PARAMS and loaded.mode_indices == reduced.mode_indices
    assert torch.allclose(loaded.shapes, reduced.shapes, rtol=1e-3, atol=1e-4)  # float16 storage
    assert torch.equal(loaded.masses, reduced.masses)


def test_preview_payload_writes_basis_and_picture_to_temp(pack, pack_models, comfy_shim, generator):
    interactive = importlib.import_module("comfyui_gid.nodes.interactive")
    comfy_module = importlib.import_module("comfyui_gid.nodes._comfy")
    export = importlib.import_module("comfyui_gid.gid_models.dynamics.basis_export")
    volume = pack_models.spectral.SpectralVolume(_smooth_volume(generator, bins=16, height=160, width=288),
                                                 num_frames=150, fps=30.0)
    picture = torch.rand(1, 400, 800, 3, generator=generator)
    picture_before = picture.clone()

    ui = interactive.preview_payload(picture, volume, PARAMS)

    assert torch.equal(picture, picture_before)
    (entry,) = ui["gid_live_preview"]
    assert entry["type"] == "temp" and entry["subfolder"] == "gid" and entry["modes"] == 8
    folder = comfy_module.temp_directory() / entry["subfolder"]
    basis, params = export.load_preview_basis(folder / entry["basis"])
    assert basis.num_modes == 8 and max(basis.grid_size) == 256 and basis.source_width == 288
    assert params["damping"] == 0.05 and params["integrator"] == "exact"
    from PIL import Image

    with Image.open(folder / entry["picture"]) as image:
        assert image.size == (640, 320)
    # Same inputs, same files: nothing piles up in the temp folder on re-runs.
    assert interactive.preview_payload(picture, volume, PARAMS) == ui


def test_preview_payload_is_empty_without_picture_and_has_no_live_preview_without_motion(pack, pack_models, comfy_shim, caplog):
    interactive = importlib.import_module("comfyui_gid.nodes.interactive")
    still = pack_models.spectral.SpectralVolume(torch.zeros(1, 4, 4, 8, 8), num_frames=150, fps=30.0)
    assert interactive.preview_payload(None, still, PARAMS) == {}
    with caplog.at_level("WARNING", logger="ComfyUI-GID"):
        payload = interactive.preview_payload(torch.rand(1, 8, 8, 3), still, PARAMS)
    assert "gid_live_preview" not in payload and payload["gid_drag_picture"][0]["filename"].endswith(".png")
    assert "no live preview" in caplog.text and "nothing to simulate" in caplog.text


def test_modal_simulation_node_sends_the_live_preview(pack, pack_models, comfy_shim, generator):
    node = pack.NODE_CLASS_MAPPINGS["GIDModalSimulation"]()
    volume = pack_models.spectral.SpectralVolume(_smooth_volume(generator, bins=8, height=24, width=32),
                                                 num_frames=150, fps=30.0)
    drags = '{"version": 1, "drags": [{"x": 0.5, "y": 0.4, "dx": 0.05, "dy": 0.0, "start": 0, "hold": 5}]}'
    out = node.simulate(volume, drags, 0.05, 1.0, 1.0, 12, 30.0, 15, picture=torch.rand(1, 48, 64, 3, generator=generator))
    (entry,) = out["ui"]["gid_live_preview"]
    assert entry["basis"].endswith(".safetensors") and entry["picture"].endswith(".png") and entry["modes"] == 7
    assert out["ui"]["gid_drag_picture"] == [{"filename": entry["picture"], "subfolder": entry["subfolder"], "type": "temp"}]
