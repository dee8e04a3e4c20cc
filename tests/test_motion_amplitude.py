"""Motion model v2's motion-amplitude network: shapes, files, the sampler imposing its amplitudes,
frame 0 at rest, and a tiny training run that learns to tell a moving region from a still one."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gid_models.networks import MotionModel
from gid_models.networks.motion_amplitude import FORMAT_TAG, MotionAmplitudeNet, cell_log_amplitude
from gid_models.evaluation.metrics import seam_error
from gid_models.sampling import LoopGuidance, sample_spectral_volume
from gid_models.sampling.guidance import LOOP_REFERENCE_CELLS
from gid_models.sampling.amplitude import MAX_RATIO, impose_amplitude
from gid_models.spectral import MotionError, SpectralVolume, anchor_start_frame, spectral_to_trajectories
from gid_models.train.shards import ShardWriter
from gid_models.train.train_amplitude import AmplitudeTraining, one_cycle, total_log_amplitude, train_amplitude

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_net(num_frequencies=4, seed=0):
    torch.manual_seed(seed)
    net = MotionAmplitudeNet(num_frequencies=num_frequencies, width=8).attach_encoder()
    torch.nn.init.normal_(net.head.weight, std=0.5)  # the head starts at zero: give it something to say
    return net.eval()


def test_prediction_shape_and_dependence_on_the_picture(generator):
    net = _random_net()
    first, second = torch.rand(2, 1, 3, 48, 80, generator=generator)
    with torch.no_grad():
        out_first, out_second = net(first), net(second)
    assert out_first.shape == (1, 4, 2, 6, 10) and torch.isfinite(out_first).all()
    assert (out_first - out_second).abs().mean() > 1e-3  # it sees the picture
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 3, 50, 80))


def test_untrained_network_predicts_its_starting_amplitude_everywhere(generator):
    net = MotionAmplitudeNet(num_frequencies=3, width=8, initial_log_amplitude=-2.5).attach_encoder()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 32, 32, generator=generator))
    torch.testing.assert_close(out, torch.full_like(out, -2.5))


def test_save_load_round_trip_and_refusals(tmp_path, generator):
    net = _random_net()
    path = net.save(tmp_path / "motion_amplitude.safetensors")
    loaded = MotionAmplitudeNet.load(path).attach_encoder()
    picture = torch.rand(1, 3, 32, 48, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(loaded(picture), net.half().float()(picture), atol=1e-3, rtol=1e-3)
    tensors = load_file(str(path))
    save_file(tensors, str(tmp_path / "untagged.safetensors"), metadata={"format": "gid-denoiser"})
    with pytest.raises(MotionError, match="not a GID motion amplitude file"):
        MotionAmplitudeNet.load(tmp_path / "untagged.safetensors")
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(tmp_path / "short.safetensors"), metadata=dict(format=FORMAT_TAG, config=path.with_suffix(".json").read_text()))
    with pytest.raises(MotionError, match="missing"):
        MotionAmplitudeNet.load(tmp_path / "short.safetensors")


def test_motion_model_carries_the_network_in_both_file_layouts(tmp_path, make_tiny_model):
    model = make_tiny_model()
    model.amplitude = _random_net()
    model.save(tmp_path / "folder")
    assert (tmp_path / "folder" / "motion_amplitude.safetensors").is_file()
    single = model.save_file(tmp_path / "gid_motion_v2.safetensors")
    for loaded in (MotionModel.load(tmp_path / "folder"), MotionModel.load(single)):
        assert isinstance(loaded.amplitude, MotionAmplitudeNet)
        torch.testing.assert_close(loaded.amplitude.head.weight, model.amplitude.head.weight.half().float())
    with pytest.raises(MotionError, match="K=3 bins but the denoiser samples K=4"):
        MotionModel(model.vae, model.denoiser, model.normalization, MotionAmplitudeNet(num_frequencies=3))


def test_imposed_amplitudes_are_the_predicted_ones_and_bin_0_is_untouched(generator):
    coeffs = torch.randn(1, 3, 4, 32, 48, generator=generator)
    # a smooth prediction (log amplitude linear across the cells, different per bin and axis)
    ramp = torch.linspace(-2.0, 0.5, 6).view(1, 1, 1, 1, 6)
    target = (ramp * torch.rand(1, 3, 2, 1, 1, generator=generator) + torch.rand(1, 3, 2, 1, 1, generator=generator))
    target = target.expand(1, 3, 2, 4, 6)
    out = impose_amplitude(coeffs, target)
    torch.testing.assert_close(out[:, 0], coeffs[:, 0])
    got = cell_log_amplitude(out)[:, 1:]
    assert (got - target[:, 1:]).abs().max() < 0.2
    # an almost still sample (grass the diffusion model left at a hundredth of a pixel) is raised to the prediction
    faint = cell_log_amplitude(impose_amplitude(coeffs * 1e-2, target))[:, 1:]
    assert (faint - target[:, 1:]).abs().max() < 0.2
    # an exactly still one is not blown up: the factor is held within MAX_RATIO, under 0.01 px
    still = impose_amplitude(coeffs * 1e-8, torch.zeros(1, 3, 2, 4, 6))
    assert still.abs().max() <= coeffs.abs().max() * 1e-8 * MAX_RATIO * 1.001
    assert still.abs().max() < 0.01
    with pytest.raises(MotionError, match="same K"):
        impose_amplitude(coeffs, torch.zeros(1, 4, 2, 4, 6))


def test_anchored_volume_starts_at_the_picture(generator):
    coeffs = anchor_start_frame(torch.randn(2, 5, 4, 6, 7, generator=generator))
    volume = SpectralVolume(coeffs, num_frames=30, fps=30.0)
    start = spectral_to_trajectories(volume, torch.zeros(1))
    assert start.abs().max() < 1e-5
    assert spectral_to_trajectories(volume, torch.tensor([7.0])).abs().max() > 0.1


def _write_two_region_shards(folder: Path, generator, count=6):
    """Pictures whose green half sways (0.5 px per bin) and whose grey half is still."""
    with ShardWriter(folder, examples_per_shard=count) as writer:
        for index in range(count):
            image = torch.full((3, 32, 48), 0.5)
            coeffs = torch.zeros(4, 4, 32, 48)
            left = bool(index % 2)
            columns = slice(0, 24) if left else slice(24, 48)
            image[:, :, columns] = torch.tensor([0.2, 0.7, 0.2]).view(3, 1, 1)
            image += 0.05 * torch.rand(image.shape, generator=generator)
            coeffs[1:, :, :, columns] = 0.5 * torch.randn(3, 4, 32, 24, generator=generator).sign()
            writer.add(image.clamp(0, 1), coeffs, num_frames=30, fps=30.0, source=f"toy-{index}", start_frame=0)


def _green_right_picture():
    picture = torch.full((1, 3, 32, 48), 0.5)
    picture[:, :, :, 24:] = torch.tensor([0.2, 0.7, 0.2]).view(1, 3, 1, 1)
    return picture


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny network trained on the two-region pictures: (network, its output folder)."""
    folder = tmp_path_factory.mktemp("amplitude")
    _write_two_region_shards(folder / "shards", torch.Generator().manual_seed(0))
    config = AmplitudeTraining(out=folder / "run", shards=[folder / "shards"], steps=120, batch_size=4,
                               learning_rate=5e-3, width=8, colour_variants=0, log_every=60)
    return train_amplitude(config, progress=False), folder / "run"


def test_tiny_training_learns_which_region_moves(trained):
    net, run = trained
    assert (run / "motion_amplitude.safetensors").is_file()
    assert (run / "amplitude_losses.csv").read_text().count("\n") == 3  # header + 2 rows
    with torch.no_grad():
        total = total_log_amplitude(net(_green_right_picture()))[0]
    assert total[:, 4:].mean() > total[:, :2].mean() + 1.0  # the green right half moves, the grey left does not


def test_sampler_puts_motion_where_the_network_says_and_starts_at_rest(trained):
    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=4, sample_size=(32, 48)).eval()  # samples at the picture's size
    picture = _green_right_picture()
    plain, _ = sample_spectral_volume(model, picture, seed=3, steps=2, cfg=0.0, num_frames=30, fps=30.0)
    model.amplitude = trained[0]
    placed, _ = sample_spectral_volume(model, picture, seed=3, steps=2, cfg=0.0, num_frames=30, fps=30.0)
    magnitude = placed.coeffs[:, 1:].square().sum(dim=(1, 2)).sqrt()[0]
    assert magnitude[:, 30:].mean() > 3 * magnitude[:, :18].mean()
    for volume in (plain, placed):
        assert spectral_to_trajectories(volume, torch.zeros(1)).abs().max() < 1e-4


def test_loop_guidance_lowers_the_seam_of_the_placed_motion(generator):
    """The sampler returns motion rescaled per cell by the amplitude network; loop guidance must
    lower the seam of that motion (the CUDA check found it raised it when guidance scored the
    motion before placing)."""
    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=4, sample_size=(32, 48)).eval()
    model.amplitude = _random_net()
    picture = torch.rand(1, 3, 32, 48, generator=generator)
    settings = dict(seed=5, steps=4, cfg=0.0, num_frames=30, fps=30.0)
    plain, _ = sample_spectral_volume(model, picture, **settings)
    # The weight on L_g is u x latent cells / 64 (16 x 24 cells here); this untrained model needs
    # a weight of about 20,000 on L_g (u = 3,333), where the default u = 200 gives it 1,200.
    u = 20000.0 * LOOP_REFERENCE_CELLS / (16 * 24)
    guided, _ = sample_spectral_volume(model, picture, guidance=LoopGuidance(u=u, recurrence=1), **settings)
    assert float(seam_error(guided)) < 0.8 * float(seam_error(plain))


def test_train_amplitude_command_refuses_bad_arguments_in_one_line(tmp_path, caplog):
    from gid_models.train.amplitude_cli import main

    assert main(["--out", str(tmp_path / "run"), "--steps", "0"]) == 2
    assert main(["--out", str(tmp_path / "run"), "--photos", str(tmp_path)]) == 2
    assert main(["--out", str(tmp_path / "run"), "--scenes", str(tmp_path / "nothing")]) == 2
    assert "gid train-amplitude:" in caplog.text and "gid scenes" in caplog.text
    _write_two_region_shards(tmp_path / "shards", torch.Generator().manual_seed(0), count=2)
    assert main(["--out", str(tmp_path / "run"), "--shards", str(tmp_path / "shards"),
                 "--photos", str(tmp_path / "no_photos"), "--masks", str(tmp_path / "no_masks")]) == 2
    assert "is not a folder" in caplog.text
    assert main(["--out", str(tmp_path / "run"), "--shards", str(tmp_path / "shards"), "--kernel-size", "2"]) == 2
    assert "--kernel-size must be odd" in caplog.text
    assert not (tmp_path / "run" / "motion_amplitude.safetensors").exists()
    assert main(["--out", str(tmp_path / "k1"), "--shards", str(tmp_path / "shards"), "--kernel-size", "1",
                 "--steps", "2", "--batch-size", "2", "--width", "4", "--colour-variants", "0", "--no-progress"]) == 0
    assert MotionAmplitudeNet.load(tmp_path / "k1" / "motion_amplitude.safetensors").config.kernel_size == 1


def test_the_bundled_motion_model_sees_the_picture_and_starts_at_rest():
    """The shipped network is fp16 and small: since session 30 it merges six members (block-diagonal
    layers, 2.4 MB of which 89 % zero blocks), so the bound is 3 MiB (was 1 MiB for two members);
    the 30 MB budget of all weights is test_pack_layout's."""
    from gid_models.networks.motion_model import BUNDLED_DIR

    path = BUNDLED_DIR / "motion_amplitude.safetensors"
    assert path.is_file() and path.stat().st_size < 3 * 2**20
    assert {t.dtype for t in load_file(str(path)).values()} == {torch.float16}
    model = MotionModel.from_bundled()
    assert isinstance(model.amplitude, MotionAmplitudeNet)
    picture = torch.rand(1, 3, 40, 64, generator=torch.Generator().manual_seed(0))
    volume, _ = sample_spectral_volume(model, picture, seed=0, steps=1, num_frames=150, fps=30.0)
    assert spectral_to_trajectories(volume, torch.zeros(1)).abs().max() < 1e-4


@pytest.mark.slow
def test_default_loop_guidance_lowers_the_shipped_models_seam():
    """The CPU twin of test_cuda's loop check, with the CPU's approximate guidance and 4 steps: at
    the default u the shipped model's seam falls well below the unguided one. Before L_g was
    weighted by the latent's area, u = 200 left it within sampling noise on this 64x40 latent."""
    model = MotionModel.from_bundled().eval()
    coarse = torch.rand(1, 3, 20, 32, generator=torch.Generator().manual_seed(5))
    picture = torch.nn.functional.interpolate(coarse, size=(160, 256), mode="bilinear", align_corners=False)
    plain, _ = sample_spectral_volume(model, picture, seed=3, steps=4)
    guided, _ = sample_spectral_volume(model, picture, seed=3, steps=4,
                                       guidance=LoopGuidance(recurrence=1, through_denoiser=False))
    assert float(seam_error(guided)) < 0.8 * float(seam_error(plain))  # 0.0487 against 0.0712 when written
    assert guided.coeffs.abs().mean() > 0.5 * plain.coeffs.abs().mean()  # by looping, not by stopping


@pytest.mark.parametrize("steps", [1, 3, 4, 20, 40, 1200])
def test_learning_rate_schedule_fits_any_number_of_steps(steps):
    """`gid train-amplitude --steps 20` once died in OneCycleLR (a warm-up of one step divides by zero)."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = one_cycle(optimizer, 2e-3, steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert all(0 < rate <= 2e-3 * (1 + 1e-9) for rate in rates)
    assert max(rates) > 1.9e-3, "the peak rate is reached"
    if steps >= 20:
        assert rates[-1] < rates[len(rates) // 2] < max(rates) * (1 + 1e-9), "it decays after the warm-up"


def test_resuming_with_another_number_of_steps_is_refused_in_one_line(tmp_path):
    _write_two_region_shards(tmp_path / "shards", torch.Generator().manual_seed(0), count=2)
    config = AmplitudeTraining(out=tmp_path / "run", shards=[tmp_path / "shards"], steps=10, batch_size=2,
                               width=4, colour_variants=0, log_every=5)
    first = train_amplitude(config, progress=False)
    again = train_amplitude(config, progress=False)  # finished: resumes at step 10 and trains nothing
    torch.testing.assert_close(again.head.weight, first.head.weight)
    with pytest.raises(MotionError, match="run of 10 steps.*resume it with --steps 10"):
        train_amplitude(AmplitudeTraining(**{**config.__dict__, "steps": 20}), progress=False)


def test_merged_network_predicts_the_mean_of_its_members(tmp_path, generator):
    from gid_models.train.merge_amplitude import main as merge_main, merge_networks

    a = _random_net(seed=1)
    b = MotionAmplitudeNet(num_frequencies=4, width=4).attach_encoder()
    for parameter in b.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    b.eval()
    picture = torch.rand(2, 3, 32, 48, generator=generator)
    expected = (a(picture) + b(picture)) / 2
    merged = merge_networks([a, b]).attach_encoder()
    assert merged.config.width == 12
    torch.testing.assert_close(merged(picture), expected, atol=1e-5, rtol=1e-5)

    a.save(tmp_path / "a.safetensors")
    b.save(tmp_path / "b.safetensors")
    out = tmp_path / "merged" / "motion_amplitude.safetensors"
    assert merge_main([str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"), "--out", str(out)]) == 0
    loaded = MotionAmplitudeNet.load(out).attach_encoder()
    members = [MotionAmplitudeNet.load(tmp_path / name).attach_encoder() for name in ("a.safetensors", "b.safetensors")]
    with torch.no_grad():
        torch.testing.assert_close(loaded(picture), (members[0](picture) + members[1](picture)) / 2, atol=2e-3, rtol=0)
    assert out.with_suffix(".json").is_file()



def test_weighted_merge_of_different_kernels_predicts_the_weighted_mean(tmp_path, generator):
    """A 1x1-kernel network merges with 3x3 ones (centred in the larger kernel), with weights; a
    merged network can be a member again, keeping its own members' shares."""
    from gid_models.train.merge_amplitude import main as merge_main, merge_networks

    a = _random_net(seed=1)
    torch.manual_seed(5)
    per_cell = MotionAmplitudeNet(num_frequencies=4, width=4, kernel_size=1).attach_encoder()
    for parameter in per_cell.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    per_cell.eval()
    picture = torch.rand(1, 3, 32, 48, generator=generator)
    with torch.no_grad():
        merged = merge_networks([a, per_cell], weights=[0.25, 0.75]).attach_encoder()
        assert merged.config.kernel_size == 3
        torch.testing.assert_close(merged(picture), 0.25 * a(picture) + 0.75 * per_cell(picture), atol=1e-5, rtol=1e-5)
        pair = merge_networks([a, a])  # as the shipped file: two members at 0.5
        nested = merge_networks([pair, per_cell], weights=[0.5, 0.5]).attach_encoder()
        torch.testing.assert_close(nested(picture), 0.5 * a(picture) + 0.5 * per_cell(picture), atol=1e-5, rtol=1e-5)

    a.save(tmp_path / "a.safetensors")
    per_cell.save(tmp_path / "c.safetensors")
    files = [str(tmp_path / "a.safetensors"), str(tmp_path / "c.safetensors")]
    out = tmp_path / "w.safetensors"
    assert merge_main([*files, "--weights", "0.25", "0.75", "--out", str(out)]) == 0
    loaded = [MotionAmplitudeNet.load(path).attach_encoder() for path in files]  # float16 files, as merged
    with torch.no_grad():
        torch.testing.assert_close(MotionAmplitudeNet.load(out).attach_encoder()(picture),
                                   0.25 * loaded[0](picture) + 0.75 * loaded[1](picture), atol=2e-3, rtol=0)


def test_merge_refuses_weights_that_are_not_a_weighted_mean(tmp_path, caplog):
    from gid_models.train.merge_amplitude import main as merge_main

    _random_net().save(tmp_path / "a.safetensors")
    files = [str(tmp_path / "a.safetensors")] * 2
    out = str(tmp_path / "m.safetensors")
    assert merge_main([*files, "--weights", "0.5", "--out", out]) == 2
    assert "1 weights for 2 networks" in caplog.text
    assert merge_main([*files, "--weights", "0.7", "0.7", "--out", out]) == 2
    assert merge_main([*files, "--weights", "1.5", "-0.5", "--out", out]) == 2
    assert caplog.text.count("must be positive and sum to 1") == 2
    assert not (tmp_path / "m.safetensors").exists()

def test_merge_refuses_mismatched_networks_and_overwriting_an_input(tmp_path, caplog):
    from gid_models.train.merge_amplitude import main as merge_main

    _random_net(num_frequencies=4).save(tmp_path / "k4.safetensors")
    _random_net(num_frequencies=3).save(tmp_path / "k3.safetensors")
    k4, k3 = str(tmp_path / "k4.safetensors"), str(tmp_path / "k3.safetensors")
    assert merge_main([k4, k3, "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "num_frequencies" in caplog.text
    assert merge_main([k4, k4, "--out", k4]) == 2
    assert "would overwrite the input" in caplog.text
    assert merge_main([k4, "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "at least two" in caplog.text
    assert merge_main([k4, str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert not (tmp_path / "m.safetensors").exists()
