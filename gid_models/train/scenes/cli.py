"""`gid scenes`: render procedural nature-in-wind scenes with exact motion into training records.

    gid scenes --count 2000 --out DIR [--workers 2] [--size 256x160] [--samples 16] [--first-seed 0] [--recipe 5]

Writes one compact record per scene (DIR/scenes/, about 1 MB each) and DIR/scenes_log.jsonl.
The training commands read DIR directly: `gid train --shards DIR` takes its training seeds,
`--val-shards DIR` every tenth seed (9, 19, ...), which `gid train-amplitude` holds out too;
`--pack` also writes them as shards for tools that read only shards. Resumable (run it again with
the same options to finish an interrupted run), deterministic per seed. A scene that Blender fails
on or that runs past 900 s is skipped; the others go on, and the run ends with exit code 2 naming
the skipped seeds (run it again to retry them). Needs Blender's Python module (the `scenes`
extra); see gid_models/train/scenes/render.py.
"""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

from ...spectral import MotionError
from .scenery import LATEST_RECIPE, RECIPES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gid scenes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, required=True, help="examples to have under --out")
    parser.add_argument("--out", required=True, help="folder for scenes/ (records) and scenes_log.jsonl")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (each renders with one thread)")
    parser.add_argument("--size", default="256x160", help="WIDTHxHEIGHT in pixels")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples of the picture (denoised)")
    parser.add_argument("--frames", type=int, default=150, help="T: frames the spectral volume describes")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of those frames")
    parser.add_argument("--frequencies", type=int, default=16, help="K: frequency bins kept")
    parser.add_argument("--examples-per-shard", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=0, help="example i uses seed first_seed + i")
    parser.add_argument("--recipe", type=int, default=LATEST_RECIPE, choices=RECIPES,
                        help="scene recipe: 5 (default) adds big flower and seed heads close to the lens, some "
                        "backlit, to 4; 4 adds rocky banks close to the lens and weathered (mossy) rock to 3; "
                        "3 adds visibly rippling lakes, streams and pale rock to 2; "
                        "2 adds textured still scenery and moving grass ground to 1; an earlier recipe rebuilds "
                        "data sets made with it, seed for seed (compose.py)")
    parser.add_argument("--pack", action="store_true",
                        help="also write the records as shards, DIR/shards/ and DIR/held_out_shards/ (every tenth "
                        "seed), for tools that read only shards (about 5.4 MB per 256x160 example; the training "
                        "commands read DIR itself)")
    parser.add_argument("--no-pack", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old commands
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    from .engine import SceneConfig, generate

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        logging.getLogger("gid").error("--size must be WIDTHxHEIGHT, e.g. 256x160, got %r", args.size)
        return 2
    if args.count < 1 or args.workers < 1 or args.frames < 2 * args.frequencies - 1:
        logging.getLogger("gid").error("--count and --workers must be >= 1 and --frames >= 2 * --frequencies - 1.")
        return 2
    config = SceneConfig(width=width, height=height, num_frames=args.frames, fps=args.fps,
                         num_frequencies=args.frequencies, samples=args.samples,
                         examples_per_shard=args.examples_per_shard, first_seed=args.first_seed,
                         recipe=args.recipe)
    try:
        made = generate(args.out, args.count, config, workers=args.workers, progress=not args.no_progress,
                        pack_shards=args.pack)
    except MotionError as error:
        logging.getLogger("gid").error("%s", error)
        return 2
    logging.getLogger("gid").info("%d examples under %s", made, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
