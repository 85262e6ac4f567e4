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

"""Worlds: the distributions that simulated visits are drawn from.

A `World` is one definition shared by the full-image simulator
(`~lsst.meas.contextnet.sim.exposure.simulate_exposure`) and the fast training-data generator
(`~lsst.meas.contextnet.sim.generator.generate_set`): each visit draws its observing conditions
and its population parameters from it (`World.draw_visit`), and both generators act on the same
`VisitConditions`.  Worlds are selected by name (`get_world`); `WORLDS` lists them.

``narrow``
    The world of the first shipped model: r band, 30 s, Moffat PSF (beta = 3.5) of FWHM
    0.5"-1.3", bulge+disk galaxies with one size-magnitude relation, 40% stars, one density,
    the attached PSF model exact, isolated sources in the fast generator.

``randomized``
    The training world of the PSF-aware model, wide enough that real LSST visits lie inside it.
    Each distribution and why:

    * band uniform over ``ugrizy`` and exposure time uniform over 15-30 s: LSST observes in all
      six filters, with 15 s snaps and 30 s visits; zero points, sky and depth follow from
      `~lsst.meas.contextnet.sim.survey`.
    * seeing (detector-mean FWHM) log-uniform over 0.35"-2.0": the best Cerro Pachon seeing to
      the worst LSST still observes in; log-uniform gives the sharp end (where stars and small
      galaxies are hardest to tell apart in pixels) as much weight as the blurred end.
    * PSF family: Moffat with beta uniform over 2-5 (the range fitted to real ground-based
      PSFs, from broad-winged to nearly Gaussian) or Kolmogorov (the atmosphere's
      long-exposure profile); the spatial variation across the detector is a quadratic field of
      size (peak-to-peak 5%-25%) and shear (rms 0.03) as in `~lsst.meas.contextnet.sim.psf`.
    * the PSF *model* attached to the exposure is a Moffat fitted to the true profile (its beta
      and size fitted once per visit, `~lsst.meas.contextnet.sim.psf.fit_moffat`) with a per-visit
      FWHM error (rms 1.5%) and shear error (rms 0.01): a real PSF model is a fit of an
      imperfect family to a few hundred stars, wrong at the percent level.
    * galaxies: half bulge+disk (de Vaucouleurs + exponential), half single Sersic with ``n``
      log-uniform over 0.5-6 (rounded to 0.25): the profiles of real galaxies from irregular
      to cD; the size-magnitude relation (median half-light radius at m = 22 uniform over
      0.35"-0.9", log-slope -0.08 to -0.16 per magnitude) is drawn per visit so no single
      relation can be memorized.
    * star fraction uniform over 0.05-0.9 (high Galactic latitude to the Galactic plane) and
      source density log-uniform over 0.3x-3x, the context the global network must read.
    * defects: neighbours inside cutouts (blends, at the density's rate), saturated stars with
      SAT masks, bad columns and cosmic rays, masked as the pipelines mask them.

``hard-context``
    A training world: the randomized world where the context says least, seeing 0.9"-2.0" and
    5%-35% stars.  Broad PSFs make stars and galaxies differ least in size, an imperfect PSF
    model matters most there, and few stars leave the context little to correct it with; the
    randomized world draws such visits about one time in six.  Mixed into the randomized sets,
    it trains that corner more often without leaving the randomized world's support.

``hard-psf-model``
    A training world: ``hard-context`` with PSF models twice as wrong, FWHM error rms 3% and
    shear error rms 0.02.  With few stars in a blurred field a network cannot learn from the
    context how wrong the model is unless it has seen such errors; the randomized world's 1.5%
    rms puts about one visit in twenty beyond 3%.

Test worlds (held out by family; their seeds are never used for training):
``bad-seeing`` (1.3"-2.0", beyond most of the narrow world's range), ``good-seeing``
(0.35"-0.55"), ``star-rich`` (70%-90% stars), ``star-poor`` (5%-15% stars), ``psf-optical``
(Kolmogorov convolved with an obscured-pupil `galsim.OpticalPSF` with random aberrations, a PSF
family never used in training) and ``galaxy-knots`` (exponential disks with star-forming knots,
`galsim.RandomKnots`, a galaxy family never used in training); each is the randomized world with
that one distribution changed.  ``band-u`` ... ``band-y`` fix the band.  ``beyond-seeing``
(2.2"-2.8") lies outside the training range altogether: the visits the classifier task flags
``classification_flag_outsideTraining`` for the shipped model.
"""

from __future__ import annotations

__all__ = [
    "NARROW_FWHM_RANGE",
    "PSF_FAMILIES",
    "PSF_VARIATIONS",
    "SceneConfig",
    "GALAXY_FAMILIES",
    "FAST_PSF_FAMILIES",
    "FAST_GALAXY_FAMILIES",
    "World",
    "VisitConditions",
    "WORLDS",
    "TRAINING_WORLDS",
    "get_world",
    "world_names",
    "resolve_world",
    "resolve_config_world",
]

import dataclasses
import math
from typing import Any

import numpy as np
from lsst.meas.contextnet.serialization import DictRoundTrip
from lsst.meas.contextnet.sim import survey

PSF_FAMILIES: tuple[str, ...] = ("moffat", "kolmogorov", "kolmogorov_optical")
"""True-PSF families: Moffat, Kolmogorov, Kolmogorov convolved with an obscured optical PSF."""

GALAXY_FAMILIES: tuple[str, ...] = ("bulge_disk", "sersic", "knots")
"""Galaxy families: de Vaucouleurs bulge + exponential disk, single Sersic, disk with knots."""

FAST_PSF_FAMILIES: tuple[str, ...] = ("moffat", "kolmogorov")
"""PSF families the fast training-data renderer draws (the others are full-image only)."""

FAST_GALAXY_FAMILIES: tuple[str, ...] = ("bulge_disk", "sersic")
"""Galaxy families the fast training-data renderer draws (the others are full-image only)."""

SERSIC_N_STEP: float = 0.25
"""Sersic indices are rounded to this step (so the renderer's transforms can be tabulated)."""

MOFFAT_BETA_STEP: float = 0.1
"""Moffat indices are rounded to this step (for the same reason)."""

N_ABERRATIONS: int = 8
"""Zernike terms 4-11 (defocus to spherical) of the optical PSF."""

PSF_VARIATIONS: tuple[str, ...] = ("none", "spatial", "full")
"""Allowed PSF variation modes: ``none`` (one PSF for every position and visit), ``spatial``
(the band's median FWHM for every visit, varying across the detector) and ``full`` (FWHM drawn
per visit and varying across the detector)."""

NARROW_FWHM_RANGE: tuple[float, float] = (0.5, 1.3)
"""Visit-mean PSF FWHM range (arcsec) of the narrow world, the simulator's default."""


def _pair(name: str, value: Any, low: float = -math.inf, high: float = math.inf) -> tuple[float, float]:
    a, b = (float(v) for v in value)
    if not (math.isfinite(a) and math.isfinite(b) and low <= a <= b <= high):
        raise ValueError(f"{name} must be a (low, high) pair within [{low}, {high}], got {value!r}")
    return a, b


@dataclasses.dataclass(frozen=True)
class VisitConditions(DictRoundTrip):
    """Observing conditions and population parameters of one simulated visit.

    Drawn by `World.draw_visit`; every detector of a visit shares them.
    """

    band: str
    exposure_time: float
    fwhm: float
    """Detector-mean FWHM of the true PSF, arcseconds."""
    psf_family: str
    moffat_beta: float
    """Moffat index of the true PSF (``psf_family == "moffat"``)."""
    aberrations: tuple[float, ...]
    """Zernike coefficients 4-11 in waves (``psf_family == "kolmogorov_optical"``)."""
    optical_fraction: float
    """Optical FWHM over the atmospheric FWHM (``"kolmogorov_optical"``)."""
    psf_size_variation: tuple[float, float]
    psf_shear_amplitude: float
    psf_model_size_error: float
    """Fractional FWHM error of the attached PSF model."""
    psf_model_shear_error: tuple[float, float]
    """Shear error (g1, g2) of the attached PSF model."""
    exact_psf_model: bool
    """Whether the attached PSF model is the true PSF itself (the narrow world)."""
    star_fraction: float
    density_scale: float
    galaxy_families: tuple[str, ...]
    galaxy_weights: tuple[float, ...]
    sersic_n_range: tuple[float, float]
    hlr_at_22: float
    """Median galaxy half-light radius at m = 22 in the band, arcseconds."""
    hlr_slope: float
    """``d log10(hlr) / d m`` of the median half-light radius."""
    neighbours: bool
    cosmic_ray_rate: float
    """Cosmic-ray hits per 4096x4096 pixels per 30 s."""
    bad_column_rate: float
    """Bad columns per 4096 columns."""


@dataclasses.dataclass(frozen=True)
class World(DictRoundTrip):
    """Distributions of the observing conditions and populations of simulated visits.

    Ranges are ``(low, high)``; equal ends fix a value.  See the module documentation for the
    presets and the reasons for each distribution.

    Attributes
    ----------
    name : `str`
        Preset name (recorded in data manifests and model cards).
    bands : `tuple` [`str`, ...]
        Bands drawn uniformly.
    exposure_time_range : `tuple` [`float`, `float`]
        Seconds, uniform.
    fwhm_range : `tuple` [`float`, `float`]
        Detector-mean PSF FWHM in arcseconds.
    fwhm_log_uniform : `bool`
        Draw the FWHM log-uniformly (else uniformly: the narrow world).
    psf_families : `tuple` [`str`, ...]
        True-PSF families drawn uniformly (`PSF_FAMILIES`).
    moffat_beta_range : `tuple` [`float`, `float`]
        Moffat index, uniform, rounded to `MOFFAT_BETA_STEP`.
    zernike_waves : `tuple` [`float`, `float`]
        Rms of each optical Zernike coefficient in waves, uniform per visit.
    optical_fraction_range : `tuple` [`float`, `float`]
        Optical-to-atmospheric FWHM ratio of the ``kolmogorov_optical`` family.
    psf_size_variation : `tuple` [`float`, `float`]
        Peak-to-peak fractional FWHM variation across a detector.
    psf_shear_amplitude : `float`
        Rms of the constant PSF shear.
    psf_model_size_error : `float`
        Rms fractional FWHM error of the attached PSF model (0 with ``exact_psf_model``).
    psf_model_shear_error : `float`
        Rms shear error of the attached PSF model.
    exact_psf_model : `bool`
        Attach the true PSF itself (only possible for a Moffat): the narrow world.
    galaxy_families : `tuple` [`str`, ...]
        Galaxy families (`GALAXY_FAMILIES`), mixed in every visit with equal weights.
    sersic_n_range : `tuple` [`float`, `float`]
        Sersic index, log-uniform, rounded to `SERSIC_N_STEP`.
    hlr_at_22_range : `tuple` [`float`, `float`]
        Median half-light radius at m = 22 (arcsec), uniform per visit.
    hlr_slope_range : `tuple` [`float`, `float`]
        ``d log10(hlr) / d m``, uniform per visit.
    star_fraction_range : `tuple` [`float`, `float`]
        Expected fraction of stars among detections, uniform per visit.
    density_range : `tuple` [`float`, `float`]
        Density scale (1 = 1700 detections per 4096x4096 detector), log-uniform per visit.
    neighbours : `bool`
        The fast generator puts neighbours into cutouts (blends); full images always have them.
    cosmic_ray_rate : `float`
        Cosmic-ray hits per 4096x4096 pixels per 30 s (0: none).
    bad_column_rate : `float`
        Bad columns per 4096 columns.
    """

    name: str
    bands: tuple[str, ...] = ("r",)
    exposure_time_range: tuple[float, float] = (survey.DEFAULT_EXPOSURE_TIME, survey.DEFAULT_EXPOSURE_TIME)
    fwhm_range: tuple[float, float] = NARROW_FWHM_RANGE
    fwhm_log_uniform: bool = False
    psf_families: tuple[str, ...] = ("moffat",)
    moffat_beta_range: tuple[float, float] = (3.5, 3.5)
    zernike_waves: tuple[float, float] = (0.0, 0.0)
    optical_fraction_range: tuple[float, float] = (0.3, 0.6)
    psf_size_variation: tuple[float, float] = (0.10, 0.20)
    psf_shear_amplitude: float = 0.02
    psf_model_size_error: float = 0.0
    psf_model_shear_error: float = 0.0
    exact_psf_model: bool = True
    galaxy_families: tuple[str, ...] = ("bulge_disk",)
    sersic_n_range: tuple[float, float] = (0.5, 6.0)
    hlr_at_22_range: tuple[float, float] = (0.6, 0.6)
    hlr_slope_range: tuple[float, float] = (-0.12, -0.12)
    star_fraction_range: tuple[float, float] = (0.4, 0.4)
    density_range: tuple[float, float] = (1.0, 1.0)
    neighbours: bool = False
    cosmic_ray_rate: float = 0.0
    bad_column_rate: float = 2.0

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError("a world needs at least one band")
        for band in self.bands:
            survey.get_band(band)
        for name, families, known in (
            ("psf_families", self.psf_families, PSF_FAMILIES),
            ("galaxy_families", self.galaxy_families, GALAXY_FAMILIES),
        ):
            if not families or any(f not in known for f in families):
                raise ValueError(f"{name} must be a non-empty subset of {known}, got {families!r}")
        object.__setattr__(
            self, "exposure_time_range", _pair("exposure_time_range", self.exposure_time_range, 1e-3)
        )
        object.__setattr__(self, "fwhm_range", _pair("fwhm_range", self.fwhm_range, 1e-3, 5.0))
        object.__setattr__(
            self, "moffat_beta_range", _pair("moffat_beta_range", self.moffat_beta_range, 1.5, 10)
        )
        object.__setattr__(self, "zernike_waves", _pair("zernike_waves", self.zernike_waves, 0.0, 1.0))
        object.__setattr__(
            self,
            "optical_fraction_range",
            _pair("optical_fraction_range", self.optical_fraction_range, 0.0, 2.0),
        )
        object.__setattr__(
            self, "psf_size_variation", _pair("psf_size_variation", self.psf_size_variation, 0, 1)
        )
        object.__setattr__(self, "sersic_n_range", _pair("sersic_n_range", self.sersic_n_range, 0.3, 6.2))
        object.__setattr__(self, "hlr_at_22_range", _pair("hlr_at_22_range", self.hlr_at_22_range, 0.01, 5))
        object.__setattr__(self, "hlr_slope_range", _pair("hlr_slope_range", self.hlr_slope_range, -1, 0))
        object.__setattr__(
            self, "star_fraction_range", _pair("star_fraction_range", self.star_fraction_range, 0.0, 1.0)
        )
        object.__setattr__(self, "density_range", _pair("density_range", self.density_range, 0.0, 100.0))
        if self.exact_psf_model and self.psf_families != ("moffat",):
            raise ValueError("exact_psf_model needs the Moffat family alone (the model is a Moffat)")
        for name in ("psf_shear_amplitude", "psf_model_size_error", "psf_model_shear_error"):
            if not (0.0 <= getattr(self, name) < 0.1):
                raise ValueError(f"{name} must be in [0, 0.1), got {getattr(self, name)!r}")
        for name in ("cosmic_ray_rate", "bad_column_rate"):
            if not (getattr(self, name) >= 0.0):
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    def replace(self, **changes: Any) -> World:
        """Return a copy with some distributions changed.

        Parameters
        ----------
        **changes
            Fields to change.

        Returns
        -------
        world : `World`
            The changed world.
        """
        return dataclasses.replace(self, **changes)

    def draw_visit(self, rng: np.random.Generator) -> VisitConditions:
        """Draw the conditions of one visit.

        The first value drawn is the uniform deviate of the FWHM (so a world with a uniform FWHM
        draws it as `~lsst.meas.contextnet.sim.psf.draw_visit_fwhm` does); the same number of
        values is drawn for every world, so worlds differ only in what the draws mean.

        Parameters
        ----------
        rng : `numpy.random.Generator`
            Random number generator.

        Returns
        -------
        conditions : `VisitConditions`
            The visit's conditions.
        """
        u_fwhm = float(rng.uniform())
        low, high = self.fwhm_range
        if self.fwhm_log_uniform:
            fwhm = low * (high / low) ** u_fwhm
        else:
            fwhm = low + (high - low) * u_fwhm
        u = rng.uniform(size=12)

        def uniform(index: int, bounds: tuple[float, float]) -> float:
            return float(bounds[0] + (bounds[1] - bounds[0]) * u[index])

        def log_uniform(index: int, bounds: tuple[float, float]) -> float:
            if bounds[0] <= 0 or bounds[0] == bounds[1]:
                return uniform(index, bounds)
            return float(bounds[0] * (bounds[1] / bounds[0]) ** u[index])

        band = self.bands[min(int(u[0] * len(self.bands)), len(self.bands) - 1)]
        family = self.psf_families[min(int(u[1] * len(self.psf_families)), len(self.psf_families) - 1)]
        beta = round(uniform(2, self.moffat_beta_range) / MOFFAT_BETA_STEP) * MOFFAT_BETA_STEP
        rms = uniform(3, self.zernike_waves)
        aberrations = tuple(float(a) for a in rms * rng.normal(size=N_ABERRATIONS))
        model_errors = rng.normal(size=3)
        exact = self.exact_psf_model
        return VisitConditions(
            band=band,
            exposure_time=uniform(4, self.exposure_time_range),
            fwhm=float(fwhm),
            psf_family=family,
            moffat_beta=float(round(beta, 3)),
            aberrations=aberrations,
            optical_fraction=uniform(5, self.optical_fraction_range),
            psf_size_variation=self.psf_size_variation,
            psf_shear_amplitude=self.psf_shear_amplitude,
            psf_model_size_error=0.0 if exact else float(self.psf_model_size_error * model_errors[0]),
            psf_model_shear_error=(
                (0.0, 0.0)
                if exact
                else (
                    float(self.psf_model_shear_error * model_errors[1]),
                    float(self.psf_model_shear_error * model_errors[2]),
                )
            ),
            exact_psf_model=exact,
            star_fraction=uniform(6, self.star_fraction_range),
            density_scale=log_uniform(7, self.density_range),
            galaxy_families=self.galaxy_families,
            galaxy_weights=tuple(1.0 / len(self.galaxy_families) for _ in self.galaxy_families),
            sersic_n_range=self.sersic_n_range,
            hlr_at_22=uniform(8, self.hlr_at_22_range),
            hlr_slope=uniform(9, self.hlr_slope_range),
            neighbours=self.neighbours,
            cosmic_ray_rate=self.cosmic_ray_rate,
            bad_column_rate=self.bad_column_rate,
        )


NARROW = World(name="narrow")

RANDOMIZED = World(
    name="randomized",
    bands=("u", "g", "r", "i", "z", "y"),
    exposure_time_range=(15.0, 30.0),
    fwhm_range=(0.35, 2.0),
    fwhm_log_uniform=True,
    psf_families=("moffat", "kolmogorov"),
    moffat_beta_range=(2.0, 5.0),
    psf_size_variation=(0.05, 0.25),
    psf_shear_amplitude=0.03,
    psf_model_size_error=0.015,
    psf_model_shear_error=0.01,
    exact_psf_model=False,
    galaxy_families=("bulge_disk", "sersic"),
    sersic_n_range=(0.5, 6.0),
    hlr_at_22_range=(0.35, 0.9),
    hlr_slope_range=(-0.16, -0.08),
    star_fraction_range=(0.05, 0.9),
    density_range=(0.3, 3.0),
    neighbours=True,
    cosmic_ray_rate=100.0,
    bad_column_rate=2.0,
)

WORLDS: dict[str, World] = {
    "narrow": NARROW,
    "randomized": RANDOMIZED,
    "bad-seeing": RANDOMIZED.replace(name="bad-seeing", fwhm_range=(1.3, 2.0)),
    "good-seeing": RANDOMIZED.replace(name="good-seeing", fwhm_range=(0.35, 0.55)),
    "star-rich": RANDOMIZED.replace(name="star-rich", star_fraction_range=(0.7, 0.9)),
    "star-poor": RANDOMIZED.replace(name="star-poor", star_fraction_range=(0.05, 0.15)),
    "psf-optical": RANDOMIZED.replace(
        name="psf-optical", psf_families=("kolmogorov_optical",), zernike_waves=(0.02, 0.08)
    ),
    "galaxy-knots": RANDOMIZED.replace(name="galaxy-knots", galaxy_families=("knots",)),
    **{f"band-{b}": RANDOMIZED.replace(name=f"band-{b}", bands=(b,)) for b in "ugrizy"},
    # New worlds are appended: a world's position sets its robustness seed and visits
    # (tools.robustness._world_index), so appending keeps those of the worlds above.
    "hard-context": RANDOMIZED.replace(
        name="hard-context", fwhm_range=(0.9, 2.0), star_fraction_range=(0.05, 0.35)
    ),
    "hard-psf-model": RANDOMIZED.replace(
        name="hard-psf-model",
        fwhm_range=(0.9, 2.0),
        star_fraction_range=(0.05, 0.35),
        psf_model_size_error=0.03,
        psf_model_shear_error=0.02,
    ),
    "beyond-seeing": RANDOMIZED.replace(name="beyond-seeing", fwhm_range=(2.2, 2.8)),
}
"""Named worlds (see the module documentation)."""

TRAINING_WORLDS: tuple[str, ...] = ("narrow", "randomized", "hard-context", "hard-psf-model")
"""Worlds models are trained on; the others exist to test them."""


def world_names() -> tuple[str, ...]:
    """Return the names of the preset worlds.

    Returns
    -------
    names : `tuple` [`str`, ...]
        Names accepted by `get_world`.
    """
    return tuple(WORLDS)


def get_world(name: str) -> World:
    """Return a preset world by name.

    Parameters
    ----------
    name : `str`
        One of `world_names`.

    Returns
    -------
    world : `World`
        The preset.

    Raises
    ------
    ValueError
        If ``name`` is not a preset.
    """
    try:
        return WORLDS[name]
    except KeyError:
        raise ValueError(f"unknown world {name!r}; expected one of {', '.join(WORLDS)}") from None


def resolve_world(
    name: str,
    *,
    band: str | None = None,
    exposure_time: float | None = None,
    psf_fwhm_range: tuple[float, float] | None = None,
    moffat_beta: float | None = None,
    psf_size_variation: tuple[float, float] | None = None,
    psf_shear_amplitude: float | None = None,
    star_fraction: float | None = None,
    density_scale: float | None = None,
) -> World:
    """Return a preset world with some of its distributions fixed.

    The simulator's and the training-data generator's configurations keep their historical
    scalar options (``--band``, ``--star-fraction``, ...); a value given fixes that
    distribution of the world, `None` keeps the world's.

    Parameters
    ----------
    name : `str`
        Preset (`get_world`).
    band, exposure_time, psf_fwhm_range, moffat_beta, psf_size_variation, psf_shear_amplitude, \
star_fraction, density_scale : optional
        Values that replace the world's distributions.

    Returns
    -------
    world : `World`
        The resolved world.

    Raises
    ------
    ValueError
        If the name is unknown or a value is out of range.
    """
    world = get_world(name)
    changes: dict[str, Any] = {}
    if band is not None:
        changes["bands"] = (band,)
    if exposure_time is not None:
        if not (math.isfinite(exposure_time) and exposure_time > 0):
            raise ValueError(f"exposure_time must be positive, got {exposure_time!r}")
        changes["exposure_time_range"] = (exposure_time, exposure_time)
    if psf_fwhm_range is not None:
        low, high = psf_fwhm_range
        if not (0 < low <= high < 5):
            raise ValueError(
                f"psf_fwhm_range must satisfy 0 < low <= high < 5 arcsec, got {psf_fwhm_range!r}"
            )
        changes["fwhm_range"] = tuple(psf_fwhm_range)
    if moffat_beta is not None:
        changes["moffat_beta_range"] = (moffat_beta, moffat_beta)
    if psf_size_variation is not None:
        changes["psf_size_variation"] = tuple(psf_size_variation)
    if psf_shear_amplitude is not None:
        changes["psf_shear_amplitude"] = psf_shear_amplitude
    if star_fraction is not None:
        if not (0.0 <= star_fraction <= 1.0):
            raise ValueError(f"star_fraction must be in [0, 1], got {star_fraction!r}")
        changes["star_fraction_range"] = (star_fraction, star_fraction)
    if density_scale is not None:
        if not (math.isfinite(density_scale) and density_scale >= 0):
            raise ValueError(f"density_scale must be non-negative, got {density_scale!r}")
        changes["density_range"] = (density_scale, density_scale)
    return world.replace(**changes) if changes else world


@dataclasses.dataclass(frozen=True)
class SceneConfig(DictRoundTrip):
    """What the full-image simulator and the fast training-data generator both draw from.

    `~lsst.meas.contextnet.sim.exposure.SimulationConfig` and
    `~lsst.meas.contextnet.sim.generator.TrainingDataConfig` extend it with what only one of them
    needs. The visits' conditions and populations come from the world ``world``; the options
    below, when given, fix one of its distributions (`resolve_world`), `None` keeps the world's.

    Attributes
    ----------
    world : `str`
        World preset (``narrow``, ``randomized``, or a test world).
    band : `str`, optional
        LSST band (``u g r i z y``).
    star_fraction : `float`, optional
        Expected fraction of stars among detected sources.
    psf_fwhm_range : `tuple` [`float`, `float`], optional
        Range (arcsec) of the per-visit FWHM when ``psf_variation == "full"``.
    psf_variation : `str`
        One of `PSF_VARIATIONS` (see `~lsst.meas.contextnet.sim.psf.PsfField`).
    exposure_time : `float`, optional
        Seconds.
    psf_size_variation : `tuple` [`float`, `float`], optional
        Range of the peak-to-peak fractional FWHM variation across a detector.
    psf_shear_amplitude : `float`, optional
        RMS of the constant PSF shear components.
    moffat_beta : `float`, optional
        Moffat index of the PSF.
    detection_threshold : `float`
        Detection threshold in sigma of the PSF-matched filter.
    saturation : `float`
        Saturation level in electrons (sky included).
    faint_margin : `float`
        Magnitudes simulated beyond the 5-sigma point-source depth.

    Raises
    ------
    ValueError
        If the world is unknown or a value is out of range.
    """

    world: str = "narrow"
    band: str | None = None
    star_fraction: float | None = None
    psf_fwhm_range: tuple[float, float] | None = None
    psf_variation: str = "full"
    exposure_time: float | None = None
    psf_size_variation: tuple[float, float] | None = None
    psf_shear_amplitude: float | None = None
    moffat_beta: float | None = None
    detection_threshold: float = 5.0
    saturation: float = survey.SATURATION_LEVEL
    faint_margin: float = 1.0

    def __post_init__(self) -> None:
        self.resolved_world()
        if self.psf_variation not in PSF_VARIATIONS:
            raise ValueError(
                f"unknown psf_variation {self.psf_variation!r}; expected one of {', '.join(PSF_VARIATIONS)}"
            )
        if not (self.detection_threshold > 0):
            raise ValueError(f"detection_threshold must be positive, got {self.detection_threshold!r}")

    def resolved_world(self) -> World:
        """Return the world with this configuration's fixed values applied.

        Returns
        -------
        world : `World`
            The distributions visits are drawn from.

        Raises
        ------
        ValueError
            If the world is unknown or a value is out of range.
        """
        return resolve_config_world(self)


def resolve_config_world(config: Any) -> World:
    """Resolve the world of a simulator or training-data configuration.

    Parameters
    ----------
    config : `~lsst.meas.contextnet.sim.exposure.SimulationConfig` or `TrainingDataConfig`
        A configuration with a ``world`` name and any of `resolve_world`'s options as attributes.

    Returns
    -------
    world : `World`
        ``resolve_world(config.world, **options)`` with the options the configuration has.
    """
    names = (
        "band",
        "exposure_time",
        "psf_fwhm_range",
        "moffat_beta",
        "psf_size_variation",
        "psf_shear_amplitude",
        "star_fraction",
        "density_scale",
    )
    return resolve_world(config.world, **{name: getattr(config, name, None) for name in names})
