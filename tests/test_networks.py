"""Motion VAE, denoiser, frequency attention and MotionModel files, with tiny configs on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from gid_models.networks import FrequencyAttention, MotionDenoiser, MotionModel, MotionVAE
from gid_models.networks.motion_model import TINY_DENOISER, TINY_VAE
from gid_models.spectral import MotionError

K = 4  # frequencies of the conftest's tiny_model
pytestmark = pytest.mark.usefixtures("one_thread")


def test_vae_shapes_and_loss_parts():
    vae = MotionVAE(**TINY_VAE)
    slices = torch.randn(3, 4, 16, 24, generator=torch.Generator().manual_seed(0))
    reconstruction, mean, logvar = vae(slices, generator=torch.Generator().manual_seed(1))
    assert vae.downsample_factor == 2
    assert reconstruction.shape == slices.shape
    assert mean.shape == logvar.shape == (3, 4, 8, 12)


def test_codec_encodes_and_decodes_frequency_slices_per_bin(tiny_model):
    """MotionModel.encode / decode: the VAE applied to each of the K slices, latents scaled."""
    slices = torch.randn(2, K, 4, 16, 16, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        latents = tiny_model.encode(slices)
        decoded = tiny_model.decode(latents)
        mean, _ = tiny_model.vae.encode(slices[1, 2:3])
        alone = tiny_model.vae.decode(mean)
    assert latents.shape == (2, K, 4, 8, 8) and decoded.shape == slices.shape and decoded.dtype == torch.float32
    torch.testing.assert_close(latents[1, 2], mean[0] * tiny_model.latent_scale)
    torch.testing.assert_close(decoded[1, 2], alone[0], rtol=1e-4, atol=1e-5)


def test_decode_bytes_per_slice_is_the_largest_activation_of_the_decoder():
    """The size MotionModel.decode splits its slices by: the largest tensor any decoder layer
    makes for one slice (the shipped VAE's shape and the tiny one's)."""
    for config in (TINY_VAE, dict(block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8)):
        vae = MotionVAE(**config).eval()
        largest = []
        hooks = [m.register_forward_hook(lambda m, i, o: largest.append(o[0].numel())) for m in vae.modules()
                 if m is not vae and not any(True for _ in m.children())]
        with torch.no_grad():
            vae.decode(torch.randn(1, 4, 11, 19))
        for hook in hooks:
            hook.remove()
        encoder_layers = sum(1 for name, m in vae.named_modules() if name.startswith("encoder") and not any(m.children()))
        assert encoder_layers > 0 and largest  # the decoder ran through its hooks
        assert vae.decode_bytes_per_slice(11, 19) == 4 * max(largest)
        assert vae.decode_bytes_per_slice(11, 19, element_size=2) == 2 * max(largest)


def test_decode_on_the_cpu_in_parts_equals_one_decode_of_every_slice(tiny_model):
    """Latents big enough that MotionModel.decode splits the slices (to keep every activation
    within HEAP_BLOCK_BYTES) decode, and pass gradients back, as one call of the VAE on all of them."""
    from gid_models.heap import HEAP_BLOCK_BYTES

    latents = torch.randn(1, K, 4, 176, 150, generator=torch.Generator().manual_seed(2), requires_grad=True)
    assert HEAP_BLOCK_BYTES // tiny_model.vae.decode_bytes_per_slice(176, 150) < K  # it does split
    decoded = tiny_model.decode(latents)
    weights = torch.randn(decoded.shape, generator=torch.Generator().manual_seed(3))
    (gradient,) = torch.autograd.grad((decoded * weights).sum(), latents)

    whole = latents.detach().clone().requires_grad_(True)
    expected = tiny_model.vae.decode(whole[0] / tiny_model.latent_scale)[None]
    (expected_gradient,) = torch.autograd.grad((expected * weights).sum(), whole)
    assert decoded.shape == (1, K, 4, 352, 300) and decoded.is_contiguous()
    # float32 sums in another order (channels last): differences of a few 1e-5 on values of about 1
    assert float(expected.detach().abs().mean()) > 0.1
    torch.testing.assert_close(decoded, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gradient, expected_gradient, rtol=1e-4, atol=1e-4)


def test_default_sizes_fit_the_shipping_budget():
    denoiser, vae = MotionDenoiser(), MotionVAE()
    assert sum(p.numel() for p in denoiser.parameters()) <= 8_000_000  # <= 16 MB in fp16
    assert sum(p.numel() for p in vae.parameters()) <= 2_000_000
    # 256x160 pictures: 4x VAE -> 64x40 latent, which the U-Net's two 2x downsamplings divide.
    assert vae.downsample_factor == 4 and denoiser.downsample_factor == 4
    assert (160 // 4) % denoiser.downsample_factor == 0 and (256 // 4) % denoiser.downsample_factor == 0


def test_denoiser_output_shape(tiny_model):
    sample = torch.randn(2, K, 4, 8, 8)
    condition = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        out = tiny_model.denoiser(sample, torch.tensor([10, 500]), condition, torch.arange(K))
    assert out.shape == sample.shape
    assert torch.isfinite(out).all()


def test_zero_initialised_frequency_attention_keeps_stage_one_output(tiny_model):
    sample = torch.randn(2, K, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    condition = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        stage1 = tiny_model.denoiser(sample, 300, condition, torch.arange(K), use_frequency_attention=False)
        stage2 = tiny_model.denoiser(sample, 300, condition, torch.arange(K), use_frequency_attention=True)
    torch.testing.assert_close(stage2, stage1, rtol=0, atol=1e-6)


def test_frequency_attention_mixes_slices_once_trained():
    layer = FrequencyAttention(8, num_heads=2)
    torch.nn.init.normal_(layer.attention.to_out[0].weight, std=0.5)
    hidden = torch.randn(2 * K, 8, 3, 3, generator=torch.Generator().manual_seed(4))
    index = torch.arange(K).repeat(2).float()
    out = layer(hidden, index, K)
    changed = hidden.clone()
    changed[1] += torch.randn(8, 3, 3, generator=torch.Generator().manual_seed(5))  # slice 1 of picture 0
    out_changed = layer(changed, index, K)
    assert (out_changed[0] - out[0]).abs().max() > 1e-4  # slice 0 of picture 0 now differs
    torch.testing.assert_close(out_changed[K:], out[K:])  # picture 1 untouched


def test_freeze_spatial_leaves_only_frequency_attention_trainable():
    denoiser = MotionDenoiser(num_frequencies=K, **TINY_DENOISER)
    denoiser.freeze_spatial()
    trainable = {n for n, p in denoiser.named_parameters() if p.requires_grad}
    assert trainable and all("frequency_attention" in n for n in trainable)
    assert denoiser.conv_in.weight.requires_grad is False


def test_directory_round_trip(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "model", dtype=torch.float32)
    loaded = MotionModel.load(tmp_path / "model")
    for (name, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    assert loaded.num_frequencies == K and loaded.sample_size == (16, 16)
    assert {p.name for p in (tmp_path / "model").iterdir()} == {
        "motion_vae.safetensors", "motion_vae.json", "denoiser.safetensors", "denoiser.json", "normalization.safetensors"
    }


def test_single_file_round_trip_fp16(tiny_model, tmp_path):
    path = tiny_model.save_file(tmp_path / "gid_motion_test.safetensors")
    loaded = MotionModel.load(path)
    sample = torch.randn(1, K, 4, 8, 8)
    condition = torch.zeros(1, 3, 16, 16)
    with torch.no_grad():
        a = tiny_model.denoiser(sample, 100, condition, torch.arange(K))
        b = loaded.denoiser(sample, 100, condition, torch.arange(K))
    torch.testing.assert_close(a, b, rtol=0.02, atol=0.02)  # fp16 weights
    torch.testing.assert_close(loaded.normalization_scales, tiny_model.normalization_scales)


def test_output_gains_round_trip_in_both_layouts(tmp_path):
    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=K, sample_size=(16, 16))
    gains = torch.tensor([1.0, 3.5, 7.25, 12.0])
    model.set_output_gains(gains)
    from_folder = MotionModel.load(model.save(tmp_path / "model"))
    from_file = MotionModel.load(model.save_file(tmp_path / "gid_motion_calibrated.safetensors"))
    for loaded in (from_folder, from_file):
        torch.testing.assert_close(loaded.output_gains, gains)
        assert loaded.calibrated
    model.set_output_gains(torch.ones(K))  # saving an uncalibrated model removes the stale gains file
    model.save(tmp_path / "model")
    assert not (tmp_path / "model" / "calibration.safetensors").exists()
    assert not MotionModel.load(tmp_path / "model").calibrated


def test_output_limits_round_trip_and_older_calibrations_load_without_them(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = MotionModel.create("tiny", num_frequencies=K, sample_size=(16, 16))
    assert torch.isinf(model.output_limits).all() and not model.calibrated
    limits = torch.tensor([14.0, 6.0, float("inf"), 1.5])
    model.set_output_limits(limits)
    assert model.calibrated  # limits alone make a calibration worth saving
    from_folder = MotionModel.load(model.save(tmp_path / "model"))
    from_file = MotionModel.load(model.save_file(tmp_path / "gid_motion_limited.safetensors"))
    for loaded in (from_folder, from_file):
        torch.testing.assert_close(loaded.output_limits, limits)
        torch.testing.assert_close(loaded.output_gains, torch.ones(K))
    save_file({"output_gains": torch.full((K,), 2.0)}, str(tmp_path / "model" / "calibration.safetensors"))
    older = MotionModel.load(tmp_path / "model")  # a calibration written before limits existed
    assert torch.isinf(older.output_limits).all() and torch.equal(older.output_gains, torch.full((K,), 2.0))
    for bad in (torch.ones(K + 1), torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.tensor([1.0, float("nan"), 1.0, 1.0])):
        save_file({"output_gains": torch.ones(K), "output_limits": bad}, str(tmp_path / "model" / "calibration.safetensors"))
        with pytest.raises(MotionError, match="calibration.safetensors: expected 4 positive amplitude limits"):
            MotionModel.load(tmp_path / "model")


def test_saving_a_loaded_model_keeps_its_calibration_record_until_the_calibration_changes(tmp_path):
    """`gid calibrate --limits-only` reads the record gid calibrate wrote; a load + save (fp16
    export, a training run's copy) must not drop it, and must not keep it for new gains."""
    from gid_models.train.calibrate import read_calibration_record, write_calibration

    torch.manual_seed(0)
    folder = MotionModel.create("tiny", num_frequencies=K, sample_size=(16, 16)).save(tmp_path / "model")
    record = {"gains": [0.5, 1.0, 2.0, 0.25], "examples": 3, "limits_px": [9.0, 4.0, 2.0, 1.0]}
    write_calibration(folder, torch.tensor([0.5, 1.0, 2.0, 0.25]), torch.tensor([9.0, 4.0, 2.0, 1.0]), record)

    copy = MotionModel.load(folder).save(tmp_path / "copy")
    assert read_calibration_record(copy) == record
    torch.testing.assert_close(MotionModel.load(copy).output_gains, torch.tensor([0.5, 1.0, 2.0, 0.25]))

    refitted = MotionModel.load(folder)
    refitted.set_output_gains(torch.full((K,), 3.0))  # the record no longer describes these gains
    assert read_calibration_record(refitted.save(tmp_path / "refitted")) == {}
    relimited = MotionModel.load(folder)
    relimited.set_output_limits(torch.full((K,), 5.0))
    assert read_calibration_record(relimited.save(tmp_path / "relimited")) == {}


@pytest.mark.parametrize("gains", [torch.ones(K + 1), torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.tensor([1.0, float("nan"), 1.0, 1.0])])
def test_bad_output_gains_are_refused(tmp_path, gains):
    from safetensors.torch import save_file

    folder = MotionModel.create("tiny", num_frequencies=K, sample_size=(16, 16)).save(tmp_path / "model")
    save_file({"output_gains": gains}, str(folder / "calibration.safetensors"))
    with pytest.raises(MotionError, match="calibration.safetensors: expected 4 finite positive gains"):
        MotionModel.load(folder)


def test_pickled_file_is_refused(tiny_model, tmp_path):
    path = tmp_path / "gid_motion_pickle.safetensors"
    torch.save(tiny_model.state_dict(), path)
    with pytest.raises(MotionError, match="pickled"):
        MotionModel.load(path)


def test_corrupt_file_is_refused(tiny_model, tmp_path):
    path = tiny_model.save_file(tmp_path / "gid_motion_cut.safetensors")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(MotionError, match="not a readable safetensors"):
        MotionModel.load(path)


def rewrite_config(weights, config: dict | str | None) -> None:
    """Rewrite a network file's metadata config: a dict (as JSON), raw text, or None (drop it, as files
    written before it went there)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(weights), framework="pt") as handle:
        metadata, tensors = handle.metadata(), {name: handle.get_tensor(name) for name in handle.keys()}
    metadata.pop("config", None)
    if config is not None:
        metadata["config"] = config if isinstance(config, str) else json.dumps(config)
    save_file(tensors, str(weights), metadata=metadata)


def test_wrong_config_is_refused(tiny_model, tmp_path):
    directory = tiny_model.save(tmp_path / "model")
    config = json.loads((directory / "denoiser.json").read_text())
    config["block_out_channels"] = [16, 48]
    rewrite_config(directory / "denoiser.safetensors", config)
    with pytest.raises(MotionError, match="does not match its config"):
        MotionModel.load(directory)
    config["colour"] = "red"
    rewrite_config(directory / "denoiser.safetensors", config)
    with pytest.raises(MotionError, match="unknown keys"):
        MotionModel.load(directory)


def test_files_without_a_config_in_their_metadata_read_the_json_beside_them(tiny_model, tmp_path):
    """The layout shipped in gid_models/weights/ before the config went into the metadata."""
    directory = tiny_model.save(tmp_path / "model", dtype=torch.float32)
    for name in ("motion_vae", "denoiser"):
        rewrite_config(directory / f"{name}.safetensors", None)
    torch.testing.assert_close(MotionModel.load(directory).state_dict(), tiny_model.state_dict())
    config = json.loads((directory / "denoiser.json").read_text())
    (directory / "denoiser.json").write_text(json.dumps({**config, "block_out_channels": [16, 48]}))
    with pytest.raises(MotionError, match="does not match its config"):
        MotionModel.load(directory)
    (directory / "denoiser.json").unlink()
    with pytest.raises(MotionError, match="has no denoiser.json"):
        MotionModel.load(directory)


def test_other_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "gid_motion_other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(MotionError, match="not a GID motion model"):
        MotionModel.load(path)


def test_shipped_files_load_unchanged_and_round_trip_through_both_layouts(tmp_path):
    """gid_models/weights/ (motion model v2: configs in the file metadata and in the .json beside
    each file) loads as it is, exports to one gid_motion_*.safetensors file and re-saves in the
    current layout, all equal."""
    from safetensors import safe_open

    from gid_models.networks.motion_model import BUNDLED_DIR
    from gid_models.networks.weight_files import config_dict
    from gid_models.rendering import NeuralRenderer

    shipped = MotionModel.load(BUNDLED_DIR)
    exported = MotionModel.load(shipped.save_file(tmp_path / "gid_motion_shipped.safetensors"))
    resaved = MotionModel.load(shipped.save(tmp_path / "resaved"))
    for other in (exported, resaved):
        torch.testing.assert_close(other.state_dict(), shipped.state_dict(), rtol=0, atol=0)
        assert config_dict(other.vae) == config_dict(shipped.vae)
        assert config_dict(other.denoiser) == config_dict(shipped.denoiser)
    with safe_open(str(tmp_path / "resaved" / "denoiser.safetensors"), framework="pt") as handle:
        written = json.loads(handle.metadata()["config"])
    assert written == json.loads((BUNDLED_DIR / "denoiser.json").read_text()) == config_dict(shipped.denoiser)
    # v2's denoiser sees the picture through the bundled encoder's features, injected by FiLM
    assert written["image_features"] == "efficientnet-lite0" and written["image_feature_injection"] == "film"
    with safe_open(str(BUNDLED_DIR / "denoiser.safetensors"), framework="pt") as handle:
        assert json.loads(handle.metadata()["config"]) == written
    renderer = NeuralRenderer.load(BUNDLED_DIR / "renderer.safetensors")
    renderer.save(tmp_path / "renderer_shipped.safetensors")
    again = NeuralRenderer.load(tmp_path / "renderer_shipped.safetensors")
    torch.testing.assert_close(again.state_dict(), renderer.state_dict(), rtol=0, atol=0)
    assert again.config.channels == renderer.config.channels == tuple(json.loads(
        (BUNDLED_DIR / "renderer.json").read_text())["channels"])


def test_missing_bundled_model_explains_how_to_get_one(tmp_path):
    assert not MotionModel.bundled_available(tmp_path)
    with pytest.raises(MotionError, match=r"bundled motion model is missing.*denoiser\.safetensors.*gid train"):
        MotionModel.from_bundled(tmp_path)


def test_shipped_model_carries_its_calibration_gains_and_limits():
    """The bundled model samples with the gains and limits its calibration record lists."""
    from gid_models.networks.motion_model import BUNDLED_DIR
    from gid_models.train.calibrate import read_calibration_record

    model = MotionModel.load(BUNDLED_DIR)
    record = read_calibration_record(BUNDLED_DIR)
    assert model.calibrated and torch.isfinite(model.output_limits).all()
    assert [round(float(v), 4) for v in model.output_gains] == record["gains"]
    assert [round(float(v), 4) for v in model.output_limits] == record["limits_px"]


@pytest.mark.parametrize("layout", ["metadata", "json"])
@pytest.mark.parametrize("edit", ["huge", "recursive", "long"])
def test_hostile_model_configs_are_refused_before_anything_is_allocated(tmp_path, edit, layout):
    """A model folder whose denoiser config asks for a giant network, nests without end or is
    megabytes long is refused with a MotionError, not built (or a RecursionError): whether the
    config is in the file's metadata (the current layout) or only in the .json beside it."""
    import shutil

    from gid_models.networks.motion_model import BUNDLED_DIR

    folder = tmp_path / "model"
    shutil.copytree(BUNDLED_DIR, folder, ignore=shutil.ignore_patterns("training_logs", "*.md"))
    config = json.loads((folder / "denoiser.json").read_text())
    if edit == "huge":
        config["block_out_channels"] = [c * 64 for c in config["block_out_channels"]]
        text, match = json.dumps(config), "parameters"
    elif edit == "recursive":
        text, match = json.dumps(config)[:-1] + ', "x": ' + "[" * 20_000 + "]" * 20_000 + "}", "not valid JSON"
    else:
        text, match = json.dumps({**config, "padding": "x" * 100_000}), "characters long"
    rewrite_config(folder / "denoiser.safetensors", text if layout == "metadata" else None)
    if layout == "json":
        (folder / "denoiser.json").write_text(text)
    with pytest.raises(MotionError, match=match):
        MotionModel.load(folder)
