"""Shared training plumbing: distributed set-up (torchrun + DDP), bf16 autocast, CSV loss logs,
resumable checkpoints (safetensors only: weights and optimizer state, no pickle), data loading.

Datasets yield dicts {"image": (3, H, W) float 0..1, "coeffs": (K, 4, H, W) float32 pixels,
"num_frames": int, "fps": float} (optionally "mask"), e.g. `shards.SpectralShardDataset`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its rank among world_size processes and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_runtime(device: str | None = None) -> Runtime:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1), else one process.
    Each rank uses cuda:LOCAL_RANK when CUDA is present, otherwise the CPU (gloo backend)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and device != "cpu"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo")
        chosen = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(chosen)
        return Runtime(dist.get_rank(), world_size, chosen)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return Runtime(0, 1, torch.device(device))


def wrap_ddp(network: nn.Module, runtime: Runtime) -> nn.Module:
    """DDP wrapper on multi-process runs (only parameters with requires_grad are synchronised)."""
    if not runtime.distributed:
        return network
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return DistributedDataParallel(network, device_ids=device_ids)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; full precision on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def batches(dataset: Dataset, batch_size: int, runtime: Runtime, seed: int = 0, num_workers: int = 0) -> Iterator[dict]:
    """Endless shuffled batches (each rank sees its own share), reshuffled every epoch."""
    if len(dataset) == 0:
        raise ValueError("the training dataset is empty; point the trainer at shard files with examples.")
    sampler = DistributedSampler(dataset, runtime.world_size, runtime.rank, shuffle=True, seed=seed) if runtime.distributed else None
    generator = torch.Generator().manual_seed(seed + runtime.rank)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=sampler is None, sampler=sampler, drop_last=len(dataset) >= batch_size,
        num_workers=num_workers, generator=generator, pin_memory=runtime.device.type == "cuda",
    )
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


class CsvLog:
    """Appends one row of named values per call to a CSV file (header written once).

    fields: the header (default: the first row's names; later rows give only those). keep=False
    starts the file afresh; with fields, rows of an existing file under another header (an older
    version of the trainer's) are rewritten under these fields, unknown columns dropped."""

    def __init__(self, path: str | Path, enabled: bool = True, fields: Sequence[str] | None = None, keep: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self.fields: list[str] | None = None
        if not enabled:
            return
        rows: list[dict] = []
        if keep and self.path.is_file():
            with open(self.path, newline="") as handle:
                reader = csv.DictReader(handle)
                self.fields = list(reader.fieldnames or []) or None
                if fields is not None and self.fields != list(fields):
                    rows = list(reader)
        if fields is not None and self.fields != list(fields):
            self.fields = list(fields)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, self.fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        elif not keep and self.path.is_file():
            self.path.unlink()

    def write(self, **values: float) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.fields is None:
            self.fields = list(values)
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.fields)
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([values.get(name, "") for name in self.fields])


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(directory: str | Path, network: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
    """directory/{weights,optimizer}.safetensors + state.json (step, optimizer scalars), fp32."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().cpu().contiguous() if v.is_floating_point() else v.cpu().contiguous()
               for k, v in network.state_dict().items()}, str(directory / "weights.tmp"))
    tensors, meta = _flatten_optimizer(optimizer.state_dict())
    save_file(tensors, str(directory / "optimizer.tmp"))
    (directory / "state.tmp").write_text(json.dumps({"step": step, "optimizer": meta}))
    # each file is replaced whole, state.json (the step) last
    for name in ("weights", "optimizer"):
        (directory / f"{name}.tmp").replace(directory / f"{name}.safetensors")
    (directory / "state.tmp").replace(directory / "state.json")


def load_checkpoint(directory: str | Path, network: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Restore what save_checkpoint wrote; returns the step to continue from (0 if none)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / "state.json").is_file():
        return 0
    state = json.loads((directory / "state.json").read_text())
    network.load_state_dict(load_file(str(directory / "weights.safetensors")))
    optimizer.load_state_dict(_unflatten_optimizer(load_file(str(directory / "optimizer.safetensors")), state["optimizer"]))
    LOGGER.info("resumed from %s at step %d", directory, state["step"])
    return int(state["step"])


def crop_to_multiple(tensor: torch.Tensor, factor: int) -> torch.Tensor:
    """Centre-crop the last two dims of (..., H, W) down to multiples of factor."""
    height, width = tensor.shape[-2:]
    new_h, new_w = height - height % factor, width - width % factor
    if new_h == 0 or new_w == 0:
        raise ValueError(f"training pictures of {width}x{height} are smaller than the model factor {factor}.")
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return tensor[..., top : top + new_h, left : left + new_w]


def cleanup(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
