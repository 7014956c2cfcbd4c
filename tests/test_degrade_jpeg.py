"""JPEG round trips through Pillow/IJG and the ``Jpeg`` degradation."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pff.color import rgb_to_y
from pff.degrade import Jpeg, jpeg_roundtrip
from pff.errors import PffError


def _gray(shape=(48, 40), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(size=shape), axis=0), axis=1)
    return np.clip(128 + 4 * smooth, 0, 255).astype(np.uint8)


def test_gray_roundtrip_keeps_shape_dtype_and_is_a_gray_jpeg():
    image = _gray((37, 29))  # not a multiple of 8
    out = jpeg_roundtrip(image, 30)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)
    # Same bytes as a one-channel baseline JPEG saved by Pillow (mode L).
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=30)
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    assert decoded.mode == "L" and decoded.info.get("progressive") is None
    np.testing.assert_array_equal(out, np.asarray(decoded))


def test_color_roundtrip_and_subsampling():
    rgb = np.stack([_gray(seed=s) for s in range(3)], axis=2)
    outs = {s: jpeg_roundtrip(rgb, 50, subsampling=s) for s in ("4:4:4", "4:2:0")}
    for out in outs.values():
        assert out.shape == rgb.shape and out.dtype == np.uint8
    err = {s: np.abs(o.astype(int) - rgb).mean() for s, o in outs.items()}
    assert err["4:4:4"] < err["4:2:0"]  # subsampling throws chroma away


def test_quality_orders_the_error():
    image = _gray()
    errors = [np.abs(jpeg_roundtrip(image, q).astype(int) - image).mean() for q in (5, 30, 95)]
    assert errors[0] > errors[1] > errors[2]


def test_roundtrip_errors():
    image = _gray()
    with pytest.raises(PffError, match="quality in 1..100"):
        jpeg_roundtrip(image, 0)
    with pytest.raises(PffError, match="quality in 1..100"):
        jpeg_roundtrip(image, 101)
    with pytest.raises(PffError, match="integer JPEG quality"):
        jpeg_roundtrip(image, 50.0)
    with pytest.raises(PffError, match="uint8"):
        jpeg_roundtrip(image.astype(np.float32), 50)
    with pytest.raises(PffError, match="got shape"):
        jpeg_roundtrip(np.zeros((8, 8, 2), dtype=np.uint8), 50)
    with pytest.raises(PffError, match="subsampling"):
        jpeg_roundtrip(np.zeros((8, 8, 3), dtype=np.uint8), 50, subsampling="4:1:1")


def test_gray_jpeg_blocks_are_independent():
    # Crops aligned to the 8x8 grid code exactly like the same blocks of the whole image.
    image = _gray((64, 64), seed=3)
    whole = jpeg_roundtrip(image, 20)
    np.testing.assert_array_equal(jpeg_roundtrip(image[8:40, 16:48], 20), whole[8:40, 16:48])


def test_jpeg_degradation_gray_and_seeded():
    clean = _gray()[:, :, None]
    degradation = Jpeg(quality=(10, 40))
    assert degradation.channels == 1 and degradation.margin == 0
    a = degradation(clean, np.random.default_rng(0))
    np.testing.assert_array_equal(a, degradation(clean, np.random.default_rng(0)))
    assert a.shape == clean.shape and a.dtype == np.float32
    outs = {degradation(clean, np.random.default_rng(s)).tobytes() for s in range(6)}
    assert len(outs) > 1  # the quality varies with the seed
    fixed = Jpeg(quality=25)(clean, np.random.default_rng(0))
    np.testing.assert_array_equal(fixed[:, :, 0], jpeg_roundtrip(clean[:, :, 0], 25))


def test_jpeg_degradation_color():
    clean = np.stack([_gray(seed=s) for s in range(3)], axis=2)
    out = Jpeg(quality=40, gray=False, subsampling="4:4:4")(clean, np.random.default_rng(0))
    np.testing.assert_array_equal(out, jpeg_roundtrip(clean, 40, subsampling="4:4:4"))
    with pytest.raises(PffError, match="1 channel"):
        Jpeg()(clean, np.random.default_rng(0))


def test_jpeg_degradation_parameter_errors():
    with pytest.raises(PffError, match="low <= high"):
        Jpeg(quality=(40, 10))
    with pytest.raises(PffError, match="quality in 1..100"):
        Jpeg(quality=(0, 10))
    with pytest.raises(PffError, match="subsampling"):
        Jpeg(subsampling="4:4:0")
    assert Jpeg(quality=[10, 20]).quality == (10, 20)


@pytest.mark.integration
def test_live1_q10_baseline(shared_data):
    scores = []
    for path in sorted((shared_data / "test" / "live1").glob("*.png")):
        y = rgb_to_y(np.asarray(Image.open(path).convert("RGB")))
        mse = np.mean((y.astype(np.float64) - jpeg_roundtrip(y, 10)) ** 2)
        scores.append(10 * np.log10(255.0**2 / mse))
    assert np.mean(scores) == pytest.approx(27.77, abs=0.02)


def _rgb(shape=(48, 40)) -> np.ndarray:
    return np.stack([_gray(shape, seed=s) for s in range(3)], axis=2)


def test_a_gray_rgb_image_codes_exactly_like_its_grayscale_jpeg():
    # PairDataset's gray crops rely on it: chroma of R = G = B is constant 128.
    gray = _gray((37, 45), seed=5)
    for quality in (5, 30, 90):
        colour = jpeg_roundtrip(np.repeat(gray[:, :, None], 3, axis=2), quality)
        np.testing.assert_array_equal(colour, np.repeat(jpeg_roundtrip(gray, quality)[:, :, None], 3, axis=2))


def test_wide_qualities_are_log_uniform_and_in_range():
    jpeg = Jpeg(quality=(20, 20), wide_quality=(5, 95), wide_prob=0.5)
    rng = np.random.default_rng(0)
    draws = np.array([jpeg.draw_quality(rng) for _ in range(4000)])
    assert draws.min() >= 5 and draws.max() <= 95
    wide = draws[draws != 20]
    assert 0.45 < (draws != 20).mean() < 0.55  # 20 itself is drawn by the wide range too, rarely
    # Log-uniform over [4.5, 95.5]: P(q <= 10) = log(10.5 / 4.5) / log(95.5 / 4.5) = 0.278.
    assert abs((wide <= 10).mean() - 0.278) < 0.04
    assert {jpeg.draw_quality(np.random.default_rng(s)) for s in range(3)} == {
        jpeg.draw_quality(np.random.default_rng(s)) for s in range(3)}  # fmt: skip
    assert all(Jpeg(quality=(7, 9)).draw_quality(np.random.default_rng(s)) in (7, 8, 9) for s in range(20))


def test_double_compression_and_subsampling_choice():
    clean = _rgb()
    twice = Jpeg(quality=30, gray=False, double_prob=1.0, wide_quality=50, wide_prob=0.0)
    once = jpeg_roundtrip(clean, 30)
    np.testing.assert_array_equal(twice(clean, np.random.default_rng(0)), jpeg_roundtrip(once, 30))
    # One of the listed subsamplings per call, chosen by the generator.
    mixed = Jpeg(quality=30, gray=False, subsampling=["4:4:4", "4:2:0"])
    outs = {mixed(clean, np.random.default_rng(s)).tobytes() for s in range(12)}
    expected = {jpeg_roundtrip(clean, 30, subsampling=s).astype(np.float32).tobytes() for s in ("4:4:4", "4:2:0")}
    assert outs == expected
    np.testing.assert_array_equal(mixed(clean, np.random.default_rng(3)), mixed(clean, np.random.default_rng(3)))


def test_jpeg_new_parameter_errors():
    with pytest.raises(PffError, match="wide_prob: expected a probability"):
        Jpeg(wide_prob=1.5)
    with pytest.raises(PffError, match="double_prob: expected a probability"):
        Jpeg(double_prob=-0.1)
    with pytest.raises(PffError, match="wide_quality: expected a quality range"):
        Jpeg(wide_quality=(95, 5))
    with pytest.raises(PffError, match="subsampling"):
        Jpeg(gray=False, subsampling=["4:2:0", "4:1:1"])
    with pytest.raises(PffError, match="subsampling"):
        Jpeg(gray=False, subsampling=[])
