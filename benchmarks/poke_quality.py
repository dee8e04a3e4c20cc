"""Poke quality: folds, stretch, settling and renderer holes of a standard drag (issue 21).

Run: python benchmarks/poke_quality.py [--steps 10] [--size 256x160] [--threads 1]
     [--damping Z] [--strip-dir DIR --tag TAG]

The standard drag: on a spectral volume sampled by the bundled motion model (seed 0, --steps
DDIM steps, no loop guidance) for the picture centre-cropped to the --size aspect, find the most
mobile pixel at least BORDER px inside the picture (largest static drag response of the raw modes,
sum_j |phi_j|^2 / (m_j omega_j^2)) and drag it by 0.05
of the picture's width along its main direction of motion; the hand pulls over 15 frames (the
simulation's smoothstep hold), then lets go; 15 + 90 frames at 30 fps, default damping, everything
else at the simulation's defaults. Volumes are cached in ~/.cache/comfyui-gid/poke_quality (or
$GID_POKE_CACHE) so reruns only simulate and render.
The columns are the same for any version of gid_models (the "before" figures ran on the
integration branch's code).

Printed per picture (frames from the drag's start to the end):
- fold max / mean: fraction of pixels whose warp x -> x + d(x) folds (Jacobian determinant < 0),
  the worst frame and the mean over frames;
- stretch: the largest singular value of that Jacobian over all pixels and frames;
- residual: the largest displacement (px) 2.5 s after release;
- holes max / mean: fraction of pixels the pixel renderer's splat covers less than half
  (coverage < 0.5), the worst frame and the mean over frames.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
PICTURES = (
    ROOT / "gid_models" / "assets" / "dandelion_meadow.jpg",
    Path("/work/shared/data/pictures/forest_stream.jpg"),
    Path("/work/shared/data/pictures/lone_tree_small.jpg"),
)
DRAG_FRACTION = 0.05
HOLD_FRAMES = 15
AFTER_FRAMES = 90
FPS = 30.0
SETTLE_SECONDS = 2.5
BORDER = 8  # pixels: the drag point is chosen at least this far inside the picture


def load_cropped(path: Path, width: int, height: int) -> torch.Tensor:
    """(1, 3, height, width) picture in 0..1, centre-cropped to the aspect and resized (area)."""
    import cv2
    import numpy as np

    image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    if w * height > h * width:
        crop = round(h * width / height)
        image = image[:, (w - crop) // 2 : (w - crop) // 2 + crop]
    else:
        crop = round(w * height / width)
        image = image[(h - crop) // 2 : (h - crop) // 2 + crop]
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0


def cached_volume(path: Path, picture: torch.Tensor, steps: int, cache: Path):
    from gid_models.pipeline import volume_from_model
    from gid_models.spectral import SpectralVolume

    h, w = picture.shape[-2:]
    file = cache / f"{path.stem}_{w}x{h}_s{steps}.pt"
    if file.exists():
        saved = torch.load(file)
        return SpectralVolume(saved["coeffs"], num_frames=saved["num_frames"], fps=saved["fps"])
    volume = volume_from_model(picture, seed=0, steps=steps, loop=False, mask=None, device=torch.device("cpu")).volume
    volume.require_physical("the poke-quality benchmark")
    cache.mkdir(parents=True, exist_ok=True)
    torch.save({"coeffs": volume.coeffs, "num_frames": volume.num_frames, "fps": volume.fps}, file)
    return volume


def standard_drag(volume):
    """The drag of the module docstring, in pixels of the volume, from its raw (unsmoothed) modes,
    so every version of the simulation gets the same drag."""
    from gid_models.dynamics import Drag

    coeffs = volume.coeffs[0, 1:].double()  # (K-1, 4, H, W)
    phi = torch.complex(coeffs[:, 0::2], coeffs[:, 1::2])  # (J, 2, H, W)
    omegas = 2.0 * math.pi * volume.frequencies_hz().double()[1:]
    masses = phi.abs().square().sum(1).mean((-2, -1))
    weights = torch.where(masses > 0, 1.0 / (masses * omegas.square()).clamp_min(1e-300), 0.0)
    response = torch.einsum("j,jchw->hw", weights, phi.abs().square())
    inner = response[BORDER:-BORDER, BORDER:-BORDER]
    y, x = divmod(int(inner.argmax()), inner.shape[1])
    y, x = y + BORDER, x + BORDER
    at = phi[:, :, y, x]  # (J, 2)
    covariance = torch.einsum("j,ja,jb->ab", weights, at, at.conj()).real
    direction = torch.linalg.eigh(covariance).eigenvectors[:, -1]
    length = DRAG_FRACTION * volume.width
    return Drag(x=float(x), y=float(y), dx=float(direction[0]) * length, dy=float(direction[1]) * length,
                start=0, hold=HOLD_FRAMES, kind="drag")


def measure(picture: torch.Tensor, volume, **simulate_options) -> tuple[dict, torch.Tensor]:
    from gid_models.dynamics import simulate
    from gid_models.rendering import motion_importance
    from gid_models.rendering.stretch import warp_jacobian

    try:
        from gid_models.rendering.pixel import splat_pixel_frames
    except ImportError:  # before issue 21: one plain splat
        from gid_models.rendering import softmax_splat as splat_pixel_frames

    drag = standard_drag(volume)
    motion = simulate(volume, [drag], HOLD_FRAMES + AFTER_FRAMES, FPS, **simulate_options).displacements[0]
    det, stretch = warp_jacobian(motion)
    folds = (det < 0).float().flatten(1).mean(1)
    n, _, h, w = motion.shape
    importance = motion_importance(motion[None])
    importance = importance.reshape(1, 1, h, w) if importance.numel() == h * w else importance[:1]
    _, coverage = splat_pixel_frames(picture.expand(n, -1, h, w), motion, importance.expand(n, 1, h, w))
    holes = (coverage < 0.5).float().flatten(1).mean(1)
    settle = HOLD_FRAMES + round(SETTLE_SECONDS * FPS)
    magnitude = motion.norm(dim=1).flatten(1).amax(1)
    return {
        "drag": f"({drag.x:.0f},{drag.y:.0f}) d=({drag.dx:+.1f},{drag.dy:+.1f})",
        "peak_px": float(magnitude.max()),
        "fold_max": float(folds.max()), "fold_mean": float(folds.mean()),
        "stretch": float(stretch.max()),
        "residual_px": float(magnitude[settle]),
        "holes_max": float(holes.max()), "holes_mean": float(holes.mean()),
    }, motion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", default="256x160")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--damping", type=float, default=None, help="damping ratio (default: simulate's default)")
    parser.add_argument("--strip-dir", type=Path, default=None,
                        help="write a strip of rendered frames per picture here (benchmarks/poke_sheet.py)")
    parser.add_argument("--tag", default="now", help="strip file suffix, e.g. before / after")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    cache = Path(os.environ.get("GID_POKE_CACHE", Path.home() / ".cache" / "comfyui-gid" / "poke_quality"))
    options = {} if args.damping is None else {"damping": args.damping}
    print(f"standard drag {DRAG_FRACTION} x width, hold {HOLD_FRAMES}, then {AFTER_FRAMES} frames at {FPS:g} fps; "
          f"{width}x{height}, {args.steps} steps")
    print(f"{'picture':22s} {'drag (px)':28s} {'peak px':>8s} {'fold max':>9s} {'fold mean':>9s} {'stretch':>8s} "
          f"{'resid px':>8s} {'holes max':>9s} {'holes mean':>10s}")
    for path in PICTURES:
        if not path.exists():
            print(f"{path.stem:22s} missing, skipped")
            continue
        picture = load_cropped(path, width, height)
        volume = cached_volume(path, picture, args.steps, cache)
        row, motion = measure(picture, volume, **options)
        print(f"{path.stem:22s} {row['drag']:28s} {row['peak_px']:8.2f} {row['fold_max']:9.4f} {row['fold_mean']:9.4f} "
              f"{row['stretch']:8.2f} {row['residual_px']:8.2f} {row['holes_max']:9.4f} {row['holes_mean']:10.4f}",
              flush=True)
        if args.strip_dir is not None:
            from poke_sheet import write_strip

            write_strip(picture, motion, args.strip_dir / f"poke_{path.stem}_{args.tag}.png")


if __name__ == "__main__":
    main()
