"""Fit the frequency-adaptive normalization (paper Eq. 4) on a training set.

    python -m gid_models.train.fit_normalization --shards DATA/ --out MODEL_DIR/normalization.safetensors
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from torch.utils.data import Dataset

from ..normalization import FrequencyNormalization, fit_normalization
from ..spectral import SpectralVolume

LOGGER = logging.getLogger(__name__)


def fit_dataset_normalization(dataset: Dataset, max_examples: int | None = None, quantile: float = 0.95) -> FrequencyNormalization:
    """Per-frequency `quantile` of |coefficient| over (up to max_examples of) the dataset's volumes."""
    count = len(dataset) if max_examples is None else min(len(dataset), max_examples)
    if count == 0:
        raise ValueError("cannot fit normalization on an empty dataset.")

    def volumes():
        for index in range(count):
            item = dataset[index]
            yield SpectralVolume(item["coeffs"][None].float(), num_frames=int(item["num_frames"]), fps=float(item["fps"]))

    return fit_normalization(volumes(), quantile=quantile)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", nargs="+", required=True,
                        help="shard files or folders (gid prepare output) and/or gid scenes folders (their training seeds)")
    parser.add_argument("--out", required=True, help="normalization.safetensors to write")
    parser.add_argument("--max-examples", type=int, default=None, help="fit on at most this many examples")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from .shards import SpectralShardDataset

    stats = fit_dataset_normalization(SpectralShardDataset(args.shards), args.max_examples)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    stats.save(args.out)
    LOGGER.info("normalization scales (pixels): %s -> %s", [round(float(s), 4) for s in stats.scales], args.out)


if __name__ == "__main__":
    main()
