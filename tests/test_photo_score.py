"""Real-photo score (gid_models.evaluation.photo_score): ROC AUC of motion maps against
should-move / still masks, and `gid eval --photos --masks` on synthetic pictures."""

import math

import cv2
import numpy as np
import pytest
import torch

from gid_models.evaluation import photo_score
from gid_models.evaluation.run import main


def labelled_mask(height=24, width=32):
    """Left half moves (255), right half still (0), a middle band unlabelled (128)."""
    mask = np.zeros((height, width), np.uint8)
    mask[:, : width // 2] = 255
    mask[:, width // 2 - 3 : width // 2 + 3] = 128
    return mask


def left_to_right_map(height=24, width=32):
    """A map falling from left to right: perfect for labelled_mask."""
    return torch.linspace(1.0, 0.0, width).expand(height, width).clone()


def test_auc_of_a_perfect_map_is_one_and_of_its_inverse_zero():
    mask = labelled_mask()
    assert photo_score.map_auc(left_to_right_map(), mask) == pytest.approx(1.0)
    assert photo_score.map_auc(-left_to_right_map(), mask) == pytest.approx(0.0)


def test_auc_of_a_constant_map_is_one_half():
    assert photo_score.map_auc(torch.full((24, 32), 3.0), labelled_mask()) == pytest.approx(0.5)


def test_unlabelled_pixels_are_ignored():
    mask = labelled_mask()
    scores = left_to_right_map()
    band = torch.from_numpy(mask == 128)
    wild = scores.clone()
    wild[band] = torch.where(torch.arange(band.sum()) % 2 == 0, 100.0, -100.0).float()  # nonsense where unlabelled
    assert photo_score.map_auc(wild, mask) == pytest.approx(1.0)


def test_auc_counts_ties_half_and_matches_pairwise_counting(generator):
    scores = torch.randint(0, 5, (200,), generator=generator).float()  # many ties
    labels = torch.randint(0, 3, (200,), generator=generator)
    positive, negative = labels == 2, labels == 0
    pos, neg = scores[positive], scores[negative]
    pairwise = ((pos[:, None] > neg[None]).double() + 0.5 * (pos[:, None] == neg[None]).double()).mean()
    assert photo_score.roc_auc(scores, positive, negative) == pytest.approx(float(pairwise))


def test_auc_is_nan_with_one_class_and_map_is_resized_to_the_mask():
    only_moves = np.full((24, 32), 255, np.uint8)
    assert math.isnan(photo_score.map_auc(left_to_right_map(), only_moves))
    small = left_to_right_map(6, 8)  # a map at a quarter of the mask's size
    assert photo_score.map_auc(small, labelled_mask()) == pytest.approx(1.0)


def test_greenness_ranks_green_over_grey():
    picture = torch.zeros(3, 4, 4)
    picture[1, :, :2] = 0.8  # green left half
    picture[:, :, 2:] = 0.5  # grey right half
    green = photo_score.greenness(picture)
    assert green[:, :2].min() > green[:, 2:].max()


def write_photo_set(folder, generator):
    """Two pictures (green grass left, grey sky right) and their masks; a third picture without one."""
    photos, masks = folder / "photos", folder / "masks"
    photos.mkdir()
    masks.mkdir()
    for name in ("meadow", "hill"):
        picture = np.zeros((48, 64, 3), np.uint8)
        picture[:, :32] = (40, 160, 50)
        picture[:, 32:] = (150, 170, 200)
        noise = torch.randint(0, 20, picture.shape, generator=generator).numpy().astype(np.uint8)
        cv2.imwrite(str(photos / f"{name}.jpg"), cv2.cvtColor(picture + noise, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(masks / f"{name}.png"), cv2.resize(labelled_mask(), (64, 48), interpolation=cv2.INTER_NEAREST))
    cv2.imwrite(str(photos / "unlabelled.jpg"), np.zeros((48, 64, 3), np.uint8))
    cv2.imwrite(str(photos / "all_grass.jpg"), np.full((48, 64, 3), 90, np.uint8))
    cv2.imwrite(str(masks / "all_grass.png"), np.full((48, 64), 255, np.uint8))  # one class: no AUC
    return photos, masks


def test_gid_eval_photos_scores_model_and_greenness(tmp_path, capsys, generator):
    from gid_models.networks import MotionModel

    photos, masks = write_photo_set(tmp_path, generator)
    torch.manual_seed(0)
    MotionModel.create("tiny", num_frequencies=4, sample_size=(32, 48)).save(tmp_path / "model")
    code = main(["--photos", str(photos), "--masks", str(masks), "--model", str(tmp_path / "model"),
                 "--seeds", "2", "--steps", "1"])
    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("meadow", "hill", "all_grass", "mean"))}
    assert set(rows) == {"meadow", "hill", "all_grass", "mean"}  # the picture without a mask is not listed
    assert rows["all_grass"][3:6] == ["nan", "nan", "-"] and "not scored" in out
    assert rows["mean"][1] == "(2"  # the mean is over the two photos with both classes
    model_auc, green_auc, *per_seed = (float(v) for v in rows["meadow"][3:])
    assert len(per_seed) == 2 and all(0.0 <= v <= 1.0 for v in per_seed)
    assert model_auc == pytest.approx(np.mean(per_seed), abs=1e-3)
    assert green_auc == pytest.approx(1.0)  # green grass moves, grey-blue sky stays


def test_gid_eval_photos_needs_masks(tmp_path, caplog, generator):
    photos, _ = write_photo_set(tmp_path, generator)
    assert main(["--photos", str(photos)]) == 2
    assert "--photos and --masks go together" in caplog.text
    assert main(["--photos", str(photos), "--masks", str(tmp_path / "none")]) == 2
    assert "--masks: " in caplog.text and "is not a folder" in caplog.text
