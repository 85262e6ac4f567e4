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

"""A smoothly varying PSF field for one simulated visit and detector.

The PSF is a profile of one family (`PSF_FAMILIES`: a Moffat, a Kolmogorov, or a Kolmogorov
convolved with an obscured-pupil optical PSF with aberrations), scaled to unit FWHM, whose
FWHM and shear (g1, g2) are quadratic polynomials of the detector position.  A Moffat field is
what the exposures carry as their PSF *model*; the other families are true PSFs only, and
`PsfField.fitted_model` makes the Moffat model of a true field (index and size fitted to the
profile, FWHM and shear with the errors a real PSF fit has).

A Moffat field is exported as a Piff model (`PsfField.to_piff`): a ``piff.SimplePSF`` made of
a ``piff.GSObjectModel`` (the Moffat, dilated by the FWHM and sheared) and a second-order
``piff.BasisPolynomial`` in the field coordinates ``(u, v)`` whose coefficients are set by
hand, not fitted.  `PsfField.galsim_profile` evaluates the very same ``GSObjectModel`` so the
stars in the simulated image and the PSF attached to it agree by construction.
"""

from __future__ import annotations

__all__ = [
    "PSF_VARIATIONS",
    "DEFAULT_MOFFAT_BETA",
    "PSF_MODEL_STAMP_SIZE",
    "RENDER_GSPARAMS",
    "PsfField",
    "area_fwhm",
    "draw_visit_fwhm",
    "fit_moffat",
    "unit_fwhm_profile",
    "visit_psf_fields",
]

import functools
from math import comb
from typing import TYPE_CHECKING

import galsim
import numpy as np
from lsst.meas.contextnet.sim.world import NARROW_FWHM_RANGE, PSF_FAMILIES, PSF_VARIATIONS
from lsst.meas.contextnet.trainingworld import core_fwhm

if TYPE_CHECKING:
    import piff
    from lsst.meas.contextnet.sim.world import VisitConditions


DEFAULT_MOFFAT_BETA: float = 3.5
"""Moffat index of the simulated PSF."""

PSF_MODEL_STAMP_SIZE: int = 25
"""Side in pixels of the PSF model's kernel images (the stamp size of the exposures' Piff PSF)."""

_N_COEFFS = 6  # 1, xi, eta, xi^2, xi*eta, eta^2


def _check_variation(variation: str) -> None:
    if variation not in PSF_VARIATIONS:
        raise ValueError(f"unknown psf_variation {variation!r}; expected one of {', '.join(PSF_VARIATIONS)}")


def _check_range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise ValueError(f"{name} must be a (low, high) pair with 0 < low <= high, got {value!r}")
    return low, high


def draw_visit_fwhm(
    rng: np.random.Generator,
    variation: str,
    fwhm_range: tuple[float, float] = NARROW_FWHM_RANGE,
    nominal_fwhm: float = 0.81,
) -> float:
    """Draw the detector-mean PSF FWHM of one visit.

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random number generator (one draw is taken in every mode, so the stream does not depend
        on the mode).
    variation : `str`
        ``"full"`` draws uniformly in ``fwhm_range``; ``"none"`` and ``"spatial"`` return
        ``nominal_fwhm``.
    fwhm_range : `tuple` [`float`, `float`], optional
        Range of the visit FWHM in arcseconds.
    nominal_fwhm : `float`, optional
        FWHM in arcseconds used when the visit FWHM does not vary.

    Returns
    -------
    fwhm : `float`
        FWHM in arcseconds.

    Raises
    ------
    ValueError
        If ``variation`` is unknown or the range is not valid.
    """
    _check_variation(variation)
    low, high = _check_range("fwhm_range", fwhm_range)
    u = float(rng.uniform())
    if variation == "full":
        return low + (high - low) * u
    if not (np.isfinite(nominal_fwhm) and nominal_fwhm > 0):
        raise ValueError(f"nominal_fwhm must be positive, got {nominal_fwhm!r}")
    return float(nominal_fwhm)


@functools.cache
def _gsobject_model(beta: float):
    """Return the (immutable in use) Piff model of a unit-FWHM Moffat, shared per ``beta``."""
    import piff

    return piff.GSObjectModel(galsim.Moffat(beta=beta, fwhm=1.0), include_pixel=True)


_WING_BETA = 2.5
"""Moffat index whose wings stand for those of the non-Moffat families when sizing stamps."""

_OBSCURATION = 0.61
"""Linear central obscuration of the LSST pupil (the 8.4 m primary's 5.1 m hole)."""


RENDER_GSPARAMS = galsim.GSParams(folding_threshold=1.0e-2, maxk_threshold=3.0e-3)
"""GalSim accuracy settings of the simulator's galaxy renderings, also carried by the aberrated optical
PSF: a galaxy convolved with a PSF of the same settings reuses the PSF (GalSim copies, and
recomputes, a profile whose settings differ)."""


_AREA_FWHM_SCALE: float = 0.02
"""Sampling (arcsec) of the image `area_fwhm` measures a profile of FWHM near 1 arcsecond on."""


def area_fwhm(profile: galsim.GSObject, scale: float = _AREA_FWHM_SCALE) -> float:
    """Return a profile's area-equivalent FWHM: the diameter of the disk as large as its core.

    `~lsst.meas.contextnet.trainingworld.core_fwhm` of the profile drawn (without a pixel) on an
    image GalSim sizes to hold it.  It stays finite for a lopsided, multi-peaked or annular core
    (strong aberrations), where a radial half-maximum search (`galsim.Image.calculateFWHM`) can
    return a fraction of the core.

    Parameters
    ----------
    profile : `galsim.GSObject`
        Profile to measure, in arcseconds.
    scale : `float`, optional
        Pixel scale of the image, arcseconds; a few percent of the FWHM keeps the area's
        discreteness below a percent.

    Returns
    -------
    fwhm : `float`
        ``2 * sqrt(area / pi)`` for the area at or above half the peak, arcseconds.
    """
    return float(core_fwhm(profile.drawImage(scale=scale, method="no_pixel").array, scale**2))


@functools.cache
def unit_fwhm_profile(
    family: str,
    beta: float = DEFAULT_MOFFAT_BETA,
    aberrations: tuple[float, ...] = (),
    optical_fraction: float = 0.4,
) -> galsim.GSObject:
    """Return a PSF family's round profile scaled to a FWHM of 1 arcsecond.

    Parameters
    ----------
    family : `str`
        One of `PSF_FAMILIES`.
    beta : `float`, optional
        Moffat index (``"moffat"``).
    aberrations : `tuple` [`float`, ...], optional
        Zernike coefficients 4, 5, ... in waves (``"kolmogorov_optical"``).
    optical_fraction : `float`, optional
        FWHM of the optical PSF relative to the atmosphere's (``"kolmogorov_optical"``): the
        optical PSF's ``lam_over_diam`` is this many atmospheric FWHMs, standing for the
        design, figure and alignment errors of the optics rather than the diffraction limit.

    Returns
    -------
    profile : `galsim.GSObject`
        Unit-flux profile of unit FWHM (for the composite family the area-equivalent FWHM,
        `area_fwhm`), before any shear; the optical aberrations make it asymmetric.

    Raises
    ------
    ValueError
        If ``family`` is unknown.
    """
    if family == "moffat":
        return galsim.Moffat(beta=beta, fwhm=1.0)
    if family == "kolmogorov":
        return galsim.Kolmogorov(fwhm=1.0)
    if family == "kolmogorov_optical":
        optics = galsim.OpticalPSF(
            lam_over_diam=float(optical_fraction),
            obscuration=_OBSCURATION,
            aberrations=[0.0] * 4 + [float(a) for a in aberrations],
            gsparams=RENDER_GSPARAMS,
        )
        profile = galsim.Convolve(galsim.Kolmogorov(fwhm=1.0, gsparams=RENDER_GSPARAMS), optics)
        fwhm = area_fwhm(profile)
        # Rendered from an image of +-5.3 FWHM: drawing through the phase-screen profile itself
        # costs 8x more per object (large FFTs for its far diffraction wings, about 3% of the
        # light, which the image cuts; inside it the two agree to 0.3% of the peak).
        image = profile.dilate(1.0 / fwhm).drawImage(nx=128, ny=128, scale=1.0 / 12.0, method="no_pixel")
        return galsim.InterpolatedImage(image, gsparams=RENDER_GSPARAMS)
    raise ValueError(f"unknown PSF family {family!r}; expected one of {', '.join(PSF_FAMILIES)}")


_FIT_SAMPLES: int = 48
"""Side of the image (samples) the Moffat model is fitted on."""

_FIT_SCALE: float = 0.125
"""Sampling of the fit image in units of the profile's FWHM (about 0.2" pixels at 1.6")."""


@functools.cache
def fit_moffat(
    family: str,
    beta: float = DEFAULT_MOFFAT_BETA,
    aberrations: tuple[float, ...] = (),
    optical_fraction: float = 0.4,
) -> tuple[float, float]:
    """Fit a Moffat's index and size to a family's unit-FWHM profile.

    This is the PSF model a pipeline would fit to the stars of a field whose true PSF is of
    another family: least squares with a free amplitude (the stars' fluxes are unknown) over an
    image of 6 FWHM sampled at 1/8 FWHM, beta on a grid of 0.1 over 1.5-8 and, for each beta,
    the FWHM by a bounded scalar search.  Fitting the size matters: the FWHM of an aberrated
    optical PSF measures its core only, and a Moffat of that FWHM misses the light of its halo,
    so photometry with it would call every star extended.

    Parameters
    ----------
    family, beta, aberrations, optical_fraction
        As for `unit_fwhm_profile`.

    Returns
    -------
    beta : `float`
        The best Moffat index (``beta`` itself for the Moffat family).
    scale : `float`
        The best Moffat FWHM in units of the profile's FWHM (1 for the Moffat family).
    """
    from scipy.optimize import minimize_scalar

    if family == "moffat":
        return float(beta), 1.0
    target = unit_fwhm_profile(family, beta, aberrations, optical_fraction)
    image = target.drawImage(nx=_FIT_SAMPLES, ny=_FIT_SAMPLES, scale=_FIT_SCALE, method="no_pixel").array
    best = (np.inf, DEFAULT_MOFFAT_BETA, 1.0)
    for trial in np.round(np.arange(1.5, 8.0001, 0.1), 3):

        def cost(fwhm: float, trial: float = float(trial)) -> float:
            model = galsim.Moffat(beta=trial, fwhm=fwhm).drawImage(
                nx=_FIT_SAMPLES, ny=_FIT_SAMPLES, scale=_FIT_SCALE, method="no_pixel"
            )
            amplitude = float(np.sum(model.array * image) / np.sum(model.array**2))
            return float(np.sum((amplitude * model.array - image) ** 2))

        result = minimize_scalar(cost, bounds=(0.5, 2.5), method="bounded", options={"xatol": 1e-3})
        if result.fun < best[0]:
            best = (float(result.fun), float(trial), float(result.x))
    return best[1], best[2]


def _quadratic_terms(xi: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Return the 6 quadratic monomials ``[1, xi, eta, xi^2, xi*eta, eta^2]`` stacked last."""
    one = np.ones_like(xi)
    return np.stack([one, xi, eta, xi * xi, xi * eta, eta * eta], axis=-1)


class PsfField:
    """Moffat PSF whose FWHM and shear vary quadratically across a detector.

    The polynomials are written in normalized detector coordinates
    ``xi = 2 x / (width - 1) - 1`` and ``eta = 2 y / (height - 1) - 1`` (pixel centres at
    integers, 0-based) with the terms ``[1, xi, eta, xi^2, xi*eta, eta^2]``.

    Parameters
    ----------
    width, height : `int`
        Detector size in pixels.
    fwhm_coeffs, g1_coeffs, g2_coeffs : `numpy.ndarray`
        Six polynomial coefficients each for the FWHM (arcsec) and the two reduced-shear
        components of the PSF.
    beta : `float`, optional
        Moffat index.
    pixel_scale : `float`, optional
        Arcseconds per pixel.

    Raises
    ------
    ValueError
        If a size is smaller than 2 pixels, a coefficient vector does not have 6 finite values,
        or the FWHM is not positive or the shear not below 0.5 somewhere on the detector.

    Notes
    -----
    The shear is area preserving, so `fwhm_at` is the FWHM of the circular profile before
    shearing (the geometric mean of the FWHM along the major and minor axes).
    """

    def __init__(
        self,
        width: int,
        height: int,
        fwhm_coeffs: np.ndarray,
        g1_coeffs: np.ndarray,
        g2_coeffs: np.ndarray,
        *,
        beta: float = DEFAULT_MOFFAT_BETA,
        pixel_scale: float = 0.2,
        family: str = "moffat",
        aberrations: tuple[float, ...] = (),
        optical_fraction: float = 0.4,
    ) -> None:
        if family not in PSF_FAMILIES:
            raise ValueError(f"unknown PSF family {family!r}; expected one of {', '.join(PSF_FAMILIES)}")
        self._family = family
        self._aberrations = tuple(float(a) for a in aberrations)
        self._optical_fraction = float(optical_fraction)
        if int(width) < 2 or int(height) < 2:
            raise ValueError(f"detector size must be at least 2x2 pixels, got {width}x{height}")
        if not (np.isfinite(beta) and beta > 1.1):
            raise ValueError(f"Moffat beta must be > 1.1, got {beta!r}")
        if not (np.isfinite(pixel_scale) and pixel_scale > 0):
            raise ValueError(f"pixel_scale must be positive, got {pixel_scale!r}")
        self._width = int(width)
        self._height = int(height)
        self._beta = float(beta)
        self._pixel_scale = float(pixel_scale)
        coeffs = []
        for name, value in (("fwhm_coeffs", fwhm_coeffs), ("g1_coeffs", g1_coeffs), ("g2_coeffs", g2_coeffs)):
            array = np.asarray(value, dtype=np.float64)
            if array.shape != (_N_COEFFS,) or not np.all(np.isfinite(array)):
                raise ValueError(f"{name} must hold {_N_COEFFS} finite values, got {value!r}")
            coeffs.append(array)
        self._coeffs = np.stack(coeffs)  # (3 params, 6 terms)
        grid = np.linspace(0.0, 1.0, 17)
        gx, gy = np.meshgrid(grid * (self._width - 1), grid * (self._height - 1))
        fwhm, g1, g2 = self.params_at(gx, gy)
        if np.any(fwhm <= 0):
            raise ValueError("the PSF FWHM polynomial is not positive everywhere on the detector")
        if np.any(np.hypot(g1, g2) >= 0.5):
            raise ValueError("the PSF shear polynomial reaches |g| >= 0.5 on the detector")

    @classmethod
    def from_rng(
        cls,
        rng: np.random.Generator,
        width: int,
        height: int,
        *,
        variation: str = "full",
        visit_fwhm: float | None = None,
        fwhm_range: tuple[float, float] = NARROW_FWHM_RANGE,
        nominal_fwhm: float = 0.81,
        size_variation: tuple[float, float] = (0.10, 0.20),
        shear_amplitude: float = 0.02,
        beta: float = DEFAULT_MOFFAT_BETA,
        pixel_scale: float = 0.2,
        family: str = "moffat",
        aberrations: tuple[float, ...] = (),
        optical_fraction: float = 0.4,
    ) -> PsfField:
        """Draw a random PSF field.

        Parameters
        ----------
        rng : `numpy.random.Generator`
            Random number generator.  The same number of values is drawn in every mode.
        width, height : `int`
            Detector size in pixels.
        variation : `str`, optional
            ``"none"``: a round PSF of FWHM ``nominal_fwhm`` everywhere; ``"spatial"``: mean
            FWHM ``nominal_fwhm``, size and shear varying across the detector; ``"full"``: mean
            FWHM ``visit_fwhm`` (drawn uniformly in ``fwhm_range`` when not given) and spatial
            variation.
        visit_fwhm : `float`, optional
            Detector-mean FWHM in arcseconds for ``"full"`` (lets all detectors of a visit share
            it; see `draw_visit_fwhm`).
        fwhm_range : `tuple` [`float`, `float`], optional
            Range of the visit FWHM in arcseconds.
        nominal_fwhm : `float`, optional
            FWHM in arcseconds of the modes without visit-to-visit variation.
        size_variation : `tuple` [`float`, `float`], optional
            Range of the peak-to-peak fractional FWHM variation across the detector.
        shear_amplitude : `float`, optional
            Standard deviation of the constant shear components; the gradient and curvature
            coefficients have half of it (each coefficient is clipped at twice its rms).
        beta : `float`, optional
            Moffat index.
        pixel_scale : `float`, optional
            Arcseconds per pixel.
        family, aberrations, optical_fraction : optional
            PSF family and its parameters (see `unit_fwhm_profile`).

        Returns
        -------
        field : `PsfField`
            The drawn PSF field.

        Raises
        ------
        ValueError
            If ``variation`` is unknown or a range or amplitude is not valid.
        """
        _check_variation(variation)
        low, high = _check_range("size_variation", size_variation)
        if not (np.isfinite(shear_amplitude) and 0 <= shear_amplitude < 0.1):
            raise ValueError(f"shear_amplitude must be in [0, 0.1), got {shear_amplitude!r}")
        drawn_fwhm = draw_visit_fwhm(rng, variation, fwhm_range, nominal_fwhm)
        if variation == "full" and visit_fwhm is not None:
            if not (np.isfinite(visit_fwhm) and visit_fwhm > 0):
                raise ValueError(f"visit_fwhm must be positive, got {visit_fwhm!r}")
            drawn_fwhm = float(visit_fwhm)
        mean_fwhm = drawn_fwhm
        shape_terms = rng.normal(size=_N_COEFFS - 1)
        ptp = rng.uniform(low, high)
        # Constant shear of rms ``shear_amplitude``, spatial terms of half that.
        shear_rms = np.full(_N_COEFFS, 0.5 * shear_amplitude)
        shear_rms[0] = shear_amplitude
        shear = np.clip(rng.normal(size=(2, _N_COEFFS)), -2.0, 2.0) * shear_rms

        fwhm_coeffs = np.zeros(_N_COEFFS)
        fwhm_coeffs[0] = mean_fwhm
        g1_coeffs = np.zeros(_N_COEFFS)
        g2_coeffs = np.zeros(_N_COEFFS)
        if variation != "none":
            grid = np.linspace(-1.0, 1.0, 33)
            xi, eta = np.meshgrid(grid, grid)
            shape = np.concatenate([[0.0], shape_terms])
            values = _quadratic_terms(xi, eta) @ shape
            scale = ptp / np.ptp(values)
            shape = shape * scale
            shape[0] = -values.mean() * scale
            fwhm_coeffs = mean_fwhm * (np.eye(_N_COEFFS)[0] + shape)
            g1_coeffs, g2_coeffs = shear
        return cls(
            width,
            height,
            fwhm_coeffs,
            g1_coeffs,
            g2_coeffs,
            beta=beta,
            pixel_scale=pixel_scale,
            family=family,
            aberrations=aberrations,
            optical_fraction=optical_fraction,
        )

    @property
    def width(self) -> int:
        """Detector width in pixels (`int`)."""
        return self._width

    @property
    def height(self) -> int:
        """Detector height in pixels (`int`)."""
        return self._height

    @property
    def beta(self) -> float:
        """Moffat index (`float`; used by the ``"moffat"`` family only)."""
        return self._beta

    @property
    def family(self) -> str:
        """PSF family, one of `PSF_FAMILIES` (`str`)."""
        return self._family

    @property
    def wing_beta(self) -> float:
        """Moffat index standing for the profile's wings when sizing stamps (`float`)."""
        return self._beta if self._family == "moffat" else _WING_BETA

    def unit_profile(self) -> galsim.GSObject:
        """Return the field's round, unit-FWHM profile (`unit_fwhm_profile`).

        Returns
        -------
        profile : `galsim.GSObject`
            The profile before dilation and shear.
        """
        return unit_fwhm_profile(self._family, self._beta, self._aberrations, self._optical_fraction)

    def fitted_model(
        self, size_error: float = 0.0, shear_error: tuple[float, float] = (0.0, 0.0)
    ) -> PsfField:
        """Return the Moffat PSF model a pipeline would fit to this (true) field.

        Parameters
        ----------
        size_error : `float`, optional
            Fractional error of the model's FWHM (the same at every position).
        shear_error : `tuple` [`float`, `float`], optional
            Error added to the model's constant shear terms.

        Returns
        -------
        model : `PsfField`
            A Moffat field with beta and size from `fit_moffat`: the FWHM polynomial times the
            fitted size and ``1 + size_error``, the shear polynomials offset by ``shear_error``.
        """
        beta, scale = fit_moffat(self._family, self._beta, self._aberrations, self._optical_fraction)
        fwhm, g1, g2 = self._coeffs.copy()
        fwhm *= scale * (1.0 + float(size_error))
        g1[0] += float(shear_error[0])
        g2[0] += float(shear_error[1])
        return PsfField(self._width, self._height, fwhm, g1, g2, beta=beta, pixel_scale=self._pixel_scale)

    @property
    def pixel_scale(self) -> float:
        """Arcseconds per pixel (`float`)."""
        return self._pixel_scale

    @property
    def coefficients(self) -> np.ndarray:
        """Copy of the polynomial coefficients, shape (3, 6): FWHM, g1, g2 (`numpy.ndarray`)."""
        return self._coeffs.copy()

    def _normalized(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xi = 2.0 * np.asarray(x, dtype=np.float64) / (self._width - 1) - 1.0
        eta = 2.0 * np.asarray(y, dtype=np.float64) / (self._height - 1) - 1.0
        return np.broadcast_arrays(xi, eta)

    def params_at(self, x: float | np.ndarray, y: float | np.ndarray) -> tuple[np.ndarray, ...]:
        """Evaluate FWHM and shear at pixel positions.

        Parameters
        ----------
        x, y : `float` or `numpy.ndarray`
            Pixel positions (0-based, broadcast together).

        Returns
        -------
        fwhm, g1, g2 : `numpy.ndarray`
            FWHM in arcseconds and reduced-shear components.
        """
        xi, eta = self._normalized(x, y)
        values = _quadratic_terms(xi, eta) @ self._coeffs.T
        return values[..., 0], values[..., 1], values[..., 2]

    def fwhm_at(self, x: float | np.ndarray, y: float | np.ndarray) -> np.ndarray:
        """Return the PSF FWHM at pixel positions.

        Parameters
        ----------
        x, y : `float` or `numpy.ndarray`
            Pixel positions (0-based).

        Returns
        -------
        fwhm : `numpy.ndarray`
            FWHM in arcseconds of the (circularized) PSF.
        """
        return self.params_at(x, y)[0]

    def mean_fwhm(self) -> float:
        """Return the FWHM averaged over the detector.

        Returns
        -------
        fwhm : `float`
            Arcseconds.
        """
        grid = np.linspace(0.0, 1.0, 33)
        gx, gy = np.meshgrid(grid * (self._width - 1), grid * (self._height - 1))
        return float(np.mean(self.fwhm_at(gx, gy)))

    def galsim_profile(self, x: float, y: float) -> galsim.GSObject:
        """Return the PSF at a pixel position as a GalSim profile.

        Parameters
        ----------
        x, y : `float`
            Pixel position (0-based).

        Returns
        -------
        profile : `galsim.GSObject`
            Unit-flux profile centred at the origin in arcseconds; it excludes the pixel
            response, so draw it with ``method="auto"``.  It is the profile the Piff model of
            `to_piff` returns at the same position.
        """
        fwhm, g1, g2 = (float(v) for v in self.params_at(x, y))
        if self._family == "moffat":
            return _gsobject_model(self._beta).getProfile(np.array([fwhm, g1, g2]))
        return self.unit_profile().dilate(fwhm).shear(g1=g1, g2=g2)

    def kernel_image(self, x: float, y: float, half_width: int) -> np.ndarray:
        """Draw the PSF centred in a small square image.

        Parameters
        ----------
        x, y : `float`
            Pixel position (0-based) at which the PSF is evaluated.
        half_width : `int`
            The image is ``2 * half_width + 1`` pixels on a side.

        Returns
        -------
        kernel : `numpy.ndarray`
            Pixel-integrated PSF, centred on the middle pixel, normalized to unit sum.
        """
        if half_width < 1:
            raise ValueError(f"half_width must be at least 1, got {half_width!r}")
        size = 2 * int(half_width) + 1
        image = self.galsim_profile(x, y).drawImage(nx=size, ny=size, scale=self._pixel_scale)
        array = image.array.astype(np.float64)
        return array / array.sum()

    def _piff_coefficients(self) -> np.ndarray:
        """Rewrite the polynomials in Piff's basis of field coordinates.

        Piff's ``BasisPolynomial(order=2, keys=("u", "v"))`` evaluates
        ``q @ [1, v, v^2, u, u*v, u^2]`` with ``u = scale * x`` and ``v = scale * y`` in
        arcseconds (a ``PixelScale`` WCS).  With ``xi = a u - 1`` and ``eta = b v - 1`` the
        coefficient of ``u^i v^j`` is
        ``sum_{p>=i, q>=j} c_pq C(p, i) a^i (-1)^(p-i) C(q, j) b^j (-1)^(q-j)``.
        """
        a = 2.0 / (self._pixel_scale * (self._width - 1))
        b = 2.0 / (self._pixel_scale * (self._height - 1))
        powers = [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]  # (xi power, eta power)
        piff_order = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0)]  # (u power, v power)
        q = np.zeros((3, len(piff_order)))
        for k, (i, j) in enumerate(piff_order):
            for t, (p, r) in enumerate(powers):
                if p < i or r < j:
                    continue
                factor = comb(p, i) * a**i * (-1.0) ** (p - i) * comb(r, j) * b**j * (-1.0) ** (r - j)
                q[:, k] += self._coeffs[:, t] * factor
        return q

    def to_piff(self) -> piff.PSF:
        """Export the field as a Piff PSF model.

        Returns
        -------
        psf : `piff.SimplePSF`
            A ``GSObjectModel`` of a unit-FWHM Moffat (parameters: dilation = FWHM in arcsec,
            g1, g2) interpolated by a second-order ``BasisPolynomial`` in ``(u, v)``, with a
            ``PixelScale`` WCS for chip 0 and no pointing.  ``psf.draw(x, y)`` and
            ``psf.get_profile(x, y)`` reproduce `galsim_profile` exactly.  The ``stars``
            attribute holds one position-only target star at the detector centre (Piff and
            ``lsst.images.psfs.PiffWrapper`` expect the attribute).
        """
        import piff

        if self._family != "moffat":
            raise ValueError(
                f"only a Moffat field can be exported as the exposure's PSF model, not {self._family!r}; "
                "use fitted_model()"
            )
        model = piff.GSObjectModel(galsim.Moffat(beta=self._beta, fwhm=1.0), include_pixel=True)
        interp = piff.BasisPolynomial(order=2, keys=("u", "v"))
        psf = piff.SimplePSF(model, interp)
        interp.q = self._piff_coefficients()
        wcs = {0: galsim.PixelScale(self._pixel_scale)}
        psf.set_context(wcs, None)
        cx, cy = (self._width - 1) / 2.0, (self._height - 1) / 2.0
        psf.stars = [piff.Star.makeTarget(x=cx, y=cy, wcs=wcs[0])]
        return psf

    def __repr__(self) -> str:
        return (
            f"PsfField(width={self._width}, height={self._height}, family={self._family!r}, "
            f"beta={self._beta}, mean_fwhm={self.mean_fwhm():.3f})"
        )


def visit_psf_fields(
    rng: np.random.Generator,
    conditions: VisitConditions,
    size: int,
    *,
    variation: str,
    fwhm_range: tuple[float, float],
    nominal_fwhm: float,
    pixel_scale: float,
) -> tuple[PsfField, PsfField]:
    """Draw the true PSF field of a visit-detector and the PSF model its exposure carries.

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random number generator of the field.
    conditions : `~lsst.meas.contextnet.sim.world.VisitConditions`
        The visit's conditions (FWHM, family, variation amplitudes, model errors).
    size : `int`
        Detector side in pixels.
    variation : `str`
        One of `PSF_VARIATIONS`.
    fwhm_range : `tuple` [`float`, `float`]
        The world's FWHM range.
    nominal_fwhm : `float`
        The band's median FWHM (modes without visit-to-visit variation).
    pixel_scale : `float`
        Arcseconds per pixel.

    Returns
    -------
    true, model : `tuple` [`PsfField`, `PsfField`]
        The field the pixels are drawn with, and the model: the true field itself when the
        conditions say the model is exact (the narrow world), else the Moffat a pipeline would
        fit to it (`PsfField.fitted_model`).
    """
    true = PsfField.from_rng(
        rng,
        size,
        size,
        variation=variation,
        visit_fwhm=conditions.fwhm,
        fwhm_range=fwhm_range,
        nominal_fwhm=nominal_fwhm,
        size_variation=conditions.psf_size_variation,
        shear_amplitude=conditions.psf_shear_amplitude,
        beta=conditions.moffat_beta,
        pixel_scale=pixel_scale,
        family=conditions.psf_family,
        aberrations=conditions.aberrations,
        optical_fraction=conditions.optical_fraction,
    )
    if conditions.exact_psf_model:
        return true, true
    return true, true.fitted_model(conditions.psf_model_size_error, conditions.psf_model_shear_error)
