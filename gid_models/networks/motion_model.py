"""MotionModel: the motion VAE, the denoiser and the normalization statistics as one unit.

Files (safetensors only, never pickle; each network file as networks/weight_files.py describes):
- a directory (the shipped layout under gid_models/weights/):
    motion_vae.safetensors + motion_vae.json, denoiser.safetensors + denoiser.json,
    normalization.safetensors (FrequencyNormalization.save), optionally calibration.safetensors
    ("output_gains" and "output_limits", written by gid_models.train.calibrate; absent means gains
    of 1 and no limits), and optionally motion_amplitude.safetensors + .json (motion_amplitude.py:
    where the picture moves; absent means the denoiser alone decides)
- one file `gid_motion_<name>.safetensors` (what users drop into ComfyUI/models/gid/): the same
  tensors prefixed "vae.", "denoiser.", "normalization.scales" (and optionally "calibration.output_gains" /
  "output_limits" and "amplitude."), with the configs in the metadata ("vae_config", "denoiser_config",
  and "amplitude_config" when the amplitude network is there).
Every load checks the format tags, the config keys and every tensor name, shape and value against
the networks the configs build, and refuses anything else with a message saying what is wrong.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from einops import rearrange
from torch import nn

from ..heap import HEAP_BLOCK_BYTES
from ..normalization import FrequencyNormalization
from ..spectral import MotionError
from .denoiser import MotionDenoiser
from .motion_amplitude import FILE_NAME as AMPLITUDE_FILE
from .motion_amplitude import MotionAmplitudeNet
from .vae import MotionVAE
from .weight_files import (
    build_network, config_dict, load_weights, network_tensors, open_safetensors, read_network_file, write_network_file,
)

LOGGER = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights"
VAE_FILE, DENOISER_FILE, NORMALIZATION_FILE = "motion_vae", "denoiser", "normalization.safetensors"
CALIBRATION_FILE = "calibration.safetensors"
SINGLE_FILE_FORMAT = "gid-motion-model"
SINGLE_FILE_PREFIX = "gid_motion"

TINY_VAE = dict(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4)
TINY_DENOISER = dict(
    image_patch=2, block_out_channels=(16, 32), layers_per_block=1, spatial_attention=(False, True),
    attention_head_dim=8, frequency_attention_heads=2, norm_num_groups=8,
)
# The shipped size: trained on 2 CPU cores, and sampling in seconds per step there
# (0.5 M VAE parameters, 3.3 M U-Net parameters).
CPU_VAE = dict(block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8)
CPU_DENOISER = dict(
    block_out_channels=(32, 64, 128), layers_per_block=1, spatial_attention=(False, False, True),
    attention_head_dim=32, frequency_attention_heads=4, norm_num_groups=16,
)
MODEL_SIZES = {"default": ({}, {}), "cpu": (CPU_VAE, CPU_DENOISER), "tiny": (TINY_VAE, TINY_DENOISER)}


def size_configs(size: str) -> tuple[dict, dict]:
    """(VAE config, denoiser config) of a named size: "default" (the paper-like budget, U-Net
    7.7 M parameters), "cpu" (the shipped one) or "tiny" (tests)."""
    if size not in MODEL_SIZES:
        raise MotionError(f"unknown model size {size!r}; use one of {sorted(MODEL_SIZES)}.")
    vae_config, denoiser_config = MODEL_SIZES[size]
    return dict(vae_config), dict(denoiser_config)


def save_network(network: nn.Module, directory: str | Path, name: str, dtype: torch.dtype = torch.float16) -> None:
    """directory/name.safetensors (format tag gid-name) + directory/name.json, the shipped layout's files."""
    write_network_file(network, Path(directory) / f"{name}.safetensors", f"gid-{name}", dtype)


def load_network(cls: type, directory: str | Path, name: str) -> nn.Module:
    """The network saved by save_network, checked against its config (float32, eval mode)."""
    return read_network_file(cls, Path(directory) / f"{name}.safetensors", f"gid-{name}")


class MotionModel(nn.Module):
    """VAE + denoiser + frequency normalization (K scales), moved and saved together.

    Shapes: pictures (B, 3, H, W) with H, W divisible by `downsample_factor`; latents
    (B, K, 4, H / f, W / f) with f = `latent_factor`; slices (B, K, 4, H, W) normalized.
    """

    def __init__(self, vae: MotionVAE, denoiser: MotionDenoiser, normalization: FrequencyNormalization,
                 amplitude: MotionAmplitudeNet | None = None):
        super().__init__()
        if denoiser.config.image_patch != vae.downsample_factor:
            raise MotionError(
                f"denoiser expects a {denoiser.config.image_patch}x latent but the VAE downsamples "
                f"{vae.downsample_factor}x; they are not from the same model."
            )
        if normalization.num_frequencies != denoiser.config.num_frequencies:
            raise MotionError(
                f"normalization has K={normalization.num_frequencies} but the denoiser was built for "
                f"K={denoiser.config.num_frequencies}."
            )
        if amplitude is not None and amplitude.config.num_frequencies != denoiser.config.num_frequencies:
            raise MotionError(
                f"the motion-amplitude network predicts K={amplitude.config.num_frequencies} bins but the denoiser "
                f"samples K={denoiser.config.num_frequencies}; they are not from the same model."
            )
        self.vae = vae
        self.denoiser = denoiser
        self.amplitude = amplitude
        self.register_buffer("normalization_scales", normalization.scales.float().clone())
        self.register_buffer("output_gains", torch.ones(normalization.num_frequencies))
        self.register_buffer("output_limits", torch.full((normalization.num_frequencies,), float("inf")))
        self.quantile = normalization.quantile
        # the calibration file's metadata (its "record": the per-bin powers the gains were fitted
        # from), kept so that save() writes it back; cleared when the gains or limits change
        self.calibration_metadata: dict[str, str] = {}

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        size: str = "default",
        num_frequencies: int = 16,
        sample_size: tuple[int, int] = (160, 256),
        normalization: FrequencyNormalization | None = None,
    ) -> "MotionModel":
        """Untrained model of a named size (see size_configs)."""
        vae_config, denoiser_config = size_configs(size)
        vae = MotionVAE(**vae_config)
        denoiser = MotionDenoiser(num_frequencies=num_frequencies, sample_size=tuple(sample_size), **denoiser_config)
        if normalization is None:
            normalization = FrequencyNormalization(torch.ones(num_frequencies))
        return cls(vae, denoiser, normalization)

    # --- properties ---------------------------------------------------------------------------
    @property
    def normalization(self) -> FrequencyNormalization:
        return FrequencyNormalization(self.normalization_scales.detach().float().cpu(), self.quantile)

    def set_normalization(self, normalization: FrequencyNormalization) -> None:
        if normalization.num_frequencies != self.num_frequencies:
            raise MotionError(f"normalization has K={normalization.num_frequencies}, the model K={self.num_frequencies}.")
        self.normalization_scales.copy_(normalization.scales.to(self.normalization_scales))
        self.quantile = normalization.quantile

    def _set_per_bin(self, buffer: torch.Tensor, values: torch.Tensor, source: str, what: str, allow_inf: bool) -> None:
        """Copy K positive values (finite unless allow_inf) into buffer, or raise naming source and what."""
        values = torch.as_tensor(values).detach().float().cpu()
        allowed = ~torch.isnan(values) if allow_inf else torch.isfinite(values)
        if values.shape != (self.num_frequencies,) or not allowed.all() or (values <= 0).any():
            span = "" if values.numel() == 0 else f" from {values.min().item():.3g} to {values.max().item():.3g}"
            raise MotionError(f"{source}: expected {self.num_frequencies} {what}, got shape {tuple(values.shape)}{span}.")
        buffer.copy_(values.to(buffer))

    def set_output_gains(self, gains: torch.Tensor, source: str = "output gains") -> None:
        """Per-bin amplitude gains (K,) applied to sampled motion in pixels (see train/calibrate.py)."""
        self._set_per_bin(self.output_gains, gains, source, "finite positive gains", allow_inf=False)
        self.calibration_metadata = {}

    def set_output_limits(self, limits: torch.Tensor, source: str = "output limits") -> None:
        """Per-bin amplitude limits (K,) in pixels (inf = none) on sampled motion (see train/calibrate.py)."""
        self._set_per_bin(self.output_limits, limits, source, "positive amplitude limits (pixels)", allow_inf=True)
        self.calibration_metadata = {}

    @property
    def calibrated(self) -> bool:
        return bool((self.output_gains != 1).any() or torch.isfinite(self.output_limits).any())

    def calibration_tensors(self) -> dict[str, torch.Tensor]:
        """{"output_gains", "output_limits"} as float32 CPU tensors (what calibration files hold)."""
        return {name: getattr(self, name).detach().float().cpu().contiguous() for name in ("output_gains", "output_limits")}

    def load_calibration(self, tensors: dict[str, torch.Tensor], source: str, metadata: dict[str, str] | None = None) -> None:
        """Gains (required) and limits (optional: older files have none) from a calibration's tensors;
        metadata (the file's, with its fitting record) is kept for save()."""
        self.set_output_gains(tensors.get("output_gains", torch.empty(0)), source)
        if "output_limits" in tensors:
            self.set_output_limits(tensors["output_limits"], source)
        self.calibration_metadata = {str(key): str(value) for key, value in (metadata or {}).items()}

    @property
    def num_frequencies(self) -> int:
        return int(self.denoiser.config.num_frequencies)

    @property
    def latent_factor(self) -> int:
        return self.vae.downsample_factor

    @property
    def downsample_factor(self) -> int:
        """Picture height and width must be multiples of this."""
        return self.vae.downsample_factor * self.denoiser.downsample_factor

    @property
    def sample_size(self) -> tuple[int, int]:
        height, width = self.denoiser.config.sample_size
        return int(height), int(width)

    @property
    def latent_scale(self) -> float:
        return float(self.vae.config.scaling_factor)

    def compute_device(self) -> torch.device:
        """Device the model's weights are on (ComfyUI's ModelPatcher owns the `device` attribute)."""
        return self.normalization_scales.device

    # --- codec (as diffusers keeps AutoencoderKL.encode / decode on the model) ---------------------
    def encode(self, slices: torch.Tensor) -> torch.Tensor:
        """Normalized slices (B, K, 4, H, W) -> scaled latents (B, K, c, H / f, W / f), the posterior means."""
        mean, _ = self.vae.encode(rearrange(slices, "b k c h w -> (b k) c h w"))
        return rearrange(mean * self.latent_scale, "(b k) c h w -> b k c h w", b=slices.shape[0])

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, K, c, h, w) -> normalized slices (B, K, 4, h * f, w * f) float32, differentiable."""
        flat = rearrange(latents, "b k c h w -> (b k) c h w") / self.latent_scale
        flat = flat.to(next(self.vae.parameters()).dtype)
        if flat.device.type != "cpu":
            decoded = self.vae.decode(flat)
        else:
            # A few slices at a time, channels last: each activation stays small enough for the
            # heap to reuse (gid_models/heap.py) and oneDNN's convolutions run faster in that
            # layout (together about half the time of one 16-slice decode on 2 cores).
            per_slice = self.vae.decode_bytes_per_slice(*flat.shape[-2:], flat.element_size())
            slices_per_call = max(1, HEAP_BLOCK_BYTES // per_slice)
            flat = flat.contiguous(memory_format=torch.channels_last)
            decoded = torch.cat([self.vae.decode(part) for part in flat.split(slices_per_call)])
        return rearrange(decoded.float().contiguous(), "(b k) c h w -> b k c h w", b=latents.shape[0])

    # --- directory layout ------------------------------------------------------------------------
    def save(self, directory: str | Path, dtype: torch.dtype = torch.float16) -> Path:
        """Write the shipped layout (see module docstring) into directory; weights in dtype."""
        directory = Path(directory)
        save_network(self.vae, directory, VAE_FILE, dtype)
        save_network(self.denoiser, directory, DENOISER_FILE, dtype)
        self.normalization.save(str(directory / NORMALIZATION_FILE))
        calibration = directory / CALIBRATION_FILE
        if self.calibrated:
            from safetensors.torch import save_file

            save_file(self.calibration_tensors(), str(calibration), metadata=self.calibration_metadata or None)
        elif calibration.is_file():
            calibration.unlink()  # a stale file would calibrate the new weights with the old model's gains
        if self.amplitude is not None:
            self.amplitude.save(directory / AMPLITUDE_FILE, dtype)
        return directory

    @classmethod
    def load_directory(cls, directory: str | Path) -> "MotionModel":
        directory = Path(directory)
        vae = load_network(MotionVAE, directory, VAE_FILE)
        denoiser = load_network(MotionDenoiser, directory, DENOISER_FILE)
        if not (directory / NORMALIZATION_FILE).is_file():
            raise MotionError(f"{directory} has no {NORMALIZATION_FILE}; a GID model folder needs it.")
        try:
            normalization = FrequencyNormalization.load(str(directory / NORMALIZATION_FILE))
        except MotionError:
            raise
        except Exception as error:  # safetensors raises several error types for damaged files
            raise MotionError(f"{directory / NORMALIZATION_FILE} is not readable: {error}") from error
        amplitude = None
        if (directory / AMPLITUDE_FILE).is_file():  # with its frozen encoder, so a missing encoder fails here
            amplitude = MotionAmplitudeNet.load(directory / AMPLITUDE_FILE).attach_encoder()
        model = cls(vae, denoiser, normalization, amplitude)
        if (directory / CALIBRATION_FILE).is_file():
            calibration = open_safetensors(directory / CALIBRATION_FILE)
            model.load_calibration(calibration["tensors"], str(directory / CALIBRATION_FILE), calibration["metadata"])
        return model.eval()

    # --- single file ---------------------------------------------------------------------------------
    def save_file(self, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
        """One safetensors file holding everything (the format users put in ComfyUI/models/gid)."""
        from safetensors.torch import save_file

        tensors = {**network_tensors(self.vae, dtype, "vae."), **network_tensors(self.denoiser, dtype, "denoiser.")}
        tensors["normalization.scales"] = self.normalization_scales.detach().float().cpu().contiguous()
        if self.calibrated:
            tensors.update({f"calibration.{name}": value for name, value in self.calibration_tensors().items()})
        metadata = {
            "format": SINGLE_FILE_FORMAT,
            "vae_config": json.dumps(config_dict(self.vae)),
            "denoiser_config": json.dumps(config_dict(self.denoiser)),
            "quantile": repr(self.quantile),
        }
        if self.amplitude is not None:
            tensors.update(network_tensors(self.amplitude, dtype, "amplitude."))
            metadata["amplitude_config"] = json.dumps(config_dict(self.amplitude))
        save_file(tensors, str(path), metadata=metadata)
        return Path(path)

    @classmethod
    def load_file(cls, path: str | Path) -> "MotionModel":
        path = Path(path)
        content = open_safetensors(path)
        metadata, tensors = content["metadata"], content["tensors"]
        if metadata.get("format") != SINGLE_FILE_FORMAT:
            raise MotionError(
                f"{path.name} is not a GID motion model (format tag {metadata.get('format')!r}, expected "
                f"{SINGLE_FILE_FORMAT!r}); export one with `MotionModel.save_file` or the training tools."
            )
        try:
            vae_config = json.loads(metadata["vae_config"])
            denoiser_config = json.loads(metadata["denoiser_config"])
        except (KeyError, json.JSONDecodeError) as error:
            raise MotionError(f"{path.name}: missing or invalid network configs in its metadata ({error}).") from error
        vae = build_network(MotionVAE, vae_config, path.name)
        denoiser = build_network(MotionDenoiser, denoiser_config, path.name)
        load_weights(vae, {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}, f"{path.name} (vae)")
        load_weights(
            denoiser, {k[9:]: v for k, v in tensors.items() if k.startswith("denoiser.")}, f"{path.name} (denoiser)"
        )
        scales = tensors.get("normalization.scales")
        if scales is None or scales.ndim != 1 or not torch.isfinite(scales).all() or (scales <= 0).any():
            raise MotionError(f"{path.name}: normalization scales are missing or invalid.")
        normalization = FrequencyNormalization(scales.float(), float(metadata.get("quantile", 0.95)))
        amplitude = None
        if "amplitude_config" in metadata:
            try:
                amplitude_config = json.loads(metadata["amplitude_config"])
            except json.JSONDecodeError as error:
                raise MotionError(f"{path.name}: invalid amplitude_config in its metadata ({error}).") from error
            amplitude = build_network(MotionAmplitudeNet, amplitude_config, path.name)
            load_weights(amplitude, {k[10:]: v for k, v in tensors.items() if k.startswith("amplitude.")},
                         f"{path.name} (amplitude)")
            amplitude.eval().requires_grad_(False).attach_encoder()
        elif any(k.startswith("amplitude.") for k in tensors):
            raise MotionError(f"{path.name} holds amplitude.* tensors but no amplitude_config; the file is damaged.")
        model = cls(vae, denoiser, normalization, amplitude)
        calibration = {k[len("calibration."):]: v for k, v in tensors.items() if k.startswith("calibration.")}
        if calibration:
            model.load_calibration(calibration, f"{path.name} (calibration)")
        return model.eval()

    # --- any source -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "MotionModel":
        """A model folder (shipped layout) or a single gid_motion_*.safetensors file."""
        path = Path(path)
        return cls.load_directory(path) if path.is_dir() else cls.load_file(path)

    @staticmethod
    def bundled_available(directory: str | Path | None = None) -> bool:
        """True when directory (default: the shipped gid_models/weights/) holds every model file."""
        directory = Path(BUNDLED_DIR if directory is None else directory)
        return all((directory / name).is_file() for name in (
            f"{VAE_FILE}.safetensors", f"{VAE_FILE}.json", f"{DENOISER_FILE}.safetensors",
            f"{DENOISER_FILE}.json", NORMALIZATION_FILE,
        ))

    @classmethod
    def from_bundled(cls, directory: str | Path | None = None) -> "MotionModel":
        """The shipped model of gid_models/weights/ (or of directory, same layout)."""
        directory = Path(BUNDLED_DIR if directory is None else directory)
        if not cls.bundled_available(directory):
            raise MotionError(
                f"the bundled motion model is missing or incomplete ({directory} needs {VAE_FILE}.safetensors, "
                f"{VAE_FILE}.json, {DENOISER_FILE}.safetensors, {DENOISER_FILE}.json and {NORMALIZATION_FILE}). "
                "Reinstall the pack to restore them, train a model with `gid train` (see its --help) and copy "
                "its files there, or put an exported gid_motion_*.safetensors file into ComfyUI/models/gid/ "
                "and pick it in the loader."
            )
        return cls.load_directory(directory)
