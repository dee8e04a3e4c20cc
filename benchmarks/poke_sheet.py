"""Contact sheets of the standard drag (benchmarks/poke_quality.py): rows of rendered frames.

poke_quality.py --strip-dir DIR --tag TAG writes one strip per picture (SHEET_FRAMES rendered by
that version's pixel renderer, side by side, PNG). Then

    python benchmarks/poke_sheet.py DIR OUT_DIR before after

stacks the strips of each picture, top to bottom in the order of the tags and labelled with them,
into OUT_DIR/poke_<picture>.jpg (JPEG quality 80).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

HOLD_FRAMES = 15
SHEET_FRAMES = (0, 8, 14, 20, 35, 90)  # rest, pulling, held, just released, 0.7 s and 2.5 s after release


def write_strip(picture: torch.Tensor, motion: torch.Tensor, path: Path) -> None:
    """Render SHEET_FRAMES of motion (N, 2, H, W) on picture (1, 3, H, W) and save them side by side."""
    import cv2
    import numpy as np

    from gid_models.rendering import motion_importance, render_pixel_frames

    frames = [n for n in SHEET_FRAMES if n < motion.shape[0]]
    importance = motion_importance(motion[None])
    rendered = render_pixel_frames(picture, motion[frames], importance)  # (F, 3, H, W)
    strip = np.ascontiguousarray(torch.cat(list(rendered), dim=-1).permute(1, 2, 0).mul(255).round().byte().numpy())
    for column, frame in enumerate(frames):
        label = f"t={frame - HOLD_FRAMES:+d}" if frame >= HOLD_FRAMES else f"pull {frame}"
        cv2.putText(strip, label, (column * picture.shape[-1] + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (255, 255, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))


def stack(strip_dir: Path, out_dir: Path, tags: list[str]) -> None:
    import cv2
    import numpy as np

    stems = sorted({p.stem.rsplit("_", 1)[0] for p in strip_dir.glob("poke_*_*.png")})
    out_dir.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        rows = []
        for tag in tags:
            row = cv2.imread(str(strip_dir / f"{stem}_{tag}.png"))
            if row is None:
                raise SystemExit(f"missing strip {stem}_{tag}.png in {strip_dir}")
            cv2.putText(row, tag, (4, row.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1, cv2.LINE_AA)
            rows.append(row)
        out = out_dir / f"{stem}.jpg"
        cv2.imwrite(str(out), np.concatenate(rows), [cv2.IMWRITE_JPEG_QUALITY, 80])
        print(f"{out}: {out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    stack(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
