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

"""LSST survey numbers used by the simulator, taken from `surveycodex`.

Pixel scale, per-band zero point (the AB magnitude that gives 1 electron per second), sky
brightness and median PSF FWHM come from ``surveycodex``'s LSST entry; only the single-visit
exposure time (30 s) and the detector's saturation level are set here.
"""

from __future__ import annotations

__all__ = [
    "BandInfo",
    "DEFAULT_EXPOSURE_TIME",
    "SATURATION_LEVEL",
    "available_bands",
    "get_band",
    "pixel_scale",
    "mag_to_flux",
    "flux_to_mag",
    "sky_level",
]

import dataclasses
import functools
from typing import Any

import numpy as np

DEFAULT_EXPOSURE_TIME: float = 30.0
"""Single-visit exposure time in seconds (``surveycodex`` only gives the 10-year total)."""

SATURATION_LEVEL: float = 1.0e5
"""Pixel level (electrons, sky included) above which a pixel is saturated."""

_SURVEY_NAME = "LSST"


@dataclasses.dataclass(frozen=True)
class BandInfo:
    """Photometric properties of one LSST band.

    Attributes
    ----------
    band : `str`
        Band name (``u``, ``g``, ``r``, ``i``, ``z`` or ``y``).
    zero_point : `float`
        AB magnitude of a source giving 1 electron per second.
    sky_brightness : `float`
        Dark-sky brightness in AB magnitudes per square arcsecond.
    psf_fwhm : `float`
        Median PSF FWHM in arcseconds.
    pixel_scale : `float`
        Pixel scale in arcseconds per pixel.
    """

    band: str
    zero_point: float
    sky_brightness: float
    psf_fwhm: float
    pixel_scale: float


@functools.cache
def _survey() -> Any:
    import surveycodex

    return surveycodex.get_survey(_SURVEY_NAME)


def available_bands() -> tuple[str, ...]:
    """Return the names of the bands the simulator knows.

    Returns
    -------
    bands : `tuple` [`str`]
        Band names in wavelength order.
    """
    return tuple(_survey().available_filters)


def pixel_scale() -> float:
    """Return the LSST pixel scale.

    Returns
    -------
    scale : `float`
        Arcseconds per pixel.
    """
    return float(_survey().pixel_scale.to_value("arcsec"))


@functools.cache
def get_band(band: str) -> BandInfo:
    """Return the photometric properties of an LSST band.

    Parameters
    ----------
    band : `str`
        Band name, one of ``u g r i z y``.

    Returns
    -------
    info : `BandInfo`
        Zero point, sky brightness, PSF FWHM and pixel scale of the band.

    Raises
    ------
    ValueError
        If ``band`` is not an LSST band.
    """
    bands = available_bands()
    if band not in bands:
        raise ValueError(f"unknown band {band!r}; expected one of {', '.join(bands)}")
    filt = _survey().get_filter(band)
    return BandInfo(
        band=band,
        zero_point=float(filt.zeropoint.to_value("mag")),
        sky_brightness=float(filt.sky_brightness.value),
        psf_fwhm=float(filt.psf_fwhm.to_value("arcsec")),
        pixel_scale=pixel_scale(),
    )


def _check_exposure_time(exposure_time: float) -> None:
    if not (np.isfinite(exposure_time) and exposure_time > 0):
        raise ValueError(f"exposure_time must be positive and finite, got {exposure_time!r}")


def mag_to_flux(
    mag: float | np.ndarray, band: str, exposure_time: float = DEFAULT_EXPOSURE_TIME
) -> np.ndarray:
    """Convert AB magnitudes to total electrons collected in one exposure.

    Parameters
    ----------
    mag : `float` or `numpy.ndarray`
        AB magnitudes.
    band : `str`
        Band name.
    exposure_time : `float`, optional
        Exposure time in seconds.

    Returns
    -------
    flux : `numpy.ndarray`
        Electrons, ``exposure_time * 10**(-0.4 * (mag - zero_point))``.

    Raises
    ------
    ValueError
        If the band is unknown or the exposure time is not positive.
    """
    _check_exposure_time(exposure_time)
    zp = get_band(band).zero_point
    return exposure_time * 10.0 ** (-0.4 * (np.asarray(mag, dtype=np.float64) - zp))


def flux_to_mag(
    flux: float | np.ndarray, band: str, exposure_time: float = DEFAULT_EXPOSURE_TIME
) -> np.ndarray:
    """Convert electrons collected in one exposure to AB magnitudes.

    Parameters
    ----------
    flux : `float` or `numpy.ndarray`
        Electrons; non-positive values give NaN.
    band : `str`
        Band name.
    exposure_time : `float`, optional
        Exposure time in seconds.

    Returns
    -------
    mag : `numpy.ndarray`
        AB magnitudes.

    Raises
    ------
    ValueError
        If the band is unknown or the exposure time is not positive.
    """
    _check_exposure_time(exposure_time)
    zp = get_band(band).zero_point
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, zp - 2.5 * np.log10(flux / exposure_time), np.nan)


def sky_level(band: str, exposure_time: float = DEFAULT_EXPOSURE_TIME) -> float:
    """Return the mean sky level per pixel of one exposure.

    Parameters
    ----------
    band : `str`
        Band name.
    exposure_time : `float`, optional
        Exposure time in seconds.

    Returns
    -------
    sky : `float`
        Electrons per pixel: the band's sky brightness over one pixel's area.

    Raises
    ------
    ValueError
        If the band is unknown or the exposure time is not positive.
    """
    info = get_band(band)
    sky_mag_per_pixel = info.sky_brightness - 2.5 * np.log10(info.pixel_scale**2)
    return float(mag_to_flux(sky_mag_per_pixel, band, exposure_time))
