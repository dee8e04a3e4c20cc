"""Pixel and neural renderers, hole filling, the importance metric and render_motion's checks."""

from __future__ import annotations

import pytest
import torch

from gid_models.rendering import (
    NeuralRenderer,
    motion_importance,
    pick_chunk_size,
    pull_push_fill,
    render_motion,
)
from gid_models.spectral import MotionTexture, SpectralVolume, spectral_to_motion


def smooth_picture(generator, height=24, width=32):
    coarse = torch.rand(1, 3, height // 4, width // 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def random_motion(generator, frames=6, height=12, width=16, scale=1.5):
    return MotionTexture(torch.randn(1, frames, 2, height, width, generator=generator) * scale, fps=24.0)


def test_motion_importance_is_mean_magnitude():
    displacements = torch.zeros(1, 2, 2, 1, 2)
    displacements[0, 0, :, 0, 0] = torch.tensor([3.0, 4.0])  # |F| = 5 then 0
    displacements[0, 1, :, 0, 1] = torch.tensor([0.0, -2.0])
    importance = motion_importance(displacements)
    assert importance.shape == (1, 1, 1, 2)
    torch.testing.assert_close(importance[0, 0, 0], torch.tensor([2.5, 1.0]))


def test_pull_push_keeps_covered_pixels_and_fills_holes(generator):
    image = torch.rand(2, 3, 17, 23, generator=generator)
    alpha = torch.ones(2, 1, 17, 23)
    assert torch.equal(pull_push_fill(image, alpha), image)
    constant = torch.full((1, 3, 17, 23), 0.3)
    alpha = (torch.rand(1, 1, 17, 23, generator=generator) > 0.6).float()
    alpha[..., 2:12, 4:15] = 0.0  # a large hole
    filled = pull_push_fill(constant * alpha, alpha)
    torch.testing.assert_close(filled, constant, atol=1e-6, rtol=0)
    assert torch.equal(filled[alpha.expand_as(filled) == 1], constant[alpha.expand_as(filled) == 1])


def test_zero_motion_renders_the_picture(generator):
    picture = smooth_picture(generator)
    frames = render_motion(picture, MotionTexture(torch.zeros(1, 5, 2, 12, 16)))
    assert frames.shape == (5, 3, 24, 32)
    torch.testing.assert_close(frames, picture.expand(5, -1, -1, -1), atol=0, rtol=0)


def test_integer_translation_moves_the_picture(generator):
    picture = smooth_picture(generator)
    displacements = torch.zeros(1, 1, 2, 24, 32)
    displacements[:, :, 0] = 2.0  # everything right by 2 px
    frame = render_motion(picture, MotionTexture(displacements))[0]
    assert torch.equal(frame[:, :, 2:], picture[0, :, :, :-2])
    assert torch.isfinite(frame).all() and frame.min() >= 0 and frame.max() <= 1  # holes filled


def test_looping_motion_renders_first_and_last_frame_identically(generator):
    coeffs = torch.randn(1, 4, 4, 12, 16, generator=generator) * 0.8
    volume = SpectralVolume(coeffs, num_frames=20, fps=20.0)
    motion = spectral_to_motion(volume, num_output_frames=21)  # frames 0..T: frame T wraps to 0
    frames = render_motion(smooth_picture(generator), motion, chunk_size=4)
    assert torch.equal(frames[0], frames[20])
    assert not torch.equal(frames[0], frames[10])


def test_chunking_and_resolution_do_not_change_the_result(generator):
    picture = smooth_picture(generator)
    motion = random_motion(generator, frames=7)
    whole = render_motion(picture, motion, chunk_size=7)
    chunked = render_motion(picture, motion, chunk_size=2)
    assert torch.equal(whole, chunked)
    # Motion at half resolution is resized and rescaled: a 1 px shift at 16 px width is 2 px at 32.
    shift = torch.zeros(1, 2, 2, 12, 16)
    shift[:, :, 0] = 1.0
    frame = render_motion(picture, MotionTexture(shift))[1]
    assert torch.equal(frame[:, :, 2:], picture[0, :, :, :-2])


def test_freeze_mask_holds_regions_still(generator):
    picture = smooth_picture(generator)
    motion = random_motion(generator, scale=3.0)
    frozen = render_motion(picture, motion, freeze_mask=torch.ones(1, 1, 24, 32))
    torch.testing.assert_close(frozen, picture.expand(6, -1, -1, -1), atol=0, rtol=0)
    left_frozen = torch.zeros(1, 1, 12, 16)  # lower resolution than the picture: resized
    left_frozen[..., :, :4] = 1.0
    frames = render_motion(picture, motion, freeze_mask=left_frozen)
    assert not torch.equal(frames, frozen)


def test_callback_reports_each_chunk(generator):
    calls = []
    render_motion(smooth_picture(generator), random_motion(generator, frames=7), chunk_size=3,
                  callback=lambda step, total: calls.append((step, total)))
    assert calls == [(2, 7), (5, 7), (6, 7)]


@pytest.mark.parametrize(
    ("picture_shape", "displacements", "message"),
    [
        ((1, 3, 24, 32), torch.zeros(1, 3, 2, 24, 24), "aspect"),
        ((1, 3, 24, 32), torch.zeros(2, 3, 2, 12, 16), "2 clips"),
        ((1, 4, 24, 32), torch.zeros(1, 3, 2, 12, 16), "RGB"),
        ((1, 3, 24, 32), torch.full((1, 3, 2, 12, 16), float("nan")), "NaN"),
        ((1, 3, 24, 32), torch.zeros(1, 3, 2, 0, 16), "empty"),
    ],
)
def test_bad_inputs_raise_clear_errors(picture_shape, displacements, message):
    with pytest.raises(ValueError, match=message):
        render_motion(torch.zeros(picture_shape), MotionTexture(displacements))


def test_neural_renderer_budget_and_untrained_equals_pixel_renderer(generator):
    renderer = NeuralRenderer()
    assert renderer.num_parameters() <= 4_000_000
    assert renderer.num_parameters() * 2 <= 8 * 1024 * 1024  # fp16 bytes
    picture = smooth_picture(generator)
    motion = random_motion(generator)
    neural = render_motion(picture, motion, renderer=renderer.eval())
    pixel = render_motion(picture, motion)
    torch.testing.assert_close(neural, pixel, atol=1e-6, rtol=0)  # zero-initialised last layer


def test_neural_renderer_save_load_round_trip(generator, tmp_path):
    torch.manual_seed(0)
    renderer = NeuralRenderer(channels=(8, 12))
    torch.nn.init.normal_(renderer.head.weight, std=0.05)
    path = tmp_path / "renderer_test.safetensors"
    renderer.save(path)
    assert path.with_suffix(".json").is_file()
    loaded = NeuralRenderer.load(path)
    assert loaded.config.channels == (8, 12)
    picture = smooth_picture(generator)
    flow = torch.randn(2, 2, 24, 32, generator=generator)
    importance = torch.rand(2, 1, 24, 32, generator=generator)
    with torch.no_grad():
        expected = renderer.half().float()(picture.expand(2, -1, -1, -1), flow, importance)
        got = loaded(picture.expand(2, -1, -1, -1), flow, importance)
    torch.testing.assert_close(got, expected)
    assert not torch.equal(got, NeuralRenderer(channels=(8, 12))(picture, flow[:1], importance[:1]))


def test_neural_renderer_refuses_other_files(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "renderer_bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(path))
    with pytest.raises(ValueError, match="not a GID neural renderer"):
        NeuralRenderer.load(path)


def test_neural_renderer_learns(generator):
    torch.manual_seed(0)
    renderer = NeuralRenderer(channels=(8, 12))
    picture = smooth_picture(generator)
    flow = torch.randn(1, 2, 24, 32, generator=generator)
    importance = torch.rand(1, 1, 24, 32, generator=generator)
    target = 1.0 - picture
    optimizer = torch.optim.Adam(renderer.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = (renderer(picture, flow, importance) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def write_sliding_clip(path, generator, frames=6, height=40, width=56, shift=2):
    """A smooth texture sliding right by `shift` px per frame."""
    from gid_models.video_io import write_video

    texture = torch.nn.functional.interpolate(
        torch.rand(1, 3, 12, 20, generator=generator), size=(height, width + shift * frames), mode="bicubic"
    ).clamp(0, 1)[0]
    clip = torch.stack([texture[:, :, shift * (frames - t) : shift * (frames - t) + width] for t in range(frames)])
    write_video(path, clip.movedim(1, -1), fps=12.0)


def test_render_pairs_give_flow_from_picture_to_target(tmp_path, generator):
    from gid_models.train.render_pairs import RenderPairDataset

    write_sliding_clip(tmp_path / "slide.mp4", generator)
    write_sliding_clip(tmp_path / "bbb_02196_02392.mp4", generator)  # a validation clip: never trained on
    dataset = RenderPairDataset(tmp_path, tmp_path / "cache", crop=32, max_gap=2, num_pairs=8)
    assert [c.name for c in dataset.clips] == ["slide.mp4"]
    item = dataset[3]
    assert item["picture"].shape == item["target"].shape == (3, 32, 32)
    assert item["flow"].shape == (2, 32, 32) and item["importance"].shape == (1, 32, 32)
    assert torch.equal(dataset[3]["flow"], item["flow"])  # item i is always the same pair
    # Interior flow is a horizontal shift of +-2 or +-4 px (gap 1 or 2, either order, maybe flipped).
    median_dx = item["flow"][0, 8:-8, 8:-8].median().abs().item()
    assert min(abs(median_dx - 2), abs(median_dx - 4)) < 0.6
    assert item["flow"][1, 8:-8, 8:-8].abs().median() < 0.5


def test_window_pairs_give_the_window_displacement_and_importance(tmp_path, generator):
    from gid_models.train.render_windows import WindowPairDataset, window_starts

    assert window_starts(6, 4, 2) == [0, 2]
    assert window_starts(7, 4, 2) == [0, 2, 3]  # the last frames get a window too
    assert window_starts(3, 150, 75) == [0]
    write_sliding_clip(tmp_path / "slide.mp4", generator)
    write_sliding_clip(tmp_path / "bbb_02196_02392.mp4", generator)  # a validation clip: never trained on
    dataset = WindowPairDataset(tmp_path, tmp_path / "cache", width=56, height=40, window=4, stride=2, num_pairs=16)
    assert len(dataset.windows) == 2 and all("slide" in w.name for w in dataset.windows)
    again = WindowPairDataset(tmp_path, tmp_path / "cache", width=56, height=40, window=4, stride=2)
    assert again.windows == dataset.windows  # the second dataset reads the cache
    interior = (slice(10, -10), slice(12, -12))
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["picture"].shape == item["target"].shape == (3, 40, 56)
        assert item["flow"].shape == (2, 40, 56) and item["importance"].shape == (1, 40, 56)
        # The texture slides 2 px per frame, so D_t is +-2t px along x (t = 1..3, maybe flipped)
        # and W is the window's mean |D_t| over t = 0..3: (0 + 2 + 4 + 6) / 4 = 3 px.
        dx = item["flow"][0][interior].median().abs().item()
        assert min(abs(dx - 2 * t) for t in (1, 2, 3)) < 0.6
        assert item["flow"][1][interior].abs().median() < 0.5
        assert abs(item["importance"][0][interior].median().item() - 3.0) < 0.6
    assert torch.equal(dataset[5]["flow"], again[5]["flow"])  # item i is always the same pair


@pytest.mark.parametrize("pairs", ["windows", "flow"])
def test_train_renderer_runs_resumes_and_writes_weights(tmp_path, generator, pairs):
    import csv

    from gid_models.train import train_renderer

    clips = tmp_path / "clips"
    clips.mkdir()
    write_sliding_clip(clips / "slide.mp4", generator)
    write_sliding_clip(clips / "bbb_02196_02392.mp4", generator)
    out = tmp_path / "run"
    common = ["--clips", str(clips), "--out", str(out), "--batch-size", "2", "--workers", "0",
              "--channels", "8,12", "--save-every", "2", "--log-every", "1", "--val-pairs", "2", "--warmup", "1",
              "--pairs", pairs, "--crop", "32", "--size", "48x32", "--mse-weight", "1", "--psnr-weight", "0.01"]
    train_renderer.main(common + ["--steps", "2"])
    state = (out / "checkpoint" / "state.json").read_text()
    assert '"step": 2' in state
    train_renderer.main(common + ["--steps", "3", "--resume"])
    rows = list(csv.DictReader((out / "losses.csv").open()))
    assert [r["step"] for r in rows if r["split"] == "train"] == ["1", "2", "3"]
    assert [r["step"] for r in rows if r["split"] == "val"] == ["2", "3"]
    assert all(float(r["loss"]) > 0 for r in rows)
    renderer = NeuralRenderer.load(out / "renderer.safetensors")
    assert renderer.config.channels == (8, 12)
    assert (out / "renderer.json").is_file()


def test_render_losses_weigh_each_term_and_score_frames_in_db():
    from argparse import Namespace

    from gid_models.evaluation.metrics import frame_psnr
    from gid_models.train.train_renderer import render_losses

    target = torch.full((2, 3, 16, 16), 0.5)  # SSIM needs 11x11 windows
    prediction = target.clone()
    prediction[0] += 0.1  # squared error 0.01 -> 20 dB
    prediction[1, :, :8] += 0.01  # squared error 0.00005 -> 43.0 dB
    assert torch.allclose(frame_psnr(prediction, target), torch.tensor([20.0, 43.0103]), atol=1e-3)
    args = Namespace(gradient_weight=0.5, ssim_weight=0.2, mse_weight=3.0, psnr_weight=0.01)
    terms = render_losses(prediction, target, args)
    expected = (terms["l1"] + 0.5 * terms["gradient"] + 0.2 * terms["ssim"] + 3.0 * terms["mse"]
                - 0.01 * terms["psnr"])
    assert torch.allclose(terms["loss"], expected)
    assert torch.allclose(terms["psnr"], torch.tensor(31.505), atol=1e-3)


def test_train_renderer_csv_keeps_rows_of_an_older_header_on_resume(tmp_path):
    import csv

    from gid_models.train.common import CsvLog
    from gid_models.train.train_renderer import CSV_FIELDS

    path = tmp_path / "losses.csv"
    path.write_text("step,split,loss,l1,gradient,ssim,l1_pixel_renderer,lr,seconds\n25,train,0.5,0.2,0.1,0.3,,1e-4,9.0\n")
    CsvLog(path, fields=CSV_FIELDS, keep=True).write(step=26, split="val", loss=0.4, mse=0.01)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == CSV_FIELDS
    assert rows[0]["step"] == "25" and rows[0]["loss"] == "0.5" and rows[0]["mse"] == ""
    assert rows[1]["step"] == "26" and rows[1]["mse"] == "0.01"
    CsvLog(path, fields=CSV_FIELDS, keep=False)
    assert path.read_text().strip() == ",".join(CSV_FIELDS)


class ChunkLimitedRenderer(NeuralRenderer):
    """A renderer that fails (out of memory by default) on chunks of more than two frames."""

    failure: Exception = torch.cuda.OutOfMemoryError("CUDA out of memory (test: chunk too large)")

    def render(self, features, flow, importance):
        if flow.shape[0] > 2:
            raise self.failure
        return super().render(features, flow, importance)


def test_out_of_memory_halves_the_chunk(generator):
    torch.manual_seed(0)
    renderer = ChunkLimitedRenderer(channels=(8, 12)).eval()
    picture = smooth_picture(generator)
    motion = random_motion(generator, frames=7)
    calls = []
    frames = render_motion(picture, motion, renderer=renderer, chunk_size=8,
                           callback=lambda step, total: calls.append(step))
    assert calls == [1, 3, 5, 6]  # 8 -> 4 -> 2 frames per chunk
    torch.testing.assert_close(frames, render_motion(picture, motion), atol=1e-6, rtol=0)
    renderer.failure = RuntimeError("unrelated failure")
    with pytest.raises(RuntimeError, match="unrelated"):  # other errors are not retried
        render_motion(picture, motion, renderer=renderer, chunk_size=8)


def test_chunks_of_one_render_are_evened_out():
    """10 frames of a size that fits at most 7 per chunk (CPU_CHUNK_PIXELS) run as 5 + 5, not
    7 + 3: one shape for every chunk (a GPU autotunes its kernels once per shape)."""
    from gid_models.rendering.render import CPU_CHUNK_PIXELS

    height = 100
    width = CPU_CHUNK_PIXELS // (7 * height)  # 7 frames fit, 8 do not
    assert CPU_CHUNK_PIXELS // (height * width) == 7
    assert pick_chunk_size(height, width, 10, torch.device("cpu")) == 5
    assert pick_chunk_size(height, width, 7, torch.device("cpu")) == 7
    assert pick_chunk_size(height, width, 15, torch.device("cpu")) == 5
    assert pick_chunk_size(288, 512, 150, torch.device("cpu")) == 1  # the main job renders frame by frame
    assert pick_chunk_size(4000, 4000, 3, torch.device("cpu")) == 1
