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

"""The model's inputs: normalized cutouts and, for PSF-aware models, the PSF model at each source.

One path, used by the classifier task, training and the benchmark, so the numbers are the same
wherever they are computed:

1. `evaluate_psf_grid`: the exposure's PSF model is drawn on a regular ``n x n`` grid of the
   detector (``n = 5`` by default: 25 draws per detector instead of one per source);
2. `interpolate_psf`: each source's PSF image is the bilinear interpolation of the four grid
   images around it (the fields vary smoothly, so this is accurate to a small fraction of a
   percent of the peak; the benchmark reports the error against per-source evaluation);
3. `psf_channel`: the PSF image is shifted to the source's sub-pixel centroid (a Fourier phase),
   scaled to the source's PSF flux (a least-squares fit to the cutout, bad pixels left out) and
   stretched exactly like the cutout, so a star's two channels agree up to noise and a
   galaxy's differ: the comparison extendedness makes, given to the network as pixels;
4. `psf_fit_offsets` (for the ``"psf_peak"`` channel): the position where the PSF best fits
   the cutout, near its centre; a star blended with a fainter galaxy has its flux centroid
   pulled towards the galaxy, while a point-source fit stays on the star's core;
5. `model_inputs`: stacks the channels a model's card declares (``"image"``, ``"psf"``,
   ``"psf_peak"``: the PSF channel at the centroid and at the PSF's best-fitting position).

A model that declares only ``"image"`` (the paper's PSF-blind network) needs no PSF.
"""

from __future__ import annotations

__all__ = [
    "INPUT_CHANNELS",
    "PSF_CHANNELS",
    "PSF_FIT_RADIUS",
    "check_inputs",
    "needs_psf",
    "psf_fit_offsets",
    "DEFAULT_PSF_GRID",
    "embed_kernel",
    "draw_psf_kernels",
    "psf_grid_images",
    "evaluate_psf_grid",
    "interpolate_psf",
    "shift_images",
    "psf_flux",
    "psf_channel",
    "model_inputs",
    "subpixel_offsets",
]

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from lsst.meas.contextnet.cutouts import nearest_pixel, normalize_cutouts

INPUT_CHANNELS: tuple[str, ...] = ("image", "psf", "psf_peak")
"""Input channels a model can declare, in the order they are stacked."""

PSF_CHANNELS: tuple[str, ...] = ("psf", "psf_peak")
"""The channels made from the exposure's PSF model."""

PSF_FIT_RADIUS: int = 3
"""Pixels (along each axis) from the centroid's pixel within which `psf_fit_offsets` searches."""


def check_inputs(inputs: Sequence[str]) -> None:
    """Raise unless ``inputs`` is ``"image"`` then any of `PSF_CHANNELS`, in order, no repeats.

    Parameters
    ----------
    inputs : `~collections.abc.Sequence` [`str`]
        The channels a model declares.

    Raises
    ------
    ValueError
        If the channels do not start with ``"image"``, name a channel not in `INPUT_CHANNELS`,
        repeat one or do not follow its order.
    """
    unknown = [name for name in inputs if name not in INPUT_CHANNELS]
    if unknown:
        raise ValueError(f"model inputs name unknown channels {unknown}; known are {INPUT_CHANNELS}")
    order = [INPUT_CHANNELS.index(name) for name in inputs]
    if not order or order[0] != 0 or order != sorted(set(order)):
        raise ValueError(
            f"model inputs must start with 'image' and follow the order of {INPUT_CHANNELS} "
            f"without repeats, got {tuple(inputs)!r}"
        )


def needs_psf(inputs: Sequence[str]) -> bool:
    """Return whether a model with these input channels needs the exposure's PSF model.

    Parameters
    ----------
    inputs : `~collections.abc.Sequence` [`str`]
        The channels the model declares.

    Returns
    -------
    needed : `bool`
        True if any of them is one of `PSF_CHANNELS`.
    """
    return any(name in PSF_CHANNELS for name in inputs)


DEFAULT_PSF_GRID: int = 5
"""Grid points per detector side at which the PSF model is drawn."""


def embed_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Place a centred, odd-sized PSF kernel image in a ``size x size`` image.

    Parameters
    ----------
    kernel : `numpy.ndarray`
        Square image of odd side ``K`` whose centre (the PSF's) is pixel ``(K // 2, K // 2)``.
    size : `int`
        Side of the output; the PSF centre lands on ``(size // 2, size // 2)``, the source pixel
        of a cutout.

    Returns
    -------
    image : `numpy.ndarray`
        float64 ``(size, size)``, cropped or zero-padded, normalized to unit sum.

    Raises
    ------
    ValueError
        If ``kernel`` is not a square array of odd side or sums to zero.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"a PSF kernel image must be square with an odd side, got shape {kernel.shape}")
    half = kernel.shape[0] // 2
    centre = size // 2
    out = np.zeros((size, size))
    lo_out = max(0, centre - half)
    hi_out = min(size, centre + half + 1)
    lo_in = lo_out - (centre - half)
    out[lo_out:hi_out, lo_out:hi_out] = kernel[
        lo_in : lo_in + hi_out - lo_out, lo_in : lo_in + hi_out - lo_out
    ]
    total = out.sum()
    if not (np.isfinite(total) and total > 0):
        raise ValueError("the PSF kernel image has no positive flux")
    return out / total


def draw_psf_kernels(
    kernel: Callable[[float, float], np.ndarray],
    width: int,
    height: int,
    n: int = DEFAULT_PSF_GRID,
    *,
    x0: float = 0.0,
    y0: float = 0.0,
) -> list[np.ndarray]:
    """Draw a PSF model's own kernel images on a regular grid of a detector.

    Parameters
    ----------
    kernel : callable
        ``kernel(x, y)`` returns the PSF model's centred kernel image at pixel position
        ``(x, y)`` of the exposure's frame, e.g.
        ``lambda x, y: psf.compute_kernel_image(x=x, y=y).array`` for an `lsst.images` PSF.
    width, height : `int`
        Detector size in pixels.
    n : `int`, optional
        Grid points per side (at least 2).
    x0, y0 : `float`, optional
        Position of the detector's first pixel in the kernel's frame.

    Returns
    -------
    kernels : `list` [`numpy.ndarray`]
        The ``n * n`` kernel images as the model returns them, row by row: item ``j * n + i`` is
        drawn at ``(x0 + i (width - 1) / (n - 1), y0 + j (height - 1) / (n - 1))``.

    Raises
    ------
    ValueError
        If ``n < 2``.
    """
    if n < 2:
        raise ValueError(f"the PSF grid needs at least 2 points per side, got {n}")
    xs = np.linspace(0.0, width - 1.0, n)
    ys = np.linspace(0.0, height - 1.0, n)
    return [np.asarray(kernel(float(x0 + x), float(y0 + y))) for y in ys for x in xs]


def psf_grid_images(kernels: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Embed the kernel images of `draw_psf_kernels` in the grid `interpolate_psf` reads.

    Parameters
    ----------
    kernels : `~collections.abc.Sequence` [`numpy.ndarray`]
        ``n * n`` centred kernel images of odd side, row by row.
    size : `int`
        Side of the grid images (the cutout size).

    Returns
    -------
    grid : `numpy.ndarray`
        ``(n, n, size, size)`` float32 unit-sum images (`embed_kernel`).

    Raises
    ------
    ValueError
        If the number of kernels is not a square of at least 4, or a kernel image is not valid.
    """
    n = math.isqrt(len(kernels))
    if n < 2 or n * n != len(kernels):
        raise ValueError(f"a PSF grid needs n x n kernels with n >= 2, got {len(kernels)}")
    grid = np.empty((n, n, size, size), dtype=np.float32)
    for k, image in enumerate(kernels):
        grid[k // n, k % n] = embed_kernel(image, size)
    return grid


def evaluate_psf_grid(
    kernel: Callable[[float, float], np.ndarray],
    width: int,
    height: int,
    size: int,
    n: int = DEFAULT_PSF_GRID,
    *,
    x0: float = 0.0,
    y0: float = 0.0,
) -> np.ndarray:
    """Draw a PSF model on a regular grid of a detector.

    `draw_psf_kernels` then `psf_grid_images`.

    Parameters
    ----------
    kernel, width, height, n, x0, y0
        As for `draw_psf_kernels` (kernel images of odd side, any normalization).
    size : `int`
        Side of the grid images (the cutout size).

    Returns
    -------
    grid : `numpy.ndarray`
        ``(n, n, size, size)`` float32: ``grid[j, i]`` is the unit-sum PSF at
        ``(x0 + i (width - 1) / (n - 1), y0 + j (height - 1) / (n - 1))``.

    Raises
    ------
    ValueError
        If ``n < 2`` or a kernel image is not valid (see `embed_kernel`).
    """
    return psf_grid_images(draw_psf_kernels(kernel, width, height, n, x0=x0, y0=y0), size)


def interpolate_psf(grid: np.ndarray, x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    """Interpolate grid PSF images bilinearly at source positions.

    Parameters
    ----------
    grid : `numpy.ndarray`
        Output of `evaluate_psf_grid`, ``(n, n, S, S)``.
    x, y : `numpy.ndarray`
        Source positions in detector pixels (0-based); positions beyond the detector take the
        nearest edge's images.
    width, height : `int`
        Detector size in pixels (as given to `evaluate_psf_grid`).

    Returns
    -------
    psf : `numpy.ndarray`
        ``(N, S, S)`` float32 unit-sum PSF images.
    """
    n = grid.shape[0]
    gx = np.clip(np.asarray(x, dtype=np.float64) / (width - 1.0) * (n - 1), 0.0, n - 1.0)
    gy = np.clip(np.asarray(y, dtype=np.float64) / (height - 1.0) * (n - 1), 0.0, n - 1.0)
    i0 = np.minimum(gx.astype(np.int64), n - 2)
    j0 = np.minimum(gy.astype(np.int64), n - 2)
    tx = (gx - i0).astype(np.float32)[:, None, None]
    ty = (gy - j0).astype(np.float32)[:, None, None]
    out = (1 - ty) * ((1 - tx) * grid[j0, i0] + tx * grid[j0, i0 + 1])
    out += ty * ((1 - tx) * grid[j0 + 1, i0] + tx * grid[j0 + 1, i0 + 1])
    out /= out.sum(axis=(1, 2), keepdims=True)
    return out.astype(np.float32)


def subpixel_offsets(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the offsets of centroids from the centres of the pixels that hold them.

    Parameters
    ----------
    x, y : `numpy.ndarray`
        Centroids in pixels.

    Returns
    -------
    dx, dy : `numpy.ndarray`
        ``x - nearest_pixel(x)`` and the same for ``y``, in ``[-0.5, 0.5)``; a cutout's source
        lies at ``(size // 2 + dx, size // 2 + dy)``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return x - nearest_pixel(x), y - nearest_pixel(y)


def shift_images(images: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Shift images by sub-pixel offsets with a Fourier phase (band-limited interpolation).

    For an even side the Nyquist frequency of each axis is shifted by its real part,
    ``cos(pi d)`` (the phase of the frequencies +1/2 and -1/2 averaged), the same along x and
    y, so that a shift commutes with transposing the images.

    Parameters
    ----------
    images : `numpy.ndarray`
        ``(N, S, S)``.
    dx, dy : `numpy.ndarray`
        Shifts in pixels along x (columns) and y (rows), ``(N,)``.

    Returns
    -------
    shifted : `numpy.ndarray`
        ``(N, S, S)`` float32.
    """
    import torch

    images = np.asarray(images, dtype=np.float32)
    dx = np.asarray(dx, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    size = images.shape[-1]
    kx = np.fft.rfftfreq(size)
    ky = np.fft.fftfreq(size)
    phase_x = np.exp(-2j * np.pi * kx[None, :] * dx[:, None]).astype(np.complex64)
    phase_y = np.exp(-2j * np.pi * ky[None, :] * dy[:, None]).astype(np.complex64)
    if size % 2 == 0:
        phase_x[:, -1] = np.cos(np.pi * dx)
        phase_y[:, size // 2] = np.cos(np.pi * dy)
    # PyTorch's batched FFT: the same transform as numpy.fft in single precision, three times
    # faster on thousands of small images.
    transform = torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(images)))
    transform *= torch.from_numpy(phase_y)[:, :, None]
    transform *= torch.from_numpy(phase_x)[:, None, :]
    return torch.fft.irfft2(transform, s=(size, size)).numpy()


def psf_flux(cutouts: np.ndarray, bad: np.ndarray | None, psf: np.ndarray) -> np.ndarray:
    """Fit each cutout's amplitude as a point source: ``sum(p d) / sum(p**2)``, bad pixels left out.

    Parameters
    ----------
    cutouts : `numpy.ndarray`
        ``(N, S, S)`` sky-subtracted pixels.
    bad : `numpy.ndarray`, optional
        ``(N, S, S)`` booleans, true on pixels left out of the fit (bad pixels).
    psf : `numpy.ndarray`
        ``(N, S, S)`` unit-sum PSF images centred on the sources.

    Returns
    -------
    flux : `numpy.ndarray`
        ``(N,)`` float64 (0 where no pixel left in the fit overlaps the PSF).
    """
    weight = psf.astype(np.float64)
    if bad is not None:
        weight = np.where(bad, 0.0, weight)
    numerator = np.einsum("nij,nij->n", weight, cutouts.astype(np.float64))
    denominator = np.einsum("nij,nij->n", weight, weight)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def psf_channel(
    cutouts: np.ndarray,
    bad: np.ndarray | None,
    psf: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    noise_sigma: float | np.ndarray,
    softening: float,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Return the PSF channel: the PSF at each source's centroid and PSF flux, stretched like it.

    Parameters
    ----------
    cutouts : `numpy.ndarray`
        ``(N, S, S)`` sky-subtracted pixels, bad pixels and pixels outside the image 0.
    bad : `numpy.ndarray`, optional
        ``(N, S, S)`` booleans, true on bad pixels: left out of the PSF-flux fit (`psf_flux`).
    psf : `numpy.ndarray`
        ``(N, S, S)`` unit-sum PSF images centred on the cutouts' central pixel
        (`interpolate_psf`).
    dx, dy : `numpy.ndarray`
        Sub-pixel centroid offsets (`subpixel_offsets`).
    noise_sigma : `float` or `numpy.ndarray`
        Background noise, as for `~lsst.meas.contextnet.cutouts.normalize_cutouts`.
    softening : `float`
        Stretch softening, as for the cutouts.
    out : `numpy.ndarray`, optional
        ``(N, S, S)`` float32 array to write the channel to; a new array by default.

    Returns
    -------
    channel : `numpy.ndarray`
        ``(N, S, S)`` float32 (``out`` if given).

    Notes
    -----
    The fit is to the cutout as the network sees it: pixels beyond the image are fitted as the
    zeros the cutout holds there, so a star cut by the image's edge gets a fainter, whole PSF
    image. The network was trained on stamps without image edges, and of three choices this one
    classified the validation split's edge sources best; leaving those pixels out of the fit, or
    leaving them out and setting them to 0 in the channel, did worse, and filling them with the
    source's reflection was not resolved from it (the results page, section "Sources at the
    image's edge").
    """
    centred = shift_images(psf, dx, dy)
    flux = psf_flux(cutouts, bad, centred)
    model = np.multiply(centred, flux[:, None, None].astype(np.float32), out=centred)
    return normalize_cutouts(model, noise_sigma, softening, out=model if out is None else out)


def psf_fit_offsets(
    cutouts: np.ndarray, psf: np.ndarray, radius: int = PSF_FIT_RADIUS
) -> tuple[np.ndarray, np.ndarray]:
    """Return where the PSF best fits each cutout, near its central pixel.

    With its flux fitted (and positive), a PSF image fits the cutout best (least squares) where
    its correlation with the cutout is largest: the correlation is computed for every whole-pixel
    shift of up to ``radius`` pixels along each axis and its maximum refined to a sub-pixel
    position by a parabola through it and its neighbours along each axis. For an isolated
    source this is its centroid up to noise; for a star blended with a fainter, more extended
    neighbour it stays on the star's core, where the flux centroid is pulled towards the
    neighbour.

    Parameters
    ----------
    cutouts : `numpy.ndarray`
        ``(N, S, S)`` sky-subtracted pixels, bad pixels and pixels outside the image 0.
    psf : `numpy.ndarray`
        ``(N, S, S)`` PSF images centred on the cutouts' central pixel (`interpolate_psf`).
    radius : `int`, optional
        Largest shift searched along each axis, in pixels.

    Returns
    -------
    dx, dy : `numpy.ndarray`
        ``(N,)`` float64 offsets from the central pixel along x (columns) and y (rows), within
        ``[-radius - 0.5, radius + 0.5]``; the form `psf_channel` takes.  A cutout whose
        correlation with the PSF is nowhere positive (no flux, or only bad pixels) gets 0.

    Raises
    ------
    ValueError
        If ``radius`` is negative or does not fit in the cutouts.
    """
    import torch

    cutouts = np.asarray(cutouts, dtype=np.float32)
    size = cutouts.shape[-1]
    if not 0 <= radius < size // 2:
        raise ValueError(f"radius must be in [0, {size // 2}) for cutouts of {size} pixels, got {radius}")
    if len(cutouts) == 0:
        return np.zeros(0), np.zeros(0)
    # Circular cross-correlation: corr[k] = sum_x cutout[x + k] psf[x], k the source's shift from
    # the PSF's centre; shifts up to `radius` (and one more, for the parabola) are read.
    transform = torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(cutouts)))
    transform *= torch.conj(torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(psf, dtype=np.float32))))
    corr = torch.fft.irfft2(transform, s=(size, size)).numpy()
    shifts = np.arange(-radius - 1, radius + 2)
    window = corr[:, shifts[:, None] % size, shifts[None, :] % size]  # (N, rows: dy, cols: dx)
    inner = window[:, 1:-1, 1:-1].reshape(len(cutouts), -1)
    best = np.argmax(inner, axis=1)
    iy, ix = np.divmod(best, 2 * radius + 1)
    iy, ix = iy + 1, ix + 1
    rows = np.arange(len(cutouts))

    def refine(minus: np.ndarray, centre: np.ndarray, plus: np.ndarray) -> np.ndarray:
        curvature = minus - 2.0 * centre + plus
        step = np.divide(0.5 * (minus - plus), curvature, out=np.zeros_like(centre), where=curvature < 0)
        return np.clip(step, -0.5, 0.5)

    window = window.astype(np.float64)
    fx = refine(window[rows, iy, ix - 1], window[rows, iy, ix], window[rows, iy, ix + 1])
    fy = refine(window[rows, iy - 1, ix], window[rows, iy, ix], window[rows, iy + 1, ix])
    found = np.isfinite(window[rows, iy, ix]) & (window[rows, iy, ix] > 0)
    return np.where(found, shifts[ix] + fx, 0.0), np.where(found, shifts[iy] + fy, 0.0)


def model_inputs(
    cutouts: np.ndarray,
    noise_sigma: float | np.ndarray,
    normalization: Mapping[str, Any],
    inputs: Sequence[str] = ("image",),
    *,
    bad: np.ndarray | None = None,
    psf: np.ndarray | None = None,
    dx: np.ndarray | None = None,
    dy: np.ndarray | None = None,
) -> np.ndarray:
    """Assemble a model's input channels for ``N`` sources.

    Parameters
    ----------
    cutouts : `numpy.ndarray`
        ``(N, S, S)`` sky-subtracted pixels, bad pixels and pixels outside the image 0.
    noise_sigma : `float` or `numpy.ndarray`
        Background noise per pixel (a scalar, or one value per source).
    normalization : `~collections.abc.Mapping`
        The model's normalization (``{"kind": "asinh_noise", "softening": ...}``).
    inputs : `~collections.abc.Sequence` [`str`], optional
        Channels the model declares: ``"image"``, then any of `PSF_CHANNELS`, in the order of
        `INPUT_CHANNELS`.
    bad : `numpy.ndarray`, optional
        ``(N, S, S)`` booleans, true on bad pixels (for the PSF channel, `psf_channel`).
    psf : `numpy.ndarray`, optional
        ``(N, S, S)`` PSF images (`interpolate_psf`); required with a PSF channel.
    dx, dy : `numpy.ndarray`, optional
        Sub-pixel offsets (`subpixel_offsets`); required with ``"psf"``.

    Returns
    -------
    inputs : `numpy.ndarray`
        ``(N, C, S, S)`` float32.

    Raises
    ------
    ValueError
        If the inputs do not start with ``"image"`` or do not follow the order of
        `INPUT_CHANNELS` without repeats, or the PSF images or offsets are missing.
    """
    check_inputs(inputs)
    if normalization.get("kind") != "asinh_noise":
        raise ValueError(f"unsupported normalization {normalization!r}")
    softening = float(normalization["softening"])
    if needs_psf(inputs) and psf is None:
        raise ValueError("a PSF-aware model needs the PSF images of its sources")
    if "psf" in inputs and (dx is None or dy is None):
        raise ValueError("the 'psf' channel needs the sub-pixel offsets of the sources' centroids")
    # Each channel is written in place into the one input array (no per-channel copies to stack).
    channels = np.empty((len(cutouts), len(inputs)) + cutouts.shape[1:], dtype=np.float32)
    normalize_cutouts(cutouts, noise_sigma, softening, out=channels[:, 0])
    for index, name in enumerate(inputs):
        if name == "psf":
            psf_channel(cutouts, bad, psf, dx, dy, noise_sigma, softening, out=channels[:, index])
        elif name == "psf_peak":
            px, py = psf_fit_offsets(cutouts, psf)
            psf_channel(cutouts, bad, psf, px, py, noise_sigma, softening, out=channels[:, index])
    return channels
