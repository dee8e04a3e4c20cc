"""tools/amplitude_replay.py: a candidate amplitude network scored on recorded samples gives what
`gid eval --photos` and `gid eval --scenes` give with that network in the model (tiny model)."""

import math

import cv2
import numpy as np
import pytest
import torch

from gid_models.evaluation.photo_score import find_photo_pairs, score_photos
from gid_models.evaluation.scene_score import held_out_records, score_scenes
from gid_models.networks import MotionModel
from gid_models.networks.motion_amplitude import MotionAmplitudeNet
from gid_models.spectral import MotionError
from gid_models.train.merge_amplitude import merge_networks
from scene_records import HEIGHT, K, WIDTH, write_scene_record
from tools import amplitude_replay

pytestmark = pytest.mark.usefixtures("one_thread")
STEPS = 2


def _network(seed: int) -> MotionAmplitudeNet:
    torch.manual_seed(seed)
    network = MotionAmplitudeNet(num_frequencies=K, width=4)
    for parameter in network.parameters():  # a head that varies over the picture
        parameter.data.normal_(0, 0.3)
    return network.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(folder with a scenes dir (held-out seeds 9, 19), a photo and its mask; a tiny model; two networks)."""
    root = tmp_path_factory.mktemp("replay")
    generator = torch.Generator().manual_seed(0)
    for seed in (0, 9, 19):
        write_scene_record(root / "scenes_dir", seed, moving_right=bool(seed % 2), generator=generator)
    (root / "photos").mkdir()
    (root / "masks").mkdir()
    picture = np.full((36, 60, 3), 120, np.uint8)
    picture[:, 30:] = (40, 170, 60)  # BGR: green right half
    cv2.imwrite(str(root / "photos" / "field.png"), picture)
    mask = np.zeros((36, 60), np.uint8)
    mask[:, 30:] = 255
    mask[:4] = 128
    cv2.imwrite(str(root / "masks" / "field.png"), mask)
    cv2.imwrite(str(root / "photos" / "sky.png"), picture)  # one class only: gid eval does not score it
    cv2.imwrite(str(root / "masks" / "sky.png"), np.zeros_like(mask))
    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=K, sample_size=(HEIGHT, WIDTH)).eval()
    return root, model, _network(1), _network(2)


def _direct(root, model, network):
    """gid eval's own figures with network in the model: {photo: AUC}, {scene: (Spearman, error)}."""
    model.amplitude = network.attach_encoder()
    try:
        photos = score_photos(find_photo_pairs(root / "photos", root / "masks"), model, seeds=[0, 1], steps=STEPS)
        scenes, _ = score_scenes(held_out_records(root / "scenes_dir", 2), model, seeds=[0], steps=STEPS)
    finally:
        model.amplitude = None
    return ({r.photo: r.rows["model"] for r in photos if "model" in r.rows},
            {r.scene: (r.mean("magnitude_spearman"), r.mean("log_power_error")) for r in scenes})


@pytest.fixture(scope="module")
def recording(setup, tmp_path_factory):
    root, model, _, _ = setup
    path = tmp_path_factory.mktemp("recording") / "samples.safetensors"
    amplitude_replay.record(model, path, STEPS, root / "photos", root / "masks", photo_seeds=2,
                            scenes=root / "scenes_dir", scene_count=2, scene_seeds=1, progress=lambda text: None)
    return path


def _assert_same(replayed, photos, scenes, tolerance=1e-6):
    assert replayed["photos"].keys() == photos.keys() and replayed["scenes"].keys() == scenes.keys()
    for name, auc in photos.items():
        assert replayed["photos"][name] == pytest.approx(auc, abs=tolerance)
    for name, (rho, error) in scenes.items():
        assert replayed["scenes"][name] == pytest.approx((rho, error), abs=max(tolerance, 1e-5))


def test_replayed_scores_equal_gid_evals_for_one_network(setup, recording):
    root, model, first, _ = setup
    recording = amplitude_replay.Recording(recording)
    photos, scenes = _direct(root, model, first)
    assert list(photos) == ["field"] and not math.isnan(photos["field"]) and len(scenes) == 2  # sky: one class
    assert {item["name"] for item in recording.items if item["kind"] == "photo"} == {"field"}
    assert len({round(v[0], 6) for v in scenes.values()}) == 2  # the two scenes score differently
    _assert_same(amplitude_replay.score(recording, [(first, 1.0)]), photos, scenes)


def test_equal_weights_score_as_the_merged_network(setup, recording):
    root, model, first, second = setup
    photos, scenes = _direct(root, model, merge_networks([first, second]))
    recording = amplitude_replay.Recording(recording)
    # the merged network computes the mean up to float rounding, which moves a few near-tied pixels
    _assert_same(amplitude_replay.score(recording, [(first, 0.5), (second, 0.5)]), photos, scenes, tolerance=1e-4)
    other = amplitude_replay.score(recording, [(second, 1.0)])
    assert other["photos"] != photos or other["scenes"] != scenes  # the candidate matters


def test_command_line_scores_and_refuses_bad_candidates(setup, recording, tmp_path, capsys):
    root, _, first, second = setup
    first.save(tmp_path / "a.safetensors")
    second.save(tmp_path / "b.safetensors")
    path = recording
    code = amplitude_replay.main(["score", str(path), "--candidate", f"both={tmp_path / 'a.safetensors'},{tmp_path / 'b.safetensors'}",
                                  "--candidate", f"{tmp_path / 'a.safetensors'}:1.0"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("both") and "photos mean" in out and "2 scenes: Spearman" in out
    assert amplitude_replay.parse_candidate("x=a.safetensors:0.4,b.safetensors:0.6")[1] == [
        (amplitude_replay.Path("a.safetensors"), 0.4), (amplitude_replay.Path("b.safetensors"), 0.6)]
    with pytest.raises(MotionError, match="every network or to none"):
        amplitude_replay.parse_candidate("x=a.safetensors:0.4,b.safetensors")
    assert amplitude_replay.main(["score", str(path), "--candidate", str(tmp_path / "missing.safetensors")]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert amplitude_replay.main(["score", str(tmp_path / "a.safetensors"), "--candidate", "a"]) == 2
    assert "not an amplitude_replay recording" in capsys.readouterr().err
    out = tmp_path / "new.safetensors"
    assert amplitude_replay.main(["record", str(out), "--photos", str(root / "photos"), "--masks", str(root / "masks"),
                                  "--scenes", str(tmp_path / "no_scenes")]) == 2  # refused before any sampling
    assert "not a `gid scenes` output folder" in capsys.readouterr().err and not out.exists()
    assert amplitude_replay.main(["record", str(tmp_path / "no_dir" / "r.safetensors"), "--scenes",
                                  str(root / "scenes_dir")]) == 2
    assert "does not exist" in capsys.readouterr().err
