"""`gid train-amplitude`: train motion model v2's motion-amplitude network (train_amplitude.py).

    gid train-amplitude --out DIR --scenes /data/scenes_v1 --shards /data/bbb_shards [--steps 1200]
        [--photos ../shared/data/pictures --masks ../shared/data/photo_masks]
    then copy DIR/motion_amplitude.safetensors (+ .json) into a motion model folder
    (gid_models/weights/ for the bundled one).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from ..cli import entry_point
from ..spectral import MotionError


def build_parser() -> argparse.ArgumentParser:
    defaults = _training_defaults()
    parser = argparse.ArgumentParser(prog="gid train-amplitude", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the checkpoint, the loss log and the weights")
    parser.add_argument("--scenes", nargs="*", default=[], help="`gid scenes --out` folders (their scenes/ records)")
    parser.add_argument("--shards", nargs="*", default=[], help="`gid prepare` shard folders or files")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps in all (resumes)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="pictures per step")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="peak (one-cycle)")
    parser.add_argument("--width", type=int, default=defaults.width, help="channels of the network")
    parser.add_argument("--kernel-size", type=int, default=defaults.kernel_size,
                        help="odd size of its convolutions' kernels (1: each cell judged from its own features)")
    parser.add_argument("--dropout", type=float, default=defaults.dropout, help="channel dropout of its input")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="AdamW weight decay")
    parser.add_argument("--colour-variants", type=int, default=defaults.colour_variants,
                        help="colour-jittered copies of every picture (and of its mirror image)")
    parser.add_argument("--film-share", type=float, default=defaults.film_share,
                        help="share of every batch drawn from the --shards pictures (0: in proportion to their number)")
    parser.add_argument("--held-out-every", type=int, default=defaults.held_out_every,
                        help="every Nth scene seed is held out and scored, never trained on")
    parser.add_argument("--log-every", type=int, default=defaults.log_every, help="steps between log rows")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--photos", help="photographs to score (a record only) ...")
    parser.add_argument("--masks", help="... and their should-move masks (shared/data/photo_masks)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _training_defaults():
    from .train_amplitude import AmplitudeTraining

    return AmplitudeTraining(out=Path("."))


@entry_point("gid train-amplitude")
def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    import torch

    from .train_amplitude import AmplitudeTraining, train_amplitude

    if args.steps < 1 or args.batch_size < 1 or args.width < 1 or not 0 <= args.dropout < 1 or not 0 <= args.film_share <= 1:
        raise MotionError("--steps, --batch-size and --width must be >= 1, --dropout in [0, 1) and --film-share in [0, 1].")
    if args.kernel_size < 1 or args.kernel_size % 2 == 0:
        raise MotionError(f"--kernel-size must be odd and >= 1 (the convolutions pad by half), not {args.kernel_size}.")
    if bool(args.photos) != bool(args.masks):
        raise MotionError("--photos and --masks go together.")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = AmplitudeTraining(
        out=Path(args.out), scenes=[Path(p) for p in args.scenes], shards=[Path(p) for p in args.shards],
        steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate, width=args.width,
        kernel_size=args.kernel_size, dropout=args.dropout, weight_decay=args.weight_decay,
        colour_variants=args.colour_variants,
        held_out_every=args.held_out_every, film_share=args.film_share, log_every=args.log_every, seed=args.seed,
        photos=Path(args.photos) if args.photos else None, masks=Path(args.masks) if args.masks else None,
    )
    train_amplitude(config, progress=not args.no_progress)
    logging.getLogger("gid").info("wrote %s", Path(args.out) / "motion_amplitude.safetensors")


if __name__ == "__main__":
    raise SystemExit(main())
