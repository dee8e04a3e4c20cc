"""The on-disk latent store: the same items as the in-memory cache, encoded once per model and
example, re-encoded when the VAE or an example file changes, no truncated entries."""

from __future__ import annotations

import os

import pytest
import torch

from gid_models.train.latent_cache import LatentCacheDataset
from gid_models.train.latent_store import LatentStore, model_fingerprint
from gid_models.train.shards import ShardWriter, SpectralShardDataset
from test_training_conditioned import K, SIZE, conditioned_model, examples, v1_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def shard_folder(tmp_path):
    folder = tmp_path / "shards"
    with ShardWriter(folder, examples_per_shard=2) as writer:
        for i, item in enumerate(examples(3, seed=5)):
            writer.add(item["image"], item["coeffs"], num_frames=30, fps=30.0, source=f"clip{i}", start_frame=0)
    return folder


def test_store_serves_exactly_the_in_memory_items(shard_folder, tmp_path):
    model = conditioned_model()
    data = SpectralShardDataset(shard_folder)
    memory = LatentCacheDataset(data, model, augment=True)
    stored = LatentCacheDataset(data, model, augment=True, store=tmp_path / "store")
    assert len(stored) == len(memory) == 3
    assert not stored.latents and len(list((tmp_path / "store").glob("*/*.safetensors"))) == 3
    for i in range(3):
        for variant in range(4):
            got = LatentStore.read(stored.paths[i], variant)
            assert torch.equal(got["image"], memory.images[i][variant])
            assert torch.equal(got["latents"], memory.latents[i][variant])
            assert len(got["features"]) == 3
            for a, b in zip(got["features"], memory.features[i][variant]):
                assert torch.equal(a, b)
    item = stored[1]
    assert set(item) == {"image", "latents", "features"}
    assert item["latents"].shape == (K, 4, SIZE // 2, SIZE // 2)


def test_second_run_encodes_nothing_and_a_changed_file_is_encoded_again(shard_folder, tmp_path):
    model = v1_model()
    data = SpectralShardDataset(shard_folder)
    LatentCacheDataset(data, model, augment=False, store=tmp_path / "store")
    calls = []
    encode = model.encode
    model.encode = lambda *a, **k: calls.append(1) or encode(*a, **k)
    again = LatentCacheDataset(data, model, augment=False, store=tmp_path / "store")
    assert not calls, "examples already in the store were encoded again"
    assert "features" not in again[0] and len(again) == 3
    shard = sorted(shard_folder.glob("shard-*.safetensors"))[1]  # holds the third example
    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 10**9))
    LatentCacheDataset(SpectralShardDataset(shard_folder), model, augment=False, store=tmp_path / "store")
    assert len(calls) == 1, "exactly the example whose file changed should be encoded again"


def test_another_vae_or_variant_count_gets_its_own_folder(shard_folder, tmp_path):
    model = v1_model()
    first = model_fingerprint(model, 4)
    assert model_fingerprint(model, 1) != first
    assert model_fingerprint(v1_model(), 4) == first  # same weights, same name
    with torch.no_grad():
        next(model.vae.parameters()).add_(0.01)
    assert model_fingerprint(model, 4) != first
    assert model_fingerprint(conditioned_model(), 4) != first
    LatentCacheDataset(SpectralShardDataset(shard_folder), model, augment=True, store=tmp_path / "store")
    LatentCacheDataset(SpectralShardDataset(shard_folder), v1_model(), augment=True, store=tmp_path / "store")
    assert len([p for p in (tmp_path / "store").iterdir() if p.is_dir()]) == 2


def test_no_partial_files_are_left_and_foreign_files_are_refused(shard_folder, tmp_path):
    stored = LatentCacheDataset(SpectralShardDataset(shard_folder), v1_model(), augment=False, store=tmp_path / "s")
    folder = stored.paths[0].parent
    assert not list(folder.glob(".*partial"))
    bogus = folder / "bogus.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(bogus))
    with pytest.raises(ValueError, match="not a GID latent-store entry"):
        LatentStore.read(bogus, 0)


def test_store_needs_examples_that_name_their_files(tmp_path):
    with pytest.raises(ValueError, match="SpectralShardDataset"):
        LatentCacheDataset(examples(2), v1_model(), store=tmp_path / "store")


def test_denoiser_cli_trains_from_the_store_and_reuses_it_in_stage_2(shard_folder, tmp_path):
    from gid_models.networks.motion_model import NORMALIZATION_FILE, VAE_FILE, save_network
    from gid_models.train import train_denoiser as denoiser_cli

    model = v1_model()
    out = tmp_path / "model"
    out.mkdir()
    save_network(model.vae, out, VAE_FILE, torch.float32)
    model.normalization.save(str(out / NORMALIZATION_FILE))
    store = tmp_path / "store"
    common = ["--shards", str(shard_folder), "--out", str(out), "--size", "tiny", "--height", str(SIZE),
              "--width", str(SIZE), "--batch-size", "2", "--latent-store", str(store), "--device", "cpu"]
    denoiser_cli.main(common + ["--stage", "1", "--steps", "2"])
    entries = sorted(store.glob("*/*.safetensors"))
    assert len(entries) == 3
    stamps = [p.stat().st_mtime_ns for p in entries]
    denoiser_cli.main(common + ["--stage", "2", "--steps", "1"])
    assert [p.stat().st_mtime_ns for p in sorted(store.glob("*/*.safetensors"))] == stamps
    assert (out / "denoiser_stage2_losses.csv").is_file()


def test_variants_of_an_odd_width_example_match_flipping_before_the_crop():
    """The trainer flips the whole example, then crops to the VAE factor; the cache must agree."""
    from gid_models.train.shards import flip_horizontal, reverse_time

    model = conditioned_model()
    generator = torch.Generator().manual_seed(2)
    image, coeffs = torch.rand(3, SIZE, SIZE + 1, generator=generator), torch.randn(K, 4, SIZE, SIZE + 1, generator=generator)
    cache = LatentCacheDataset([{"image": image, "coeffs": coeffs}], model, augment=True)
    mask = torch.ones(1, SIZE, SIZE + 1)
    for variant, (flip, reverse) in enumerate([(False, False), (True, False), (False, True), (True, True)]):
        want_image, want_coeffs = image, coeffs
        if flip:
            want_image, want_coeffs, _ = flip_horizontal(image, coeffs, mask)
        if reverse:
            want_coeffs = reverse_time(want_coeffs)
        plain = LatentCacheDataset([{"image": want_image, "coeffs": want_coeffs}], model, augment=False)
        assert torch.equal(cache.images[0][variant], plain.images[0][0])
        assert torch.allclose(cache.latents[0][variant], plain.latents[0][0], atol=1e-5)
        for got, want in zip(cache.features[0][variant], plain.features[0][0]):
            assert torch.allclose(got, want, atol=1e-6)


def test_an_unwritable_store_is_refused_before_any_work(shard_folder, tmp_path):
    from gid_models.train import train_denoiser as denoiser_cli

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="--latent-store .*cannot write there"):
        denoiser_cli.main(["--shards", str(shard_folder), "--out", str(tmp_path / "no_model"),
                           "--latent-store", str(blocker / "store")])
    assert not (tmp_path / "no_model").exists()
