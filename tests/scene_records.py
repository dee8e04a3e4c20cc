"""Hand-made `gid scenes` records for tests: a picture whose green half sways and grey half is still."""

import json
from pathlib import Path

import numpy as np
import torch

from gid_models.train.scenes.records import STEP_PX, record_path

HEIGHT, WIDTH, K = 32, 48, 4


def write_scene_record(folder: Path, seed: int, moving_right: bool, generator: torch.Generator) -> Path:
    """Record `seed` in scenes folder `folder`: the green half moves about 0.5 px per bin (K bins,
    HEIGHT x WIDTH, T = 30 at 30 fps), the grey half not at all."""
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    columns = slice(WIDTH // 2, WIDTH) if moving_right else slice(0, WIDTH // 2)
    image[:, columns] = (50, 180, 50)
    coeffs = torch.zeros(K, 4, HEIGHT, WIDTH)
    coeffs[1:, :, :, columns] = 0.5 * torch.randn(K - 1, 4, HEIGHT, WIDTH // 2, generator=generator)
    quantized = torch.round(coeffs / STEP_PX).to(torch.int16).numpy()
    path = record_path(folder, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, image=image, coeffs=quantized, mask=np.ones((HEIGHT, WIDTH), bool), num_frames=30,
                        fps=30.0, record=json.dumps({"seed": seed}))
    return path
