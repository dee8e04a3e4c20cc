"""tools/vae_roundtrip: the motion VAE's round trip per channel on held-out scene records."""

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
