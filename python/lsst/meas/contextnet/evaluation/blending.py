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

"""Which true objects of a simulated exposure are blended with a neighbour.

A detected source whose true object has another true object close by holds the light of both:
a star blended with a galaxy is, as an image, an extended source, and the truth match (the
brightest object near the detection) still calls it a star.  The evaluation marks such objects
so that the recall of stars can be reported for isolated stars and for blended ones apart.
"""

from __future__ import annotations

__all__ = [
    "BLENDED_COLUMN",
    "BLEND_MAX_FAINTER_MAG",
    "BLEND_MAX_SEPARATION_FWHM",
    "TRUTH_BLEND_COLUMNS",
    "blended_objects",
    "truth_blended",
]

import numpy as np
from astropy.table import Table

BLEND_MAX_SEPARATION_FWHM = 2.0
"""A neighbour closer than this many PSF FWHM (the object's own) blends an object: a convention.
At two FWHM the neighbour's light is still a few percent of its peak at the object's
half-maximum contour, and a simple detection usually takes the pair as one source."""

BLEND_MAX_FAINTER_MAG = 3.0
"""A neighbour blends an object only if it is at most this many magnitudes fainter (at least
6% of the object's flux); every brighter neighbour counts."""

BLENDED_COLUMN = "blended"
"""Name of the boolean truth column `truth_blended` makes."""

TRUTH_BLEND_COLUMNS: tuple[str, ...] = ("ra_true", "dec_true", "psf_fwhm", "mag")
"""Truth columns `truth_blended` reads: true position (degrees), PSF FWHM at the object (arcsec)
and magnitude."""


def blended_objects(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    fwhm_arcsec: np.ndarray,
    mag: np.ndarray,
    *,
    max_separation_fwhm: float = BLEND_MAX_SEPARATION_FWHM,
    max_fainter_mag: float = BLEND_MAX_FAINTER_MAG,
) -> np.ndarray:
    """Return which objects have a neighbour that blends them.

    Object ``i`` is blended when another object ``j`` lies closer than
    ``max_separation_fwhm * fwhm_arcsec[i]`` and ``mag[j] - mag[i] <= max_fainter_mag``.  The
    relation is not symmetric: a faint object next to a bright one is blended, the bright one
    not.

    Parameters
    ----------
    ra_deg, dec_deg : `numpy.ndarray`
        True positions in degrees, shape ``(N,)``, all of one exposure.  Separations are taken
        in a flat projection about the mean position (``RA cos(dec0)``, ``dec``), good to a small
        fraction of an arcsecond over a detector away from the poles.
    fwhm_arcsec : `numpy.ndarray`
        PSF FWHM at each object in arcseconds.  An object whose FWHM is not finite (or not
        positive) is never blended, but may blend its neighbours.
    mag : `numpy.ndarray`
        Magnitudes.  An object with a non-finite position or magnitude neither blends nor is
        blended.
    max_separation_fwhm : `float`, optional
        Separation, in units of the object's PSF FWHM, below which a neighbour counts.
    max_fainter_mag : `float`, optional
        How much fainter than the object a neighbour may be and still count.

    Returns
    -------
    blended : `numpy.ndarray`
        Boolean ``(N,)``.

    Raises
    ------
    ValueError
        If the arrays differ in shape or a limit is not positive.

    """
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    fwhm = np.asarray(fwhm_arcsec, dtype=np.float64)
    mag = np.asarray(mag, dtype=np.float64)
    if not (ra.ndim == 1 and ra.shape == dec.shape == fwhm.shape == mag.shape):
        raise ValueError(
            f"ra, dec, fwhm and mag must be 1-d of one length, got {ra.shape}, {dec.shape}, "
            f"{fwhm.shape}, {mag.shape}"
        )
    if not (max_separation_fwhm > 0 and max_fainter_mag > 0):
        raise ValueError(
            f"limits must be positive, got max_separation_fwhm={max_separation_fwhm}, "
            f"max_fainter_mag={max_fainter_mag}"
        )
    blended = np.zeros(len(ra), dtype=bool)
    valid = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mag))
    if len(valid) < 2:
        return blended
    ra, dec, mag = ra[valid], dec[valid], mag[valid]
    radius = max_separation_fwhm * fwhm[valid]
    radius[~(np.isfinite(radius) & (radius > 0))] = 0.0  # never blended, may still blend others
    ra0 = np.angle(np.mean(np.exp(1j * np.radians(ra))), deg=True)  # circular mean: RA wraps at 360
    dec0 = float(np.mean(dec))
    x = ((ra - ra0 + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec0)) * 3600.0
    y = (dec - dec0) * 3600.0
    # Sweep along x: the candidates of object i are the objects within its own radius in x,
    # pairs (i, j) listed as runs of consecutive j in x order.
    order = np.argsort(x, kind="stable")
    xs, reach = x[order], radius[order]
    first = np.searchsorted(xs, xs - reach, side="left")
    last = np.searchsorted(xs, xs + reach, side="right")
    counts = last - first
    i = np.repeat(np.arange(len(xs)), counts)
    j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(first, counts)
    i, j = order[i], order[j]
    close = (i != j) & (np.hypot(x[j] - x[i], y[j] - y[i]) < radius[i])
    close &= mag[j] - mag[i] <= max_fainter_mag
    blended[valid[i[close]]] = True
    return blended


def truth_blended(truth: Table) -> np.ndarray | None:
    """Return `blended_objects` for one exposure's truth table, or `None` if it lacks a column.

    Parameters
    ----------
    truth : `astropy.table.Table`
        Every true object of one exposure, detected or not (an undetected neighbour still adds
        its light), with the columns `TRUTH_BLEND_COLUMNS`.

    Returns
    -------
    blended : `numpy.ndarray` or `None`
        Boolean per truth row; `None` when a column of `TRUTH_BLEND_COLUMNS` is missing.
    """
    if not set(TRUTH_BLEND_COLUMNS) <= set(truth.colnames):
        return None

    def column(name: str) -> np.ndarray:
        return np.ma.filled(np.ma.asarray(truth[name], dtype=np.float64), np.nan)

    return blended_objects(column("ra_true"), column("dec_true"), column("psf_fwhm"), column("mag"))
