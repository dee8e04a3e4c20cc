"""tools/vae_roundtrip: the motion VAE's round trip per channel on held-out scene records."""

import math

import numpy as np
import pytest
import torch

from gid_models.networks import MotionModel
from scene_records import HEIGHT, WIDTH, write_scene_record
from tools import vae_roundtrip

pytestmark = pytest.mark.usefixtures("one_thread")


def test_roundtrip_prints_every_channel_and_zero_motion_is_kept_as_zero(tmp_path, capsys):
    generator = torch.Generator().manual_seed(0)
    for seed in (9, 19):
        write_scene_record(tmp_path / "scenes", seed, moving_right=True, generator=generator)
    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=4, sample_size=(HEIGHT, WIDTH)).eval()
    model.save(tmp_path / "model")
    assert vae_roundtrip.main(["--model", str(tmp_path / "model"), "--scenes", str(tmp_path / "scenes")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2 held-out scenes" in lines[0]
    values = {line.split()[0] + line.split()[1]: [float(v) for v in line.split()[2:]] for line in lines[2:]}
    assert list(values) == ["Rex", "Imx", "Rey", "Imy"]
    assert all(np.isfinite(v).all() and v[0] >= 0 and v[1] >= 0 for v in values.values())
    kept, error = vae_roundtrip.channel_roundtrip(model, torch.zeros(4, 4, HEIGHT, WIDTH))
    assert torch.isfinite(kept).all() and torch.isfinite(error).all()


def test_roundtrip_needs_held_out_records(tmp_path, capsys):
    write_scene_record(tmp_path / "scenes", 3, moving_right=True, generator=torch.Generator().manual_seed(0))
    assert vae_roundtrip.main(["--scenes", str(tmp_path / "scenes")]) == 2
    assert "no held-out scene records" in capsys.readouterr().err


def test_a_training_runs_checkpoint_takes_the_place_of_the_models_vae(tmp_path, capsys):
    from gid_models.normalization import FrequencyNormalization
    from gid_models.train.common import save_checkpoint

    write_scene_record(tmp_path / "scenes", 9, moving_right=True, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=4, sample_size=(HEIGHT, WIDTH)).eval()
    model.save(tmp_path / "model")
    torch.manual_seed(1)
    trained = MotionModel.create("tiny", num_frequencies=4, sample_size=(HEIGHT, WIDTH)).eval()
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "vae", trained.vae, torch.optim.AdamW(trained.vae.parameters()), 700)
    FrequencyNormalization(torch.linspace(1.0, 0.2, 4)).save(str(run / "normalization.safetensors"))
    scenes = ["--scenes", str(tmp_path / "scenes")]
    assert vae_roundtrip.main(["--model", str(tmp_path / "model"), "--run", str(run), "--normalized"] + scenes) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "vae step 700" in lines[0] and "normalized units" in lines[0]
    printed = [float(line.split()[3]) for line in lines[2:]]
    trained.set_normalization(FrequencyNormalization(torch.linspace(1.0, 0.2, 4)))
    from gid_models.train.scenes.records import list_records, read_record
    coeffs = read_record(list_records(tmp_path / "scenes", "held_out")[0])[1]
    expected = vae_roundtrip.channel_roundtrip(trained, coeffs, normalized=True)[1]
    assert printed == pytest.approx(expected.tolist(), abs=1e-3)
    save_checkpoint(run / "checkpoints" / "vae_decoder", model.vae, torch.optim.AdamW(model.vae.parameters()), 50)
    assert vae_roundtrip.main(["--model", str(tmp_path / "model"), "--run", str(run), "--checkpoint", "vae_decoder"]
                              + scenes) == 0
    assert "vae_decoder step 50" in capsys.readouterr().out
    # the pixel round trip differs from the normalized one (the normalization is not linear)
    assert not torch.allclose(vae_roundtrip.channel_roundtrip(trained, coeffs)[1], expected)

    assert vae_roundtrip.main(["--model", str(tmp_path / "model"), "--run", str(tmp_path / "nothing")] + scenes) == 2
    (run / "checkpoints" / "vae" / "weights.safetensors").write_bytes(b"not a safetensors file")
    assert vae_roundtrip.main(["--model", str(tmp_path / "model"), "--run", str(run)] + scenes) == 2
    from gid_models.networks.vae import MotionVAE
    other = MotionVAE(latent_channels=2, block_out_channels=(16, 16), norm_num_groups=8)
    save_checkpoint(run / "checkpoints" / "vae", other, torch.optim.AdamW(other.parameters()), 800)
    assert vae_roundtrip.main(["--model", str(tmp_path / "model"), "--run", str(run)] + scenes) == 2
    err = capsys.readouterr().err
    assert "no VAE checkpoint" in err and err.count("cannot use the VAE checkpoint") == 3
    save_checkpoint(run / "checkpoints" / "vae", trained.vae, torch.optim.AdamW(trained.vae.parameters()), 900)
    assert vae_roundtrip.main(["--model", str(tmp_path / "model"), "--run", str(run), "--smooth", "2"] + scenes) == 0
    assert "blurred by 2 px as in its training" in capsys.readouterr().out
    assert vae_roundtrip.main(["--smooth", "2"] + scenes) == 2
    assert vae_roundtrip.main(["--run", str(run), "--smooth", "-1"] + scenes) == 2


def test_a_vae_trained_on_smoothed_volumes_is_scored_against_the_smoothed_truth(tmp_path, capsys):
    from gid_models.normalization import normalize_tensor
    from gid_models.train.volume_smoothing import smooth_volume

    write_scene_record(tmp_path / "scenes", 9, moving_right=True, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=4, sample_size=(HEIGHT, WIDTH)).eval()
    model.vae.register_to_config(training_smoothing_px=1.5)
    model.save(tmp_path / "model")
    coeffs = torch.randn(4, 4, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(2))
    kept, error = vae_roundtrip.channel_roundtrip(model, coeffs, normalized=True)
    truth = normalize_tensor(smooth_volume(coeffs[None], 1.5), model.normalization_scales)
    with torch.no_grad():
        decoded = model.decode(model.encode(truth))[0]
    power = truth[0, 1:].square().mean(dim=(0, 2, 3))
    assert torch.allclose(error, (decoded[1:] - truth[0, 1:]).square().mean(dim=(0, 2, 3)) / power, rtol=1e-4)
    assert vae_roundtrip.main(["--model", str(tmp_path / "model"), "--scenes", str(tmp_path / "scenes")]) == 0
    assert "scored against the blurred ones" in capsys.readouterr().out
    raw = normalize_tensor(coeffs[None], model.normalization_scales)
    _, raw_error = vae_roundtrip.channel_roundtrip(model, coeffs, normalized=True, raw_truth=True)
    power = raw[0, 1:].square().mean(dim=(0, 2, 3))
    assert torch.allclose(raw_error, (decoded[1:] - raw[0, 1:]).square().mean(dim=(0, 2, 3)) / power, rtol=1e-4)
    assert vae_roundtrip.main(["--model", str(tmp_path / "model"), "--scenes", str(tmp_path / "scenes"),
                               "--raw-truth"]) == 0
    assert "scored against the exact volumes" in capsys.readouterr().out


def test_clips_motion_goes_through_the_vae_and_missing_clips_are_refused(tmp_path, capsys):
    from synthetic_clips import write_sway_clip

    clip = tmp_path / "sway.mp4"
    write_sway_clip(clip, seed=0)
    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=4, sample_size=(HEIGHT, WIDTH)).eval()
    model.save(tmp_path / "model")
    args = ["--model", str(tmp_path / "model"), "--size", "80x48", "--frames", "36"]
    assert vae_roundtrip.main(args + ["--clips", str(clip)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "1 clips' measured motion" in lines[0]
    assert all(math.isfinite(float(v)) for line in lines[2:] for v in line.split()[2:])
    assert vae_roundtrip.main(args + ["--clips", str(tmp_path / "none.mp4")]) == 2
    assert vae_roundtrip.main(["--clips", str(clip), "--size", "big"]) == 2
    assert "no such clip" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        vae_roundtrip.main(["--clips", str(clip), "--scenes", str(tmp_path)])
