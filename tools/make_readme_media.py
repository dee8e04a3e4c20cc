"""Make the README's animation and X-t slice from the bundled example, with the pack itself.

    python tools/make_readme_media.py            # writes docs/dandelion_loop.webp, docs/dandelion_xt.png
    python tools/make_readme_media.py --picture ../shared/data/pictures/meadow_forest_mountains.jpg --name meadow
                                                 # docs/meadow_loop.webp, docs/meadow_xt.png

Uses the same pipeline as `gid animate --loop` (motion from the bundled model when one ships,
else from the bundled clip), at a reduced size so the files stay small.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from gid_models import pipeline
from gid_models.video_io import write_video

DOCS = Path(__file__).resolve().parent.parent / "docs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-side", type=int, default=320)
    parser.add_argument("--frames", type=int, default=None,
                        help="frames of the loop (default: one period of the volume in real time at --fps)")
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--row", type=float, default=0.45, help="X-t slice row, 0 (top) .. 1 (bottom)")
    parser.add_argument("--picture", default=str(pipeline.BUNDLED_PICTURE), help="picture to animate")
    parser.add_argument("--name", default="dandelion", help="files: docs/NAME_loop.webp, docs/NAME_xt.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    picture = pipeline.load_picture(args.picture, max_side=args.max_side)
    source = pipeline.motion_for_picture(picture, loop=True, seed=args.seed)
    volume = source.volume.resized(*picture.shape[-2:])
    # Real time by default: squeezing the 5 s period into fewer frames speeds the motion up and
    # puts the top bins only a few frames per cycle apart, which reads as jitter.
    frames_count = args.frames or round(volume.num_frames * args.fps / volume.fps)
    motion = pipeline.loop_motion(volume, frames_count, args.fps, gain=1.0)
    frames = pipeline.render(picture, motion).permute(0, 2, 3, 1).clamp(0, 1)
    DOCS.mkdir(exist_ok=True)
    loop_path, xt_path = DOCS / f"{args.name}_loop.webp", DOCS / f"{args.name}_xt.png"
    write_video(str(loop_path), frames, args.fps)
    row = int(args.row * (frames.shape[1] - 1))
    xt = (frames[:, row].numpy() * 255).round().astype(np.uint8)  # (T, W, 3): time runs down
    xt = cv2.resize(xt, (xt.shape[1], xt.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(xt_path), cv2.cvtColor(xt, cv2.COLOR_RGB2BGR))
    print(f"{source.description}; wrote {loop_path} and {xt_path}")


if __name__ == "__main__":
    main()
