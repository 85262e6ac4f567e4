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

"""Measure the LSST pipelines' baseline quantities on simulated pixels.

For each detection, on a stamp around its centroid (pixels of other detections, BAD and SAT
pixels are excluded, the way the pipelines replace neighbours by noise; a source with a
saturated centre is not measured and gets every flag set):

* ``psfFlux``: linear least-squares amplitude of the PSF model drawn at the centroid,
  ``sum(P d) / sum(P**2)`` (the PSF is its own weight, as in meas_base's ``PsfFlux``), with
  ``psfFluxErr = sqrt(sum(P**2 var)) / sum(P**2)``;
* ``gaussianFlux``: amplitude of the best-fit elliptical Gaussian of the adaptive moments
  (``galsim.hsm.FindAdaptiveMom``, Hirata & Seljak 2003; Mandelbaum et al. 2005), aperture
  corrected by the same measurement on the noiseless unit-flux PSF at that position, so a
  star has ``gaussianFlux == psfFlux`` in expectation (the pipelines correct both fluxes to a
  common aperture);  ``gaussianFluxErr = sqrt(4 pi sigma**2 var_bg)`` times that correction;
* ``T = Ixx + Iyy`` of the adaptive moments of the object and of the PSF model image.

Then ``extendedness`` and ``sizeExtendedness`` follow `lsst.meas.contextnet.baseline`.
"""

from __future__ import annotations

__all__ = ["measure_sources"]

import galsim
import numpy as np
from astropy.table import Table
from lsst.meas.contextnet.baseline import (
    SINGLE_VISIT_FLUX_RATIO,
    compute_extendedness,
    compute_size_extendedness,
)
from lsst.meas.contextnet.sim.psf import PsfField

_MAX_MASKED_PSF_WEIGHT = 0.3


def _moments_trace(result: galsim.hsm.ShapeData) -> float:
    """``Ixx + Iyy`` from HSM's ``sigma = det(M)**(1/4)`` and distortion ``e``."""
    e = result.observed_shape.e
    return 2.0 * result.moments_sigma**2 / np.sqrt(1.0 - e * e)


def measure_sources(
    image: np.ndarray,
    variance: np.ndarray,
    psf_field: PsfField,
    x: np.ndarray,
    y: np.ndarray,
    *,
    excluded: np.ndarray | None = None,
    saturated: np.ndarray | None = None,
    segmentation: np.ndarray | None = None,
    radius: np.ndarray | None = None,
    flux_ratio: float = SINGLE_VISIT_FLUX_RATIO,
) -> Table:
    """Measure PSF flux, Gaussian flux, moments and the extendedness baselines.

    Parameters
    ----------
    image : `numpy.ndarray`
        Sky-subtracted pixels (electrons).
    variance : `numpy.ndarray`
        Per-pixel variance.
    psf_field : `PsfField`
        PSF model of the exposure.
    x, y : `numpy.ndarray`
        Centroids (pixels, 0-based).
    excluded : `numpy.ndarray`, optional
        Boolean array of pixels never used (BAD, SAT).
    saturated : `numpy.ndarray`, optional
        Boolean array of saturated pixels; a source with a saturated pixel within one pixel of
        its centre gets every measurement flagged (its core is lost, so its moments and PSF
        flux would be biased).
    segmentation : `numpy.ndarray`, optional
        Detection segmentation map (``i + 1`` for the pixels of source ``i``); pixels of other
        sources are excluded from each measurement.
    radius : `numpy.ndarray`, optional
        Size of each source in pixels (e.g. the isophotal semi-major axis); the stamp
        half-width is ``clip(3 * FWHM + 4 * radius, 10, 64)`` pixels.
    flux_ratio : `float`, optional
        ``fluxRatio`` of `~lsst.meas.contextnet.baseline.compute_extendedness`.

    Returns
    -------
    measurements : `astropy.table.Table`
        Columns ``psfFlux``, ``psfFluxErr``, ``psfFlux_flag``, ``gaussianFlux``,
        ``gaussianFluxErr``, ``gaussianFlux_flag``, ``T_obj``, ``T_psf`` (pixels squared),
        ``extendedness``, ``extendedness_flag``, ``sizeExtendedness``,
        ``sizeExtendedness_flag``; failed measurements are NaN with their flag set.

    Raises
    ------
    ValueError
        If the image and variance shapes differ or ``x`` and ``y`` have different lengths.
    """
    image = np.asarray(image)
    variance = np.asarray(variance)
    if image.ndim != 2 or variance.shape != image.shape:
        raise ValueError(
            f"image and variance must have the same 2-d shape, got {image.shape}, {variance.shape}"
        )
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    if x.shape != y.shape:
        raise ValueError("x and y must have the same length")
    n = len(x)
    height, width = image.shape
    radius = np.zeros(n) if radius is None else np.broadcast_to(np.asarray(radius, np.float64), (n,))
    scale = psf_field.pixel_scale

    psf_flux = np.full(n, np.nan)
    psf_flux_err = np.full(n, np.nan)
    gauss_flux = np.full(n, np.nan)
    gauss_flux_err = np.full(n, np.nan)
    t_obj = np.full(n, np.nan)
    t_psf = np.full(n, np.nan)

    for i in range(n):
        xi, yi = float(x[i]), float(y[i])
        if not (np.isfinite(xi) and np.isfinite(yi)):
            continue
        fwhm_px = float(psf_field.fwhm_at(xi, yi)) / scale
        rad = float(radius[i]) if np.isfinite(radius[i]) else 0.0
        half = int(np.clip(np.ceil(3.0 * fwhm_px + 4.0 * rad), 10, 64))
        ix, iy = int(np.floor(xi + 0.5)), int(np.floor(yi + 0.5))
        if saturated is not None and np.any(
            saturated[max(iy - 1, 0) : max(iy + 2, 0), max(ix - 1, 0) : max(ix + 2, 0)]
        ):
            continue
        full = galsim.BoundsI(ix - half, ix + half, iy - half, iy + half)
        psf_image = galsim.ImageD(full, scale=scale)
        psf_field.galsim_profile(xi, yi).drawImage(psf_image, center=(xi, yi))
        x0, x1 = max(ix - half, 0), min(ix + half, width - 1)
        y0, y1 = max(iy - half, 0), min(iy + half, height - 1)
        if x0 > x1 or y0 > y1:
            continue
        data = image[y0 : y1 + 1, x0 : x1 + 1].astype(np.float64)
        var = variance[y0 : y1 + 1, x0 : x1 + 1].astype(np.float64)
        model = psf_image.array[y0 - full.ymin : y1 - full.ymin + 1, x0 - full.xmin : x1 - full.xmin + 1]
        usable = np.isfinite(data) & np.isfinite(var)
        if excluded is not None:
            usable &= ~excluded[y0 : y1 + 1, x0 : x1 + 1]
        if segmentation is not None:
            seg = segmentation[y0 : y1 + 1, x0 : x1 + 1]
            usable &= (seg == 0) | (seg == i + 1)

        # PSF flux: the fraction of the PSF's weight sum(P^2) that is usable must be large.
        p2_total = float(np.sum(psf_image.array**2))
        p2 = float(np.sum(model[usable] ** 2))
        if p2 > (1.0 - _MAX_MASKED_PSF_WEIGHT) * p2_total:
            psf_flux[i] = float(np.sum(model[usable] * data[usable])) / p2
            psf_flux_err[i] = float(np.sqrt(np.sum(model[usable] ** 2 * var[usable]))) / p2

        # Adaptive moments of the PSF (the aperture correction and T_psf) ...
        guess_sigma = fwhm_px / 2.3548
        try:
            psf_moments = galsim.hsm.FindAdaptiveMom(
                psf_image, guess_sig=guess_sigma, guess_centroid=galsim.PositionD(xi, yi), strict=True
            )
        except galsim.GalSimError:
            continue
        t_psf[i] = _moments_trace(psf_moments)
        # ... and of the object.
        stamp = galsim.ImageD(np.ascontiguousarray(data), xmin=x0, ymin=y0, scale=scale)
        badpix = galsim.ImageI(np.ascontiguousarray((~usable).astype(np.int32)), xmin=x0, ymin=y0)
        obj_moments = galsim.hsm.FindAdaptiveMom(
            stamp,
            badpix=badpix,
            guess_sig=guess_sigma,
            guess_centroid=galsim.PositionD(xi, yi),
            strict=False,
        )
        if obj_moments.moments_status != 0 or not obj_moments.moments_amp > 0:
            continue
        # The Gaussian weight must not wander off to a neighbour or noise spike.
        centroid = obj_moments.moments_centroid
        if np.hypot(centroid.x - xi, centroid.y - yi) > max(2.0, fwhm_px):
            continue
        correction = 1.0 / psf_moments.moments_amp
        sigma2 = obj_moments.moments_sigma**2
        background_var = float(np.median(var[usable])) if np.any(usable) else np.nan
        t_obj[i] = _moments_trace(obj_moments)
        gauss_flux[i] = obj_moments.moments_amp * correction
        gauss_flux_err[i] = np.sqrt(4.0 * np.pi * sigma2 * background_var) * correction

    extendedness, extendedness_flag = compute_extendedness(psf_flux, gauss_flux, flux_ratio=flux_ratio)
    size_extendedness, size_flag = compute_size_extendedness(t_obj, t_psf)
    return Table(
        {
            "psfFlux": psf_flux,
            "psfFluxErr": psf_flux_err,
            "psfFlux_flag": ~np.isfinite(psf_flux),
            "gaussianFlux": gauss_flux,
            "gaussianFluxErr": gauss_flux_err,
            "gaussianFlux_flag": ~np.isfinite(gauss_flux),
            "T_obj": t_obj,
            "T_psf": t_psf,
            "extendedness": extendedness,
            "extendedness_flag": extendedness_flag,
            "sizeExtendedness": size_extendedness,
            "sizeExtendedness_flag": size_flag,
        }
    )
