"""tools/renderer_headroom.py: the blur it scores and its PSNR table on one short clip."""

import math

import torch

from synthetic_clips import write_sway_clip
from tools.renderer_headroom import BLUR_SIGMAS_PX, gaussian_blur, headroom, main


def test_gaussian_blur_keeps_constants_and_total_and_smooths():
    flat = torch.full((2, 3, 9, 11), 0.25)
    torch.testing.assert_close(gaussian_blur(flat, 0.8), flat)
    impulse = torch.zeros(1, 3, 15, 15)
    impulse[..., 7, 7] = 1.0
    blurred = gaussian_blur(impulse, 1.2)
    torch.testing.assert_close(blurred.sum(dim=(-2, -1)), torch.ones(1, 3))
    assert blurred[..., 7, 7].max() < 0.2 and blurred[..., 7, 8].min() > 0.05


def test_headroom_scores_every_variant_and_the_renderer_beats_a_still_frame(tmp_path, capsys):
    clip = tmp_path / "sway.mp4"
    write_sway_clip(clip, seed=1)

    scores = headroom(clip, 64, 40, 32)
    expected = {"pixel", "still I_0"} | {f"blur {s}" for s in BLUR_SIGMAS_PX} | {f"blur {s} moving" for s in BLUR_SIGMAS_PX}
    assert set(scores) == expected and all(math.isfinite(v) for v in scores.values())
    assert scores["pixel"] > scores["still I_0"] + 1.0  # rendering the true motion explains the frames
    main([str(clip), "--size", "64x40", "--frames", "32"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("sway.mp4 ") and f"pixel {scores['pixel']:.3f}" in line
