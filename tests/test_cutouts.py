# This file is part of meas_contextnet.
#
# See the COPYRIGHT file at the top-level directory of this distribution
# for details of code ownership.
#
# This program is free software: you can redistribute it and/or modify
# it under the terms of the GNU General Public License as published by
# the Free Software Foundation, either version 3 of the License, or
# (at your option) any later version.
#
# This program is distributed in the hope that it will be useful,
# but WITHOUT ANY WARRANTY; without even the implied warranty of
# MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
# GNU General Public License for more details.
#
# You should have received a copy of the GNU General Public License
# along with this program.  If not, see <https://www.gnu.org/licenses/>.

"""Tests of cutout extraction: the vectorized extractor against the per-source reference."""

import numpy as np
import pytest
from lsst.meas.contextnet.cutouts import (
    CutoutResult,
    extract_cutouts,
    extract_cutouts_loop,
    nearest_pixel,
    normalize_cutouts,
)

FIELDS = ("cutouts", "edge", "bad_pixels", "off_image", "bad_centroid", "n_inside", "bad")


def assert_same(a: CutoutResult, b: CutoutResult) -> None:
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(a, name).dtype == getattr(b, name).dtype, name


def both(*args, **kwargs) -> CutoutResult:
    """Run both extractors, check they agree exactly, return the vectorized result."""
    fast = extract_cutouts(*args, **kwargs)
    slow = extract_cutouts_loop(*args, **kwargs)
    assert_same(fast, slow)
    return fast


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(42)
    return rng.normal(size=(60, 50)).astype(np.float32)


def test_cutout_is_centred_on_the_rounded_centroid(image: np.ndarray) -> None:
    result = both(image, np.array([20.3, 25.6]), np.array([30.0, 31.49]), 8)
    # size 8 -> half 4: cutout[i, j] = image[round(y) - 4 + i, round(x) - 4 + j].
    np.testing.assert_array_equal(result.cutouts[0], image[26:34, 16:24])
    np.testing.assert_array_equal(result.cutouts[1], image[27:35, 22:30])
    assert result.cutouts.dtype == np.float32
    assert not result.edge.any() and not result.bad_pixels.any()


def test_odd_size_and_half_pixel_rounding(image: np.ndarray) -> None:
    # Pixel i covers [i - 0.5, i + 0.5): 10.5 belongs to pixel 11, -0.5 to pixel 0.
    np.testing.assert_array_equal(nearest_pixel(np.array([10.5, 10.49, -0.5, -0.51])), [11, 10, 0, -1])
    result = both(image, np.array([10.5]), np.array([12.5]), 5)
    np.testing.assert_array_equal(result.cutouts[0], image[11:16, 9:14])


def test_edges_are_zero_padded_and_flagged(image: np.ndarray) -> None:
    x = np.array([0.0, 49.0, 3.0, 25.0, 25.0, 25.0])
    y = np.array([0.0, 59.0, 30.0, 30.0, 2.9, 56.0])
    result = both(image, x, y, 8)
    np.testing.assert_array_equal(result.edge, [True, True, True, False, True, False])
    np.testing.assert_array_equal(result.n_inside, [16, 25, 56, 64, 56, 64])
    assert not result.off_image.any()
    # Source at (0, 0): rows/cols -4..3 -> only the lower-right 4x4 block is on the image.
    expected = np.zeros((8, 8), np.float32)
    expected[4:, 4:] = image[:4, :4]
    np.testing.assert_array_equal(result.cutouts[0], expected)
    # Source at (49, 59): rows 55..62, cols 45..52 -> 5 rows, 5 columns on the image.
    expected = np.zeros((8, 8), np.float32)
    expected[:5, :5] = image[55:60, 45:50]
    np.testing.assert_array_equal(result.cutouts[1], expected)
    # y = 56 with size 8: rows 52..59 exactly fit.
    np.testing.assert_array_equal(result.cutouts[5], image[52:60, 21:29])


def test_centroids_beyond_the_image(image: np.ndarray) -> None:
    x = np.array([-2.0, 52.0, 25.0, -100.0, 1e30, -1e300])
    y = np.array([30.0, 30.0, -6.0, 30.0, 30.0, 5.0])
    result = both(image, x, y, 8)
    assert result.off_image.all() and result.edge.all()
    np.testing.assert_array_equal(result.n_inside, [16, 16, 0, 0, 0, 0])
    # x = -2: cols -6..1 -> 2 columns on the image.
    np.testing.assert_array_equal(result.cutouts[0][:, 6:], image[26:34, 0:2])
    assert not result.cutouts[0][:, :6].any()
    # Far away: nothing on the image, and no overflow.
    assert not result.cutouts[3:].any()


def test_non_finite_centroids(image: np.ndarray) -> None:
    x = np.array([np.nan, 10.0, np.inf, 20.0])
    y = np.array([10.0, -np.inf, 10.0, 20.0])
    result = both(image, x, y, 6)
    np.testing.assert_array_equal(result.bad_centroid, [True, True, True, False])
    np.testing.assert_array_equal(result.n_inside, [0, 0, 0, 36])
    assert not result.cutouts[:3].any()
    assert not (result.edge[:3] | result.off_image[:3] | result.bad_pixels[:3]).any()
    np.testing.assert_array_equal(result.cutouts[3], image[17:23, 17:23])


def test_nan_pixels_and_bad_variance_are_zeroed_and_flagged(image: np.ndarray) -> None:
    image = image.copy()
    image[30, 20] = np.nan
    image[0, 0] = np.inf
    variance = np.ones_like(image)
    variance[10, 40] = np.nan
    x = np.array([20.0, 23.0, 40.0, 1.0, 45.0])
    y = np.array([30.0, 30.0, 10.0, 1.0, 45.0])
    result = both(image, x, y, 8, variance=variance)
    np.testing.assert_array_equal(result.bad_pixels, [True, True, True, True, False])
    assert result.cutouts[0][4, 4] == 0.0 and np.isfinite(result.cutouts).all()
    # The NaN-variance pixel is zeroed even though its image value is finite.
    assert result.cutouts[2][4, 4] == 0.0 and image[10, 40] != 0.0
    # Without the variance plane the third source is clean.
    assert not both(image, x, y, 8).bad_pixels[2]


def test_finite_values_whose_sum_overflows_are_not_bad(image: np.ndarray) -> None:
    # A window's sum is only a first test: huge finite pixels overflow it to infinity, and the
    # pixel test after must find them good.
    image = image.copy()
    image[20:24, 20:24] = 3e38
    variance = np.ones_like(image)
    variance[40:44, 10:14] = 3e38
    x, y = np.array([21.0, 11.0]), np.array([21.0, 41.0])
    result = both(image, x, y, 8, variance=variance)
    assert not result.bad_pixels.any() and result.cutouts[0].max() == np.float32(3e38)


def test_nan_outside_the_image_region_of_a_cutout_is_not_a_bad_pixel(image: np.ndarray) -> None:
    image = image.copy()
    image[0, 10] = np.nan
    # Cutout rows -4..3 of a source at y = 0 include row 0 -> bad; one at y = 5 (rows 1..8) does not.
    result = both(image, np.array([10.0, 10.0]), np.array([0.0, 5.0]), 8)
    np.testing.assert_array_equal(result.bad_pixels, [True, False])


@pytest.mark.parametrize("layout", ["bool", "int2d", "int3d"])
def test_mask_planes(image: np.ndarray, layout: str) -> None:
    bad = np.zeros(image.shape, bool)
    bad[20, 20] = True
    other = np.zeros(image.shape, bool)
    other[40, 30] = True  # set in a plane that is not bad
    if layout == "bool":
        mask, bits = bad, None
    elif layout == "int2d":
        mask, bits = (bad * 1 + other * 4).astype(np.int32), 1
    else:
        mask = np.zeros(image.shape + (2,), np.uint8)
        mask[..., 1] = bad * 2 + other * 8
        bits = np.array([0, 2], np.uint8)
    x = np.array([20.0, 30.0, 10.0])
    y = np.array([20.0, 40.0, 45.0])
    result = both(image, x, y, 8, mask=mask, bad_mask_bits=bits)
    expected_bad = [True, False, False]
    np.testing.assert_array_equal(result.bad_pixels, expected_bad)
    assert result.cutouts[0][4, 4] == 0.0
    assert result.cutouts[1][4, 4] == image[40, 30]


@pytest.mark.parametrize("words", [2, 3, 4])
def test_multiword_masks_match_the_reference(image: np.ndarray, words: int) -> None:
    # 2 and 4 bytes per pixel are read as one integer per pixel, 3 bytes byte by byte.
    rng = np.random.default_rng(words)
    mask = (rng.uniform(size=image.shape + (words,)) < 0.02).astype(np.uint8) * rng.choice(
        [1, 16, 128], size=image.shape + (words,)
    ).astype(np.uint8)
    bits = np.zeros(words, np.uint8)
    bits[0], bits[-1] = 16, 128
    x = rng.uniform(-5, image.shape[1] + 5, 200)
    y = rng.uniform(-5, image.shape[0] + 5, 200)
    result = both(image, x, y, 8, mask=mask, bad_mask_bits=bits)
    assert result.bad_pixels.any() and (~result.bad_pixels).any()
    # Both extractors read the packed mask: check the bad pixels against the mask read directly.
    bad_map = ((mask & bits) != 0).any(axis=-1)
    for n in range(len(x)):
        row, col = nearest_pixel(y[n]) - 4, nearest_pixel(x[n]) - 4
        for i, j in np.ndindex(8, 8):
            inside = 0 <= row + i < image.shape[0] and 0 <= col + j < image.shape[1]
            assert result.bad[n, i, j] == (inside and bad_map[row + i, col + j])
    only_first = bits.copy()
    only_first[-1] = 0
    fewer = both(image, x, y, 8, mask=mask, bad_mask_bits=only_first)
    assert fewer.bad_pixels.sum() < result.bad_pixels.sum()
    assert both(image, x, y, 8, mask=mask).bad_pixels.sum() >= result.bad_pixels.sum()


def test_mask_without_bits_means_any_bit(image: np.ndarray) -> None:
    mask = np.zeros(image.shape, np.uint16)
    mask[40, 30] = 4
    result = both(image, np.array([30.0]), np.array([40.0]), 8, mask=mask)
    assert result.bad_pixels[0]


def test_random_sources_match_the_reference() -> None:
    rng = np.random.default_rng(7)
    image = rng.normal(size=(97, 131)).astype(np.float64)
    image[rng.integers(0, 97, 40), rng.integers(0, 131, 40)] = np.nan
    variance = rng.uniform(0.5, 2.0, size=image.shape)
    variance[rng.integers(0, 97, 20), rng.integers(0, 131, 20)] = np.inf
    mask = rng.integers(0, 2, size=image.shape + (1,), dtype=np.uint8) * rng.choice(
        [1, 2, 4], size=image.shape + (1,)
    ).astype(np.uint8)
    mask[mask == 1] = 0  # keep bad pixels rare-ish: only bits 2 and 4 remain
    n = 500
    x = rng.uniform(-20, 150, n)
    y = rng.uniform(-20, 117, n)
    x[rng.integers(0, n, 10)] = np.nan
    for size in (1, 2, 7, 28):
        result = both(image, x, y, size, variance=variance, mask=mask, bad_mask_bits=np.array([2], np.uint8))
        assert result.edge.any() and (~result.edge).any()
        assert result.bad_pixels.any() and (~result.bad_pixels).any()


def test_image_smaller_than_cutout() -> None:
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    result = both(image, np.array([1.0, 2.0]), np.array([1.0, 1.0]), 6)
    assert result.edge.all()
    expected = np.zeros((6, 6), np.float32)
    expected[2:5, 2:6] = image
    np.testing.assert_array_equal(result.cutouts[0], expected)


def test_image_without_pixels() -> None:
    for shape in ((0, 5), (4, 0)):
        result = both(np.zeros(shape, np.float32), np.array([1.0, 2.0]), np.array([0.0, 1.0]), 3)
        assert result.edge.all() and result.off_image.all() and not result.cutouts.any()


def test_empty_input(image: np.ndarray) -> None:
    result = both(image, np.array([]), np.array([]), 8)
    assert result.cutouts.shape == (0, 8, 8) and len(result) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 0}, "size"),
        ({"size": 2.5}, "size"),
        ({"x": np.zeros(3)}, "x and y"),
        ({"variance": np.ones((2, 2))}, "variance"),
        ({"mask": np.zeros((2, 2), bool)}, "mask"),
        ({"mask": np.zeros((60, 50), np.float32)}, "mask"),
        ({"mask": np.zeros((60, 50), bool), "bad_mask_bits": 1}, "boolean"),
        ({"mask": np.zeros((60, 50, 2), np.uint8), "bad_mask_bits": 1}, "bad_mask_bits"),
    ],
)
def test_invalid_arguments(image: np.ndarray, kwargs: dict, match: str) -> None:
    args = {"x": np.zeros(2), "y": np.zeros(2), "size": 8} | kwargs
    for function in (extract_cutouts, extract_cutouts_loop):
        with pytest.raises(ValueError, match=match):
            function(image, **args)
    with pytest.raises(ValueError, match="2-d"):
        extract_cutouts(image[0], np.zeros(1), np.zeros(1), 4)


def test_normalize_cutouts_is_the_arcsinh_stretch() -> None:
    rng = np.random.default_rng(7)
    # Values from 1e-6 to 1e5 noise levels of both signs, and one noise level per source.
    cutouts = (rng.choice([-1.0, 1.0], (5, 6, 6)) * 10.0 ** rng.uniform(-6, 5, (5, 6, 6))).astype(np.float32)
    sigma = rng.uniform(0.5, 20.0, 5)
    got = normalize_cutouts(cutouts, sigma, 3.0)
    assert got.dtype == np.float32 and got.shape == cutouts.shape
    scaled = np.multiply(cutouts, (1.0 / (sigma * 3.0)).astype(np.float32)[:, None, None])
    np.testing.assert_array_max_ulp(got, np.arcsinh(scaled), maxulp=1)
    np.testing.assert_array_max_ulp(
        normalize_cutouts(cutouts[0], 2.0, 1.0), np.arcsinh(cutouts[0] / 2.0), maxulp=1
    )
    assert normalize_cutouts(np.zeros((0, 6, 6), np.float32), 1.0).shape == (0, 6, 6)
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="noise_sigma"):
            normalize_cutouts(cutouts, bad)
    with pytest.raises(ValueError, match="softening"):
        normalize_cutouts(cutouts, 1.0, softening=np.inf)


def test_normalize_cutouts_writes_into_a_given_array() -> None:
    rng = np.random.default_rng(8)
    cutouts = rng.normal(0.0, 10.0, (6, 5, 5)).astype(np.float32)
    expected = normalize_cutouts(cutouts, 2.0, 3.0)
    channels = np.full((6, 3, 5, 5), 7.0, np.float32)
    got = normalize_cutouts(cutouts, 2.0, 3.0, out=channels[:, 2])  # a strided view
    assert np.shares_memory(got, channels)
    np.testing.assert_array_equal(channels[:, 2], expected)
    assert (channels[:, :2] == 7.0).all()
    in_place = cutouts.copy()
    normalize_cutouts(in_place, 2.0, 3.0, out=in_place)
    np.testing.assert_array_equal(in_place, expected)
    for wrong in (np.zeros((6, 5, 5)), np.zeros((6, 5, 4), np.float32), np.zeros((6, 5, 5), ">f4")):
        with pytest.raises(ValueError, match="out must be"):
            normalize_cutouts(cutouts, 2.0, 3.0, out=wrong)
