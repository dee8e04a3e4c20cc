"""Motion diffusion nodes: load the motion model, set loop guidance, sample a spectral volume.

Model files: the loader lists "bundled" (gid_models/weights/, the shipped model folder) plus every
`gid_motion_*.safetensors` in ComfyUI/models/gid/ (one-file models written by
`MotionModel.save_file` or `train_denoiser --export`). Only safetensors are read.
"""

from __future__ import annotations

import logging

import torch

from . import _comfy
from .errors import fail, image_batch_to_nchw, node_errors
from .types import GUIDANCE, IMAGE, MASK, MODEL, SPECTRAL_VOLUME
from ..gid_models.job_checks import check_sampling_job
from ..gid_models.networks import MotionModel
from ..gid_models.networks.motion_model import SINGLE_FILE_PREFIX
from ..gid_models.sampling import DEFAULT_CFG, DEFAULT_STEPS, LoopGuidance, sample_spectral_volume

LOGGER = logging.getLogger(__name__)

BUNDLED = "bundled"


class GIDLoadMotionModel:
    DESCRIPTION = (
        "Loads the motion diffusion model (motion VAE + denoiser + normalization statistics). "
        "'bundled' is the model shipped with the pack in gid_models/weights/ (its motion model learnt from "
        "clips of Big Buck Bunny, its motion-amplitude network, which decides where the picture moves, from "
        "generated scenes of plants in wind; see MODEL_CARD.md there); other entries are "
        "gid_motion_*.safetensors files in ComfyUI/models/gid/."
    )
    CATEGORY = "GID/loaders"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The motion model, for GIDSampleSpectralVolume.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        choices = [BUNDLED] + _comfy.list_model_files(SINGLE_FILE_PREFIX)
        return {
            "required": {
                "model_name": (choices, {
                    "default": BUNDLED,
                    "tooltip": "'bundled' or a gid_motion_*.safetensors file from ComfyUI/models/gid/.",
                }),
            }
        }

    def load(self, model_name: str):
        node = "GIDLoadMotionModel"
        # ComfyUI runs nodes under torch.inference_mode(); weights made there could never take part
        # in the gradients that loop guidance and masks need (see GIDSampleSpectralVolume).
        with node_errors(node), torch.inference_mode(False):
            if model_name == BUNDLED:
                model = MotionModel.from_bundled()
            else:
                try:
                    path = _comfy.model_file_path(model_name)
                except FileNotFoundError as error:
                    raise fail(node, str(error)) from error
                model = MotionModel.load(path)
        LOGGER.info("loaded motion model %s (K=%d, trained at %dx%d)", model_name, model.num_frequencies,
                    model.sample_size[1], model.sample_size[0])
        return (model.eval(),)


class GIDLoopGuidance:
    DESCRIPTION = (
        "Loop self-guidance (paper Eq. 5-6): while sampling, pushes each pixel's position and "
        "velocity at the last frame to match the first, so the motion loops seamlessly. Each step "
        "costs about 5x an unguided one per self-recurrence pass (exact gradient)."
    )
    CATEGORY = "GID/sampling"
    RETURN_TYPES = (GUIDANCE,)
    RETURN_NAMES = ("guidance",)
    OUTPUT_TOOLTIPS = ("Loop guidance settings for GIDSampleSpectralVolume.",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "u": ("FLOAT", {"default": 200.0, "min": 0.0, "max": 100000.0, "step": 1.0,
                                "tooltip": "Guidance weight on the loop seam error (paper: 200). It is weighted by the latent's "
                                           "area, so one u acts alike at every picture size. 0 turns it off."}),
                "self_recurrence": ("INT", {"default": 2, "min": 1, "max": 10,
                                            "tooltip": "Times each denoising step runs, re-noising in between "
                                                       "(paper: 2; 1 = none). Cost grows linearly."}),
            },
            "optional": {
                "exact_gradient": ("BOOLEAN", {"default": True,
                                               "tooltip": "Differentiate through the denoiser (as the paper). "
                                                          "Off: a cheaper approximation, about 2x faster."}),
            },
        }

    def build(self, u: float, self_recurrence: int, exact_gradient: bool = True):
        with node_errors("GIDLoopGuidance"):
            return (LoopGuidance(u=float(u), recurrence=int(self_recurrence), through_denoiser=bool(exact_gradient)),)


class GIDSampleSpectralVolume:
    DESCRIPTION = (
        "Samples the picture's motion as a spectral volume with the motion diffusion model (DDIM with "
        "classifier-free guidance; optional loop guidance and motion mask). 50 steps is a good preview; "
        "250 is the paper's quality."
    )
    CATEGORY = "GID/sampling"
    RETURN_TYPES = (SPECTRAL_VOLUME, SPECTRAL_VOLUME)
    RETURN_NAMES = ("spectral_volume", "normalized_volume")
    OUTPUT_TOOLTIPS = (
        "Spectral volume in pixels (B, K, 4, H, W) at the picture's size, for rendering and dynamics.",
        "The same volume frequency-normalized (the space the model works in), for editing there.",
    )
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": (IMAGE, {"tooltip": "Picture(s) to animate; any size (resampled to the model's size)."}),
                "model": (MODEL, {"tooltip": "From GIDLoadMotionModel."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                                 "tooltip": "Noise seed; the same seed gives the same motion on any device."}),
                "steps": ("INT", {"default": DEFAULT_STEPS, "min": 1, "max": 1000,
                                  "tooltip": "DDIM steps: 50 previews well, 250 is the paper's quality."}),
                "cfg": ("FLOAT", {"default": DEFAULT_CFG, "min": 0.0, "max": 20.0, "step": 0.05,
                                  "tooltip": "Classifier-free guidance w in (1 + w) eps(picture) - w eps(empty); paper 1.75."}),
                "num_frames": ("INT", {"default": 150, "min": 3, "max": 10000,
                                       "tooltip": "Length T (frames) of the loop the volume describes (model trained on 150)."}),
                "fps": ("FLOAT", {"default": 30.0, "min": 0.1, "max": 240.0, "step": 0.1,
                                  "tooltip": "Frame rate of those frames, so bin k is k * fps / T Hz."}),
            },
            "optional": {
                "guidance": (GUIDANCE, {"tooltip": "Loop self-guidance from GIDLoopGuidance (seamless loops)."}),
                "mask": (MASK, {"tooltip": "Where motion is allowed (1 = may move); the rest is held still."}),
            },
        }

    def sample(self, image, model, seed, steps, cfg, num_frames, fps, guidance=None, mask=None):
        node = "GIDSampleSpectralVolume"
        if not isinstance(model, MotionModel):
            raise fail(node, f"model must come from GIDLoadMotionModel, got {type(model).__name__}.")
        if guidance is not None and not isinstance(guidance, LoopGuidance):
            raise fail(node, f"guidance must come from GIDLoopGuidance, got {type(guidance).__name__}.")
        if isinstance(image, torch.Tensor) and image.ndim == 4:
            with node_errors(node):  # before the picture is converted, the model moves or a step runs
                check_sampling_job(image.shape[0], image.shape[1], image.shape[2], model.num_frequencies, seed=seed,
                                   steps=steps, num_frames=num_frames, fps=fps, output_device=_comfy.intermediate_device())
        picture = image_batch_to_nchw(image, node)
        if mask is not None:
            mask = self._check_mask(mask, picture, node)
        if num_frames < 2 * model.num_frequencies - 1:
            raise fail(node, f"num_frames={num_frames} is too short for K={model.num_frequencies} frequencies; "
                             f"use at least {2 * model.num_frequencies - 1} (the model was trained on 150).")
        factor = model.downsample_factor
        if picture.shape[-2] % factor or picture.shape[-1] % factor:
            LOGGER.warning("[%s] picture %dx%d is not a multiple of the model factor %d: motion is sampled at the "
                           "nearest valid size and resized to the picture.", node, picture.shape[-1],
                           picture.shape[-2], factor)
        # Loop guidance and masks differentiate through the model, which inference mode forbids: leave
        # it here (as ComfyUI's own training node does), moving the weights outside it too.
        with node_errors(node), torch.inference_mode(False):
            device = _comfy.load_model_to_device(model)
            volume, normalized = sample_spectral_volume(
                model, picture.to(device), seed=int(seed), steps=int(steps), cfg=float(cfg), guidance=guidance,
                mask=None if mask is None else mask.to(device), num_frames=int(num_frames), fps=float(fps),
                pass_callback=_comfy.progress_callback(), check_interrupt=_comfy.interrupt_check(),
            )
        out = _comfy.intermediate_device()
        return (volume.to(out), normalized.to(out))

    @staticmethod
    def _check_mask(mask, picture: torch.Tensor, node: str) -> torch.Tensor:
        if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise fail(node, f"mask must be a MASK (B, H, W), got {shape}.")
        mask = mask if mask.ndim == 3 else mask[None]
        if mask.shape[0] not in (1, picture.shape[0]):
            raise fail(node, f"mask batch {mask.shape[0]} does not match the image batch {picture.shape[0]}; "
                             "use one mask or one per picture.")
        if not torch.isfinite(mask).all():
            raise fail(node, "mask contains NaN or infinite values.")
        if tuple(mask.shape[-2:]) != tuple(picture.shape[-2:]):
            LOGGER.warning("[%s] mask %dx%d is resized to the picture's %dx%d.", node, mask.shape[-1],
                           mask.shape[-2], picture.shape[-1], picture.shape[-2])
        return mask.float().clone()


NODE_CLASS_MAPPINGS = {
    "GIDLoadMotionModel": GIDLoadMotionModel,
    "GIDLoopGuidance": GIDLoopGuidance,
    "GIDSampleSpectralVolume": GIDSampleSpectralVolume,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "GIDLoadMotionModel": "GID Load Motion Model",
    "GIDLoopGuidance": "GID Loop Guidance",
    "GIDSampleSpectralVolume": "GID Sample Spectral Volume",
}
