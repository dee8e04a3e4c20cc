"""Hostile input to the `gid` command line and the model package it drives (issue 18).

Every case asserts its outcome: a clear error that names the option and the fix, raised before
any slow step where the arguments decide it (the commands are given the bundled model with 1000
DDIM steps and the neural renderer, so reaching the sampler would run for many minutes and trip
the case's time limit), or a correct result. Inputs are never modified, no partial or temporary
file is left behind, and no black or NaN video is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gid_models import checks
from gid_models.cli import main
from gid_models.flow import require_flow_memory
from gid_models.memory import free_memory_bytes, require_memory, total_memory_bytes
from gid_models.rendering import NeuralRenderer, render_motion
from gid_models.spectral import MotionError, MotionTexture, SpectralVolume
from gid_models.video_io import read_video, write_video
from synthetic_clips import two_region_clip

REPO_ROOT = Path(__file__).resolve().parent.parent
CASE_LIMIT_S = 120  # per case; an argument that reached the sampler would run far longer
SLOW = ["--steps", "1000"]  # the bundled model at 1000 steps: minutes if any case got that far

pytestmark = pytest.mark.usefixtures("case_time_limit")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_picture(path: Path, pixels: np.ndarray) -> Path:
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 96x64 synthetic clip, its first frame as a picture, a 1x1 picture, bad renderer files."""
    folder = tmp_path_factory.mktemp("hostile_inputs")
    clip = two_region_clip(num_frames=48)
    clip_path = folder / "clip.mp4"
    write_video(clip_path, clip.frames, 24.0)
    first = (clip.frames[0].numpy() * 255).round().astype(np.uint8)
    files = {
        "clip": clip_path,
        "picture": _write_picture(folder / "picture.png", first),
        "tiny": _write_picture(folder / "tiny.png", np.full((1, 1, 3), 128, np.uint8)),
        "pickle": folder / "renderer_pickle.safetensors",
        "nan_renderer": folder / "renderer_nan.safetensors",
        "huge_renderer": folder / "renderer_huge.safetensors",
        "deep_renderer": folder / "renderer_deep.safetensors",
    }
    files["pickle"].write_bytes(b"\x80\x04\x95" + bytes(64))
    from safetensors.torch import save_file

    renderer = NeuralRenderer(channels=(4,))
    state = {k: torch.full_like(v, float("nan")) for k, v in renderer.state_dict().items()}
    save_file(state, str(files["nan_renderer"]), metadata={"format": "gid-neural-renderer", "config": '{"channels": [4]}'})
    state = {k: v.contiguous() for k, v in renderer.state_dict().items()}
    save_file(state, str(files["huge_renderer"]),
              metadata={"format": "gid-neural-renderer", "config": '{"channels": [1000000, 1000000]}'})
    save_file(state, str(files["deep_renderer"]),
              metadata={"format": "gid-neural-renderer", "config": "[" * 3000 + "]" * 3000})
    digests = {name: _digest(path) for name, path in files.items()}
    yield files
    for name, path in files.items():
        assert _digest(path) == digests[name], f"input {path.name} was modified"


def _refused(argv: list[str], caplog, out_dir: Path, *needles: str) -> str:
    """Run the CLI; assert exit code 2, an error naming every needle, and nothing left in out_dir."""
    before = sorted(p.name for p in out_dir.iterdir())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gid"):
        code = main(argv)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert code == 2 and errors, f"expected a refusal, got exit {code}: {caplog.text}"
    for needle in needles:
        assert needle in errors[-1], f"{needle!r} missing from {errors[-1]!r}"
    assert not any("motion sampled" in r.getMessage() or "wrote" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in out_dir.iterdir()) == before, "a file was left behind"
    return errors[-1]


# (name, arguments after the command, needles the error must contain); {x} are fixture files.
ANIMATE_CASES = [
    ("avi suffix", ["-o", "{out}/o.avi"], ["-o", ".mp4"]),
    ("no suffix", ["-o", "{out}/o"], ["-o", ".mp4"]),
    ("output folder", ["-o", "{out}/"], ["-o", "is a folder"]),
    ("unwritable folder", ["-o", "/proc/gid_no/o.mp4"], ["-o", "cannot be written"]),
    ("output is the picture", ["-o", "{picture}"], ["-o"]),
    ("frames 0", ["--frames", "0"], ["--frames", "e.g. 150"]),
    ("frames -3", ["--frames=-3"], ["--frames"]),
    ("frames 100000", ["--frames", "100000"], ["--frames"]),
    ("fps 0", ["--fps", "0"], ["--fps", "frames/s"]),
    ("fps nan", ["--fps", "nan"], ["--fps", "finite"]),
    ("fps inf", ["--fps", "inf"], ["--fps", "finite"]),
    ("fps -inf", ["--fps=-inf"], ["--fps"]),
    ("fps 1e-9 gif", ["--fps", "1e-9", "-o", "{out}/o.gif"], ["--fps"]),
    ("gain nan", ["--gain", "nan"], ["--gain", "finite"]),
    ("gain inf", ["--gain", "inf"], ["--gain"]),
    ("gain 1e6", ["--gain", "1e6"], ["--gain", "at most"]),
    ("gain -1", ["--gain=-1"], ["--gain"]),
    ("max-side -1", ["--max-side=-1"], ["--max-side"]),
    ("max-side 3", ["--max-side", "3"], ["--max-side"]),
    ("device bogus", ["--device", "bogus"], ["--device", "cpu"]),
    ("device cuda:99", ["--device", "cuda:99"], ["--device"]),
    ("device meta", ["--device", "meta"], ["--device"]),
    ("seed beyond 64 bits", ["--seed", str(2**70)], ["--seed", "2**64"]),
    ("seed negative", ["--seed=-1"], ["--seed"]),
    ("steps 0", ["--steps", "0"], ["--steps"]),
    ("renderer pickle", ["--renderer", "{pickle}"], ["--renderer", "pickle"]),
    ("renderer png", ["--renderer", "{picture}"], ["--renderer", "safetensors"]),
    ("renderer NaN weights", ["--renderer", "{nan_renderer}"], ["--renderer", "NaN"]),
    ("renderer huge config", ["--renderer", "{huge_renderer}"], ["--renderer", "config"]),
    ("renderer recursive config", ["--renderer", "{deep_renderer}"], ["--renderer", "config"]),
    ("renderer missing", ["--renderer", "{out}/none.safetensors"], ["--renderer"]),
    ("mask not an image", ["--mask", "{pickle}"], ["--mask"]),
    ("motion-from not a video", ["--motion-from", "{picture}"], ["--motion-from"]),
    ("motion-from is the output", ["--motion-from", "{clip}", "-o", "{clip}"], ["-o", "input"]),
]


def _fill(argv: list[str], files: dict, out: Path) -> list[str]:
    names = {name: str(path) for name, path in files.items()} | {"out": str(out)}
    return [a.format(**names) for a in argv]


@pytest.mark.parametrize("name, extra, needles", ANIMATE_CASES, ids=[c[0] for c in ANIMATE_CASES])
def test_animate_refuses_bad_arguments_before_sampling(inputs, tmp_path, caplog, name, extra, needles):
    argv = ["animate", str(inputs["picture"]), "-o", str(tmp_path / "out.mp4"), *SLOW, *_fill(extra, inputs, tmp_path)]
    _refused(argv, caplog, tmp_path, *needles)


def test_a_picture_too_small_to_animate_is_refused(inputs, tmp_path, caplog):
    message = _refused(["animate", str(inputs["tiny"]), "-o", str(tmp_path / "o.mp4"), *SLOW], caplog, tmp_path,
                       "1x1", "16 pixels")
    assert "larger picture" in message


POKE_CASES = [
    ("at nan", ["--at", "nan,3"], ["--at", "finite"]),
    ("at outside", ["--at", "5000,3"], ["--at", "outside"]),
    ("at negative", ["--at=-4,3"], ["--at", "outside"]),
    ("drag zero", ["--drag", "0,0"], ["--drag", "zero length"]),
    ("drag 1e30", ["--drag", "1e30,0"], ["--drag"]),
    ("drag inf", ["--drag", "inf,0"], ["--drag", "finite"]),
    ("hold-frames -5", ["--hold-frames=-5"], ["--hold-frames"]),
    ("damping -1", ["--damping=-1"], ["--damping"]),
    ("damping 50", ["--damping", "50"], ["--damping", "at most 1"]),
    ("damping nan", ["--damping", "nan"], ["--damping"]),
]


@pytest.mark.parametrize("name, extra, needles", POKE_CASES, ids=[c[0] for c in POKE_CASES])
def test_poke_refuses_bad_arguments_before_sampling(inputs, tmp_path, caplog, name, extra, needles):
    argv = ["poke", str(inputs["picture"]), "-o", str(tmp_path / "out.mp4"), "--at", "40,30", "--drag", "5,0",
            *SLOW, *extra]
    _refused(argv, caplog, tmp_path, *needles)


def test_extract_never_overwrites_its_clip_and_needs_a_safetensors_name(inputs, tmp_path, caplog):
    clip = str(inputs["clip"])
    _refused(["extract", clip, "-o", clip], caplog, inputs["clip"].parent, "-o", ".safetensors")
    _refused(["extract", clip, "-o", str(tmp_path / "volume.mp4")], caplog, tmp_path, "-o", ".safetensors")
    _refused(["extract", clip, "-o", str(tmp_path) + "/"], caplog, tmp_path, "-o", "folder")
    _refused(["extract", clip, "-o", str(tmp_path / "v.safetensors"), "--max-frames", "-1"], caplog, tmp_path,
             "--max-frames")
    _refused(["extract", str(inputs["picture"]), "-o", str(tmp_path / "v.safetensors")], caplog, tmp_path, "video")


def test_transfer_never_overwrites_its_source(inputs, tmp_path, caplog):
    clip, picture = str(inputs["clip"]), str(inputs["picture"])
    _refused(["transfer", clip, picture, "-o", clip, "--renderer", "pixel"], caplog, inputs["clip"].parent,
             "-o", "input")
    _refused(["transfer", clip, picture, "-o", str(tmp_path / "o.mp4"), "--fps", "inf"], caplog, tmp_path, "--fps")


def test_same_file_by_another_name_is_an_input_too(inputs, tmp_path, caplog):
    link = tmp_path / "alias.mp4"
    os.symlink(inputs["clip"], link)
    _refused(["transfer", str(inputs["clip"]), str(inputs["picture"]), "-o", str(link), "--renderer", "pixel"],
             caplog, tmp_path, "-o", "input")


def test_poke_point_is_in_pixels_of_the_picture_as_given(inputs, tmp_path, caplog):
    """A 192x128 picture rendered at --max-side 96: --at 190,60 is near its right edge, not clamped
    onto the same pixel as --at 95,60 (which is the middle)."""
    import cv2

    big = cv2.resize(cv2.imread(str(inputs["picture"])), (192, 128), interpolation=cv2.INTER_CUBIC)
    picture = tmp_path / "big.png"
    cv2.imwrite(str(picture), big)
    videos = []
    for x in ("190", "95"):
        out = tmp_path / f"poke_{x}.mp4"
        code = main(["poke", str(picture), "--max-side", "96", "--at", f"{x},60", "--drag", "20,0",
                     "--motion-from", str(inputs["clip"]), "--renderer", "pixel", "--frames", "12", "-o", str(out)])
        assert code == 0
        frames, _ = read_video(out)
        assert frames.shape[1:3] == (64, 96)
        videos.append(frames.astype(np.float32))
    assert np.abs(videos[0] - videos[1]).mean() > 0.05
    _refused(["poke", str(picture), "--max-side", "96", "--at", "192,60", "--drag", "20,0", *SLOW,
              "-o", str(tmp_path / "x.mp4")], caplog, tmp_path, "--at", "191")


def test_renderers_refuse_motion_that_moves_the_picture_away_or_to_nan():
    picture = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    far = MotionTexture(torch.full((1, 3, 2, 24, 32), 1e30), fps=24.0)
    with pytest.raises(ValueError, match="render_motion: frame 0 came out"):
        render_motion(picture, far)
    damaged = NeuralRenderer(channels=(4,))
    with torch.no_grad():
        for parameter in damaged.parameters():
            parameter.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN or infinite.*renderer's weights"):
        render_motion(picture, MotionTexture(torch.zeros(1, 2, 2, 24, 32), fps=24.0), renderer=damaged)


@pytest.mark.parametrize("frames, needle", [
    (torch.full((3, 16, 16, 3), float("nan")), "NaN"),
    (torch.zeros(3, 16, 16, 3), "black"),
    (np.zeros((3, 16, 16, 3), np.uint8), "black"),
])
def test_the_writer_refuses_nan_or_black_videos_and_leaves_nothing(tmp_path, frames, needle):
    with pytest.raises(MotionError, match=needle):
        write_video(tmp_path / "bad.mp4", frames, 24.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fps", [float("inf"), float("nan"), 0.0, -1.0, 1e-9])
def test_the_writer_refuses_unusable_frame_rates_at_once(tmp_path, fps):
    with pytest.raises(MotionError, match="fps"):
        write_video(tmp_path / "v.gif", torch.rand(2, 16, 16, 3), fps)
    assert list(tmp_path.iterdir()) == []


def test_memory_guards_compare_with_free_memory_not_the_total():
    free, total = free_memory_bytes("cpu"), total_memory_bytes("cpu")
    assert total is not None and free <= total
    between = (free + total) // 2
    if between > free:  # a size that fits in all of RAM but not in what is free now
        with pytest.raises(MemoryError, match="free now; lower it"):
            require_memory(between, "cpu", "a test buffer", "lower it")
    with pytest.raises(MemoryError, match=r"GiB.*free now"):
        require_flow_memory(10_000, 2160, 3840, "a 4K clip", "lower --max-frames")


def test_resizing_a_volume_beyond_memory_is_refused_before_allocating():
    volume = SpectralVolume(torch.zeros(1, 16, 4, 8, 8), num_frames=150, fps=30.0)
    with pytest.raises(MemoryError, match="spectral volume.*smaller picture"):
        volume.resized(80_000, 80_000)
    with pytest.raises(MotionError, match="sizes must be >= 1"):
        volume.resized(0, 8)


@pytest.mark.parametrize("value, option, ok", [
    (1.5, "--x", True), (float("nan"), "--x", False), ("abc", "--x", False), (True, "--x", False), (10**400, "--x", False),
])
def test_finite_number_names_the_option(value, option, ok):
    if ok:
        assert checks.finite_number(value, option) == value
    else:
        with pytest.raises(MotionError, match=option):
            checks.finite_number(value, option)


def test_ctrl_c_stops_the_command_cleanly_and_leaves_no_file(inputs, tmp_path):
    """SIGINT while the model samples: exit code 130, a one-line message, no output or temp file."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    log = tmp_path / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gid_models.cli", "animate", str(inputs["picture"]), "-o", str(out_dir / "o.mp4"),
             *SLOW], cwd=REPO_ROOT, env=env, stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 90
            while "motion" not in log.read_text() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.2)
            assert "motion" in log.read_text(), f"the sampler never started: {log.read_text()[-2000:]}"
            time.sleep(1.0)
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=60)
        finally:
            process.kill()
    text = log.read_text()
    # 130 from main(); the interpreter may instead end by SIGINT itself (what a shell also shows as 130)
    assert code in (130, -signal.SIGINT), text[-2000:]
    assert "interrupted" in text and "Traceback" not in text
    assert list(out_dir.iterdir()) == []


def test_a_json_renderer_config_is_checked_as_data_not_trusted(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = tmp_path / "renderer.safetensors"
    NeuralRenderer(channels=(8, 16)).save(path)
    assert NeuralRenderer.load(path).config.channels == (8, 16)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    for bad in ('{"channels": [8.5, 16]}', '{"channels": []}', '{"channels": [true, 16]}', "null",
                '{"channels": [8, 16], "x": ' + "[" * 5000 + "]" * 5000 + "}", "x" * 70000,
                '{"channels": [4096, 16]}'):
        save_file(tensors, str(path), metadata={**metadata, "config": bad})
        with pytest.raises(ValueError, match="renderer|config|JSON"):
            NeuralRenderer.load(path)


def test_training_tools_report_errors_without_a_traceback(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="gid"):
        code = main(["calibrate", "--model", str(REPO_ROOT / "gid_models" / "weights"),
                     "--shards", str(tmp_path / "no_shards"), "--steps", "1"])
    assert code == 2
    assert "gid calibrate" in caplog.text and "no_shards" in caplog.text


def test_output_checks_leave_nothing_behind(tmp_path):
    """Checking -o makes no folder and leaves no probe file: a command refused afterwards leaves
    the disk as it was; a file where a folder should be is refused."""
    from gid_models.checks import check_output_path

    out = tmp_path / "new" / "sub" / "out.mp4"
    assert check_output_path(out) == out
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(MotionError, match="cannot be written"):
        check_output_path(tmp_path / "file.txt" / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
