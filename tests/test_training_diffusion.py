"""Training entry points on synthetic looping data, and loop guidance on the trained tiny model."""

from __future__ import annotations

import csv
import json
import logging
import math

import pytest
import torch
from safetensors.torch import save_file
from torch.utils.data import Dataset

from gid_models.networks import MotionModel
from gid_models.networks.denoiser import MotionDenoiser
from gid_models.networks.motion_model import TINY_DENOISER
from gid_models.sampling import LoopGuidance, sample_spectral_volume
from gid_models.sampling.guidance import loop_loss
from gid_models.spectral import SpectralVolume, trajectories_to_spectral
from gid_models.train.calibrate import bin_power, fit_output_gains, read_calibration_record
from gid_models.train.common import CsvLog, Runtime, load_checkpoint, save_checkpoint
from gid_models.train.fit_normalization import fit_dataset_normalization
from gid_models.train.shards import SpectralShardDataset
from gid_models.train.train_denoiser import DenoiserTraining, train_denoiser
from gid_models.train.train_vae import VaeTraining, train_vae

K, T, FPS, SIZE = 4, 30, 30.0, 16
pytestmark = pytest.mark.usefixtures("one_thread")


class SyntheticLoops(Dataset):
    """Textured pictures: a red disc sways along x (and half as much along y) with bins 1..K-1 of
    amplitude 1.5/k pixels and random phases; the blue ground stays still. Items are the
    training-data dicts {"image", "coeffs", "num_frames", "fps"}."""

    def __init__(self, count: int = 32, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        ys, xs = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
        times = torch.arange(T).float()
        self.items = []
        for _ in range(count):
            cx, cy = (torch.rand(2, generator=generator) * 0.5 + 0.25) * SIZE
            radius = (0.2 + 0.15 * torch.rand(1, generator=generator)) * SIZE
            disc = (((xs - cx) ** 2 + (ys - cy) ** 2).sqrt() < radius).float()
            texture = 0.15 * torch.rand(3, SIZE, SIZE, generator=generator)
            image = torch.stack([0.8 * disc + 0.1, torch.full_like(disc, 0.2), 0.8 * (1 - disc) + 0.1]) + texture
            wave = torch.zeros(T)
            for k in range(1, K):
                phase = 2 * math.pi * float(torch.rand(1, generator=generator))
                wave += (1.5 / k) * torch.cos(2 * math.pi * k * times / T + phase)
            displacements = torch.zeros(1, T, 2, SIZE, SIZE)
            displacements[0, :, 0] = wave.view(-1, 1, 1) * disc
            displacements[0, :, 1] = 0.5 * wave.view(-1, 1, 1) * disc
            coeffs = trajectories_to_spectral(displacements, FPS, K).coeffs[0]
            self.items.append({"image": image.clamp(0, 1), "coeffs": coeffs, "num_frames": T, "fps": FPS})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


@pytest.fixture(scope="module")
def dataset() -> SyntheticLoops:
    return SyntheticLoops()


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> tuple[MotionModel, object]:
    """Normalization + 150 VAE steps + 300 stage-1 denoiser steps, all saved to a model folder."""
    out = tmp_path_factory.mktemp("model")
    normalization = fit_dataset_normalization(dataset)
    normalization.save(str(out / "normalization.safetensors"))
    vae = train_vae(dataset, normalization, VaeTraining(steps=150, batch_size=8, learning_rate=2e-3, size="tiny"),
                    out_dir=out, runtime=Runtime())
    denoiser = MotionDenoiser(num_frequencies=K, sample_size=(SIZE, SIZE), **TINY_DENOISER)
    model = MotionModel(vae, denoiser, normalization)
    train_denoiser(dataset, model, DenoiserTraining(steps=300, batch_size=8, learning_rate=2e-3), out_dir=out,
                   runtime=Runtime())
    return model.eval(), out


def test_normalization_fits_the_active_bins(dataset):
    scales = fit_dataset_normalization(dataset).scales
    assert scales.shape == (K,)
    assert scales[1] > scales[2] > scales[3] > 0  # amplitudes fall as 1/k


@pytest.mark.slow
def test_training_writes_a_loadable_model_and_loss_logs(trained):
    model, out = trained
    loaded = MotionModel.load(out)
    assert loaded.num_frequencies == K and loaded.latent_scale == pytest.approx(model.latent_scale)
    for name in ("vae_losses.csv", "denoiser_stage1_losses.csv"):
        rows = list(csv.DictReader(open(out / name)))
        assert len(rows) >= 3
        assert float(rows[-1]["loss"]) < float(rows[0]["loss"])  # it learned something


@pytest.mark.slow
def test_loop_guidance_lowers_seam_error_of_the_trained_model(trained, dataset):
    model, _ = trained
    pictures = torch.stack([dataset[i]["image"] for i in range(8)])
    free, _ = sample_spectral_volume(model, pictures, seed=0, steps=20, num_frames=T, fps=FPS)
    looped, _ = sample_spectral_volume(model, pictures, seed=0, steps=20, num_frames=T, fps=FPS, guidance=LoopGuidance())
    truth = torch.stack([dataset[i]["coeffs"] for i in range(8)])
    seam_free, seam_looped = loop_loss(free.coeffs, T, FPS).mean(), loop_loss(looped.coeffs, T, FPS).mean()
    amplitude_free, amplitude_looped = free.coeffs.abs().mean(), looped.coeffs.abs().mean()
    # The model makes motion of the data's scale, and guidance keeps it moving ...
    assert 0.25 < amplitude_free / truth.abs().mean() < 4
    assert amplitude_looped > 0.3 * amplitude_free
    # ... while cutting the seam error by far more than any shrinking of the motion explains.
    assert seam_looped < 0.5 * seam_free
    assert seam_looped / amplitude_looped < 0.7 * seam_free / amplitude_free


@pytest.mark.slow
def test_stage_two_trains_only_frequency_attention(trained, dataset):
    model, _ = trained
    before = {n: p.detach().clone() for n, p in model.denoiser.named_parameters()}
    train_denoiser(dataset, model, DenoiserTraining(stage=2, steps=3, batch_size=4), runtime=Runtime())
    changed = {n for n, p in model.denoiser.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("frequency_attention" in n for n in changed)
    assert all(p.requires_grad for p in model.denoiser.parameters())  # switch released afterwards
    for name, value in before.items():  # undo, so test order does not matter
        model.denoiser.get_parameter(name).data.copy_(value)


def test_checkpoint_round_trip_without_pickle(tmp_path):
    network = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    network(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path, network, optimizer, step=7)
    fresh = torch.nn.Linear(3, 2)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    assert load_checkpoint(tmp_path, fresh, fresh_optimizer) == 7
    torch.testing.assert_close(fresh.weight, network.weight)
    state = fresh_optimizer.state_dict()["state"][0]
    torch.testing.assert_close(state["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert {p.suffix for p in tmp_path.iterdir()} == {".safetensors", ".json"}


def test_resume_continues_from_the_checkpoint(dataset, tmp_path):
    normalization = fit_dataset_normalization(dataset)
    settings = VaeTraining(steps=4, batch_size=4, size="tiny", save_every=2, log_every=1)
    train_vae(dataset, normalization, settings, out_dir=tmp_path, runtime=Runtime())
    settings.steps = 6
    train_vae(dataset, normalization, settings, out_dir=tmp_path, runtime=Runtime())
    steps = [int(row["step"]) for row in csv.DictReader(open(tmp_path / "vae_losses.csv"))]
    assert steps == [0, 1, 2, 3, 4, 5]


def test_fixed_noise_loss_is_repeatable_and_tells_examples_apart(dataset):
    from gid_models.train.validation import fixed_noise_loss

    model = MotionModel.create("tiny", num_frequencies=K, sample_size=(SIZE, SIZE),
                               normalization=fit_dataset_normalization(dataset))
    first = fixed_noise_loss(model, dataset, stage=1, max_examples=4)
    assert first == fixed_noise_loss(model, dataset, stage=1, max_examples=4)
    assert 0 < first < 2
    assert fixed_noise_loss(model, SyntheticLoops(count=4, seed=7), stage=1) != first


@pytest.mark.parametrize("stage", [1, 2])
def test_cached_latents_give_the_same_loss_as_encoding_every_step(trained, dataset, stage):
    from torch.utils.data import default_collate

    from gid_models.train.latent_cache import LatentCacheDataset
    from gid_models.train.shards import flip_horizontal, reverse_time
    from gid_models.train.train_denoiser import denoiser_step_loss

    model, _ = trained
    items = [dataset[i] for i in range(3)]
    settings = DenoiserTraining(stage=stage, batch_size=3)
    losses = []
    for batch in (default_collate([{"image": i["image"], "coeffs": i["coeffs"]} for i in items]),
                  default_collate([LatentCacheDataset(items, model, augment=False)[i] for i in range(3)])):
        generator = torch.Generator().manual_seed(7)
        with torch.no_grad():
            losses.append(denoiser_step_loss(model, model.denoiser, batch, settings, generator, torch.device("cpu")))
    assert losses[1].item() == pytest.approx(losses[0].item(), rel=1e-5)
    # the augmented cache holds the four flip x time-reversal variants of each example
    cache = LatentCacheDataset(items[:1], model, augment=True)
    image, coeffs, mask = flip_horizontal(items[0]["image"], reverse_time(items[0]["coeffs"]), torch.ones(1, SIZE, SIZE))
    plain = LatentCacheDataset([{"image": image, "coeffs": coeffs, "mask": mask}], model, augment=False)
    assert torch.allclose(cache.latents[0][3], plain.latents[0][0]) and torch.equal(cache.images[0][3], image)


def test_min_snr_weighting_down_weights_only_the_low_noise_steps():
    from gid_models.sampling.ddim import make_scheduler
    from gid_models.train.train_denoiser import min_snr_weights

    alphas = make_scheduler().alphas_cumprod
    weights = min_snr_weights(alphas, gamma=5.0)
    snr = alphas / (1 - alphas)
    assert torch.equal(weights[snr <= 5], torch.ones(int((snr <= 5).sum())))
    assert torch.allclose(weights[snr > 5], 5 / snr[snr > 5])
    assert weights[0] < 0.01 and weights[-1] == 1  # t = 0: SNR ~ 1000; t = 999: SNR ~ 0.005
    assert torch.equal(min_snr_weights(alphas, gamma=0.0), torch.ones_like(alphas))


def test_min_snr_weighting_scales_the_loss_per_example(trained, dataset):
    from torch.utils.data import default_collate

    from gid_models.train.train_denoiser import denoiser_step_loss

    model, _ = trained
    batch = default_collate([{"image": dataset[i]["image"], "coeffs": dataset[i]["coeffs"]} for i in range(4)])
    losses = {}
    for gamma in (0.0, 5.0):
        with torch.no_grad():
            losses[gamma] = denoiser_step_loss(model, model.denoiser, batch, DenoiserTraining(snr_gamma=gamma),
                                               torch.Generator().manual_seed(3), torch.device("cpu")).item()
    assert 0 < losses[5.0] <= losses[0.0]


def test_csv_log_appends_with_one_header(tmp_path):
    log = CsvLog(tmp_path / "log.csv")
    log.write(step=0, loss=1.0)
    CsvLog(tmp_path / "log.csv").write(step=1, loss=0.5)
    assert (tmp_path / "log.csv").read_text().splitlines() == ["step,loss", "0,1.0", "1,0.5"]


def _write_shards(dataset: SyntheticLoops, folder) -> None:
    from gid_models.train.shards import ShardWriter

    with ShardWriter(folder, examples_per_shard=8) as writer:
        for index in range(len(dataset)):
            item = dataset[index]
            writer.add(item["image"], item["coeffs"], num_frames=T, fps=FPS, source="synthetic", start_frame=index)


@pytest.mark.slow
def test_calibration_makes_the_sampled_power_of_each_bin_match_the_data(trained, dataset):
    model = MotionModel.load(trained[1]).eval()  # a copy: the shared fixture stays uncalibrated
    items = [dataset[i] for i in range(4)]
    gains, record = fit_output_gains(model, items, steps=4, seeds=2)
    assert record["examples"] == 4 and record["seeds"] == 2 and len(record["gains"]) == K
    model.set_output_gains(gains)
    sampled = sum(
        bin_power(sample_spectral_volume(model, item["image"][None], seed=seed, steps=4, num_frames=T, fps=FPS)[0])
        for item in items for seed in range(2)
    ) / 8
    data = sum(bin_power(SpectralVolume(item["coeffs"][None], T, FPS)) for item in items) / 4
    active = data > 1e-6 * data.max()  # bin 0 (no mean offset in these loops) stays as sampled
    torch.testing.assert_close(sampled[active], data[active], rtol=1e-3, atol=0.0)


def test_decoder_only_fine_tune_keeps_the_encoder_and_latent_scale(dataset, tmp_path):
    normalization = fit_dataset_normalization(dataset)
    vae = train_vae(dataset, normalization, VaeTraining(steps=3, batch_size=4, size="tiny"), runtime=Runtime())
    encoder = {k: v.clone() for k, v in vae.state_dict().items() if not k.startswith("decoder")}
    decoder = {k: v.clone() for k, v in vae.state_dict().items() if k.startswith("decoder")}
    scale = vae.config.scaling_factor
    tuned = train_vae(dataset, normalization, VaeTraining(steps=5, batch_size=4, learning_rate=1e-2, decoder_only=True),
                      out_dir=tmp_path, runtime=Runtime(), vae=vae)
    state = tuned.state_dict()
    assert all(torch.equal(state[k], v) for k, v in encoder.items())
    assert any(not torch.equal(state[k], v) for k, v in decoder.items())
    assert tuned.config.scaling_factor == scale
    assert (tmp_path / "vae_decoder_losses.csv").is_file() and (tmp_path / "checkpoints" / "vae_decoder").is_dir()
    with pytest.raises(ValueError, match="fine-tunes a trained VAE"):
        train_vae(dataset, normalization, VaeTraining(steps=1, decoder_only=True), runtime=Runtime())


def test_command_line_entry_points_on_shards(tmp_path, caplog):
    from gid_models.train import calibrate as calibrate_cli, fit_normalization, train_denoiser as denoiser_cli
    from gid_models.train import train_vae as vae_cli

    shards, out = tmp_path / "shards", tmp_path / "model"
    _write_shards(SyntheticLoops(count=8, seed=1), shards)
    fit_normalization.main(["--shards", str(shards), "--out", str(out / "normalization.safetensors")])
    vae_cli.main(["--shards", str(shards), "--out", str(out), "--steps", "2", "--batch-size", "2", "--size", "tiny",
                  "--crop", "8", "--device", "cpu"])
    common = ["--shards", str(shards), "--out", str(out), "--steps", "2", "--batch-size", "2", "--device", "cpu"]
    denoiser_cli.main(common + ["--stage", "1", "--size", "tiny", "--height", "16", "--width", "16",
                                "--val-shards", str(shards), "--val-every", "1"])
    rows = list(csv.DictReader(open(out / "denoiser_stage1_validation.csv")))
    assert [int(row["step"]) for row in rows] == [0, 1, 2]
    assert all(float(row["train_fixed_noise"]) > 0 and float(row["val_fixed_noise"]) > 0 for row in rows)
    export = tmp_path / "gid_motion_cli.safetensors"
    denoiser_cli.main(common + ["--stage", "2", "--export", str(export), "--cache-latents"])
    for source in (out, export):
        model = MotionModel.load(source)
        assert model.num_frequencies == K and model.sample_size == (16, 16)
    assert (out / "denoiser_stage2_losses.csv").is_file()
    calibrate_cli.main(["--model", str(out), "--shards", str(shards), "--steps", "2", "--max-examples", "2", "--device", "cpu"])
    calibrated = MotionModel.load(out)
    assert calibrated.calibrated and calibrated.output_gains.shape == (K,)
    items = SpectralShardDataset(shards, augment=False)
    largest = torch.stack([items[i]["coeffs"].abs().amax(dim=(1, 2, 3)) for i in range(len(items))]).amax(0)
    torch.testing.assert_close(calibrated.output_limits, largest.clamp_min(1e-3))  # over all 8 examples, not 2
    record = read_calibration_record(out)
    assert record["limits_px"] == [round(float(v), 4) for v in calibrated.output_limits] and record["limit_examples"] == 8
    save_file({"output_gains": calibrated.output_gains}, str(out / "calibration.safetensors"),
              metadata={"record": json.dumps({k: v for k, v in record.items() if "limit" not in k})})
    calibrate_cli.main(["--model", str(out), "--shards", str(shards), "--limits-only"])  # an older calibration gets limits
    refitted = MotionModel.load(out)
    assert torch.equal(refitted.output_gains, calibrated.output_gains)
    torch.testing.assert_close(refitted.output_limits, calibrated.output_limits)
    assert read_calibration_record(out)["gains"] == record["gains"]
    (out / "calibration.safetensors").unlink()
    with caplog.at_level(logging.ERROR, logger="gid"):
        code = calibrate_cli.main(["--model", str(out), "--shards", str(shards), "--limits-only"])
    assert code == 2 and "gid calibrate:" in caplog.text
    assert "has no fitted gains to keep; run without --limits-only" in caplog.text


def _ddp_worker(rank: int, world_size: int, port: int, out: str) -> None:
    import os

    os.environ.update(WORLD_SIZE=str(world_size), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from gid_models.train.common import cleanup, setup_runtime

    runtime = setup_runtime("cpu")
    dataset = SyntheticLoops(count=8)
    try:
        train_vae(dataset, fit_dataset_normalization(dataset), VaeTraining(steps=3, batch_size=2, size="tiny"),
                  out_dir=out, runtime=runtime)
    finally:
        cleanup(runtime)


@pytest.mark.slow
def test_two_process_ddp_training_on_cpu(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "motion_vae.safetensors").is_file()  # written once, by rank 0
    assert len(list(csv.DictReader(open(tmp_path / "vae_losses.csv")))) >= 1


def test_vae_mse_loss_logs_its_own_column_and_unknown_losses_are_refused(dataset, tmp_path):
    from gid_models.networks.vae import vae_loss

    target = torch.randn(2, 4, 8, 8)
    reconstruction = target + 0.5
    mean, logvar = torch.zeros(2, 4, 2, 2), torch.zeros(2, 4, 2, 2)
    _, l1_parts = vae_loss(reconstruction, target, mean, logvar)
    _, mse_parts = vae_loss(reconstruction, target, mean, logvar, "mse")
    assert l1_parts["l1"] == pytest.approx(0.5) and mse_parts["mse"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="reconstruction_loss"):
        vae_loss(reconstruction, target, mean, logvar, "l2")
    # balanced: a channel with a tenth of the others' amplitude weighs the same when it is wrong
    quiet = target.clone()
    quiet[:, 3] *= 0.1
    missing_quiet, missing_loud = quiet.clone(), quiet.clone()
    missing_quiet[:, 3] = 0
    missing_loud[:, 0] = 0
    _, quiet_parts = vae_loss(missing_quiet, quiet, mean, logvar, "balanced")
    _, loud_parts = vae_loss(missing_loud, quiet, mean, logvar, "balanced")
    assert quiet_parts["balanced"] == pytest.approx(0.25) and loud_parts["balanced"] == pytest.approx(0.25)
    _, mse_quiet = vae_loss(missing_quiet, quiet, mean, logvar, "mse")
    _, mse_loud = vae_loss(missing_loud, quiet, mean, logvar, "mse")
    assert mse_quiet["mse"] < 0.02 * mse_loud["mse"]  # what MSE does instead
    still = quiet.clone()
    still[:, 3] = 0  # a channel with no motion in the batch: its term stays bounded
    off = still.clone()
    off[:, 3] = 1e-3
    _, still_parts = vae_loss(off, still, mean, logvar, "balanced")
    assert math.isfinite(still_parts["balanced"]) and still_parts["balanced"] < 1.0
    normalization = fit_dataset_normalization(dataset)
    train_vae(dataset, normalization, VaeTraining(steps=2, batch_size=4, size="tiny", log_every=1, loss="mse"),
              out_dir=tmp_path, runtime=Runtime())
    rows = list(csv.DictReader(open(tmp_path / "vae_losses.csv")))
    assert len(rows) == 2 and "mse" in rows[0] and "l1" not in rows[0]
    with pytest.raises(ValueError, match="VAE loss must be one of"):
        train_vae(dataset, normalization, VaeTraining(steps=1, size="tiny", loss="huber"), runtime=Runtime())
