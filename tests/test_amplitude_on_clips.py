"""tools/amplitude_on_clips: an amplitude network's map and power against a clip's measured motion."""

import math

import cv2
import pytest
import torch

from gid_models.networks.motion_amplitude import MotionAmplitudeNet
from synthetic_clips import write_sway_clip
from tools import amplitude_on_clips

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_flat_network_ranks_nothing_and_its_power_ratio_is_what_it_predicts(tmp_path, capsys):
    clip = tmp_path / "sway.mp4"
    write_sway_clip(clip, seed=0)
    flat = MotionAmplitudeNet(num_frequencies=4, width=4, initial_log_amplitude=-2.0)
    flat.save(tmp_path / "run" / "motion_amplitude.safetensors")
    picture, coeffs = amplitude_on_clips.clip_truth(clip, 80, 48, 36, 4)
    assert picture.shape == (1, 3, 48, 80) and coeffs.shape == (1, 4, 4, 48, 80)
    rho, ratio = amplitude_on_clips.compare(flat.attach_encoder(), picture, coeffs)
    assert rho == 0.0  # a constant map ranks nothing
    # the flat prediction's power: 3 bins x 2 axes x exp(2 * -2) px^2 per pixel
    truth = amplitude_on_clips.cell_log_amplitude(coeffs)
    true_power = float(torch.exp(2 * truth[0, 1:]).sum(dim=(0, 1)).mean())
    assert ratio == pytest.approx(math.log10(6 * math.exp(-4.0) / true_power), abs=1e-4)

    code = amplitude_on_clips.main([str(clip), "--networks", str(tmp_path / "run" / "motion_amplitude.safetensors"),
                                    "--frames", "36", "--size", "80x48", "--frequencies", "4"])
    out = capsys.readouterr().out
    assert code == 0 and "sway.mp4" in out and out.splitlines()[-1].startswith("mean")
    assert amplitude_on_clips.main([str(clip), "--networks", "x.safetensors", "--size", "81x48"]) == 2


def test_boxes_split_the_power_and_the_maps_picture_has_a_row_per_clip(tmp_path, capsys):
    clip = tmp_path / "sway.mp4"
    write_sway_clip(clip, seed=0)
    network = tmp_path / "run" / "motion_amplitude.safetensors"
    MotionAmplitudeNet(num_frequencies=4, width=4).save(network)
    picture, coeffs = amplitude_on_clips.clip_truth(clip, 80, 48, 36, 4)
    inside = amplitude_on_clips.box_mask([[0, 0, 40, 48]], 48, 80)
    assert inside.sum() == 40 * 48
    left = coeffs[0, 1:, :, :, :40].pow(2).sum()
    assert amplitude_on_clips.power_share(coeffs, inside) == pytest.approx(float(left / coeffs[0, 1:].pow(2).sum()))
    cells = amplitude_on_clips.outside_cells(inside)
    assert cells.shape == (6, 10) and not cells[:, :5].any() and cells[:, 5:].all()

    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"sway.mp4": [[0, 0, 40, 48]]}')
    maps = tmp_path / "maps.png"
    args = [str(clip), "--networks", str(network), "--frames", "36", "--size", "80x48", "--frequencies", "4"]
    assert amplitude_on_clips.main(args + ["--boxes", str(boxes), "--maps", str(maps)]) == 0
    out = capsys.readouterr().out
    assert "outside the boxes" in out and "boxes: 50% of the area" in out
    image = cv2.imread(str(maps))
    assert image.shape == (48, 80 * 3, 3)  # frame 0, the true map, the network's map
    assert (image[0, 0] == (0, 0, 255)).all()  # the box outline, red

    bad = tmp_path / "bad.json"
    for text in ("[1, 2]", '{"sway.mp4": [[40, 0, 0, 48]]}', '{"sway.mp4": [[0, 0, 40]]}', "not json"):
        bad.write_text(text)
        assert amplitude_on_clips.main(args + ["--boxes", str(bad)]) == 2
    assert amplitude_on_clips.main(args + ["--maps", str(tmp_path / "maps.txt")]) == 2
    assert amplitude_on_clips.main(args + ["--maps", str(tmp_path / "no" / "maps.png")]) == 2
    assert "cannot read --boxes" in capsys.readouterr().err
