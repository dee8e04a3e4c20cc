"""Render nodes: a motion texture on a picture -> a video (IMAGE batch + fps), and the renderer loader."""

from __future__ import annotations

import logging

import torch

from ..gid_models.rendering import NeuralRenderer, render_motion, render_net, require_frames_memory
from ..gid_models.spectral import MotionTexture
from . import _comfy, types
from .errors import fail, image_batch_to_nchw, node_errors

LOGGER = logging.getLogger("ComfyUI-GID")

BUNDLED = "bundled"  # the renderer shipped in gid_models/weights/ (as GIDLoadMotionModel's "bundled")
RENDERER_PREFIX = "renderer"


def _clip_count(node: str, pictures: int, motions: int) -> int:
    if pictures == motions or pictures == 1 or motions == 1:
        return max(pictures, motions)
    raise fail(
        node,
        f"picture batch has {pictures} images but motion batch has {motions} clips; give one picture, "
        "one motion, or the same number of both (picture i is rendered with motion i).",
    )


def _freeze_masks(node: str, mask: torch.Tensor | None, clips: int) -> list[torch.Tensor | None]:
    if mask is None:
        return [None] * clips
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
        raise fail(node, f"freeze_mask must be a MASK (B, H, W), got {getattr(mask, 'shape', type(mask).__name__)}.")
    mask = mask.reshape(-1, *mask.shape[-2:])
    if mask.shape[0] not in (1, clips):
        raise fail(
            node, f"freeze_mask batch has {mask.shape[0]} masks for {clips} clips; give one mask or one per clip."
        )
    if not torch.isfinite(mask).all():
        raise fail(node, "freeze_mask contains NaN or infinite values.")
    return [mask[min(i, mask.shape[0] - 1)][None, None].float() for i in range(clips)]


class GIDRender:
    """Softmax-splat rendering of a motion texture on a picture."""

    DESCRIPTION = (
        "Moves the picture by the motion texture, frame by frame, with softmax splatting (pixels that "
        "move more win where they overlap) and fills the holes. Without a renderer input it uses the "
        "pixel renderer (splat + pull-push fill); connect GIDLoadRenderer for the neural renderer. "
        "Motion made at another resolution is resized to the picture (same aspect ratio needed). "
        "An alpha channel is ignored (RGB is rendered). Several pictures and motions render pairwise "
        "(or one with each of the other) and the clips are concatenated. Outputs the frames and the "
        "frame rate for Video Combine / Create Video / Save Animated WEBP."
    )
    CATEGORY = "GID/render"
    FUNCTION = "render"
    RETURN_TYPES = (types.IMAGE, "FLOAT", "INT")
    RETURN_NAMES = ("frames", "fps", "fps_int")
    OUTPUT_TOOLTIPS = (
        "Rendered video frames (T, H, W, 3); several clips are concatenated one after another.",
        "Frame rate of the motion (frames/s), for video nodes with a FLOAT frame_rate input.",
        "The same frame rate rounded to a whole number, for nodes with an INT frame rate input.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "picture": (types.IMAGE, {"tooltip": "The still picture to animate (RGB; alpha is ignored)."}),
                "motion": (types.MOTION, {"tooltip": "Motion texture (per-pixel displacements over time)."}),
            },
            "optional": {
                "renderer": (
                    types.RENDERER,
                    {"tooltip": "Neural renderer from GIDLoadRenderer ('bundled' is the trained one shipped with the "
                                "pack). Leave empty for the pixel renderer (splat + pull-push fill, faster)."},
                ),
                "freeze_mask": (
                    types.MASK,
                    {"tooltip": "Regions to hold still (1 = frozen, 0 = moves, soft values scale motion)."},
                ),
            },
        }

    def render(self, picture, motion, renderer=None, freeze_mask=None):
        node = "GIDRender"
        pictures = image_batch_to_nchw(picture, node, "picture")
        if not isinstance(motion, MotionTexture):
            raise fail(node, f"motion must come from a GID motion node (GID_MOTION), got {type(motion).__name__}.")
        if renderer is not None and not isinstance(renderer, NeuralRenderer):
            raise fail(node, f"renderer must come from GIDLoadRenderer, got {type(renderer).__name__}.")
        clips = _clip_count(node, pictures.shape[0], motion.batch_size)
        masks = _freeze_masks(node, freeze_mask, clips)
        if renderer is None:
            LOGGER.info("GIDRender: no renderer connected, using the pixel renderer (splat + pull-push fill)")
            device = _comfy.torch_device()
        else:
            device = _comfy.load_model_to_device(renderer.eval())
        output_device = _comfy.intermediate_device()
        frames_per_clip = motion.num_frames
        with node_errors(node):  # joining several clips holds every frame twice
            require_frames_memory(clips * frames_per_clip, *pictures.shape[-2:], output_device, 1 if clips == 1 else 2)
        progress = _comfy.step_callback(clips * frames_per_clip)
        _comfy.throw_if_interrupted()
        videos = []
        with node_errors(node):
            for clip in range(clips):
                single = MotionTexture(
                    motion.displacements[min(clip, motion.batch_size - 1)][None], fps=motion.fps
                )
                offset = clip * frames_per_clip
                frames = render_motion(
                    pictures[min(clip, pictures.shape[0] - 1)][None].to(device),
                    single,
                    renderer=renderer,
                    freeze_mask=masks[clip],
                    callback=lambda step, _total, offset=offset: progress(offset + step),
                    output_device=output_device,
                    check_interrupt=_comfy.interrupt_check(),
                )
                videos.append(frames.movedim(1, -1))
        video = videos[0].contiguous() if clips == 1 else torch.cat(videos)
        fps = float(motion.fps)
        return (video, fps, max(1, int(round(fps))))


def user_renderer_files() -> list[str]:
    """renderer*.safetensors in ComfyUI/models/gid (the bundled file, also on that folder's search
    path, is listed once as BUNDLED instead)."""
    bundled = render_net.BUNDLED_WEIGHTS.resolve()
    return [name for name in _comfy.list_model_files(RENDERER_PREFIX)
            if _comfy.model_file_path(name).resolve() != bundled]


class GIDLoadRenderer:
    """Loads neural-renderer weights: the bundled ones or a renderer*.safetensors file."""

    DESCRIPTION = (
        "Loads a neural renderer for GIDRender. 'bundled' is gid_models/weights/renderer.safetensors, trained "
        "on the bundled clips (on held-out clips it scores higher PSNR than the pixel renderer but is softer "
        "where motion uncovers new content; see MODEL_CARD.md there); other entries "
        "are renderer*.safetensors files in ComfyUI/models/gid (train your own with "
        "`gid train` or `python -m gid_models.train.train_renderer`). Without a renderer, GIDRender uses the "
        "pixel renderer."
    )
    CATEGORY = "GID/loaders"
    FUNCTION = "load"
    RETURN_TYPES = (types.RENDERER,)
    RETURN_NAMES = ("renderer",)
    OUTPUT_TOOLTIPS = ("Neural renderer for GIDRender.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "renderer_name": (
                    [BUNDLED] + user_renderer_files(),
                    {"default": BUNDLED,
                     "tooltip": "'bundled' (shipped with the pack) or a renderer*.safetensors file from "
                                "ComfyUI/models/gid."},
                ),
            }
        }

    def load(self, renderer_name):
        node = "GIDLoadRenderer"
        if renderer_name == BUNDLED:
            path = render_net.BUNDLED_WEIGHTS
            if not NeuralRenderer.bundled_available():
                raise fail(
                    node,
                    f"the bundled renderer is missing ({path} does not exist): restore it (`git checkout -- "
                    "gid_models/weights/` in the pack's folder, or reinstall the pack). Meanwhile leave GIDRender's "
                    "renderer input empty to use the pixel renderer, or pick a renderer*.safetensors file of your "
                    "own (train one with `gid train`) from ComfyUI/models/gid.",
                )
        elif renderer_name in user_renderer_files():
            path = _comfy.model_file_path(renderer_name)
        else:
            raise fail(
                node,
                f"no renderer named '{renderer_name}' (found: {[BUNDLED] + user_renderer_files()}); put "
                "renderer*.safetensors files in ComfyUI/models/gid and refresh, or leave GIDRender's renderer "
                "input empty to use the pixel renderer.",
            )
        with node_errors(node):
            renderer = NeuralRenderer.load(path)
        LOGGER.info("%s: loaded the neural renderer %s (%s, channels %s)", node, renderer_name, path,
                    renderer.config.channels)
        return (renderer,)


NODE_CLASS_MAPPINGS = {"GIDRender": GIDRender, "GIDLoadRenderer": GIDLoadRenderer}
NODE_DISPLAY_NAME_MAPPINGS = {"GIDRender": "GID Render Video", "GIDLoadRenderer": "GID Load Renderer"}
