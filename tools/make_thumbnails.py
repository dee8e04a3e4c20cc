"""Thumbnails of the example workflows (example_workflows/<name>.jpg), made by the pack itself.

    python -m tools.make_thumbnails                 # every workflow
    python -m tools.make_thumbnails motion_transfer # only some
    python -m tools.make_thumbnails --steps 10 motion_transfer  # fewer sampling steps (busy CPU)

Each thumbnail is a 2x2 grid of 256x144 tiles computed with gid_models, the same maths the nodes
run. Loops: the first frame, the frame half a period later, the motion's flow colours and an X-t
slice (a picture row through time: the loop's stripes). Pokes: the picture with its drag arrows
and three frames of the response. The loop and poke workflows of the motion model show the
bundled model's motion (50 steps, loop guidance: minutes on CPU), rendered like the `gid` command
line (the bundled neural renderer); if the model's files are missing from gid_models/weights/ they
show the motion measured from the bundled grass clip instead, with a warning. Rerun this tool
whenever the shipped weights change.
"""

from __future__ import annotations

import argparse
import logging

import cv2
import numpy as np
import torch
from PIL import Image

from gid_models.dynamics import ModalBasis, drags_from_json
from gid_models.dynamics.modal import simulate_modal_coordinates, synthesize_motion
from gid_models.flow import spectral_volume_from_video
from gid_models.motion_style import match_motion_statistics
from gid_models.pipeline import (
    BUNDLED_CLIP, BUNDLED_PICTURE, bundled_model_available, load_picture, loop_motion, render, volume_from_model,
)
from gid_models.preview import flow_to_color, xt_slice
from gid_models.spectral import MotionTexture, SpectralVolume
from gid_models.video_io import read_video

from .make_example_workflows import WORKFLOW_DIR, WORKFLOWS, api_form, node_inputs

LOGGER = logging.getLogger("make_thumbnails")

TILE_W, TILE_H = 256, 144
GAP = 4
LABEL_H = 18
MAX_BYTES = 60 * 1024
LOOP_FRAMES, LOOP_FPS = 150, 30.0  # what the loop workflows render
POKE_FRAMES = (15, 30, 55)  # end of the drag's hold, mid-swing, after the poke (frames at 30 fps)
SEED = 0


def to_tile(image: torch.Tensor | np.ndarray, label: str) -> np.ndarray:
    """(H, W, 3) float 0..1 or uint8 -> (TILE_H, TILE_W, 3) uint8 with a label at the bottom left."""
    pixels = image.numpy() if isinstance(image, torch.Tensor) else image
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels, 0, 1) * 255).round().astype(np.uint8)
    tile = cv2.resize(np.ascontiguousarray(pixels), (TILE_W, TILE_H), interpolation=cv2.INTER_AREA)
    tile[-LABEL_H:] = (tile[-LABEL_H:] * 0.35).astype(np.uint8)  # a dark strip under the label
    cv2.putText(tile, label, (5, TILE_H - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def grid(tiles: list[np.ndarray]) -> np.ndarray:
    canvas = np.full((2 * TILE_H + GAP, 2 * TILE_W + GAP, 3), 24, np.uint8)
    for index, tile in enumerate(tiles):
        top, left = (index // 2) * (TILE_H + GAP), (index % 2) * (TILE_W + GAP)
        canvas[top : top + TILE_H, left : left + TILE_W] = tile
    return canvas


def save_jpeg(pixels: np.ndarray, name: str) -> None:
    """Write example_workflows/<name>.jpg at the best JPEG quality that stays under MAX_BYTES."""
    path = WORKFLOW_DIR / f"{name}.jpg"
    for quality in (90, 85, 80, 75, 70, 60, 50):
        Image.fromarray(pixels).save(path, "JPEG", quality=quality, optimize=True)
        if path.stat().st_size <= MAX_BYTES:
            break
    LOGGER.info("wrote %s (%d bytes, quality %d)", path.name, path.stat().st_size, quality)


def frames_at(picture: torch.Tensor, motion: MotionTexture, indices: list[int]) -> list[torch.Tensor]:
    """Rendered frames (H, W, 3) of the picture (1, 3, H, W) at the given motion frames only."""
    chosen = MotionTexture(motion.displacements[:, indices], fps=motion.fps)
    return list(render(picture, chosen).permute(0, 2, 3, 1))


def loop_thumbnail(picture: torch.Tensor, volume: SpectralVolume, title: str, gain: float = 1.0) -> np.ndarray:
    motion = loop_motion(volume, LOOP_FRAMES, LOOP_FPS, gain=gain).resized(picture.shape[-2], picture.shape[-1])
    first, half = frames_at(picture, motion, [0, LOOP_FRAMES // 2])
    displacements = motion.displacements[0]  # (T, 2, H, W)
    power = displacements.square().sum(dim=1).mean(dim=0)  # (H, W) mean squared motion, pixels^2
    busiest = int(power.mean(dim=1).argmax())
    row = busiest / max(1, picture.shape[-2] - 1)
    strongest = int(displacements.square().sum(dim=(1, 2, 3)).argmax())
    slice_image = xt_slice(displacements, row, picture[0].permute(1, 2, 0))[:LOOP_FRAMES]
    return grid([
        to_tile(first, f"{title}: frame 0"),
        to_tile(half, f"frame {LOOP_FRAMES // 2} (half a period)"),
        to_tile(flow_to_color(displacements[strongest]), "motion (flow colours)"),
        to_tile(slice_image, "one row through time"),
    ])  # fmt: skip


def poke_thumbnail(picture: torch.Tensor, volume: SpectralVolume, drags_json: str) -> np.ndarray:
    height, width = picture.shape[-2:]
    volume = volume.resized(height, width)
    drags = drags_from_json(drags_json, width, height)
    basis = ModalBasis.from_volume(volume)
    q = simulate_modal_coordinates(basis, drags, max(POKE_FRAMES) + 1, LOOP_FPS)
    motion = synthesize_motion(basis, q, LOOP_FPS)
    frames = frames_at(picture, motion, list(POKE_FRAMES))
    arrows = (picture[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8).copy()
    for drag in drags:
        color = (255, 176, 32) if drag.kind == "drag" else (58, 192, 255)
        start, end = (int(drag.x), int(drag.y)), (int(drag.x + 4 * drag.dx), int(drag.y + 4 * drag.dy))
        cv2.arrowedLine(arrows, start, end, color, 3, cv2.LINE_AA, tipLength=0.3)
    tiles = [to_tile(arrows, "drag and poke (arrows x4)")]
    tiles += [to_tile(frame, f"frame {index}") for frame, index in zip(frames, POKE_FRAMES)]
    return grid(tiles)


class Sources:
    """The pictures and volumes the thumbnails need, each computed once."""

    def __init__(self, steps: int = 50):
        self.steps = steps
        self._clip_volume = None
        self._model_volumes: dict[tuple[int, bool], SpectralVolume] = {}
        self.picture = load_picture(BUNDLED_PICTURE)
        frames, self.clip_fps = read_video(BUNDLED_CLIP, max_frames=150)
        self.clip_frames = frames
        self.clip_first = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float() / 255.0

    def clip_volume(self) -> SpectralVolume:
        """The grass clip's spectral volume, as the example workflows measure it."""
        if self._clip_volume is None:
            self._clip_volume = spectral_volume_from_video(
                self.clip_frames, fps=self.clip_fps, num_frequencies=16, remove_camera_motion=True
            ).volume
        return self._clip_volume

    def model_volume(self, seed: int, loop: bool) -> SpectralVolume:
        """The bundled motion model's volume for the picture (as the workflow of that seed and loop
        guidance samples it), or the clip's if the model is missing."""
        key = (seed, loop)
        if key not in self._model_volumes:
            if bundled_model_available():
                self._model_volumes[key] = volume_from_model(
                    self.picture, seed=seed, steps=self.steps, loop=loop, mask=None, device=torch.device("cpu")
                ).volume
            else:
                LOGGER.warning("the bundled motion model is missing from gid_models/weights/: the model "
                               "workflows' thumbnails show the bundled clip's motion instead")
                self._model_volumes[key] = self.clip_volume()
        return self._model_volumes[key]


def thumbnail(name: str, sources: Sources) -> np.ndarray:
    """The thumbnail of an example, with the seed and drags its workflow file holds."""
    graph = api_form(name)
    if name in ("image_to_loop", "image_to_loop_vhs"):
        seed = node_inputs(graph, "GIDSampleSpectralVolume")["seed"]
        return loop_thumbnail(sources.picture, sources.model_volume(seed, loop=True), "loop")
    if name == "loop_a_video":
        return loop_thumbnail(sources.clip_first, sources.clip_volume(), "loop a video")
    if name == "motion_transfer":
        seed = node_inputs(graph, "GIDSampleSpectralVolume")["seed"]
        strength = node_inputs(graph, "GIDMatchMotionStatistics")["strength"]
        sampled = sources.model_volume(seed, loop=False)
        gain = node_inputs(graph, "GIDSpectralToMotion")["gain"]
        return loop_thumbnail(sources.picture, match_motion_statistics(sampled, sources.clip_volume(), strength),
                              "like the clip", gain)
    if name == "interactive_poke":
        seed = node_inputs(graph, "GIDSampleSpectralVolume")["seed"]
        drags = node_inputs(graph, "GIDModalSimulation")["drags"]
        return poke_thumbnail(sources.picture, sources.model_volume(seed, loop=False), drags)
    if name == "interactive_poke_from_video":
        drags = node_inputs(graph, "GIDModalSimulation")["drags"]
        return poke_thumbnail(sources.clip_first, sources.clip_volume(), drags)
    raise KeyError(f"no thumbnail recipe for {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"workflows (default: all of {sorted(WORKFLOWS)})")
    parser.add_argument("--steps", type=int, default=50, help="sampling steps of the motion model's volumes "
                        "(default %(default)s, what the workflows run; fewer is faster on a busy CPU)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(WORKFLOWS))
    if unknown:
        parser.error(f"unknown workflows {unknown}; choose from {sorted(WORKFLOWS)}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(SEED)
    sources = Sources(args.steps)
    for name in args.names or sorted(WORKFLOWS):
        save_jpeg(thumbnail(name, sources), name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
