"""Realism checks of generated scenes: a contact sheet and motion statistics against other shards.

    python -m tools.scenes_report --scenes DIR [--compare BBB_SHARDS] \
        [--sheet docs/scenes_contact_sheet.jpg] [--chart docs/scenes_vs_bbb.png] [--count 64]

The contact sheet shows `--count` examples drawn at random (`--pick-seed`), each picture above its motion-magnitude map (rms over bins 1..K-1 of the
x and y coefficients, px; black 0, white 2 px or more, the same scale for every tile). The
statistics, printed as a Markdown table and drawn with matplotlib when given --chart: mean
power per frequency bin (Hz, px^2) and the share of pixels that move (amplitude > 0.1 px); for a
scenes folder also what its scenes hold and cost (from scenes_log.jsonl).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from gid_models.train.shards import SpectralShardDataset

LOGGER = logging.getLogger(__name__)
MOVING_PX = 0.1
SHEET_RANGE_PX = 2.0


def amplitude(coeffs: torch.Tensor) -> torch.Tensor:
    """(H, W) px: rms over bins 1..K-1 of |S_x|^2 + |S_y|^2 (the oscillation's size)."""
    return coeffs[1:].square().sum(dim=(0, 1)).sqrt()


def random_examples(dataset, count: int, seed: int = 0) -> list[int]:
    """count distinct example indices drawn at random (numpy, seed), in order."""
    return sorted(np.random.default_rng(seed).choice(len(dataset), size=min(count, len(dataset)), replace=False).tolist())


def contact_sheet(dataset, indices: Sequence[int], columns: int = 8, tile_width: int = 128) -> np.ndarray:
    """(H, W, 3) uint8 BGR: the examples at indices, each picture over its motion map."""
    tiles = []
    for i in indices:
        item = dataset[i]
        image = (item["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)[..., ::-1]
        magnitude = (amplitude(item["coeffs"]).numpy() / SHEET_RANGE_PX).clip(0, 1)
        heat = cv2.applyColorMap((magnitude * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
        tile_height = round(image.shape[0] * tile_width / image.shape[1])
        pair = [cv2.resize(x, (tile_width, tile_height), interpolation=cv2.INTER_AREA) for x in (image, heat)]
        tiles.append(cv2.copyMakeBorder(np.concatenate(pair, 0), 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[r:r + columns], 1) for r in range(0, len(tiles), columns)]
    return np.concatenate(rows, 0)


def motion_statistics(dataset, limit: int | None = None) -> dict[str, np.ndarray]:
    """Per example: moving-pixel share; over all: mean power per bin (K,) px^2 (x + y) and bin Hz."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    power, ratios, hz = None, [], None
    for i in range(count):
        item = dataset[i]
        coeffs = item["coeffs"].double()
        bins = coeffs.square().sum(dim=1).mean(dim=(-2, -1))  # (K,)
        power = bins if power is None else power + bins
        ratios.append(float((amplitude(item["coeffs"]) > MOVING_PX).float().mean()))
        hz = np.arange(coeffs.shape[0]) * item["fps"] / item["num_frames"]
    return {"power": (power / count).numpy(), "moving_ratio": np.asarray(ratios), "hz": hz}


def markdown_table(named: dict[str, dict[str, np.ndarray]]) -> str:
    lines = ["| data | examples | moving-pixel share: mean (10/50/90 %) | power bins 1-3 / 4-8 / 9-15 (px^2) | share of power in bins 1-3 |",
             "|---|---|---|---|---|"]
    for name, stats in named.items():
        r, p = stats["moving_ratio"], stats["power"]
        q = np.percentile(r, [10, 50, 90])
        low, mid, high = p[1:4].sum(), p[4:9].sum(), p[9:].sum()
        lines.append(f"| {name} | {len(r)} | {r.mean():.2f} ({q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}) | "
                     f"{low:.3g} / {mid:.3g} / {high:.3g} | {low / (low + mid + high):.2f} |")
    return "\n".join(lines)


def chart(named: dict[str, dict[str, np.ndarray]], path: str) -> None:
    """Write the per-bin power and the sorted moving-pixel shares of each source side by side (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (power, share) = pyplot.subplots(1, 2, figsize=(14, 5.2), dpi=100)
    for (name, stats), marker in zip(named.items(), ("o", "s")):
        power.plot(stats["hz"][1:], stats["power"][1:], marker=marker, label=name)
        ratios = np.sort(stats["moving_ratio"])
        share.plot(np.linspace(0, 100, len(ratios)), ratios, marker=marker, label=name)
    power.set(title="mean power per bin (bin 0, the mean offset, left out)", xlabel="frequency (Hz)", ylabel="px^2")
    share.set(title="moving-pixel share per example, sorted", xlabel="percentile of examples",
              ylabel="share of pixels moving > 0.1 px")
    for axes in (power, share):
        axes.legend()
        axes.grid(alpha=0.3)
    figure.suptitle("gid scenes vs Big Buck Bunny shots")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


# scenes_log.jsonl keys counted as "present" when the scene holds at least one of the thing
PRESENT = ("trees", "bushes", "flowers", "reeds", "rocks", "pale_boulders", "outcrops", "mountain_m", "snow",
           "houses", "fence_posts", "wall_m", "cloud_cover", "stream_cells", "path", "bank_rocks")
CATEGORIES = ("shot", "season", "sky", "ground", "trees")


def content_table(log: Path) -> str:
    """Markdown: what the scenes of a scenes_log.jsonl hold (shares of scenes) and what they cost."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    count = len(lines)

    def share(n: int) -> str:
        return f"{100 * n / count:.0f} %"

    rows = ["| what | share of scenes |", "|---|---|"]
    for key in CATEGORIES:
        counts: dict[str, int] = {}
        for line in lines:
            values = line.get(key) or ["none"]
            for value in set(values if isinstance(values, list) else [values]):
                counts[str(value)] = counts.get(str(value), 0) + 1
        rows.append(f"| {key} | " + ", ".join(f"{name} {share(n)}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])) + " |")
    present = ", ".join(f"{key} {share(sum(bool(line.get(key)) for line in lines))}" for key in PRESENT)
    lakes = sum(line.get("water_cells", 0) > 0 for line in lines)
    depth_of_field = sum(line.get("fstop", 0) > 0 for line in lines)
    rows.append(f"| present | {present}, lake {share(lakes)}, depth of field {share(depth_of_field)} |")
    cpu = np.array([line["cpu_s"] for line in lines])
    rows.append(f"| CPU-s per example | mean {cpu.mean():.1f}, median {np.median(cpu):.1f}, max {cpu.max():.1f} "
                f"({count} scenes, {sum(line.get('held_out', False) for line in lines)} held out) |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.scenes_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", required=True, help="a gid scenes --out folder (all its records) or a shard folder")
    parser.add_argument("--compare", help="another shard folder (e.g. gid prepare on the Big Buck Bunny clips)")
    parser.add_argument("--sheet", help="write the contact sheet here (.jpg)")
    parser.add_argument("--chart", help="write the statistics chart here (.png)")
    parser.add_argument("--count", type=int, default=64, help="examples on the sheet, drawn at random")
    parser.add_argument("--pick-seed", type=int, default=0, help="seed of that random draw")
    parser.add_argument("--limit", type=int, default=None, help="examples used for the statistics")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    torch.set_num_threads(1)
    scenes = SpectralShardDataset(args.scenes, split="all")
    if args.sheet:
        picked = random_examples(scenes, args.count, args.pick_seed)
        cv2.imwrite(args.sheet, contact_sheet(scenes, picked), [cv2.IMWRITE_JPEG_QUALITY, 82])
        LOGGER.info("wrote %s (%.0f kB): %s", args.sheet, Path(args.sheet).stat().st_size / 1e3,
                    ", ".join(scenes.records[i]["source"] for i in picked))
    named = {"scenes": motion_statistics(scenes, args.limit)}
    if args.compare:
        named["Big Buck Bunny"] = motion_statistics(SpectralShardDataset(args.compare), args.limit)
    print(markdown_table(named))
    log = Path(args.scenes) / "scenes_log.jsonl"
    if log.is_file():
        print()
        print(content_table(log))
    if args.chart:
        chart(named, args.chart)
        LOGGER.info("wrote %s", args.chart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
