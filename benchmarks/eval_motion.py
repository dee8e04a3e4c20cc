"""Evaluation table for motion prediction and rendering on clips the model never saw.

Run: python benchmarks/eval_motion.py CLIPS... [--train-shards DIR] [--per-clip]
     (the same as `gid eval` / `python -m gid_models.evaluation.run`; see that module for the
     metrics). CPU by default; add --device cuda to sample the model on a GPU.
Example on the shared validation clips:
     python benchmarks/eval_motion.py ../shared/data/clips/big_buck_bunny/bbb_02196_02392.mp4 \
         ../shared/data/clips/big_buck_bunny/bbb_05133_05290.mp4 --train-shards /tmp/gid_shards
"""

import sys
from pathlib import Path

# A script run as `python benchmarks/eval_motion.py`: make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gid_models.evaluation.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
