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

"""Sky coordinates of simulated detectors: the gnomonic (TAN) WCS."""

from __future__ import annotations

__all__ = ["DETECTOR_GAP", "detector_offset", "DEFAULT_PIXEL_SCALE_ARCSEC", "make_tan_wcs"]

import math

import numpy as np
from astropy.wcs import WCS

DEFAULT_PIXEL_SCALE_ARCSEC: float = 0.2
"""LSST pixel scale in arcseconds."""


def make_tan_wcs(
    ra_deg: float,
    dec_deg: float,
    width: int,
    height: int,
    *,
    pixel_scale_arcsec: float = DEFAULT_PIXEL_SCALE_ARCSEC,
    rotation_deg: float = 0.0,
    offset: tuple[float, float] = (0.0, 0.0),
) -> WCS:
    """Make a gnomonic (TAN) WCS for a detector.

    Parameters
    ----------
    ra_deg, dec_deg : `float`
        ICRS tangent point (degrees): the detector centre, pixel ``((width - 1) / 2,
        (height - 1) / 2)`` in 0-based coordinates, shifted by ``offset``.
    width, height : `int`
        Detector size in pixels (x then y).
    pixel_scale_arcsec : `float`, optional
        Pixel scale in arcseconds.
    rotation_deg : `float`, optional
        Position angle of the +y axis, east of north (0: north up, east left).
    offset : `tuple` [`float`, `float`], optional
        Detector centre minus tangent point, in pixels along x and y (for detectors of a
        mosaic sharing one boresight, see `lsst.meas.contextnet.sim.exposure.detector_offset`).

    Returns
    -------
    wcs : `astropy.wcs.WCS`
        The WCS, with FITS (1-based) ``CRPIX``.

    Raises
    ------
    ValueError
        Raised if a size or the pixel scale is not positive, or ``dec_deg`` is outside [-90, 90].

    """
    if width < 1 or height < 1:
        raise ValueError(f"Detector size width={width!r}, height={height!r} must be positive.")
    if not pixel_scale_arcsec > 0:
        raise ValueError(f"pixel_scale_arcsec={pixel_scale_arcsec!r} must be positive.")
    if not -90.0 <= dec_deg <= 90.0:
        raise ValueError(f"dec_deg={dec_deg!r} must be in [-90, 90].")
    scale = pixel_scale_arcsec / 3600.0
    theta = math.radians(rotation_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.crval = [float(ra_deg) % 360.0, float(dec_deg)]
    wcs.wcs.crpix = [(width + 1) / 2.0 - offset[0], (height + 1) / 2.0 - offset[1]]
    wcs.wcs.cd = np.array([[-scale * cos, scale * sin], [scale * sin, scale * cos]])
    wcs.pixel_shape = (width, height)
    return wcs


DETECTOR_GAP = 100
"""Gap between neighbouring detectors of SimCam, in pixels."""


def detector_offset(detector: int, size: int, gap: int = DETECTOR_GAP) -> tuple[float, float]:
    """Offset of a detector's centre from the boresight, in pixels: SimCam's one layout.

    Both the detectors' WCS (`make_tan_wcs` ``offset``) and their focal-plane positions in the
    repository's camera (`lsst.meas.contextnet.sim.repo.make_detector`) use it.

    Detectors sit on a grid three detectors wide: detector ``d`` is in column ``d % 3 - 1`` and
    row ``d // 3 - 1``, so detector 4 is centred on the boresight.

    Parameters
    ----------
    detector : `int`
        Detector number (non-negative).
    size : `int`
        Detector side in pixels.
    gap : `int`, optional
        Gap between detectors in pixels.

    Returns
    -------
    dx, dy : `float`
        Offset along the detector's x and y axes.

    Raises
    ------
    ValueError
        If ``detector`` is negative.
    """
    if detector < 0:
        raise ValueError(f"detector must be non-negative, got {detector!r}")
    column, row = detector % 3 - 1, detector // 3 - 1
    return float(column * (size + gap)), float(row * (size + gap))
