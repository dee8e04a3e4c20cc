"""How much a renderer could gain over the pixel renderer on clips, by the cheapest correction.

    python -m tools.renderer_headroom CLIP [CLIP ...] [--frames 150] [--size 256x160]

Renders every clip's frames 1..T-1 from its first frame along the ground-truth trajectories
(exactly as `gid eval` does) with the pixel renderer, then prints the PSNR (dB) against the real
frames of:
- the pixel renderer's frames ("pixel");
- the first frame held still ("still I_0", the floor);
- those frames blurred by a Gaussian of sigma 0.5, 0.8 and 1.2 px everywhere ("blur s"), and
  only where the true motion exceeds 0.5 px ("blur s moving").
A blur is the simplest thing a learned correction finds when the flow is uncertain; if it gains
little, most of the error left is new content (disocclusions, lighting, motion the K bins miss)
that no renderer can take from I_0 alone. A network can still win there by painting its average
(the shipped renderer gains 0.42 dB on the validation clips where a blur gains at most 0.1; see
the model card), at the cost of soft patches.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from gid_models.evaluation import metrics
from gid_models.evaluation.run import load_clip_frames
from gid_models.flow import spectral_volume_from_video
from gid_models.rendering import render_motion
from gid_models.spectral import MotionTexture

BLUR_SIGMAS_PX = (0.5, 0.8, 1.2)
MOVING_THRESHOLD_PX = 0.5


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, C, H, W) float32 CPU -> the same, blurred by OpenCV's Gaussian of sigma pixels (edges replicated)."""
    channels_last = frames.permute(0, 2, 3, 1).numpy()
    blurred = np.stack([cv2.GaussianBlur(np.ascontiguousarray(frame), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
                        for frame in channels_last])
    return torch.from_numpy(blurred.reshape(channels_last.shape)).permute(0, 3, 1, 2)  # reshape: C = 1 comes back 2D


def headroom(path: Path, width: int, height: int, num_frames: int) -> dict[str, float]:
    """PSNR (dB) of each variant named in the module docstring, for one clip."""
    frames, fps = load_clip_frames(path, width, height, num_frames)
    trajectories = spectral_volume_from_video(frames, fps).trajectories  # (1, T, 2, H, W) px
    picture = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float() / 255.0
    real = torch.from_numpy(frames[1:]).permute(0, 3, 1, 2).float() / 255.0
    rendered = render_motion(picture, MotionTexture(trajectories, fps=fps), output_device="cpu")[1:]
    moving = (trajectories[0, 1:].norm(dim=1, keepdim=True) > MOVING_THRESHOLD_PX).float()
    scores = {"pixel": metrics.psnr(rendered, real), "still I_0": metrics.psnr(picture.expand_as(real), real)}
    for sigma in BLUR_SIGMAS_PX:
        blurred = gaussian_blur(rendered, sigma)
        scores[f"blur {sigma}"] = metrics.psnr(blurred, real)
        scores[f"blur {sigma} moving"] = metrics.psnr(moving * blurred + (1 - moving) * rendered, real)
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--frames", type=int, default=150, help="T: frames per clip")
    parser.add_argument("--size", default="256x160", help="WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    for clip in args.clips:
        scores = headroom(clip, width, height, args.frames)
        print(clip.name, "  ".join(f"{name} {value:.3f}" for name, value in scores.items()), flush=True)


if __name__ == "__main__":
    main()
