"""tools/amplitude_on_clips: an amplitude network's map and power against a clip's measured motion."""

import math

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
