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

"""Cutout extraction, normalization and position features shared by training and the classifier task."""

from __future__ import annotations

__all__ = [
    "NOISE_SUBSAMPLE_STRIDE",
    "background_noise",
    "normalize_cutouts",
    "scale_positions",
    "DEFAULT_NORMALIZATION",
    "CutoutResult",
    "extract_cutouts",
    "extract_cutouts_loop",
    "window_reads",
    "nearest_pixel",
    "has_good_pixels",
    "bad_mask_bits",
]

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_NORMALIZATION: dict[str, object] = {"kind": "asinh_noise", "softening": 3.0}
"""Normalization recorded in a model's metadata unless training chooses another."""


def normalize_cutouts(
    cutouts: np.ndarray,
    noise_sigma: float | np.ndarray,
    softening: float = 3.0,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Scale sky-subtracted cutouts to the model's input range.

    Pixels are divided by the background noise first, so exposures of different depth look
    alike, then stretched with ``arcsinh``.

    Parameters
    ----------
    cutouts : `numpy.ndarray`
        Sky-subtracted pixel values, shape ``(..., size, size)``.
    noise_sigma : `float` or `numpy.ndarray`
        Background noise per pixel, in the units of ``cutouts``; an array broadcasts over the
        leading axes of ``cutouts``.
    softening : `float`, optional
        Noise multiples at which the stretch turns from linear to logarithmic.
    out : `numpy.ndarray`, optional
        Array of float32 (machine byte order) and the shape of ``cutouts`` to write the result
        to, e.g. one channel of the model's input array, or ``cutouts`` itself; a new array by
        default.

    Returns
    -------
    normalized : `numpy.ndarray`
        ``arcsinh(cutouts / (noise_sigma * softening))``, computed in float32 (``out`` if given).

    Raises
    ------
    ValueError
        If ``softening`` or any ``noise_sigma`` is not positive and finite, or ``out`` is not a
        native float32 array of the shape of ``cutouts``.

    """
    sigma = np.asarray(noise_sigma, dtype=np.float64)
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise ValueError(f"noise_sigma must be positive and finite, got {noise_sigma!r}")
    if not (np.isfinite(softening) and softening > 0):
        raise ValueError(f"softening must be positive and finite, got {softening!r}")
    import torch

    data = np.asarray(cutouts, dtype=np.float32)
    if out is not None and (out.dtype != np.float32 or not out.dtype.isnative or out.shape != data.shape):
        raise ValueError(f"out must be native float32 of shape {data.shape}, got {out.dtype} {out.shape}")
    inverse = (1.0 / (sigma * softening)).astype(np.float32)
    out = np.multiply(data, inverse.reshape(sigma.shape + (1,) * (data.ndim - sigma.ndim)), out=out)
    # PyTorch's arcsinh, in place: the values of numpy.arcsinh (the same C library function),
    # computed on every thread PyTorch uses, where NumPy's runs on one.
    torch.from_numpy(out).asinh_()
    return out


NOISE_SUBSAMPLE_STRIDE = 4
"""Every how many rows and columns `background_noise` reads the variance plane."""


def background_noise(variance: np.ndarray, stride: int = NOISE_SUBSAMPLE_STRIDE) -> float:
    """Return the background noise per pixel: ``sqrt`` of the median of the variance plane.

    The median is taken over a regular subsample (every ``stride``-th row and column, NaN left
    out): on a 4096x4096 plane that is a million values, as good an estimate of the typical
    variance as all sixteen million, and fifteen times cheaper to sort.

    Parameters
    ----------
    variance : `numpy.ndarray`
        Variance plane, ``(H, W)``.
    stride : `int`, optional
        Subsampling step in both directions (1 reads every pixel).

    Returns
    -------
    noise_sigma : `float`
        The noise; NaN when the subsample holds no finite value.
    """
    sample = np.asarray(variance)[::stride, ::stride]
    with np.errstate(invalid="ignore"):
        if not np.isfinite(sample).any():
            return math.nan
        # numpy.nanmedian's value, taken faster where there is no NaN.
        median = np.nanmedian(sample) if np.isnan(sample).any() else np.median(sample)
        return float(np.sqrt(median))


def scale_positions(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    """Map pixel positions to the model's position features in ``[-1, 1]``.

    Parameters
    ----------
    x, y : `numpy.ndarray`
        Pixel positions (0-based, pixel centres at integers).
    width, height : `int`
        Detector size in pixels.

    Returns
    -------
    positions : `numpy.ndarray`
        Array of shape ``(N, 2)`` (x, y), float32, ``-1`` at pixel 0 and ``+1`` at the last pixel.

    Raises
    ------
    ValueError
        If ``width`` or ``height`` is smaller than 2.

    """
    if width < 2 or height < 2:
        raise ValueError(f"detector size must be at least 2x2 pixels, got {width}x{height}")
    px = 2.0 * np.asarray(x, dtype=np.float64) / (width - 1) - 1.0
    py = 2.0 * np.asarray(y, dtype=np.float64) / (height - 1) - 1.0
    return np.stack([px, py], axis=-1).astype(np.float32)


def nearest_pixel(coord: np.ndarray) -> np.ndarray:
    """Return the index of the pixel that contains each coordinate.

    Pixel ``i`` covers ``[i - 0.5, i + 0.5)`` (centres at integers), so this is ``floor(coord + 0.5)``:
    rounding to the nearest integer with halves rounded up.

    Parameters
    ----------
    coord : `numpy.ndarray`
        Finite pixel coordinates.

    Returns
    -------
    index : `numpy.ndarray`
        Pixel indices, int64.

    """
    return np.floor(np.asarray(coord, dtype=np.float64) + 0.5).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class CutoutResult:
    """Cutouts of many sources and the problems met while cutting them.

    Attributes
    ----------
    cutouts : `numpy.ndarray`
        Pixels, float32, shape ``(N, size, size)``. ``cutouts[n, i, j]`` is
        ``image[nearest_pixel(y[n]) - size // 2 + i, nearest_pixel(x[n]) - size // 2 + j]``; pixels
        outside the image and bad pixels are 0 (the sky level of a sky-subtracted image).
    edge : `numpy.ndarray`
        Boolean ``(N,)``: the cutout extends beyond the image (includes every ``off_image`` source).
    bad_pixels : `numpy.ndarray`
        Boolean ``(N,)``: the cutout contains a non-finite pixel, a pixel with non-finite variance, or
        a pixel in a bad mask plane; those pixels were replaced by 0.
    off_image : `numpy.ndarray`
        Boolean ``(N,)``: the centroid is finite but its pixel lies outside the image.
    bad_centroid : `numpy.ndarray`
        Boolean ``(N,)``: the centroid is not finite; the cutout is all zeros and no other flag is set.
    n_inside : `numpy.ndarray`
        Int32 ``(N,)``: the cutout's pixels that lie in the image (``size**2`` away from the edges,
        0 for a non-finite centroid); the others are not data, good or bad.
    bad : `numpy.ndarray`
        Boolean ``(N, size, size)``: the bad pixels (set to 0), as the PSF-flux fit of
        `lsst.meas.contextnet.psfinputs` needs them; pixels outside the image are not bad.

    """

    cutouts: np.ndarray
    edge: np.ndarray
    bad_pixels: np.ndarray
    off_image: np.ndarray
    bad_centroid: np.ndarray
    n_inside: np.ndarray
    bad: np.ndarray

    def __len__(self) -> int:
        return len(self.cutouts)


def _check_extraction_inputs(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    size: int,
    variance: np.ndarray | None,
    mask: np.ndarray | None,
    bad_mask_bits: int | np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Validate and convert the arguments shared by both extraction functions."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-d, got shape {image.shape}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-d of equal length, got shapes {x.shape} and {y.shape}")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if variance is not None:
        variance = np.asarray(variance)
        if variance.shape != image.shape:
            raise ValueError(f"variance shape {variance.shape} differs from image shape {image.shape}")
    bits: np.ndarray | None = None
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape[:2] != image.shape or mask.ndim not in (2, 3):
            raise ValueError(f"mask must have shape {image.shape} or {image.shape} + (k,), got {mask.shape}")
        if mask.dtype != np.bool_ and mask.dtype.kind not in "ui":
            raise ValueError(f"mask must be boolean or integer, got dtype {mask.dtype}")
        if bad_mask_bits is not None:
            if mask.dtype == np.bool_:
                raise ValueError("bad_mask_bits cannot be used with a boolean mask")
            bits = np.asarray(bad_mask_bits).astype(mask.dtype)
            expected = () if mask.ndim == 2 else (mask.shape[2],)
            if bits.shape != expected:
                raise ValueError(
                    f"bad_mask_bits must have shape {expected} for a mask of shape {mask.shape}, "
                    f"got {bits.shape}"
                )
        if mask.ndim == 3 and bits is not None:
            # Only the mask words holding a bad bit matter; when that is one word, read it as a
            # 2-d (strided) view: half or less of the mask's bytes, and a simpler test.
            words = np.flatnonzero(bits)
            if len(words) == 0:
                mask, bits = None, None
            elif len(words) == 1:
                mask, bits = mask[:, :, words[0]], bits[words[0]]
        if mask is not None and mask.ndim == 3:
            mask, bits = _packed_mask(mask, bits)
    return image, x, y, variance, mask, bits


def bad_mask_bits(mask: Any, names: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """Return an image's mask array and the bits of the named planes it has.

    Parameters
    ----------
    mask : `lsst.images.Mask`
        The image's mask (its ``schema`` and ``array``).
    names : `~collections.abc.Sequence` [`str`]
        Plane names, as `lsst.images` names them (``SATURATED``) or as the DM stack does
        (``SAT``).

    Returns
    -------
    array : `numpy.ndarray` or `None`
        The mask array; `None` when none of the planes is in the mask.
    bits : `numpy.ndarray` or `None`
        The planes' bitmask (`extract_cutouts`'s ``bad_mask_bits``); `None` as ``array``.
    ignored : `list` [`str`]
        The names the mask does not have.
    """
    from lsst.images import get_legacy_visit_image_mask_planes

    schema = mask.schema
    legacy = {name: plane.name for name, plane in get_legacy_visit_image_mask_planes().items()}
    planes, ignored = [], []
    for name in names:
        if name in schema.names:
            planes.append(name)
        elif legacy.get(name) in schema.names:
            planes.append(legacy[name])
        else:
            ignored.append(name)
    if not planes:
        return None, None, ignored
    return mask.array, schema.bitmask(*planes), ignored


def has_good_pixels(
    image: np.ndarray,
    variance: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    bad_mask_bits: int | np.ndarray | None = None,
) -> bool:
    """Return whether an image has any good pixel, by the rule the cutouts use.

    Parameters
    ----------
    image, variance, mask, bad_mask_bits
        As for `extract_cutouts`.

    Returns
    -------
    good : `bool`
        Whether some pixel is finite, has a finite variance and no bad mask bit.
    """
    image, _, _, variance, mask, bits = _check_extraction_inputs(
        image, np.zeros(0), np.zeros(0), 1, variance, mask, bad_mask_bits
    )
    good = np.isfinite(image)
    if variance is not None:
        good &= np.isfinite(variance)
    if mask is not None:
        good &= ~_bad_mask_values(mask, bits, mask.ndim)
    return bool(good.any())


def _packed_mask(mask: np.ndarray, bits: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a ``(H, W, k)`` mask whose ``k`` words of a pixel are adjacent as one integer per pixel.

    A pixel is bad when its integer shares a bit with the bad bits read the same way, so the test
    is unchanged; a reduction over whole windows of a 2-d plane is far faster than one over a
    short last axis. Masks of other layouts (``k`` words of 3, 5, 6 or 7 bytes, or words not
    adjacent) are returned as they are.
    """
    nbytes = mask.itemsize * mask.shape[2]
    if nbytes not in (1, 2, 4, 8) or mask.strides[2] != mask.itemsize:
        return mask, bits
    packed = np.dtype(f"u{nbytes}")
    return mask.view(packed)[:, :, 0], None if bits is None else np.ascontiguousarray(bits).view(packed)[0]


def _bad_mask_values(mask_values: np.ndarray, bits: np.ndarray | None, ndim: int) -> np.ndarray:
    """Return where mask values (of a ``ndim``-d mask) are bad; ``bits=None`` means any set bit."""
    if bits is not None:
        mask_values = mask_values & bits
    bad = mask_values != 0
    if ndim == 3:
        bad = bad.any(axis=-1)
    return bad


def _gather_windows(
    array: np.ndarray, start_row: np.ndarray, start_col: np.ndarray, size: int, interior: np.ndarray
) -> np.ndarray:
    """Copy the ``size`` x ``size`` windows starting at ``(start_row, start_col)`` out of ``array``.

    Every window is first read through a strided view of all windows of ``array``
    (`numpy.lib.stride_tricks.sliding_window_view`, which copies whole rows at once), with its start
    clipped into the array; windows not flagged ``interior`` (the few that cross the array's edge)
    are then re-read by fancy indexing with indices clipped into the array, so their out-of-array
    pixels hold duplicated edge values that the caller masks. Trailing axes of ``array``
    (bit-packed mask words) are kept last: the result has shape ``(N, size, size) + array.shape[2:]``.
    """
    height, width = array.shape[:2]
    if height >= size and width >= size:
        windows = np.lib.stride_tricks.sliding_window_view(array, (size, size), axis=(0, 1))
        values = windows[np.clip(start_row, 0, height - size), np.clip(start_col, 0, width - size)]
        # (N, *trailing, size, size) -> (N, size, size, *trailing)
        out = np.moveaxis(values, range(1, array.ndim - 1), range(3, array.ndim + 1))
        outer = ~interior
    else:
        # Zeros stand for the pixels of an array without any (height or width 0).
        out = np.zeros((len(start_row), size, size) + array.shape[2:], dtype=array.dtype)
        outer = np.ones(len(start_row), dtype=bool)
    if outer.any() and height > 0 and width > 0:
        offsets = np.arange(size)
        rows = np.clip(start_row[outer, None] + offsets, 0, height - 1)
        cols = np.clip(start_col[outer, None] + offsets, 0, width - 1)
        out[outer] = array[rows[:, :, None], cols[:, None, :]]
    return out


def _all_finite(windows: np.ndarray) -> np.ndarray:
    """Return, per window, whether its sum is finite.

    False for every window holding a NaN or an infinity, and for the rare one whose finite values
    overflow the sum (tested pixel by pixel after, like the others). NumPy's own sum, not a
    product with a vector of ones: the product is three times faster alone (0.1 ms against 0.3 ms
    for 2000 windows), but it runs in OpenBLAS, whose threads keep spinning after it and halve the
    speed of the PyTorch operations that follow on a 2-core machine (the input stage of
    ``run()`` took 60 ms instead of 31 ms).
    """
    flat = windows.reshape(len(windows), int(np.prod(windows.shape[1:])))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.isfinite(flat.sum(axis=1))


def _bad_window_pixels(
    cutouts: np.ndarray,
    start_row: np.ndarray,
    start_col: np.ndarray,
    size: int,
    interior: np.ndarray,
    variance: np.ndarray | None,
    mask: np.ndarray | None,
    bits: np.ndarray | None,
) -> np.ndarray:
    """Return the bad pixels of some windows: a non-finite pixel or variance, or a bad mask bit."""
    bad = ~np.isfinite(cutouts)
    windows = (start_row, start_col, size, interior)
    if variance is not None:
        bad |= ~np.isfinite(_gather_windows(variance, *windows))
    if mask is not None:
        bad |= _bad_mask_values(_gather_windows(mask, *windows), bits, mask.ndim)
    return bad


def window_reads(array: np.ndarray, start_row: np.ndarray, start_col: np.ndarray, size: int) -> np.ndarray:
    """Copy the ``size`` x ``size`` windows at the given starts, clipped into the array.

    What a NumPy gather of the windows costs, with no test and no flag: the least that
    `extract_cutouts`, which gathers with NumPy, can take (the benchmark's comparison).

    Parameters
    ----------
    array : `numpy.ndarray`
        ``(H, W)`` or ``(H, W, k)`` plane.
    start_row, start_col : `numpy.ndarray`
        Window origins (clipped into the array).
    size : `int`
        Window side.

    Returns
    -------
    windows : `numpy.ndarray`
        ``(N, size, size) + array.shape[2:]``.
    """
    interior = np.ones(len(start_row), dtype=bool)
    height, width = array.shape[:2]
    rows = np.clip(start_row, 0, max(height - size, 0))
    cols = np.clip(start_col, 0, max(width - size, 0))
    return _gather_windows(array, rows, cols, size, interior)


def extract_cutouts(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    size: int,
    *,
    variance: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    bad_mask_bits: int | np.ndarray | None = None,
) -> CutoutResult:
    """Cut a square cutout around every source, vectorized over sources.

    Parameters
    ----------
    image : `numpy.ndarray`
        Sky-subtracted image, shape ``(H, W)``, indexed ``image[y, x]``.
    x, y : `numpy.ndarray`
        Source centroids in pixels of ``image`` (0-based, pixel centres at integers), shape ``(N,)``.
    size : `int`
        Side of the square cutouts; the source's pixel is at index ``(size // 2, size // 2)``.
    variance : `numpy.ndarray`, optional
        Variance plane, shape ``(H, W)``; pixels where it is not finite count as bad.
    mask : `numpy.ndarray`, optional
        Mask plane: boolean ``(H, W)`` (`True` is bad), or integer ``(H, W)`` or ``(H, W, k)``
        (bit-packed, as in `lsst.images.Mask.array`).
    bad_mask_bits : `int` or `numpy.ndarray`, optional
        Bits of an integer ``mask`` that make a pixel bad: an `int` for a 2-d mask, an array of
        length ``k`` for a 3-d one (e.g. `lsst.images.MaskSchema.bitmask`). Default: any set bit.

    Returns
    -------
    result : `CutoutResult`
        Cutouts (float32, bad and out-of-image pixels set to 0), per-source flags and the bad
        pixels.

    Raises
    ------
    ValueError
        If an argument has the wrong shape, dtype or value.

    Notes
    -----
    All sources are cut at once, with no Python loop per source and no padded copy of the image:
    sources whose cutout lies inside the image are read through a strided view of all windows
    (`numpy.lib.stride_tricks.sliding_window_view`), the few near or beyond the edge by fancy
    indexing with clipped indices. Each window of the three planes is reduced to one test (its
    image and variance sums finite, the OR of its mask words free of bad bits), and only the
    windows that fail it or cross the edge are tested pixel by pixel, so the cost is that of
    reading the windows (latency-bound: each window row is a separate memory access).
    `extract_cutouts_loop` is the per-source reference that tests and the benchmark compare
    against.

    """
    image, x, y, variance, mask, bits = _check_extraction_inputs(
        image, x, y, size, variance, mask, bad_mask_bits
    )
    height, width = image.shape
    half = size // 2
    bad_centroid = ~(np.isfinite(x) & np.isfinite(y))
    # Clip before converting to integers so absurd centroids cannot overflow; a clipped centroid
    # is still off the image, with its cutout entirely outside it.
    col = nearest_pixel(np.clip(np.where(bad_centroid, 0.0, x), -size - 1, width + size))
    row = nearest_pixel(np.clip(np.where(bad_centroid, 0.0, y), -size - 1, height + size))
    off_image = ~bad_centroid & ((col < 0) | (col >= width) | (row < 0) | (row >= height))
    start_col = col - half
    start_row = row - half
    edge = ~bad_centroid & (
        (start_col < 0) | (start_col + size > width) | (start_row < 0) | (start_row + size > height)
    )

    interior = ~edge & ~bad_centroid

    cutouts = np.asarray(_gather_windows(image, start_row, start_col, size, interior), dtype=np.float32)
    # Bad pixels are rare: find the sources whose window may hold one with one reduction per
    # window (a sum is finite only if every term is; an OR of the mask words is free of bad bits
    # only if every pixel is), then test pixel by pixel only those and the ones crossing the edge.
    suspect = ~interior | ~_all_finite(cutouts)
    windows = (start_row, start_col, size, interior)
    if variance is not None:
        suspect |= ~_all_finite(_gather_windows(variance, *windows))
    if mask is not None:
        words = _gather_windows(mask, *windows)
        words = np.bitwise_or.reduce(words.reshape((len(words), size * size) + mask.shape[2:]), axis=1)
        suspect |= _bad_mask_values(words, bits, mask.ndim)
    checked = np.flatnonzero(suspect)
    bad = np.zeros(cutouts.shape, dtype=bool)
    bad[checked] = _bad_window_pixels(
        cutouts[checked],
        start_row[checked],
        start_col[checked],
        size,
        interior[checked],
        variance,
        mask,
        bits,
    )
    outer = np.flatnonzero(~interior)
    n_inside = np.full(len(x), size * size, dtype=np.int32)
    if len(outer) > 0:
        # Pixels outside the image are neither bad nor kept.
        offsets = np.arange(size)
        rows = start_row[outer, None] + offsets
        cols = start_col[outer, None] + offsets
        rows_valid = (rows >= 0) & (rows < height) & ~bad_centroid[outer, None]
        cols_valid = (cols >= 0) & (cols < width)
        inside = rows_valid[:, :, None] & cols_valid[:, None, :]
        bad[outer] &= inside
        n_inside[outer] = inside.sum(axis=(1, 2))
        cutouts[outer] = np.where(inside, cutouts[outer], 0.0)
    cutouts[checked] = np.where(bad[checked], 0.0, cutouts[checked])
    bad_pixels = np.zeros(len(x), dtype=bool)
    bad_pixels[checked] = bad[checked].any(axis=(1, 2))
    return CutoutResult(
        cutouts=cutouts,
        edge=edge,
        bad_pixels=bad_pixels,
        off_image=off_image,
        bad_centroid=bad_centroid,
        n_inside=n_inside,
        bad=bad,
    )


def extract_cutouts_loop(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    size: int,
    *,
    variance: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    bad_mask_bits: int | np.ndarray | None = None,
) -> CutoutResult:
    """Cut cutouts one source at a time: the deliberately simple reference for `extract_cutouts`.

    Parameters and results are those of `extract_cutouts`, which must agree with this function
    exactly; the tests check that, and the benchmark measures the speed-up over it. Not meant for
    production use.

    Parameters
    ----------
    image : `numpy.ndarray`
        Sky-subtracted image, shape ``(H, W)``.
    x, y : `numpy.ndarray`
        Source centroids in pixels, shape ``(N,)``.
    size : `int`
        Side of the square cutouts.
    variance : `numpy.ndarray`, optional
        Variance plane, shape ``(H, W)``.
    mask : `numpy.ndarray`, optional
        Boolean or bit-packed integer mask, shape ``(H, W)`` or ``(H, W, k)``.
    bad_mask_bits : `int` or `numpy.ndarray`, optional
        Bits of an integer ``mask`` that make a pixel bad (default: any set bit).

    Returns
    -------
    result : `CutoutResult`
        Cutouts, per-source flags and the bad pixels.

    Raises
    ------
    ValueError
        If an argument has the wrong shape, dtype or value.

    """
    image, x, y, variance, mask, bits = _check_extraction_inputs(
        image, x, y, size, variance, mask, bad_mask_bits
    )
    height, width = image.shape
    half = size // 2
    n = len(x)
    cutouts = np.zeros((n, size, size), dtype=np.float32)
    edge = np.zeros(n, dtype=bool)
    bad_pixels = np.zeros(n, dtype=bool)
    off_image = np.zeros(n, dtype=bool)
    bad_centroid = np.zeros(n, dtype=bool)
    n_inside = np.zeros(n, dtype=np.int32)
    bad_map = np.zeros((n, size, size), dtype=bool)
    for k in range(n):
        if not (math.isfinite(x[k]) and math.isfinite(y[k])):
            bad_centroid[k] = True
            continue
        col = math.floor(x[k] + 0.5)
        row = math.floor(y[k] + 0.5)
        off_image[k] = not (0 <= col < width and 0 <= row < height)
        x0, y0 = col - half, row - half
        edge[k] = x0 < 0 or y0 < 0 or x0 + size > width or y0 + size > height
        # Overlap of the cutout with the image, in image and in cutout coordinates.
        ix0, ix1 = max(x0, 0), min(x0 + size, width)
        iy0, iy1 = max(y0, 0), min(y0 + size, height)
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        n_inside[k] = (ix1 - ix0) * (iy1 - iy0)
        pixels = image[iy0:iy1, ix0:ix1].astype(np.float32)
        bad = ~np.isfinite(pixels)
        if variance is not None:
            bad |= ~np.isfinite(variance[iy0:iy1, ix0:ix1])
        if mask is not None:
            bad |= _bad_mask_values(mask[iy0:iy1, ix0:ix1], bits, mask.ndim)
        pixels[bad] = 0.0
        bad_pixels[k] = bool(bad.any())
        overlap = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
        cutouts[k][overlap] = pixels
        bad_map[k][overlap] = bad
    return CutoutResult(
        cutouts=cutouts,
        edge=edge,
        bad_pixels=bad_pixels,
        off_image=off_image,
        bad_centroid=bad_centroid,
        n_inside=n_inside,
        bad=bad_map,
    )
