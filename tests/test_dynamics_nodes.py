"""GIDModalSimulation as ComfyUI runs it: inputs, outputs, UI payload and bad-input messages."""

from __future__ import annotations

import importlib
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

NODE = "GIDModalSimulation"


@pytest.fixture
def spectral(pack):
    return importlib.import_module("comfyui_gid.gid_models.spectral")


@pytest.fixture
def dynamics(pack):
    return importlib.import_module("comfyui_gid.gid_models.dynamics")


def volume(spectral, generator, height=12, width=16, batch=1):
    coarse = torch.randn(batch, 5 * 4, 3, 4, generator=generator)
    coeffs = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear").view(batch, 5, 4, height, width)
    return spectral.SpectralVolume(coeffs, num_frames=150, fps=30.0)


def drags_json(*entries):
    return json.dumps({"version": 1, "drags": list(entries)})


def run(pack, spectral_volume, drags, **overrides):
    args = dict(damping=0.05, stiffness_scale=1.0, mass_scale=1.0, frames=12, fps=24.0, hold_frames=4)
    args.update(overrides)
    return pack.NODE_CLASS_MAPPINGS[NODE]().simulate(spectral_volume, drags, **args)


def test_inputs_keep_the_contract_order(pack):
    node = pack.NODE_CLASS_MAPPINGS[NODE]
    inputs = node.INPUT_TYPES()
    assert list(inputs["required"]) == [
        "spectral_volume", "drags", "damping", "stiffness_scale", "mass_scale", "frames", "fps", "hold_frames",
    ]
    assert list(inputs["optional"])[0] == "picture"
    assert inputs["required"]["drags"][1]["default"] == '{"version": 1, "drags": []}'
    assert inputs["required"]["drags"][1]["multiline"] is True
    assert node.RETURN_TYPES == ("GID_MOTION", "FLOAT") and node.CATEGORY == "GID/dynamics"
    for section in inputs.values():
        assert all("tooltip" in spec[1] for spec in section.values())


def test_simulation_matches_model_code_and_keeps_inputs(pack, spectral, dynamics, generator):
    vol = volume(spectral, generator, batch=2)
    before = vol.coeffs.clone()
    text = drags_json({"x": 0.5, "y": 0.4, "dx": 0.1, "dy": 0.0}, {"x": 0.2, "y": 0.7, "dx": 0, "dy": -0.1, "kind": "poke", "start": 3})
    out = run(pack, vol, text)
    motion, fps = out["result"]
    assert isinstance(motion, spectral.MotionTexture)
    assert motion.displacements.shape == (2, 12, 2, 12, 16) and fps == 24.0 and motion.fps == 24.0
    assert torch.equal(vol.coeffs, before)
    drags = dynamics.drags_from_json(text, 16, 12, default_hold=4)
    expected = dynamics.simulate(vol, drags, 12, 24.0)
    assert torch.allclose(motion.displacements, expected.displacements, atol=1e-6)
    # The default hold (4 frames) applies: the dragged point is at d on frame 4, along x.
    basis = dynamics.ModalBasis.from_volume(vol)
    assert motion.displacements[0, 4, 0].flatten().abs().max() > 0
    assert out["ui"] == {}  # no picture: no preview entries (the live preview payload is empty for now)
    assert basis.num_modes == 4


def test_picture_preview_is_saved_in_temp(pack, spectral, comfy_shim, generator):
    picture = torch.rand(1, 24, 32, 3, generator=generator)
    out = run(pack, volume(spectral, generator), drags_json(), picture=picture)
    entry = out["ui"]["gid_drag_picture"][0]
    assert entry["type"] == "temp" and entry["subfolder"] == "gid" and entry["filename"].endswith(".png")
    folder_paths = importlib.import_module("folder_paths")
    path = Path(folder_paths.get_temp_directory()) / entry["subfolder"] / entry["filename"]
    assert path.is_file()
    assert out["result"][0].displacements.abs().max() == 0  # no drags: a still motion
    # one picture file for both widgets: the live preview names the drag widget's picture
    assert out["ui"]["gid_live_preview"][0]["picture"] == entry["filename"]


def test_simulation_reports_progress_per_item_and_honours_interrupts(pack, spectral, comfy_shim, generator):
    utils = importlib.import_module("comfy.utils")
    text = drags_json({"x": 0.5, "y": 0.4, "dx": 0.1, "dy": 0.0})
    run(pack, volume(spectral, generator, batch=2), text)
    assert utils.UPDATES == [(1, 2), (2, 2)]
    comfy_shim.INTERRUPT = True
    with pytest.raises(comfy_shim.InterruptProcessingException):
        run(pack, volume(spectral, generator, batch=2), text)


@pytest.mark.parametrize(
    "drags, message",
    [
        ('{"version": 1, "drags": [', "not valid JSON"),
        ("[]", "must be an object"),
        ('{"version": 2, "drags": []}', "version"),
        (drags_json({"x": 1.2, "y": 0.4, "dx": 0.1, "dy": 0}), "outside the picture"),
        (drags_json({"x": 0.5, "y": -0.1, "dx": 0.1, "dy": 0}), "outside the picture"),
        (drags_json({"x": 0.5, "y": 0.4, "dx": 0, "dy": 0}), "zero length"),
        (drags_json({"x": 0.5, "y": 0.4, "dx": 0.1}), "no 'dy'"),
        (drags_json({"x": 0.5, "y": 0.4, "dx": "a", "dy": 0}), "finite number"),
        (drags_json({"x": 0.5, "y": 0.4, "dx": 0.1, "dy": 0, "kind": "shove"}), "kind"),
        (drags_json({"x": 0.5, "y": 0.4, "dx": 0.1, "dy": 0, "hold": -1}), ">= 0"),
    ],
)
def test_bad_drags_name_the_node(pack, spectral, generator, drags, message):
    with pytest.raises(ValueError, match=message) as error:
        run(pack, volume(spectral, generator), drags)
    assert str(error.value).startswith(f"[{NODE}]")


def test_bad_volumes_and_settings_name_the_node(pack, spectral, generator):
    still = spectral.SpectralVolume(torch.zeros(1, 4, 4, 8, 8).index_fill_(1, torch.tensor([0]), 2.0), num_frames=150)
    with pytest.raises(ValueError, match=r"^\[GIDModalSimulation\].*no motion above f_0"):
        run(pack, still, drags_json())
    vol = volume(spectral, generator)
    normalization = importlib.import_module("comfyui_gid.gid_models.normalization")
    normalized = normalization.normalize(vol, normalization.fit_normalization([vol]))
    with pytest.raises(ValueError, match=r"^\[GIDModalSimulation\].*normalized"):
        run(pack, normalized, drags_json())
    with pytest.raises(ValueError, match=r"^\[GIDModalSimulation\].*GID_SPECTRAL_VOLUME"):
        run(pack, torch.zeros(3), drags_json())
    with pytest.raises(ValueError, match=r"^\[GIDModalSimulation\].*sub-steps"):
        run(pack, vol, drags_json(), stiffness_scale=1e9, fps=1.0, integrator="euler")


def test_motion_larger_than_memory_is_refused_before_it_is_simulated(pack, spectral, dynamics, generator):
    """10,000 frames at a size whose motion needs 1.5x all of this machine's memory: a clear error
    naming the node and the fix, before anything that large is allocated (the kernel would
    otherwise kill the ComfyUI server)."""
    from comfyui_gid.gid_models.memory import total_memory_bytes

    side = math.ceil(math.sqrt(1.5 * total_memory_bytes("cpu") / (16 * 10000)))  # 16 bytes per pixel and frame
    big = volume(spectral, generator, height=side, width=side)
    message = rf"motion of 10000 frames at {side}x{side} needs about .* GiB, more than the .* free now; .*fewer frames"
    with pytest.raises(RuntimeError, match=rf"^\[{NODE}\] ran out of memory \(simulated {message}"):
        run(pack, big, drags_json({"x": 0.5, "y": 0.5, "dx": 0.1, "dy": 0.0}), frames=10000)
    with pytest.raises(MemoryError, match=message):
        dynamics.simulate(big, [], 10000, 30.0)


def test_widget_json_from_the_browser_module_is_read_identically(dynamics):
    """web/js/lib/drag_model.js writes what drags.py reads, and maps to the same pixels."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the browser module cannot be run here")
    module = (Path(__file__).resolve().parent.parent / "web" / "js" / "lib" / "drag_model.js").as_uri()
    script = f"""
        import {{ DragEditor, fitRect, normalizedToPixels, serializeDrags }} from "{module}";
        const rect = fitRect(512, 288, 400, 300);
        const editor = new DragEditor();
        editor.down(rect, 120, 140); editor.move(rect, 150, 120); editor.up(rect, 160, 118);
        editor.down(rect, 300, 200, "poke"); editor.up(rect, 290, 230);
        editor.selected = 0; editor.setSelectedTiming({{ start: 3, hold: 9 }});
        const text = serializeDrags(editor.drags);
        console.log(JSON.stringify({{ text, pixels: editor.drags.map((d) => normalizedToPixels(JSON.parse(text).drags[editor.drags.indexOf(d)], 512, 288)) }}));
    """
    result = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    drags = dynamics.drags_from_json(report["text"], 512, 288, default_hold=15)
    assert [d.kind for d in drags] == ["drag", "poke"]
    assert (drags[0].start, drags[0].hold, drags[1].start, drags[1].hold) == (3, 9, 0, 15)
    for drag, pixels in zip(drags, report["pixels"]):
        assert (drag.x, drag.y, drag.dx, drag.dy) == pytest.approx((pixels["x"], pixels["y"], pixels["dx"], pixels["dy"]), abs=1e-9)
