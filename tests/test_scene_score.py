"""`gid eval --scenes`: the sampled motion scored on a scenes folder's held-out seeds
(gid_models.evaluation.scene_score), with a tiny model that sees which half of the picture moves."""

import numpy as np
import pytest
import torch

from gid_models.evaluation.run import main
from gid_models.evaluation.scene_score import held_out_records
from gid_models.networks import MotionModel
from gid_models.spectral import MotionError
from gid_models.train.train_amplitude import AmplitudeTraining, train_amplitude
from scene_records import HEIGHT, K, WIDTH, write_scene_record

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """(scenes folder with training seeds 0-8 and held-out seeds 9, 19, 29; a tiny model folder whose
    amplitude network learned, from the training seeds, that the green half moves)."""
    root = tmp_path_factory.mktemp("scene_score")
    generator = torch.Generator().manual_seed(0)
    for seed in [*range(9), 9, 19, 29]:
        write_scene_record(root / "scenes_dir", seed, moving_right=bool(seed % 2), generator=generator)
    amplitude = train_amplitude(AmplitudeTraining(out=root / "amplitude", scenes=[root / "scenes_dir"], steps=120,
                                                  batch_size=4, learning_rate=5e-3, width=8, colour_variants=0,
                                                  log_every=120), progress=False)
    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=K, sample_size=(HEIGHT, WIDTH)).eval()
    model.save(root / "plain")
    model.amplitude = amplitude
    model.save(root / "sees")
    return root


def _rows(out: str) -> dict[str, tuple[float, float]]:
    rows = {}
    for line in out.splitlines():
        for name in ("model", "mean spectrum"):
            if line.startswith(name) and len(line.split()) == len(name.split()) + 2:
                rows[name] = tuple(float(v) for v in line.split()[-2:])
    return rows


def test_only_held_out_seeds_are_scored_in_seed_order(scenes):
    assert [p.stem for p in held_out_records(scenes / "scenes_dir", 2)] == ["scene-0000009", "scene-0000019"]
    assert len(held_out_records(scenes / "scenes_dir", 40)) == 3


def test_a_model_that_sees_the_moving_half_ranks_it_and_the_baseline_ranks_nothing(scenes, capsys):
    code = main(["--scenes", str(scenes / "scenes_dir"), "--model", str(scenes / "sees"), "--seeds", "2",
                 "--steps", "2", "--per-clip"])
    out = capsys.readouterr().out
    assert code == 0
    rows = _rows(out)
    assert rows["model"][0] > 0.5  # the green half moves in the sample as in the truth
    assert rows["mean spectrum"][0] == 0.0  # a constant map ranks nothing
    assert np.isfinite(rows["model"][1]) and np.isfinite(rows["mean spectrum"][1])
    assert "3 from" in out and "scene-0000029" in out and "scene-0000008" not in out


def test_scene_score_refuses_a_folder_without_held_out_records_before_sampling(tmp_path, scenes, caplog):
    assert main(["--scenes", str(tmp_path)]) == 2
    assert "is not a `gid scenes` output folder" in caplog.text
    write_scene_record(tmp_path / "few", 3, True, torch.Generator().manual_seed(0))
    assert main(["--scenes", str(tmp_path / "few"), "--model", str(scenes / "plain")]) == 2
    assert "holds no held-out records" in caplog.text
    assert main(["--scenes", str(scenes / "scenes_dir"), "--scene-count", "0"]) == 2
    with pytest.raises(MotionError, match="--scene-count"):
        held_out_records(scenes / "scenes_dir", 0)
