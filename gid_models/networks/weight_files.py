"""The one file format of every GID network (motion VAE, denoiser, neural renderer).

A network file is safetensors only (never pickle): the weights (fp16 unless asked otherwise) and,
in its metadata, "format" (the tag saying what network it holds, e.g. "gid-neural-renderer") and
"config" (JSON of the network's diffusers config: the keyword arguments that build it). A `.json`
beside it repeats the config for people reading the folder. Files written before the config went
into the metadata (the shipped motion_vae and denoiser) keep it only in that `.json`, which
read_network_file reads then. Every read checks the format tag, the config keys and every tensor
name, shape and value against the network the config builds, and refuses anything else with a
message saying what is wrong. (diffusers' own save_pretrained folders, config.json +
diffusion_pytorch_model.safetensors per network, are not used: a GID file must be droppable into
ComfyUI/models/gid on its own.)
"""

from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..spectral import MotionError

MAX_PARAMETERS = 500_000_000  # 1 GB in fp16, 30x the whole shipped stack
MAX_CONFIG_CHARS = 65536  # far above any real config; a hostile one must not cost memory or time
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+ and zip (torch.save) files


def config_dict(network: Any) -> dict:
    """The network's diffusers config without its private ("_...") entries."""
    return {key: value for key, value in dict(network.config).items() if not key.startswith("_")}


def build_network(cls: type, config: Any, source: str) -> nn.Module:
    """Network of class cls from a config dict, refusing unknown or malformed keys."""
    if not isinstance(config, dict):
        raise MotionError(f"{source}: the {cls.__name__} config must be a JSON object.")
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise MotionError(f"{source}: {cls.__name__} config has unknown keys {unknown}; it is not a GID model file.")
    try:
        # sized without allocating: a hostile config must not exhaust memory (a network that loads
        # frozen weights in its constructor warns that copying into meta tensors does nothing)
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            parameters = sum(p.numel() for p in cls(**config).parameters())
        if parameters > MAX_PARAMETERS:
            raise MotionError(f"{source}: its {cls.__name__} config asks for {parameters:,} parameters (at most "
                              f"{MAX_PARAMETERS:,}); the file is not a GID model file or is damaged.")
        return cls(**config)
    except (TypeError, ValueError, RuntimeError, RecursionError) as error:
        if isinstance(error, MotionError):
            raise
        raise MotionError(f"{source}: cannot build {cls.__name__} from its config: {error}") from error


def open_safetensors(path: Path) -> dict:
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


def load_weights(network: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
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


def network_tensors(network: nn.Module, dtype: torch.dtype, prefix: str = "") -> dict[str, torch.Tensor]:
    """The network's state as contiguous CPU tensors in dtype, names prefixed."""
    return {prefix + k: v.detach().to("cpu", dtype).contiguous() for k, v in network.state_dict().items()}


def write_network_file(network: nn.Module, path: str | Path, format_tag: str, dtype: torch.dtype = torch.float16) -> Path:
    """path (weights in dtype; format tag and config in the metadata) + path.json (the config)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = config_dict(network)
    save_file(network_tensors(network, dtype), str(path), metadata={"format": format_tag, "config": json.dumps(config)})
    path.with_suffix(".json").write_text(json.dumps(config, indent=2) + "\n")
    return path


def read_network_file(cls: type, path: str | Path, format_tag: str) -> nn.Module:
    """The network write_network_file wrote (float32, eval mode), checked against its config."""
    path = Path(path)
    content = open_safetensors(path)
    found = content["metadata"].get("format")
    if found != format_tag:
        what = format_tag.removeprefix("gid-").replace("-", " ")
        raise MotionError(f"{path.name} is not a GID {what} file (format tag {found!r}, expected {format_tag!r}).")
    text = content["metadata"].get("config")
    source = path.name
    if text is None:  # written before the config went into the metadata: it is in the .json beside it
        config_path = path.with_suffix(".json")
        if not config_path.is_file():
            raise MotionError(f"{path.parent} has no {config_path.name}; a GID model folder needs it.")
        text, source = config_path.read_text(), str(config_path)
    if len(text) > MAX_CONFIG_CHARS:
        raise MotionError(f"{source}: the network config is {len(text):,} characters long (at most "
                          f"{MAX_CONFIG_CHARS:,}); the file is not a GID model file or is damaged.")
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise MotionError(f"{source}: its network config is not valid JSON: {error}") from error
    network = build_network(cls, config, source)
    load_weights(network, content["tensors"], str(path))
    return network.eval()

