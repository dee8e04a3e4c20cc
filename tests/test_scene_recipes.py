"""Scene recipes (compose.py, scenery.py): pure numpy, no Blender needed.

Recipe 2 adds textured still scenery and a moving grass ground to recipe 1's scene without
changing recipe 1, recipe 3 adds visibly rippling water, streams and pale rock without
changing either, recipe 4 adds rocky banks and weathered rock without changing recipe 3, and
recipe 5 adds big flower and seed heads close to the lens (moving only the sun and the focus of
recipe 4's scene, when it backlights them), so data sets made before each can still be rebuilt
seed for seed.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from gid_models.spectral import MotionError
from gid_models.train.scenes.compose import compose, project
from gid_models.train.scenes.engine import CONFIG_FILE, SceneConfig, check_config
from gid_models.train.scenes.motion import scene_spectra
from gid_models.train.scenes.geometry import STILL, rock
from gid_models.train.scenes.oscillators import CANTILEVER

SEED = 30  # recipe 2 gives this seed a snowy range, houses, clouds, a path and a meadow
LAKE_SEED = 17  # and this one a lake
STREAM_SEED = 69  # recipe 3 gives this seed a lake, a stream with boulders on its banks, and pale boulders
BANKS_SEED = 21  # recipe 4 gives this seed rocky banks with thick moss
BLOOM_SEED = 33  # recipe 5 gives this seed a backlit dandelion clock about 95 px across and a daisy


@pytest.fixture(scope="module")
def both():
    return compose(SEED, recipe=1), compose(SEED, recipe=2)


@pytest.fixture(scope="module")
def watery():
    return compose(STREAM_SEED, recipe=2), compose(STREAM_SEED, recipe=3)


def test_recipe_two_keeps_recipe_one_scene(both):
    first, second = both
    assert (first.recipe, second.recipe) == (1, 2)
    assert first.camera == second.camera and first.sun == second.sun and first.wind == second.wind
    for name, mesh in first.meshes.items():
        if name == "ground":
            continue  # recipe 2 replaces the flat ground by the field of cells
        for key, value in mesh.items():
            np.testing.assert_array_equal(second.meshes[name][key][:len(value)], value, err_msg=f"{name}/{key}")
    count = len(first.parts["kind"])
    for key, value in first.parts.items():
        np.testing.assert_array_equal(second.parts[key][:count], value, err_msg=key)
    assert "field" not in first.meshes and "clouds" not in first.sky


def test_recipe_two_adds_still_scenery_and_swaying_ground(both):
    first, second = both
    description = second.description
    assert description["mountain_m"] > 0 and description["houses"] >= 1 and description["path"]
    assert description["ground"] == "meadow" and description["field_cells"] > 500
    assert {"cover", "scale", "brightness", "offset", "softness"} <= set(second.sky["clouds"])
    for name in ("mountain", "walls", "roof", "ground"):
        assert (second.meshes[name]["part"] == STILL).all(), name
    field = second.meshes["field"]
    assert (field["part"] >= 0).all() and (field["s"] == 1.0).all()
    cells = np.unique(field["part"])
    assert len(cells) == description["field_cells"]
    assert (second.parts["kind"][cells] == CANTILEVER).all() and (second.parts["parent"][cells] == -1).all()
    # unresolved grass sways less than the modelled blades: gain <= 0.04 m/(m/s) per m of a 0.5 m meadow
    assert second.parts["gain"][cells].max() <= 0.02 + 1e-9 and second.parts["gain"][cells].mean() > 0
    # the ground cells tile the view: every cell is a quad on z = 0 with its own four vertices
    assert len(field["vertices"]) == 4 * len(cells) and np.abs(field["vertices"][:, 2]).max() == 0
    assert len(second.parts["kind"]) == len(first.parts["kind"]) + len(cells)


def test_recipe_two_lake_ripples_faster_and_smaller_than_grass():
    scene = compose(LAKE_SEED, recipe=2)
    water = scene.meshes["water"]
    cells = np.unique(water["part"])
    assert len(cells) == scene.description["water_cells"] > 100 and (water["part"] >= 0).all()
    assert np.abs(water["vertices"][:, 2]).max() == 0
    field = np.unique(scene.meshes["field"]["part"])
    assert scene.parts["gain"][cells].max() < 0.02
    assert np.median(scene.parts["frequency"][cells]) > 0.8 and scene.parts["gain"][cells].min() > 0
    # the lake lies beyond the grass: its nearest cell is farther from the camera than the nearest grass cell
    def nearest(ids):
        return np.linalg.norm(scene.parts["root"][ids, :2], axis=1).min()
    assert nearest(cells) > nearest(field)


def test_recipes_are_deterministic_per_seed():
    for recipe in (2, 3, 4, 5):
        a, b = compose(SEED + 1, recipe), compose(SEED + 1, recipe)
        assert a.description == b.description and a.sky == b.sky and a.looks == b.looks
        for name in a.meshes:
            for key in a.meshes[name]:
                np.testing.assert_array_equal(a.meshes[name][key], b.meshes[name][key])
        for key in a.parts:
            np.testing.assert_array_equal(a.parts[key], b.parts[key])
    with pytest.raises(ValueError, match="recipe"):
        compose(SEED, recipe=6)


def test_folder_made_before_recipes_resumes_only_as_recipe_one(tmp_path):
    earlier = SceneConfig(recipe=1).__dict__.copy()
    earlier.pop("recipe")
    (tmp_path / CONFIG_FILE).write_text(json.dumps(earlier))
    check_config(tmp_path, SceneConfig(recipe=1))
    with pytest.raises(MotionError, match="--out folder or the same options"):
        check_config(tmp_path, SceneConfig())
    fresh = tmp_path / "fresh"
    with pytest.raises(MotionError, match="recipe must be one of"):
        check_config(fresh, SceneConfig(recipe=6))
    assert not fresh.exists()


def test_cli_refuses_an_unknown_recipe_and_a_recipe_change(tmp_path, caplog):
    from gid_models.train.scenes.cli import main

    with pytest.raises(SystemExit) as error:
        main(["--count", "1", "--out", str(tmp_path), "--recipe", "6"])
    assert error.value.code == 2
    earlier = SceneConfig(recipe=1).__dict__.copy()
    earlier.pop("recipe")
    (tmp_path / CONFIG_FILE).write_text(json.dumps(earlier))
    assert main(["--count", "1", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "'recipe': 1" in caplog.text and "'recipe': 5" in caplog.text
    assert not (tmp_path / "scenes").exists()


def _rms_image_motion(scene, part_ids: np.ndarray) -> np.ndarray:
    """(N,) rms image motion (pixels at 256 px wide) of the tips of parts rooted on the ground."""
    own, _ = scene_spectra(scene, 150, 30.0, 16)
    rms_m = np.sqrt(2 * (np.abs(own[part_ids, 1:]) ** 2).sum(axis=(1, 2)))
    distance = np.linalg.norm(scene.parts["root"][part_ids, :2] - np.asarray(scene.camera.location[:2]), axis=1)
    return rms_m / distance * scene.camera.focal_mm / scene.camera.sensor_mm * 256


def test_recipe_three_keeps_recipe_one_scene_and_adds_water_and_pale_rock(watery):
    first = compose(STREAM_SEED, recipe=1)
    _, third = watery
    for name, mesh in first.meshes.items():
        if name == "ground":
            continue
        for key, value in mesh.items():
            np.testing.assert_array_equal(third.meshes[name][key][:len(value)], value, err_msg=f"{name}/{key}")
    count = len(first.parts["kind"])
    for key, value in first.parts.items():
        np.testing.assert_array_equal(third.parts[key][:count], value, err_msg=key)
    description = third.description
    assert description["recipe"] == 3 and description["water_cells"] > 100 and description["stream_cells"] > 300
    assert description["bank_boulders"] >= 4 and description["pale_boulders"] >= 2
    water = third.meshes["water"]
    cells = np.unique(water["part"])
    assert (water["part"] >= 0).all() and len(cells) == description["water_cells"] + description["stream_cells"]
    assert (third.parts["kind"][cells] == CANTILEVER).all() and (third.parts["parent"][cells] == -1).all()
    # every rock is still; recipe 3's boulders follow recipe 1's rocks and are pale grey
    assert (third.meshes["rock"]["part"] == STILL).all()
    per_boulder = len(rock(np.random.default_rng(0), np.zeros(3), 1.0)[0])
    start = len(first.meshes["rock"]["vertices"]) if "rock" in first.meshes else 0
    boulders = third.meshes["rock"]["col"][start:start + per_boulder * (description["bank_boulders"] + description["pale_boulders"])]
    assert len(boulders) == per_boulder * (description["bank_boulders"] + description["pale_boulders"])
    assert boulders.mean(1).min() > 0.29 and (np.ptp(boulders, axis=1) < 0.2 * boulders.mean(1)).all()


def test_recipe_three_water_moves_like_grass_where_recipe_two_water_barely_moved(watery):
    second, third = watery
    water_two = np.unique(second.meshes["water"]["part"])
    water_three = np.unique(third.meshes["water"]["part"])
    grass_three = np.unique(third.meshes["field"]["part"])
    moved_two = np.median(_rms_image_motion(second, water_two))
    moved_three = np.median(_rms_image_motion(third, water_three))
    assert moved_two < 0.25, "recipe 2's lake ripples stayed a fraction of a pixel"
    assert moved_three > 5 * moved_two and 0.2 < moved_three < 4.0
    assert moved_three > 0.5 * np.median(_rms_image_motion(third, grass_three))
    # ripples keep their size in pixels: gain grows with distance, so far and near water move alike
    distance = np.linalg.norm(third.parts["root"][water_three, :2], axis=1) * 35.0 / third.camera.focal_mm
    ratio = third.parts["gain"][water_three] / distance
    assert ratio.max() / ratio.min() < 10 and np.corrcoef(distance, third.parts["gain"][water_three])[0, 1] > 0.5
    stream = water_three[third.parts["frequency"][water_three] > 2.5]
    assert len(stream) > 0 and third.parts["frequency"][water_three].max() <= 4.0


def test_recipe_four_keeps_recipe_three_scene_and_adds_still_rocky_banks():
    third, fourth = compose(BANKS_SEED, recipe=3), compose(BANKS_SEED, recipe=4)
    assert third.camera == fourth.camera and third.sun == fourth.sun and third.sky == fourth.sky
    for name, mesh in third.meshes.items():
        for key, value in mesh.items():
            np.testing.assert_array_equal(fourth.meshes[name][key][:len(value)], value, err_msg=f"{name}/{key}")
    count = len(third.parts["kind"])
    for key, value in third.parts.items():
        np.testing.assert_array_equal(fourth.parts[key][:count], value, err_msg=key)
    assert third.looks == {} and set(fourth.looks) == {"rock"}
    description = fourth.description
    assert description["recipe"] == 4 and 6 <= description["bank_rocks"] <= 24
    assert description["rock_look"]["moss"] > 0.5
    rocks = fourth.meshes["rock"]
    assert (rocks["part"] == STILL).all()
    added = rocks["vertices"][len(third.meshes["rock"]["vertices"]):]
    # big rocks close to the camera (filling much of the view), none reaching the lens
    distance = np.linalg.norm(added[:, :2] - np.asarray(fourth.camera.location[:2]), axis=1)
    assert added[:, 2].max() > 1.0 and distance.min() > 0.5 and np.percentile(distance, 10) < 8.0
    # trees or bushes grow by the banks: more moving parts than recipe 3 had
    assert len(fourth.parts["kind"]) > count


def test_recipe_four_weathers_every_scene_rock_from_its_own_random_stream():
    looks = [compose(seed, recipe=4).looks["rock"] for seed in range(12)]
    assert len({json.dumps(look, sort_keys=True) for look in looks}) == len(looks)
    for look in looks:
        assert all(0.0 <= look[key] <= 1.0 for key in ("moss", "lichen", "litter", "crevices"))
        assert len(look["moss_colour"]) == 3 and look["moss_colour"][1] > look["moss_colour"][2]
    assert any(look["moss"] == 0 for look in looks) and any(look["moss"] > 0.5 for look in looks)
    banks = [seed for seed in range(40) if "bank_rocks" in compose(seed, recipe=4).description]
    assert 5 <= len(banks) <= 25, "rocky banks in about a third of the scenes"


def _recipe_five_heroes(seed: int):
    """Recipe 4's and 5's scene of a seed and the parts (stems with their heads) recipe 5 added."""
    fourth, fifth = compose(seed, recipe=4), compose(seed, recipe=5)
    return fourth, fifth, np.arange(len(fourth.parts["kind"]), len(fifth.parts["kind"]))


def test_recipe_five_keeps_recipe_four_scene_and_adds_big_swaying_flower_heads():
    fourth, fifth, heroes = _recipe_five_heroes(BLOOM_SEED)
    assert fourth.sky == fifth.sky and fourth.wind == fifth.wind and fourth.looks == fifth.looks
    assert replace(fifth.camera, fstop=fourth.camera.fstop, focus_m=fourth.camera.focus_m) == fourth.camera
    assert fifth.sun["angle"] == fourth.sun["angle"]
    for name, mesh in fourth.meshes.items():
        for key, value in mesh.items():
            np.testing.assert_array_equal(fifth.meshes[name][key][:len(value)], value, err_msg=f"{name}/{key}")
    for key, value in fourth.parts.items():
        np.testing.assert_array_equal(fifth.parts[key][:len(value)], value, err_msg=key)
    description = fifth.description
    assert description["recipe"] == 5 and description["hero_heads"] == ["clock", "daisy"]
    assert len(heroes) == 2 and (fifth.parts["kind"][heroes] == CANTILEVER).all()
    heads = fifth.meshes["heads"]
    for part, logged_px in zip(heroes, description["hero_head_px"]):
        on_head = heads["part"] == part  # hero parts are new, so only their heads carry these ids
        assert on_head.sum() > 50 and (heads["s"][on_head] == 1.0).all(), "a head rides its stem's tip"
        pixels = project(heads["vertices"][on_head].astype(np.float64), fifth.camera, 256, 160)
        directions = np.stack([np.cos(np.linspace(0, np.pi, 36)), np.sin(np.linspace(0, np.pi, 36))], 1)
        extent = pixels @ directions.T
        across = (extent.max(0) - extent.min(0)).max()  # a tilted daisy's long axis is its diameter
        assert 0.7 * logged_px < across < 1.3 * logged_px, "the head is as big in the picture as the log says"
        centre = np.median(pixels, axis=0)
        assert 0 < centre[0] < 256 and 0 < centre[1] < 160, "the head is in view"
    # each head sways visibly, by a fraction of its own size (rms of the tip, pixels at 256 px wide)
    rms = _rms_image_motion(fifth, heroes)
    assert (rms > 0.2).all() and (rms < 0.5 * np.asarray(description["hero_head_px"])).all(), rms


def test_recipe_five_backlight_puts_the_sun_before_the_lens_and_focuses_on_the_nearest_head():
    fourth, fifth, heroes = _recipe_five_heroes(BLOOM_SEED)
    assert fifth.description["backlit"] and fifth.sun != fourth.sun
    # render_scene's lamp shines along the heading azimuth + pi/2; into the lens is yaw + pi
    assert np.cos(fifth.sun["azimuth"] + np.pi / 2 - (fifth.camera.yaw + np.pi)) > np.cos(0.6)
    assert 0.04 <= fifth.sun["elevation"] <= 0.3 and 1.8 <= fifth.camera.fstop <= 4.0
    tips = [fifth.meshes["heads"]["vertices"][fifth.meshes["heads"]["part"] == part].mean(0) for part in heroes]
    nearest = min(np.linalg.norm(tip - np.asarray(fifth.camera.location)) for tip in tips)
    assert fifth.camera.focus_m == pytest.approx(nearest, rel=0.1)
    with_heroes = [seed for seed in range(60) if "hero_heads" in compose(seed, recipe=5).description]
    assert 8 <= len(with_heroes) <= 30, "big heads in about 30 % of the scenes"
    plain = next(seed for seed in range(60) if seed not in with_heroes)
    assert compose(plain, recipe=5).sun == compose(plain, recipe=4).sun
