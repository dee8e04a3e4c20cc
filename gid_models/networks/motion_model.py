"""MotionModel: the motion VAE, the denoiser and the normalization statistics as one unit.

Files (safetensors only, never pickle):
- a directory (the shipped layout under gid_models/weights/):
    motion_vae.safetensors + motion_vae.json, denoiser.safetensors + denoiser.json,
    normalization.safetensors (FrequencyNormalization.save), and optionally calibration.safetensors
    ("output_gains" and "output_limits", written by gid_models.train.calibrate; absent means gains
    of 1 and no limits)
- one file `gid_motion_<name>.safetensors` (what users drop into ComfyUI/models/gid/): tensors
  "vae.*", "denoiser.*", "normalization.scales" (and optionally "calibration.output_gains" / "output_limits") with
  both configs in the metadata.
Every load checks the format tag, the config keys and every tensor name and shape against the
network its config builds, and refuses anything else with a message saying what is wrong.
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..spectral import FrequencyNormalization, MotionError
from .denoiser import MotionDenoiser
from .vae import MotionVAE

LOGGER = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights"
VAE_FILE, DENOISER_FILE, NORMALIZATION_FILE = "motion_vae", "denoiser", "normalization.safetensors"
CALIBRATION_FILE = "calibration.safetensors"
SINGLE_FILE_FORMAT = "gid-motion-model"
SINGLE_FILE_PREFIX = "gid_motion"
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+ and zip (torch.save) files

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


def _config_dict(model: Any) -> dict:
    return {key: value for key, value in dict(model.config).items() if not key.startswith("_")}


def _build(cls: type, config: Any, source: str) -> nn.Module:
    """Network of class cls from a config dict, refusing unknown or malformed keys."""
    if not isinstance(config, dict):
        raise MotionError(f"{source}: the {cls.__name__} config must be a JSON object.")
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise MotionError(f"{source}: {cls.__name__} config has unknown keys {unknown}; it is not a GID model file.")
    try:
        return cls(**config)
    except (TypeError, ValueError) as error:
        raise MotionError(f"{source}: cannot build {cls.__name__} from its config: {error}") from error


def _open_safetensors(path: Path) -> dict:
    """{"tensors": {name: tensor}, "metadata": {...}} of a safetensors file; refuses pickles."""
    if not path.is_file():
        raise MotionError(f"{path} does not exist.")
    with open(path, "rb") as handle:
        head = handle.read(9)
    # a safetensors header (8-byte length, then "{") can itself start with 0x80
    if head[8:9] != b"{" and any(head.startswith(magic) for magic in PICKLE_MAGIC):
        raise MotionError(
            f"{path.name} is a pickled PyTorch checkpoint; GID loads only .safetensors model files "
            "(pickles can run code). Convert it with the training tools' export or use a GID safetensors file."
        )
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors raises several error types for damaged files
        raise MotionError(f"{path.name} is not a readable safetensors file (corrupt or truncated?): {error}") from error
    return {"tensors": tensors, "metadata": metadata}


def _load_weights(network: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy tensors into network after checking names, shapes and finiteness exactly."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(n for n in set(expected) & set(tensors) if tuple(expected[n].shape) != tuple(tensors[n].shape))
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{what}: {names[:3]}{' ...' if len(names) > 3 else ''}"
            for what, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if names
        )
        raise MotionError(f"{source} does not match its config ({details}); the file is from another model or damaged.")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise MotionError(f"{source}: tensor {name} holds NaN or infinite values; the file is damaged.")
    network.load_state_dict({n: t.to(expected[n].dtype) for n, t in tensors.items()})


def save_network(network: nn.Module, directory: str | Path, name: str, dtype: torch.dtype = torch.float16) -> None:
    """directory/name.safetensors (weights in dtype, format tag gid-name) + directory/name.json (config)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in network.state_dict().items()}
    save_file(state, str(directory / f"{name}.safetensors"), metadata={"format": f"gid-{name}"})
    (directory / f"{name}.json").write_text(json.dumps(_config_dict(network), indent=2))


def load_network(cls: type, directory: str | Path, name: str) -> nn.Module:
    """The network saved by save_network, checked against its config (float32, eval mode)."""
    directory = Path(directory)
    config_path = directory / f"{name}.json"
    if not config_path.is_file():
        raise MotionError(f"{directory} has no {config_path.name}; a GID model folder needs it.")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise MotionError(f"{config_path} is not valid JSON: {error}") from error
    network = _build(cls, config, str(config_path))
    weights_path = directory / f"{name}.safetensors"
    content = _open_safetensors(weights_path)
    if content["metadata"].get("format") != f"gid-{name}":
        raise MotionError(f"{weights_path} is not a GID {name} file (format tag missing).")
    _load_weights(network, content["tensors"], str(weights_path))
    return network.eval()


class MotionModel(nn.Module):
    """VAE + denoiser + frequency normalization (K scales), moved and saved together.

    Shapes: pictures (B, 3, H, W) with H, W divisible by `downsample_factor`; latents
    (B, K, 4, H / f, W / f) with f = `latent_factor`; slices (B, K, 4, H, W) normalized.
    """

    def __init__(self, vae: MotionVAE, denoiser: MotionDenoiser, normalization: FrequencyNormalization):
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
        self.vae = vae
        self.denoiser = denoiser
        self.register_buffer("normalization_scales", normalization.scales.float().clone())
        self.register_buffer("output_gains", torch.ones(normalization.num_frequencies))
        self.register_buffer("output_limits", torch.full((normalization.num_frequencies,), float("inf")))
        self.quantile = normalization.quantile

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

    def set_output_limits(self, limits: torch.Tensor, source: str = "output limits") -> None:
        """Per-bin amplitude limits (K,) in pixels (inf = none) on sampled motion (see train/calibrate.py)."""
        self._set_per_bin(self.output_limits, limits, source, "positive amplitude limits (pixels)", allow_inf=True)

    @property
    def calibrated(self) -> bool:
        return bool((self.output_gains != 1).any() or torch.isfinite(self.output_limits).any())

    def calibration_tensors(self) -> dict[str, torch.Tensor]:
        """{"output_gains", "output_limits"} as float32 CPU tensors (what calibration files hold)."""
        return {name: getattr(self, name).detach().float().cpu().contiguous() for name in ("output_gains", "output_limits")}

    def load_calibration(self, tensors: dict[str, torch.Tensor], source: str) -> None:
        """Gains (required) and limits (optional: older files have none) from a calibration's tensors."""
        self.set_output_gains(tensors.get("output_gains", torch.empty(0)), source)
        if "output_limits" in tensors:
            self.set_output_limits(tensors["output_limits"], source)

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

            save_file(self.calibration_tensors(), str(calibration))
        elif calibration.is_file():
            calibration.unlink()  # a stale file would calibrate the new weights with the old model's gains
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
        model = cls(vae, denoiser, normalization)
        if (directory / CALIBRATION_FILE).is_file():
            model.load_calibration(_open_safetensors(directory / CALIBRATION_FILE)["tensors"], str(directory / CALIBRATION_FILE))
        return model.eval()

    # --- single file ---------------------------------------------------------------------------------
    def save_file(self, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
        """One safetensors file holding everything (the format users put in ComfyUI/models/gid)."""
        from safetensors.torch import save_file

        tensors = {}
        for prefix, network in (("vae.", self.vae), ("denoiser.", self.denoiser)):
            tensors.update({prefix + k: v.detach().to("cpu", dtype).contiguous() for k, v in network.state_dict().items()})
        tensors["normalization.scales"] = self.normalization_scales.detach().float().cpu().contiguous()
        if self.calibrated:
            tensors.update({f"calibration.{name}": value for name, value in self.calibration_tensors().items()})
        metadata = {
            "format": SINGLE_FILE_FORMAT,
            "vae_config": json.dumps(_config_dict(self.vae)),
            "denoiser_config": json.dumps(_config_dict(self.denoiser)),
            "quantile": repr(self.quantile),
        }
        save_file(tensors, str(path), metadata=metadata)
        return Path(path)

    @classmethod
    def load_file(cls, path: str | Path) -> "MotionModel":
        path = Path(path)
        content = _open_safetensors(path)
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
        vae = _build(MotionVAE, vae_config, path.name)
        denoiser = _build(MotionDenoiser, denoiser_config, path.name)
        _load_weights(vae, {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}, f"{path.name} (vae)")
        _load_weights(
            denoiser, {k[9:]: v for k, v in tensors.items() if k.startswith("denoiser.")}, f"{path.name} (denoiser)"
        )
        scales = tensors.get("normalization.scales")
        if scales is None or scales.ndim != 1 or not torch.isfinite(scales).all() or (scales <= 0).any():
            raise MotionError(f"{path.name}: normalization scales are missing or invalid.")
        normalization = FrequencyNormalization(scales.float(), float(metadata.get("quantile", 0.95)))
        model = cls(vae, denoiser, normalization)
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
