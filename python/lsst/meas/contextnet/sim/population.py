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

"""Stars and galaxies of one simulated visit and detector.

Magnitude distributions (per band, AB):

* stars: point sources, ``dN/dm ∝ 10**(0.10 m)`` from ``star_mag_bright`` (15) to the faint limit;
* galaxies: ``dN/dm ∝ 10**(0.30 m)`` from ``galaxy_mag_bright`` (18) to the faint limit, so
  galaxies are fainter than stars on average (paper, Figure 5).

The faint limit is ``faint_margin`` (1 mag) below the visit's 5-sigma point-source depth, so
sources fade through the detection threshold instead of stopping at it.  Galaxy shapes depend
on magnitude:

* half-light radius: log-normal, median ``0.6" * 10**(-0.12 (m - 22))`` (1.8" at m = 18, 0.26" at
  m = 25), scatter 0.45 in ln, clipped to [0.05", 6"];
* bulge fraction: Beta distribution with mean ``clip(0.10 + 0.08 (23 - m), 0.05, 0.6)``
  (bright galaxies are bulgier), concentration 4;
* ellipticity ``|e| = (a - b) / (a + b)`` (GalSim's reduced shear ``g``): distribution
  ``p(e) ∝ e (1 - e**2)**2 exp(-e**2 / 2 s**2)`` with ``s = 0.12 + 0.18 (1 - bulge_fraction)``
  (disks are flatter), below 0.9; position angle uniform.

Bulge (de Vaucouleurs) and disk (exponential) share the half-light radius and shape, so the
galaxy's half-light radius is exactly ``hlr_arcsec``.  These are the narrow world's values; a world
(`~lsst.meas.contextnet.sim.world`) sets the median radius at m = 22 and its slope per visit
(`PopulationConfig.from_conditions`) and mixes galaxy families: ``bulge_disk``, ``sersic`` (one
Sersic profile of index ``sersic_n``) and ``knots`` (disk with star-forming knots, drawn from
``knot_seed``; full images only).

Number density: the number of sources is set from the *expected detections*, not from a fixed
sky density.  Each candidate's matched-filter signal-to-noise ``nu`` is computed on its
noiseless stamp (`StampRenderer`, the PSF at its position, sky plus source variance) and it
counts ``Phi(nu - threshold)`` expected detections; candidates are drawn until the expected
number of detected stars and galaxies reaches Poisson draws of ``star_fraction * n_detected``
and ``(1 - star_fraction) * n_detected``.  The detected count and star fraction are therefore
stable across bands, depths and seeing.
"""

from __future__ import annotations

__all__ = [
    "PopulationConfig",
    "detection_kernel",
    "draw_candidates",
    "draw_galaxy_shapes",
    "draw_population",
    "expected_snr",
    "point_source_depth",
]

import dataclasses

import numpy as np
from astropy.table import Table
from lsst.meas.contextnet.sim import survey
from lsst.meas.contextnet.sim.psf import PsfField
from lsst.meas.contextnet.sim.stamps import StampRenderer, matched_filter_snr
from lsst.meas.contextnet.sim.world import GALAXY_FAMILIES, SERSIC_N_STEP, VisitConditions
from scipy.special import ndtr

_SNR_STAMP = 48  # stamp used for expected S/N (PSF-dominated; large galaxies lose little)


@dataclasses.dataclass(frozen=True)
class PopulationConfig:
    """Parameters of the source population.

    Attributes
    ----------
    star_fraction : `float`
        Expected fraction of stars among *detected* sources.
    star_mag_bright, galaxy_mag_bright : `float`
        Brightest magnitudes drawn.
    star_count_slope, galaxy_count_slope : `float`
        Logarithmic slopes ``a`` of ``dN/dm ∝ 10**(a m)``.
    faint_margin : `float`
        Magnitudes drawn beyond the 5-sigma point-source depth.
    hlr_at_22 : `float`
        Median galaxy half-light radius at m = 22, arcseconds.
    hlr_slope : `float`
        ``d log10(median hlr) / d m``.
    galaxy_families : `tuple` [`str`, ...]
        Galaxy families mixed with equal weights
        (`~lsst.meas.contextnet.sim.world.GALAXY_FAMILIES`).
    sersic_n_range : `tuple` [`float`, `float`]
        Range of the Sersic index of ``"sersic"`` galaxies (log-uniform, rounded to
        `~lsst.meas.contextnet.sim.world.SERSIC_N_STEP`).
    """

    star_fraction: float = 0.4
    star_mag_bright: float = 15.0
    galaxy_mag_bright: float = 18.0
    star_count_slope: float = 0.10
    galaxy_count_slope: float = 0.30
    faint_margin: float = 1.0
    hlr_at_22: float = 0.6
    hlr_slope: float = -0.12
    galaxy_families: tuple[str, ...] = ("bulge_disk",)
    sersic_n_range: tuple[float, float] = (0.5, 6.0)

    @classmethod
    def from_conditions(cls, conditions: VisitConditions, faint_margin: float = 1.0) -> PopulationConfig:
        """Make the population of a visit drawn from a world.

        Parameters
        ----------
        conditions : `~lsst.meas.contextnet.sim.world.VisitConditions`
            The visit's conditions.
        faint_margin : `float`, optional
            Magnitudes drawn beyond the 5-sigma point-source depth.

        Returns
        -------
        config : `PopulationConfig`
            The population parameters.
        """
        return cls(
            star_fraction=conditions.star_fraction,
            faint_margin=faint_margin,
            hlr_at_22=conditions.hlr_at_22,
            hlr_slope=conditions.hlr_slope,
            galaxy_families=conditions.galaxy_families,
            sersic_n_range=conditions.sersic_n_range,
        )

    def __post_init__(self) -> None:
        if not (0.0 <= self.star_fraction <= 1.0):
            raise ValueError(f"star_fraction must be in [0, 1], got {self.star_fraction!r}")
        if not (self.faint_margin >= 0):
            raise ValueError(f"faint_margin must be >= 0, got {self.faint_margin!r}")
        for name in ("star_count_slope", "galaxy_count_slope"):
            if not (getattr(self, name) > 0):
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not self.galaxy_families or any(f not in GALAXY_FAMILIES for f in self.galaxy_families):
            raise ValueError(f"galaxy_families must be a non-empty subset of {GALAXY_FAMILIES}")


def _sample_power_law_mags(
    rng: np.random.Generator, n: int, bright: float, faint: float, slope: float
) -> np.ndarray:
    """Draw magnitudes with ``dN/dm ∝ 10**(slope m)`` on ``[bright, faint]``."""
    u = rng.uniform(size=n)
    span = 10.0 ** (slope * (faint - bright)) - 1.0
    return bright + np.log10(1.0 + u * span) / slope


def _sample_ellipticity(rng: np.random.Generator, sigma: np.ndarray) -> np.ndarray:
    """Draw ``|e|`` from ``p(e) ∝ e (1 - e^2)^2 exp(-e^2 / 2 sigma^2)`` below 0.9 by rejection."""
    out = np.empty(len(sigma))
    todo = np.arange(len(sigma))
    while len(todo):
        s = sigma[todo]
        # Proposal: Rayleigh(sigma) (the e exp(-e^2/2s^2) factor); accept with (1 - e^2)^2.
        e = s * np.sqrt(-2.0 * np.log1p(-rng.uniform(size=len(todo))))
        accept = (e < 0.9) & (rng.uniform(size=len(todo)) < (1.0 - e * e) ** 2)
        out[todo[accept]] = e[accept]
        todo = todo[~accept]
    return out


def draw_galaxy_shapes(
    rng: np.random.Generator, mag: np.ndarray, config: PopulationConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw the bulge+disk shapes of galaxies of given magnitudes (the module's distributions).

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random number generator.
    mag : `numpy.ndarray`
        Magnitudes, one per galaxy.
    config : `PopulationConfig`
        The median half-light radius at m = 22 and its slope.

    Returns
    -------
    hlr, bulge_fraction, ellipticity, rotation : `numpy.ndarray`
        Half-light radius (arcsec), bulge fraction, ``|e| = (a - b) / (a + b)`` and position
        angle (degrees), one each per galaxy.
    """
    mag = np.asarray(mag, dtype=np.float64)
    n = len(mag)
    median_hlr = config.hlr_at_22 * 10.0 ** (config.hlr_slope * (mag - 22.0))
    hlr = np.clip(median_hlr * np.exp(0.45 * rng.normal(size=n)), 0.05, 6.0)
    mean_bulge = np.clip(0.10 + 0.08 * (23.0 - mag), 0.05, 0.6)
    concentration = 4.0
    bulge = rng.beta(mean_bulge * concentration, (1.0 - mean_bulge) * concentration)
    ellipticity = _sample_ellipticity(rng, 0.12 + 0.18 * (1.0 - bulge))
    rotation = rng.uniform(0.0, 180.0, size=n)
    return hlr, bulge, ellipticity, rotation


def point_source_depth(psf_field: PsfField, band: str, exposure_time: float, threshold: float = 5.0) -> float:
    """Return the magnitude of a point source detected at ``threshold`` sigma.

    The depth is evaluated where the PSF is sharpest on the detector (the deepest point),
    for the sky-limited matched filter used by detection.

    Parameters
    ----------
    psf_field : `PsfField`
        PSF of the visit and detector.
    band : `str`
        Band name.
    exposure_time : `float`
        Exposure time in seconds.
    threshold : `float`, optional
        Detection threshold in sigma.

    Returns
    -------
    mag : `float`
        AB magnitude.
    """
    grid = np.linspace(0.0, 1.0, 9)
    gx, gy = np.meshgrid(grid * (psf_field.width - 1), grid * (psf_field.height - 1))
    fwhm = psf_field.fwhm_at(gx, gy)
    best = np.unravel_index(np.argmin(fwhm), fwhm.shape)
    x, y = float(gx[best]), float(gy[best])
    sky = survey.sky_level(band, exposure_time)
    kernel = detection_kernel(psf_field)
    renderer = StampRenderer(psf_field.pixel_scale, psf_field.beta)
    unit = _unit_snr(renderer, psf_field, np.array([x]), np.array([y]), kernel, sky)
    return float(survey.flux_to_mag(threshold / unit[0], band, exposure_time))


def detection_kernel(psf_field: PsfField) -> np.ndarray:
    """Return the detection (matched-filter) kernel of an exposure.

    Parameters
    ----------
    psf_field : `PsfField`
        PSF of the visit and detector.

    Returns
    -------
    kernel : `numpy.ndarray`
        The PSF at the detector centre, unit sum, ``2 h + 1`` pixels on a side with ``h`` one
        FWHM (at least 2 pixels).
    """
    cx, cy = (psf_field.width - 1) / 2, (psf_field.height - 1) / 2
    fwhm_px = float(psf_field.fwhm_at(cx, cy)) / psf_field.pixel_scale
    return psf_field.kernel_image(cx, cy, max(2, int(np.ceil(fwhm_px))))


def _unit_snr(
    renderer: StampRenderer,
    psf_field: PsfField,
    x: np.ndarray,
    y: np.ndarray,
    kernel: np.ndarray,
    sky: float,
) -> np.ndarray:
    """Sky-limited matched-filter S/N of unit-flux point sources centred on pixels."""
    fwhm, g1, g2 = psf_field.params_at(x, y)
    zeros = np.zeros(len(x))
    stamps = renderer.render(
        _SNR_STAMP,
        flux=np.ones(len(x)),
        dx=zeros,
        dy=zeros,
        psf_fwhm=fwhm,
        psf_g1=g1,
        psf_g2=g2,
        is_galaxy=np.zeros(len(x), dtype=bool),
        hlr=zeros,
        g1=zeros,
        g2=zeros,
        bulge_fraction=zeros,
    )
    return matched_filter_snr(stamps, np.full_like(stamps, sky), kernel, search_radius=0)


def expected_snr(
    table: Table,
    psf_field: PsfField,
    sky: float,
    kernel: np.ndarray,
    renderer: StampRenderer | None = None,
) -> np.ndarray:
    """Matched-filter signal-to-noise of each source on its noiseless stamp.

    Parameters
    ----------
    table : `astropy.table.Table`
        Sources with the columns of `draw_population`.
    psf_field : `PsfField`
        PSF of the visit and detector.
    sky : `float`
        Sky level in electrons per pixel (the variance is sky plus source).
    kernel : `numpy.ndarray`
        Detection kernel.
    renderer : `StampRenderer`, optional
        Renderer to reuse.

    Returns
    -------
    snr : `numpy.ndarray`
        Peak matched-filter S/N within 2 pixels of the source.
    """
    renderer = renderer or StampRenderer(psf_field.pixel_scale, psf_field.beta)
    if len(table) == 0:
        return np.zeros(0)
    x = np.asarray(table["x_true"], dtype=np.float64)
    y = np.asarray(table["y_true"], dtype=np.float64)
    fwhm, pg1, pg2 = psf_field.params_at(x, y)
    theta = np.deg2rad(np.asarray(table["rotation_deg"], dtype=np.float64))
    e = np.asarray(table["ellipticity"], dtype=np.float64)
    stamps = renderer.render(
        _SNR_STAMP,
        flux=np.asarray(table["flux"], dtype=np.float64),
        dx=x - np.round(x),
        dy=y - np.round(y),
        psf_fwhm=fwhm,
        psf_g1=pg1,
        psf_g2=pg2,
        is_galaxy=np.asarray(table["is_galaxy"], dtype=bool),
        hlr=np.asarray(table["hlr_arcsec"], dtype=np.float64),
        g1=e * np.cos(2 * theta),
        g2=e * np.sin(2 * theta),
        bulge_fraction=np.asarray(table["bulge_fraction"], dtype=np.float64),
        sersic_n=np.asarray(table["sersic_n"], dtype=np.float64) if "sersic_n" in table.colnames else None,
    )
    variance = sky + np.clip(stamps, 0.0, None)
    return matched_filter_snr(stamps, variance, kernel, search_radius=2)


def draw_candidates(
    rng: np.random.Generator,
    n: int,
    galaxies: bool,
    faint: float,
    config: PopulationConfig,
    psf_field: PsfField,
    band: str,
    exposure_time: float,
) -> Table:
    """Draw candidate stars or galaxies at uniform random detector positions.

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random number generator.
    n : `int`
        Number of candidates.
    galaxies : `bool`
        Draw galaxies (True) or stars (False).
    faint : `float`
        Faintest magnitude.
    config : `PopulationConfig`
        Magnitude distributions.
    psf_field : `PsfField`
        PSF of the visit and detector (its size sets the positions' range).
    band : `str`
        Band name.
    exposure_time : `float`
        Seconds.

    Returns
    -------
    candidates : `astropy.table.Table`
        Columns of `draw_population` except ``snr_expected``.
    """
    if galaxies:
        mag = _sample_power_law_mags(rng, n, config.galaxy_mag_bright, faint, config.galaxy_count_slope)
    else:
        mag = _sample_power_law_mags(rng, n, config.star_mag_bright, faint, config.star_count_slope)
    x = rng.uniform(-0.5, psf_field.width - 0.5, size=n)
    y = rng.uniform(-0.5, psf_field.height - 0.5, size=n)
    family = np.full(n, "bulge_disk" if galaxies else "star", dtype="<U10")
    sersic_n = np.zeros(n)
    knots = np.zeros(n, dtype=np.int64)
    if galaxies:
        hlr, bulge, ellipticity, rotation = draw_galaxy_shapes(rng, mag, config)
        if config.galaxy_families != ("bulge_disk",):
            # Drawn after the bulge+disk parameters, so the narrow world's stream is unchanged.
            families = np.asarray(config.galaxy_families)
            family = families[rng.integers(0, len(families), size=n)].astype("<U10")
            low, high = config.sersic_n_range
            n_index = np.round(low * (high / low) ** rng.uniform(size=n) / SERSIC_N_STEP) * SERSIC_N_STEP
            sersic_n = np.where(family == "sersic", np.clip(n_index, low, high), 0.0)
            seeds = rng.integers(1, 2**31 - 1, size=n)
            knots = np.where(family == "knots", seeds, 0)
            bulge = np.where(family == "bulge_disk", bulge, 0.0)
    else:
        hlr = np.zeros(n)
        bulge = np.zeros(n)
        ellipticity = np.zeros(n)
        rotation = np.zeros(n)
    return Table(
        {
            "is_galaxy": np.full(n, galaxies),
            "mag": mag,
            "flux": survey.mag_to_flux(mag, band, exposure_time),
            "hlr_arcsec": hlr,
            "ellipticity": ellipticity,
            "rotation_deg": rotation,
            "bulge_fraction": bulge,
            "galaxy_family": family,
            "sersic_n": sersic_n,
            "knot_seed": knots,
            "x_true": x,
            "y_true": y,
            "psf_fwhm": psf_field.fwhm_at(x, y),
        }
    )


def draw_population(
    rng: np.random.Generator,
    psf_field: PsfField,
    *,
    band: str = "r",
    exposure_time: float = survey.DEFAULT_EXPOSURE_TIME,
    n_detected: float,
    config: PopulationConfig | None = None,
    threshold: float = 5.0,
    renderer: StampRenderer | None = None,
) -> Table:
    """Draw the stars and galaxies of one visit and detector.

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random number generator.
    psf_field : `PsfField`
        PSF of the visit and detector (its size sets the area).
    band : `str`, optional
        Band name.
    exposure_time : `float`, optional
        Exposure time in seconds.
    n_detected : `float`
        Expected number of detected sources (stars plus galaxies).
    config : `PopulationConfig`, optional
        Population parameters.
    threshold : `float`, optional
        Detection threshold in sigma of the matched filter.
    renderer : `StampRenderer`, optional
        Renderer to reuse for the expected S/N.

    Returns
    -------
    truth : `astropy.table.Table`
        One row per source: ``is_galaxy``, ``mag``, ``flux`` (electrons), ``hlr_arcsec``,
        ``ellipticity`` (``(a - b) / (a + b)``), ``rotation_deg`` (position angle of the major
        axis, degrees counter-clockwise from +x), ``bulge_fraction``, ``x_true``, ``y_true``
        (pixels), ``psf_fwhm`` (arcsec) and ``snr_expected`` (matched-filter S/N of the
        noiseless source), in random order.

    Raises
    ------
    ValueError
        If ``n_detected`` is negative or the band is unknown.
    """
    config = config or PopulationConfig()
    if not (np.isfinite(n_detected) and n_detected >= 0):
        raise ValueError(f"n_detected must be a non-negative number, got {n_detected!r}")
    survey.get_band(band)
    renderer = renderer or StampRenderer(psf_field.pixel_scale, psf_field.beta)
    sky = survey.sky_level(band, exposure_time)
    kernel = detection_kernel(psf_field)
    faint = point_source_depth(psf_field, band, exposure_time, threshold) + config.faint_margin
    targets = (
        rng.poisson(config.star_fraction * n_detected),
        rng.poisson((1.0 - config.star_fraction) * n_detected),
    )
    parts = []
    for galaxies, target in zip((False, True), targets):
        expected = 0.0
        while target > 0 and expected < target:
            chunk = draw_candidates(
                rng,
                max(64, int(1.5 * (target - expected)) + 16),
                galaxies,
                faint,
                config,
                psf_field,
                band,
                exposure_time,
            )
            snr = expected_snr(chunk, psf_field, sky, kernel, renderer)
            cumulative = expected + np.cumsum(ndtr(snr - threshold))
            keep = int(np.searchsorted(cumulative, target)) + 1
            chunk["snr_expected"] = snr
            parts.append(chunk[:keep])
            expected = float(cumulative[min(keep, len(chunk)) - 1])
    if not parts:
        empty = draw_candidates(rng, 0, False, faint, config, psf_field, band, exposure_time)
        empty["snr_expected"] = np.zeros(0)
        return empty
    from astropy.table import vstack

    table = vstack(parts)
    return table[rng.permutation(len(table))]
