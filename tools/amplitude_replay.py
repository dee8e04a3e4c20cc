"""`gid eval`'s photo and scene scores of motion-amplitude networks in seconds, from recorded samples.

    python -m tools.amplitude_replay record CACHE.safetensors [--model DIR] [--steps 10]
        [--photos ../shared/data/pictures --masks ../shared/data/photo_masks] [--photo-seeds 4]
        [--scenes SCENES_DIR] [--scene-count 40] [--scene-seeds 1]
    python -m tools.amplitude_replay score CACHE.safetensors --candidate NAME=A.safetensors[:W][,B.safetensors:W] ...

Unguided, the diffusion sample does not depend on the amplitude network: the sampler decodes it
and only then imposes the network's amplitudes and anchors frame 0 (sampling/__init__.py). So
`record` runs the slow part once, the model's samples without its network (at the working size,
the pictures `gid eval` samples: each photo at its mask's size, each held-out scene's record,
with the same seeds and steps), and `score` imposes any candidate's amplitudes on them and
scores them as `gid eval --photos` and `gid eval --scenes` do: photo ROC AUC (mean over seeds)
and scene magnitude Spearman and log10 power error. It gives the same figures as `gid eval` with
the candidate in the model folder (tests/test_amplitude_replay.py), in seconds instead of about
20 minutes per candidate on 2 CPU cores.

A candidate is one or more networks with weights: its log amplitude is their weighted sum (equal
weights summing to 1 are what `gid merge-amplitude` ships; other weights are for exploring).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence
from unittest import mock

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from gid_models.evaluation import metrics
from gid_models.evaluation.photo_score import find_photo_pairs, load_mask, map_auc, mask_classes
from gid_models.evaluation.scene_score import _truth, held_out_records
from gid_models.networks import MotionModel
from gid_models.networks.motion_amplitude import MotionAmplitudeNet
from gid_models.pipeline import load_picture
from gid_models import sampling
from gid_models.spectral import MotionError, SpectralVolume, anchor_start_frame

PHOTO_FRAMES, PHOTO_FPS = 150, 30.0  # sample_spectral_volume's defaults, which gid eval --photos uses


def unplaced_sample(model: MotionModel, picture: torch.Tensor, seed: int, steps: int, num_frames: int,
                    fps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(working picture (1, 3, h, w) 0..1, coefficients (1, K, 4, h, w) px) of the model's unguided
    sample of picture (1, 3, H, W), taken where the sampler hands it to the amplitude network
    (sampling.motion_placer), so the picture is resized exactly as gid eval's samples are."""
    seen = {}

    def recording_placer(_model, working):
        seen["working"] = working.detach().clone()

        def place(pixels):
            seen["pixels"] = pixels.detach().float().clone()
            return pixels
        return place

    with torch.no_grad(), mock.patch.object(sampling, "motion_placer", recording_placer):
        sampling.sample_spectral_volume(model, picture, seed=seed, steps=steps, num_frames=num_frames, fps=fps)
    if "pixels" not in seen:
        raise MotionError("amplitude_replay: the sampler no longer places its motion through sampling.motion_placer; "
                          "update unplaced_sample.")
    return seen["working"], seen["pixels"]


def record_inputs(out: Path, photos: Path | None, masks: Path | None, scenes: Path | None,
                  scene_count: int) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(photo and mask pairs, held-out scene records) that `record` samples; MotionError, before any
    sampling, for an output folder that does not exist, photo folders or a scenes folder that are not."""
    if not Path(out).parent.is_dir():
        raise MotionError(f"amplitude_replay record: the folder of {out} does not exist.")
    pairs = find_photo_pairs(photos, masks) if photos is not None else []
    records = held_out_records(scenes, scene_count) if scenes is not None else []
    if not pairs and not records:
        raise MotionError("amplitude_replay record: nothing to sample; give --photos and --masks and/or --scenes.")
    return pairs, records


def record(model: MotionModel, out: Path, steps: int, photos: Path | None = None, masks: Path | None = None,
           photo_seeds: int = 4, scenes: Path | None = None, scene_count: int = 40, scene_seeds: int = 1,
           progress=print) -> None:
    """Sample every photo (with a mask of both classes) and held-out scene once per seed; write
    out (.safetensors: the working pictures, coefficients and masks; metadata: what each item is)."""
    pairs, records = record_inputs(out, photos, masks, scenes, scene_count)
    tensors, items = {}, []
    if photos is not None:
        for picture_path, mask_path in pairs:
            mask = load_mask(mask_path)
            moves, still = mask_classes(mask)
            if not moves.any() or not still.any():
                continue  # gid eval does not score a photo with one class
            picture = load_picture(picture_path, max_side=max(mask.shape))
            for seed in range(photo_seeds):
                working, coeffs = unplaced_sample(model, picture, seed, steps, PHOTO_FRAMES, PHOTO_FPS)
                key = f"photo{len(items)}"
                tensors.update({f"{key}.working": working, f"{key}.coeffs": coeffs,
                                f"{key}.mask": torch.from_numpy(mask.copy())})
                items.append(dict(key=key, kind="photo", name=picture_path.stem, seed=seed,
                                  size=list(picture.shape[-2:]), num_frames=PHOTO_FRAMES, fps=PHOTO_FPS))
            progress(f"{picture_path.stem}: {photo_seeds} sample(s)")
    if scenes is not None:
        for path in records:
            picture, truth = _truth(path)
            for seed in range(scene_seeds):
                working, coeffs = unplaced_sample(model, picture, seed, steps, truth.num_frames, truth.fps)
                key = f"scene{len(items)}"
                tensors.update({f"{key}.working": working, f"{key}.coeffs": coeffs})
                items.append(dict(key=key, kind="scene", name=path.stem, seed=seed, path=str(Path(path).resolve()),
                                  size=[truth.height, truth.width], num_frames=truth.num_frames, fps=truth.fps))
            progress(f"{path.stem}: {scene_seeds} sample(s)")
    if not items:
        raise MotionError("amplitude_replay record: nothing to sample; give --photos and --masks and/or --scenes.")
    save_file({name: t.contiguous() for name, t in tensors.items()}, str(out),
              metadata={"items": json.dumps(items), "steps": str(steps)})


class Recording:
    """A `record` file: items (dicts as written) and their tensors."""

    def __init__(self, path: Path):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if "items" not in metadata:
            raise MotionError(f"{path} is not an amplitude_replay recording (no items in its metadata).")
        self.items = json.loads(metadata["items"])
        self.steps = int(metadata["steps"])
        self.tensors = load_file(str(path))
        self._truths: dict[str, SpectralVolume] = {}

    def truth(self, path: str) -> SpectralVolume:
        if path not in self._truths:
            self._truths[path] = _truth(Path(path))[1]
        return self._truths[path]


Candidate = list[tuple[MotionAmplitudeNet, float]]


@torch.no_grad()
def placed(candidate: Candidate, working: torch.Tensor, coeffs: torch.Tensor, item: dict) -> SpectralVolume:
    """The recorded sample placed by the candidate's weighted log amplitudes and anchored, at the
    picture's size, as sample_spectral_volume returns it (through the sampler's own motion_placer)."""
    weighted = SimpleNamespace(amplitude=lambda picture: sum(weight * network(picture) for network, weight in candidate))
    pixels = anchor_start_frame(sampling.motion_placer(weighted, working)(coeffs))
    return SpectralVolume(pixels, num_frames=item["num_frames"], fps=float(item["fps"])).resized(*item["size"])


def score(recording: Recording, candidate: Candidate) -> dict:
    """{'photos': {name: mean AUC over seeds}, 'scenes': {name: (Spearman, log10 power error)}}."""
    photos: dict[str, list[float]] = {}
    scenes: dict[str, list[tuple[float, float]]] = {}
    for item in recording.items:
        key = item["key"]
        volume = placed(candidate, recording.tensors[f"{key}.working"], recording.tensors[f"{key}.coeffs"], item)
        if item["kind"] == "photo":
            auc = map_auc(metrics.magnitude_map(volume)[0], recording.tensors[f"{key}.mask"].numpy())
            photos.setdefault(item["name"], []).append(auc)
        else:
            truth = recording.truth(item["path"])
            scenes.setdefault(item["name"], []).append((metrics.magnitude_spearman(volume, truth)[0],
                                                        float(metrics.log_power_error(volume, truth)[0])))
    # a photo whose mask has one class has no AUC; gid eval leaves it out of the mean as well
    return {"photos": {name: float(np.mean(v)) for name, v in photos.items() if not any(map(math.isnan, v))},
            "scenes": {name: tuple(float(x) for x in np.mean(v, axis=0)) for name, v in scenes.items()}}


def _path_and_weight(piece: str) -> tuple[Path, float | None]:
    path, separator, weight = piece.rpartition(":")
    if separator:
        try:
            return Path(path), float(weight)
        except ValueError:
            pass
    return Path(piece), None


def parse_candidate(text: str) -> tuple[str, list[tuple[Path, float]]]:
    """'NAME=A.safetensors[:W][,B.safetensors[:W]]' -> (NAME, [(path, weight)]); without weights
    every network gets an equal share (summing to 1); without NAME= the name is the text."""
    name, separator, spec = text.partition("=")
    if not separator:
        name, spec = text, text
    parts = [_path_and_weight(piece) for piece in spec.split(",")]
    given = [weight for _, weight in parts if weight is not None]
    if given and len(given) != len(parts):
        raise MotionError(f"--candidate {text}: give a weight to every network or to none.")
    return name, [(path, weight if given else 1.0 / len(parts)) for path, weight in parts]


def format_row(name: str, scores: dict) -> str:
    text = f"{name:<28}"
    if scores["photos"]:
        values = scores["photos"]
        worst = min(values, key=values.get)
        text += f" photos mean {np.mean(list(values.values())):.3f}, lowest {values[worst]:.3f} ({worst})"
    if scores["scenes"]:
        rho, error = np.mean([v[0] for v in scores["scenes"].values()]), np.mean([v[1] for v in scores["scenes"].values()])
        text += f" | {len(scores['scenes'])} scenes: Spearman {rho:.3f}, log10 power error {error:.3f}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="sample the photos and held-out scenes once (the slow part)")
    rec.add_argument("out", type=Path, help="recording to write (.safetensors)")
    rec.add_argument("--model", type=Path, help="motion model folder (default: the bundled one)")
    rec.add_argument("--steps", type=int, default=10, help="DDIM steps (default %(default)s, as gid eval on a CPU)")
    rec.add_argument("--photos", type=Path)
    rec.add_argument("--masks", type=Path)
    rec.add_argument("--photo-seeds", type=int, default=4)
    rec.add_argument("--scenes", type=Path, help="a gid scenes folder: its first --scene-count held-out seeds")
    rec.add_argument("--scene-count", type=int, default=40)
    rec.add_argument("--scene-seeds", type=int, default=1)
    sco = sub.add_parser("score", help="score candidates on a recording")
    sco.add_argument("recording", type=Path)
    sco.add_argument("--candidate", action="append", required=True,
                     help="NAME=A.safetensors[:W][,B.safetensors:W] (repeatable)")
    sco.add_argument("--per-item", action="store_true", help="also print every photo's and scene's scores")
    args = parser.parse_args(argv)
    try:
        if args.command == "record":
            if args.out.suffix != ".safetensors":
                raise MotionError(f"{args.out} must end in .safetensors.")
            if (args.photos is None) != (args.masks is None):
                raise MotionError("give --photos and --masks together.")
            record_inputs(args.out, args.photos, args.masks, args.scenes, args.scene_count)  # before the model loads
            model = (MotionModel.load(args.model) if args.model else MotionModel.from_bundled()).eval()
            record(model, args.out, args.steps, args.photos, args.masks, args.photo_seeds, args.scenes,
                   args.scene_count, args.scene_seeds, progress=lambda text: print(text, flush=True))
            print(f"wrote {args.out}")
            return 0
        recording = Recording(args.recording)
        for text in args.candidate:
            name, parts = parse_candidate(text)
            for path, _ in parts:
                if not path.is_file():
                    raise MotionError(f"--candidate {text}: {path} is not a file.")
            scores = score(recording, [(MotionAmplitudeNet.load(path), weight) for path, weight in parts])
            print(format_row(name, scores), flush=True)
            if args.per_item:
                for photo, auc in scores["photos"].items():
                    print(f"    {photo:<26} AUC {auc:.3f}")
                for scene, (rho, error) in scores["scenes"].items():
                    print(f"    {scene:<26} Spearman {rho:.3f}, log10 power error {error:.3f}")
        return 0
    except MotionError as error:
        print(f"amplitude_replay: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
