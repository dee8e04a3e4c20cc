"""`gid train`: the whole chain on a tiny clip, resuming, fine-tuning, clear errors; train_renderer --init."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import load_file

from gid_models import cli
from gid_models.networks import MotionModel
from gid_models.rendering import NeuralRenderer
from gid_models.train import train_all, train_renderer
from gid_models.train.shards import SpectralShardDataset
from gid_models.video_io import write_video
from synthetic_clips import OscillatingRegion, render_clip

# 48 frames, T=32 windows every 8 frames, K=4, 48x32 examples: 3 windows x 3 crops = 9 examples.
PREPARE_ARGS = ("--frames 32 --stride 8 --frequencies 4 --size 48x32 --scales 1.0,0.7 --max-crops-per-scale 2 "
                "--flow-width 96")
TINY_STEPS = ["--vae-steps", "3", "--stage1-steps", "3", "--stage2-steps", "2", "--renderer-steps", "2"]
TINY = ["--size", "tiny", "--batch-size", "2", "--device", "cpu", "--renderer-crop", "32",
        "--prepare-args", PREPARE_ARGS, "--renderer-args", "--workers 0 --val-pairs 0 --log-every 1"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A folder with one 96x64 clip: a patch sways 2 px along x with a period of 16 frames."""
    folder = tmp_path_factory.mktemp("clips")
    region = OscillatingRegion(left=20, top=12, right=76, bottom=52, amplitude=2.0, frequency_bin=3)
    write_video(folder / "sway.mp4", render_clip([region], num_frames=48, seed=1).frames, 24.0)
    return folder


@pytest.fixture(scope="module")
def trained(clips, tmp_path_factory):
    """MODEL_DIR after one `gid train` from scratch of every stage, with an export."""
    out = tmp_path_factory.mktemp("model")
    export = out.parent / f"{out.name}_export" / "gid_motion_mine.safetensors"
    argv = ["train", "--out", str(out), "--clips", str(clips), "--init", "scratch", "--export", str(export)]
    assert cli.main(argv + TINY + TINY_STEPS) == 0
    return out, export, argv


def summary(out):
    return json.loads((out / "train_summary.json").read_text())["stages"]


def test_scratch_run_trains_every_stage_and_writes_loadable_files(trained):
    out, export, _ = trained
    assert sorted(p.name for p in (out / "shards").glob("shard-*.safetensors"))
    model = MotionModel.load_directory(out)
    assert model.num_frequencies == 4 and model.sample_size == (32, 48)
    assert NeuralRenderer.load(out / "renderer.safetensors").config.channels == (8, 16)
    exported = MotionModel.load(export)
    torch.testing.assert_close(exported.normalization_scales, model.normalization_scales)
    assert NeuralRenderer.load(export.with_name("renderer_mine.safetensors")).config.channels == (8, 16)
    stages = summary(out)
    assert list(stages) == list(train_all.STAGES)
    assert stages["normalization"]["status"] == "trained"
    expected_steps = {"vae": 3, "stage1": 3, "stage2": 2, "renderer": 2}
    for name, steps in expected_steps.items():
        record = stages[name]
        assert (record["status"], record["steps_run"], record["total_steps"]) == ("trained", steps, steps)
        assert record["wall_seconds"] > 0 and record["seconds_per_1000_steps"] == pytest.approx(
            1000 * record["wall_seconds"] / steps, abs=1000 * 0.005 / steps + 0.01)  # both rounded to 0.01
        assert (record["device"], record["batch_size"], record["world_size"]) == ("cpu", 2, 1)
    for stage, folder in (("vae", "vae"), ("stage1", "denoiser_stage1"), ("stage2", "denoiser_stage2")):
        assert json.loads((out / "checkpoints" / folder / "state.json").read_text())["step"] == expected_steps[stage]
    examples = len(SpectralShardDataset(str(out / "shards")))
    assert (stages["calibrate"]["status"], stages["calibrate"]["examples"]) == ("trained", examples)
    assert model.calibrated and exported.calibrated  # fitted after stage 2, exported with the model
    torch.testing.assert_close(exported.output_gains, model.output_gains)


def test_rerun_skips_finished_stages_and_resumes_a_longer_one(trained, caplog):
    out, _, argv = trained
    denoiser_before = load_file(str(out / "denoiser.safetensors"))
    vae_before = (out / "motion_vae.safetensors").read_bytes()
    with caplog.at_level(logging.INFO):
        assert cli.main(argv[:-2] + TINY + TINY_STEPS) == 0
    assert "reusing the shards" in caplog.text
    assert all(record["status"] == "skipped (finished earlier)" for record in summary(out).values())
    assert summary(out)["vae"]["steps_run"] == 3  # the figures of the run that trained it stay
    assert (out / "motion_vae.safetensors").read_bytes() == vae_before
    assert cli.main(argv[:-2] + TINY + TINY_STEPS + ["--stage2-steps", "3"]) == 0  # the last one wins
    stages = summary(out)
    stage2 = stages["stage2"]
    assert (stage2["status"], stage2["steps_run"], stage2["total_steps"]) == ("trained", 1, 3)
    assert stages["stage1"]["status"] == "skipped (finished earlier)"
    assert stages["calibrate"]["status"] == "trained"  # the gains of the old stage-2 weights were stale
    assert json.loads((out / "checkpoints" / "denoiser_stage2" / "state.json").read_text())["step"] == 3
    after = load_file(str(out / "denoiser.safetensors"))
    changed = [name for name in after if not torch.equal(after[name], denoiser_before[name])]
    assert changed and all("frequency" in name for name in changed), changed[:3]  # stage 2 trains only those


def test_fine_tune_from_the_shipped_model_copies_it_and_continues(trained, clips, tmp_path, monkeypatch):
    shipped, _, _ = trained
    monkeypatch.setattr(train_all, "BUNDLED_DIR", shipped)  # stand-in for gid_models/weights
    out = tmp_path / "fine"
    argv = ["--out", str(out), "--shards", str(shipped / "shards"), "--clips", str(clips / "sway.mp4"),
            "--batch-size", "2", "--device", "cpu", "--renderer-crop", "32",
            "--renderer-args", "--workers 0 --val-pairs 0", "--val-shards", str(shipped / "shards"),
            "--stage1-steps", "2", "--stage2-steps", "1", "--renderer-steps", "1"]
    assert train_all.main(argv) == 0  # no --init: shipped by default
    for name in ("normalization.safetensors", "motion_vae.safetensors", "motion_vae.json"):
        assert (out / name).read_bytes() == (shipped / name).read_bytes()
    stages = summary(out)
    assert list(stages) == ["stage1", "stage2", "calibrate", "renderer"]
    assert [stages[s]["steps_run"] for s in ("stage1", "stage2", "renderer")] == [2, 1, 1]
    assert stages["calibrate"]["status"] == "trained" and MotionModel.load_directory(out).calibrated
    assert (out / "denoiser_stage1_validation.csv").is_file() and (out / "denoiser_stage2_validation.csv").is_file()
    model = MotionModel.load_directory(out)
    start = MotionModel.load_directory(shipped).denoiser
    assert model.denoiser.config == start.config  # no --size needed: the shipped network's
    change = max((a - b).abs().max().item() for a, b in zip(model.denoiser.parameters(), start.parameters()))
    assert 0 < change < 0.01  # a few small steps away from the shipped weights, not a fresh network
    # the renderer continued from the shipped one: its channels, not train_renderer's default
    assert NeuralRenderer.load(out / "renderer.safetensors").config.channels == (8, 16)
    # it read the given clip file itself (train/clips.py lists files and folders alike): no links to it
    assert any(p.name.startswith("sway-") for p in (out / "renderer_run" / "cache").rglob("*"))
    assert not (out / "renderer_run" / "clips").exists()


@pytest.mark.parametrize("case, expected", [
    ("nothing", "nothing to train on"),
    ("empty clips", "no video files found"),
    ("empty shards", "no shard files found"),
    ("no vae", "stage stage1 needs a trained motion VAE"),
    ("renderer without clips", "give --clips as well as --shards"),
    ("bad init", "is not a model folder"),
    ("bad export", "name the file gid_motion_NAME.safetensors"),
    ("latent store is a file", "--latent-store"),
])
def test_bad_calls_are_clear_errors(case, expected, trained, tmp_path, caplog):
    shards = str(trained[0] / "shards")
    (tmp_path / "empty").mkdir()
    argv = {
        "nothing": [],
        "empty clips": ["--clips", str(tmp_path / "empty")],
        "empty shards": ["--shards", str(tmp_path / "empty")],
        "no vae": ["--shards", shards, "--stages", "stage1"],
        "renderer without clips": ["--shards", shards, "--stages", "renderer"],
        "bad init": ["--shards", shards, "--init", str(tmp_path / "empty")],
        "bad export": ["--shards", shards, "--export", str(tmp_path / "mine.safetensors")],
        "latent store is a file": ["--shards", shards, "--latent-store", str(trained[0] / "train_summary.json")],
    }[case]
    init = [] if case == "bad init" else ["--init", "scratch"]
    with caplog.at_level(logging.ERROR):
        assert train_all.main(["--out", str(tmp_path / "model"), "--device", "cpu", *init, *argv]) == 2
    assert expected in caplog.text


def test_train_renderer_init_starts_from_the_given_weights(clips, tmp_path):
    start = NeuralRenderer(channels=(8, 12))
    start.save(tmp_path / "start.safetensors")
    out = tmp_path / "run"
    train_renderer.main(["--clips", str(clips), "--out", str(out), "--init", str(tmp_path / "start.safetensors"),
                         "--channels", "16,16", "--steps", "1", "--lr", "0", "--batch-size", "1", "--crop", "32",
                         "--workers", "0", "--val-pairs", "0", "--device", "cpu"])
    trained = NeuralRenderer.load(out / "renderer.safetensors")
    assert trained.config.channels == (8, 12)  # the init file's, not --channels
    reference = NeuralRenderer.load(tmp_path / "start.safetensors")
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[name])  # lr 0: exactly the init weights


def test_stage_settings_are_gid_train_flags_then_the_option_strings():
    """The renderer and prepare stages get settings objects; --renderer-args / --prepare-args hold
    their trainers' own flags, which win over gid train's, and are checked before any training."""
    from gid_models.train import prepare
    from gid_models.train.train_stages import renderer_settings

    args = train_all.build_parser().parse_args([
        "--out", "model", "--clips", "clips", "--size", "tiny", "--renderer-steps", "7", "--renderer-crop", "64",
        "--renderer-args", "--steps 9 --lr 1e-3", "--prepare-args", "--frames 60 --size 128x80"])
    settings = renderer_settings(args)
    assert (settings.steps, settings.crop, settings.channels, settings.learning_rate, settings.batch_size) == \
        (9, 64, (8, 16), 1e-3, 8)
    config = prepare.config_from_text(args.prepare_args)
    assert (config.num_frames, config.size, config.stride) == (60, (128, 80), 10)
    with pytest.raises(SystemExit):
        renderer_settings(train_all.build_parser().parse_args(["--out", "m", "--renderer-args", "--no-such-flag"]))



def test_vae_loss_and_smoothing_flags_reach_the_vae_stage(trained, tmp_path):
    shards = str(trained[0] / "shards")
    argv = ["train", "--out", str(tmp_path / "m"), "--shards", shards, "--init", "scratch", "--size", "tiny",
            "--stages", "normalization,vae", "--vae-steps", "2", "--batch-size", "2", "--device", "cpu",
            "--vae-loss", "mse", "--vae-smooth", "1.5"]
    assert cli.main(argv) == 0
    header = (tmp_path / "m" / "vae_losses.csv").read_text().splitlines()[0].split(",")
    assert "mse" in header and "l1" not in header
    assert json.loads((tmp_path / "m" / "motion_vae.json").read_text())["training_smoothing_px"] == 1.5
    assert train_all.build_parser().parse_args(["--out", "m", "--vae-loss", "balanced"]).vae_loss == "balanced"
    with pytest.raises(SystemExit):
        train_all.build_parser().parse_args(["--out", "m", "--vae-loss", "l2"])


def test_latent_store_is_filled_by_stage_1_and_reused_by_stage_2(trained, tmp_path):
    shards = str(trained[0] / "shards")
    store = tmp_path / "store"
    argv = ["train", "--out", str(tmp_path / "m"), "--shards", shards, "--init", "scratch", "--size", "tiny",
            "--stages", "normalization,vae,stage1", "--vae-steps", "2", "--stage1-steps", "2", "--batch-size", "2",
            "--device", "cpu", "--latent-store", str(store)]
    assert cli.main(argv) == 0
    entries = sorted(store.glob("*/*.safetensors"))
    assert len(entries) == len(SpectralShardDataset(shards)) > 0
    stamps = [entry.stat().st_mtime_ns for entry in entries]
    argv[argv.index("--stages") + 1] = "stage2"
    assert cli.main(argv + ["--stage2-steps", "1"]) == 0
    assert summary(tmp_path / "m")["stage2"]["status"] == "trained"
    assert [entry.stat().st_mtime_ns for entry in sorted(store.glob("*/*.safetensors"))] == stamps
