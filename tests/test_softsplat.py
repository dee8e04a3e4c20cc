"""Softmax splatting against a slow per-pixel reference, and its exact special cases."""

from __future__ import annotations

import math

import pytest
import torch

from gid_models.rendering import softmax_splat


def reference_splat(source, flow, metric):
    """Per-pixel loop: exp(Z) bilinear splatting in float64 without any max subtraction."""
    n, c, h, w = source.shape
    numerator = torch.zeros(n, c, h, w, dtype=torch.float64)
    denominator = torch.zeros(n, 1, h, w, dtype=torch.float64)
    coverage = torch.zeros(n, 1, h, w, dtype=torch.float64)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                tx = x + float(flow[b, 0, y, x])
                ty = y + float(flow[b, 1, y, x])
                x0, y0 = math.floor(tx), math.floor(ty)
                fx, fy = tx - x0, ty - y0
                weight = math.exp(float(metric[b, 0, y, x]))
                for xi, yi, footprint in (
                    (x0, y0, (1 - fx) * (1 - fy)),
                    (x0 + 1, y0, fx * (1 - fy)),
                    (x0, y0 + 1, (1 - fx) * fy),
                    (x0 + 1, y0 + 1, fx * fy),
                ):
                    if 0 <= xi < w and 0 <= yi < h:
                        numerator[b, :, yi, xi] += weight * footprint * source[b, :, y, x].double()
                        denominator[b, 0, yi, xi] += weight * footprint
                        coverage[b, 0, yi, xi] += footprint
    warped = torch.where(denominator > 0, numerator / denominator.clamp_min(1e-300), 0.0)
    return warped, coverage


def random_case(generator, n=2, c=3, h=7, w=9, flow_scale=2.5, metric_scale=3.0, dtype=torch.float64):
    source = torch.rand(n, c, h, w, generator=generator, dtype=dtype)
    flow = torch.randn(n, 2, h, w, generator=generator, dtype=dtype) * flow_scale
    metric = torch.rand(n, 1, h, w, generator=generator, dtype=dtype) * metric_scale
    return source, flow, metric


def test_matches_reference_loop(generator):
    source, flow, metric = random_case(generator)
    warped, coverage = softmax_splat(source, flow, metric)
    expected_warped, expected_coverage = reference_splat(source, flow, metric)
    assert warped.shape == source.shape and coverage.shape == (2, 1, 7, 9)
    torch.testing.assert_close(warped, expected_warped, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(coverage, expected_coverage, rtol=1e-10, atol=1e-10)
    assert (coverage == 0).any(), "random flow of 2.5 px should leave some holes"


@pytest.mark.parametrize("metric_scale", [70.0, 200.0])
def test_matches_reference_in_float32_with_wide_metric_spread(generator, metric_scale):
    # A spread of 70 still takes one shift per item; 200 would underflow exp(Z - global max) in
    # float32 and takes the per-output shift. Both must match the float64 reference.
    source, flow, metric = random_case(generator, metric_scale=metric_scale)
    warped, coverage = softmax_splat(source.float(), flow.float(), metric.float())
    expected_warped, expected_coverage = reference_splat(source, flow.float().double(), metric.float().double())
    assert warped.dtype == torch.float32
    torch.testing.assert_close(warped.double(), expected_warped, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(coverage.double(), expected_coverage, rtol=1e-5, atol=1e-5)


def test_zero_flow_returns_input(generator):
    source, _, metric = random_case(generator, dtype=torch.float32)
    warped, coverage = softmax_splat(source, torch.zeros(2, 2, 7, 9), metric)
    torch.testing.assert_close(warped, source, rtol=2e-7, atol=0.0)  # (x * e) / e: one rounding
    uniform, _ = softmax_splat(source, torch.zeros(2, 2, 7, 9), torch.zeros(2, 1, 7, 9))
    assert torch.equal(uniform, source)
    assert torch.equal(coverage, torch.ones(2, 1, 7, 9))


def test_integer_shift_moves_content_exactly(generator):
    source = torch.rand(1, 4, 6, 8, generator=generator)
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0], flow[:, 1] = 3.0, -2.0  # right by 3, up by 2
    warped, coverage = softmax_splat(source, flow, torch.zeros(1, 1, 6, 8))
    assert torch.equal(warped[:, :, 0:4, 3:8], source[:, :, 2:6, 0:5])
    assert torch.equal(coverage[:, :, 0:4, 3:8], torch.ones(1, 1, 4, 5))
    holes = torch.ones(1, 1, 6, 8, dtype=torch.bool)
    holes[:, :, 0:4, 3:8] = False
    assert (coverage[holes] == 0).all() and (warped.masked_select(holes) == 0).all()


def test_collision_picks_higher_metric():
    source = torch.zeros(1, 1, 3, 4)
    source[0, 0, 1, 1] = 1.0  # A: moves right by one onto B
    source[0, 0, 1, 2] = 0.25  # B: stays
    flow = torch.zeros(1, 2, 3, 4)
    flow[0, 0, 1, 1] = 1.0
    for z_a, z_b in ((5.0, 0.0), (0.0, 5.0)):
        metric = torch.zeros(1, 1, 3, 4)
        metric[0, 0, 1, 1], metric[0, 0, 1, 2] = z_a, z_b
        warped, coverage = softmax_splat(source, flow, metric)
        weight_a = math.exp(z_a) / (math.exp(z_a) + math.exp(z_b))
        expected = weight_a * 1.0 + (1 - weight_a) * 0.25
        assert warped[0, 0, 1, 2].item() == pytest.approx(expected, rel=1e-6)
        assert coverage[0, 0, 1, 2].item() == 2.0 and coverage[0, 0, 1, 1].item() == 0.0
        winner = 1.0 if z_a > z_b else 0.25
        assert abs(warped[0, 0, 1, 2].item() - winner) < 0.01


def test_non_finite_flow_drops_pixels(generator):
    source, flow, metric = random_case(generator, dtype=torch.float32)
    flow[0, 0, 2, 3] = float("nan")
    flow[1, 1, 4, 4] = float("inf")
    warped, coverage = softmax_splat(source, flow, metric)
    assert torch.isfinite(warped).all() and torch.isfinite(coverage).all()
    clean = flow.clone()
    clean[0, 0, 2, 3] = 1e6  # far outside the frame: the same as dropping the pixel
    clean[1, 1, 4, 4] = 1e6
    expected_warped, expected_coverage = softmax_splat(source, clean, metric)
    torch.testing.assert_close(warped, expected_warped)
    torch.testing.assert_close(coverage, expected_coverage)


@pytest.mark.parametrize("pixel_major", [False, True])
def test_gradcheck_float64(generator, pixel_major):
    source, flow, metric = random_case(generator, n=1, c=2, h=4, w=5, flow_scale=0.7)
    flow = flow + 0.31  # keep targets away from integer positions, where floor() has kinks
    inputs = tuple(t.clone().requires_grad_(True) for t in (source, flow, metric))
    splat = lambda s, f, m: softmax_splat(s, f, m, pixel_major=pixel_major)[0]  # noqa: E731
    assert torch.autograd.gradcheck(splat, inputs, eps=1e-6, atol=1e-6)


def test_expanded_source_equals_materialised(generator):
    picture = torch.rand(1, 3, 5, 6, generator=generator)
    flow = torch.randn(4, 2, 5, 6, generator=generator)
    metric = torch.rand(1, 1, 5, 6, generator=generator)
    expanded = softmax_splat(picture.expand(4, -1, -1, -1), flow, metric.expand(4, -1, -1, -1))
    copied = softmax_splat(picture.repeat(4, 1, 1, 1), flow, metric.repeat(4, 1, 1, 1))
    assert torch.equal(expanded[0], copied[0]) and torch.equal(expanded[1], copied[1])


def test_half_precision_input_returns_its_dtype(generator):
    source, flow, metric = random_case(generator, dtype=torch.float32)
    warped, coverage = softmax_splat(source.half(), flow, metric)
    reference, _ = softmax_splat(source.half().float(), flow, metric)
    assert warped.dtype == torch.float16 and coverage.dtype == torch.float16
    torch.testing.assert_close(warped.float(), reference, atol=1e-3, rtol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_agree(generator):
    source, flow, metric = random_case(generator, n=3, h=32, w=40, dtype=torch.float32)
    cpu = softmax_splat(source, flow, metric)
    gpu = softmax_splat(source.cuda(), flow.cuda(), metric.cuda())
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], atol=1e-5, rtol=1e-5)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="flow must be"):
        softmax_splat(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 5), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="metric must be"):
        softmax_splat(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="source must be"):
        softmax_splat(torch.zeros(3, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4))


def test_pixel_major_layout_matches_channel_major(generator):
    # The GPU layout, checked on CPU: same sums up to rounding order.
    source, flow, metric = random_case(generator, n=3, c=5, h=9, w=11, dtype=torch.float32)
    for shared in (False, True):
        src = source[:1].expand(3, -1, -1, -1) if shared else source
        z = metric[:1].expand(3, -1, -1, -1) if shared else metric
        channel = softmax_splat(src, flow, z, pixel_major=False)
        pixel = softmax_splat(src, flow, z, pixel_major=True)
        torch.testing.assert_close(pixel[0], channel[0], atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(pixel[1], channel[1], atol=1e-6, rtol=1e-6)
