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

"""A Bayes reference classifier: how well can any classifier separate a simulated world's sources?

On a simulated world whose population and PSF are known exactly, the best possible classifier
compares, for each detected source, the likelihood of its pixels as a star with their likelihood
as a galaxy of that world's population.  `log_likelihood_ratio` computes that ratio with
templates drawn by the simulator's own renderer (`~lsst.meas.contextnet.sim.stamps.StampRenderer`)
at the source's PSF:

* the pixels: a ``(2 h + 1)``-pixel window around the source's centroid, weighted by the inverse
  variance plane (bad pixels left out), noise Gaussian;
* the flux: marginalized analytically with a flat prior on positive fluxes
  (`flux_marginal_log_likelihood`);
* the position: averaged over a grid of offsets from the measured centroid (default +-1 pixel in
  steps of 0.5), the same for both classes;
* the galaxy: averaged over ``draws`` galaxies of the world's population
  (`~lsst.meas.contextnet.sim.population.draw_galaxy_shapes`) at the source's measured magnitude
  (+- ``mag_jitter``).

`cross_fit_posterior` turns the ratio and the measured magnitude into P(galaxy) with a logistic
regression fitted on the other visits (the prior as a function of flux), so the reference is
scored out of sample like every other classifier (a source without a measured flux, e.g. a
saturated star, gets none and is counted as missing).  Its approximations: a finite average over
galaxy shapes underestimates the galaxy likelihood of bright sources a little (their likelihood
is peaked in shape), and the shapes are drawn at the source's Gaussian-aperture magnitude, a
little fainter than a galaxy's total one; the variance plane it weights with is the simulator's
expected variance, source photons included.  It neglects what the world's model of a
source leaves out (neighbours in the window, blends), so it is a reference and not a strict
bound; `check_world` accepts only worlds it describes exactly: one Moffat PSF family with a
fixed index whose model is the true PSF, bulge+disk galaxies of a fixed size-magnitude relation,
one band and one exposure time (the narrow world).
"""

from __future__ import annotations

__all__ = [
    "BayesReferenceConfig",
    "LLR_CLIP",
    "check_world",
    "cross_fit_posterior",
    "flux_marginal_log_likelihood",
    "log_likelihood_ratio",
]

import dataclasses
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from lsst.meas.contextnet.sim.population import PopulationConfig, draw_galaxy_shapes
from lsst.meas.contextnet.sim.stamps import StampRenderer


@dataclasses.dataclass(frozen=True)
class BayesReferenceConfig:
    """Parameters of `log_likelihood_ratio`.

    Attributes
    ----------
    half_width : `int`
        The window is ``2 * half_width + 1`` pixels on a side, centred on the source's pixel.
    max_shift : `float`
        Largest offset (pixels, along each axis) of the position grid from the centroid.
    shift_step : `float`
        Step of the position grid (pixels).
    draws : `int`
        Galaxies of the population averaged over for each source.
    mag_jitter : `float`
        The galaxies' magnitudes are drawn uniformly within this of the source's measured one.
    """

    half_width: int = 8
    max_shift: float = 1.0
    shift_step: float = 0.5
    draws: int = 48
    mag_jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.half_width < 1:
            raise ValueError(f"half_width must be at least 1, got {self.half_width!r}")
        if not (self.shift_step > 0 and self.max_shift >= 0):
            raise ValueError("shift_step must be positive and max_shift non-negative")
        if self.draws < 1:
            raise ValueError(f"draws must be at least 1, got {self.draws!r}")
        if not self.mag_jitter >= 0:
            raise ValueError(f"mag_jitter must be non-negative, got {self.mag_jitter!r}")

    def offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the position grid: x and y offsets in pixels, one pair per grid point.

        Whole steps of ``shift_step`` from 0 (the centroid) out to at most ``max_shift``.
        """
        k = int(np.floor(self.max_shift / self.shift_step + 1e-9))
        steps = self.shift_step * np.arange(-k, k + 1)
        sx, sy = np.meshgrid(steps, steps)
        return sx.ravel(), sy.ravel()


def check_world(world: Mapping[str, Any]) -> None:
    """Check that a world is one whose sources `log_likelihood_ratio` models exactly.

    Parameters
    ----------
    world : `~collections.abc.Mapping`
        The world as a simulation record holds it (``resolved_world``, `World.to_dict`).

    Raises
    ------
    ValueError
        Naming each property of the world that the reference does not model.
    """
    keys = (
        "psf_families",
        "moffat_beta_range",
        "exact_psf_model",
        "galaxy_families",
        "hlr_at_22_range",
        "hlr_slope_range",
        "bands",
        "exposure_time_range",
    )
    missing = [key for key in keys if key not in world]
    if missing:
        raise ValueError(f"the world {world.get('name')!r} does not say its {missing}")
    problems = []

    def fixed(name: str) -> bool:
        low, high = world[name]
        return low == high

    if list(world["psf_families"]) != ["moffat"] or not fixed("moffat_beta_range"):
        problems.append("the true PSF is not one Moffat family of fixed index")
    if not world["exact_psf_model"]:
        problems.append("the PSF model is not the true PSF")
    if list(world["galaxy_families"]) != ["bulge_disk"]:
        problems.append(f"galaxy families {list(world['galaxy_families'])} are not bulge+disk alone")
    if not (fixed("hlr_at_22_range") and fixed("hlr_slope_range")):
        problems.append("the galaxies' size-magnitude relation varies between visits")
    if len(world["bands"]) != 1 or not fixed("exposure_time_range"):
        problems.append("visits have several bands or exposure times")
    if problems:
        raise ValueError(
            f"the Bayes reference does not model world {world.get('name')!r}: " + "; ".join(problems)
        )


def flux_marginal_log_likelihood(templates: np.ndarray, data: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Log-likelihood of pixels under a template of unknown positive flux (flat prior).

    With Gaussian noise, ``data = a * template + noise``, the integral over ``a > 0`` of
    ``exp(-chi2(a) / 2)`` is ``exp(-chi2_min / 2) * sqrt(2 pi / D) * Phi(N / sqrt(D))``
    with ``N = sum(w t d)`` and ``D = sum(w t t)``; this returns its logarithm less the
    template-independent ``-sum(w d d) / 2 + log(2 pi) / 2``.

    Parameters
    ----------
    templates : `numpy.ndarray`
        ``(..., H, W)`` templates (a template's normalization is its flux unit).
    data : `numpy.ndarray`
        Pixels, broadcastable against ``templates``.
    weights : `numpy.ndarray`
        Inverse variances (0 for pixels left out), broadcastable against ``templates``.

    Returns
    -------
    loglike : `numpy.ndarray`
        ``templates.shape[:-2]``; ``-inf`` where a template has no weighted pixel.
    """
    from scipy.special import log_ndtr

    data = np.where(weights > 0, data, 0.0)  # a pixel left out may hold anything, NaN included
    num = np.sum(templates * weights * data, axis=(-2, -1))
    den = np.sum(templates * templates * weights, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = num / np.sqrt(den)
        out = 0.5 * z * z - 0.5 * np.log(den) + log_ndtr(z)
    return np.where(den > 0, out, -np.inf)


def log_likelihood_ratio(
    data: np.ndarray,
    weights: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    psf_fwhm: np.ndarray,
    psf_g1: np.ndarray,
    psf_g2: np.ndarray,
    mag: np.ndarray,
    *,
    population: PopulationConfig,
    renderer: StampRenderer,
    rng: np.random.Generator,
    config: BayesReferenceConfig | None = None,
) -> np.ndarray:
    """Return ``log p(pixels | galaxy) - log p(pixels | star)`` for each source.

    Parameters
    ----------
    data, weights : `numpy.ndarray`
        ``(N, 2 h + 1, 2 h + 1)`` windows of the sky-subtracted image and of the inverse
        variance (0 on pixels left out), centred on each source's pixel.
    dx, dy : `numpy.ndarray`
        ``(N,)`` sub-pixel offsets of the centroids from those pixels' centres.
    psf_fwhm, psf_g1, psf_g2 : `numpy.ndarray`
        ``(N,)`` the Moffat PSF at each source: FWHM (arcsec) and shear.
    mag : `numpy.ndarray`
        ``(N,)`` measured magnitudes: the galaxies averaged over are drawn near them.
    population : `~lsst.meas.contextnet.sim.population.PopulationConfig`
        The world's galaxy population.
    renderer : `~lsst.meas.contextnet.sim.stamps.StampRenderer`
        The simulator's renderer, with the world's pixel scale and Moffat index.
    rng : `numpy.random.Generator`
        Draws the galaxies.
    config : `BayesReferenceConfig`, optional
        Window, position grid and number of galaxies.

    Returns
    -------
    llr : `numpy.ndarray`
        ``(N,)`` float64; positive favours a galaxy.

    Raises
    ------
    ValueError
        If the windows are not ``2 * config.half_width + 1`` pixels on a side or the per-source
        arrays do not have one entry per window.
    """
    from scipy.special import logsumexp

    config = config or BayesReferenceConfig()
    side = 2 * config.half_width + 1
    data = np.asarray(data, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n = len(data)
    if data.shape != (n, side, side) or weights.shape != data.shape:
        raise ValueError(
            f"data and weights must be (N, {side}, {side}), got {data.shape} and {weights.shape}"
        )
    per_source = [np.asarray(a, dtype=np.float64) for a in (dx, dy, psf_fwhm, psf_g1, psf_g2, mag)]
    if any(a.shape != (n,) for a in per_source):
        raise ValueError(f"dx, dy, psf_fwhm, psf_g1, psf_g2 and mag need {n} entries each")
    dx, dy, psf_fwhm, psf_g1, psf_g2, mag = per_source
    sx, sy = config.offsets()
    n_shift = len(sx)

    def loglike(
        galaxy: bool, hlr: np.ndarray, bulge: np.ndarray, g1: np.ndarray, g2: np.ndarray
    ) -> np.ndarray:
        # Every source at every offset: (N * n_shift) templates of unit flux.
        def each(a: np.ndarray) -> np.ndarray:
            return np.repeat(a, n_shift)

        templates = renderer.render(
            side,
            flux=np.ones(n * n_shift),
            dx=each(dx) + np.tile(sx, n),
            dy=each(dy) + np.tile(sy, n),
            psf_fwhm=each(psf_fwhm),
            psf_g1=each(psf_g1),
            psf_g2=each(psf_g2),
            is_galaxy=np.full(n * n_shift, galaxy),
            hlr=each(hlr),
            g1=each(g1),
            g2=each(g2),
            bulge_fraction=each(bulge),
        ).reshape(n, n_shift, side, side)
        per_shift = flux_marginal_log_likelihood(templates, data[:, None], weights[:, None])
        return logsumexp(per_shift, axis=1) - np.log(n_shift)

    zeros = np.zeros(n)
    star = loglike(False, zeros, zeros, zeros, zeros)
    galaxy = np.empty((n, config.draws))
    for k in range(config.draws):
        drawn_mag = mag + rng.uniform(-config.mag_jitter, config.mag_jitter, size=n)
        hlr, bulge, ellipticity, rotation = draw_galaxy_shapes(rng, drawn_mag, population)
        angle = np.deg2rad(2.0 * rotation)
        galaxy[:, k] = loglike(True, hlr, bulge, ellipticity * np.cos(angle), ellipticity * np.sin(angle))
    return logsumexp(galaxy, axis=1) - np.log(config.draws) - star


LLR_CLIP: float = 30.0
"""Log-likelihood ratios are clipped to +-this before the posterior's regression: beyond it a
source's class is certain at any prior, and the bright sources' ratios (thousands) would
otherwise set the regression's scale."""


class _LogisticPosterior:
    """P(galaxy) from the log-likelihood ratio and the magnitude: a logistic regression on
    ``(llr, mag, mag**2, llr * mag)`` (the prior odds and the ratio's scale, smooth in flux;
    ``llr`` clipped to `LLR_CLIP`) and any further input columns as they are.
    """

    def __init__(self) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self._model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))

    @staticmethod
    def _features(inputs: np.ndarray) -> np.ndarray:
        llr, mag = np.clip(inputs[:, 0], -LLR_CLIP, LLR_CLIP), inputs[:, 1]
        return np.column_stack([llr, mag, mag * mag, llr * mag, inputs[:, 2:]])

    def fit(self, inputs: np.ndarray, is_galaxy: np.ndarray) -> Self:
        self._model.fit(self._features(inputs), is_galaxy)
        return self

    def predict_proba(self, inputs: np.ndarray) -> np.ndarray:
        return self._model.predict_proba(self._features(inputs))[:, 1]


def cross_fit_posterior(
    llr: np.ndarray,
    mag: np.ndarray,
    is_galaxy: np.ndarray,
    groups: np.ndarray,
    *,
    n_folds: int = 2,
    seed: int = 0,
    extra: np.ndarray | None = None,
) -> np.ndarray:
    """Turn log-likelihood ratios into out-of-sample P(galaxy).

    Parameters
    ----------
    llr, mag : `numpy.ndarray`
        ``(N,)`` `log_likelihood_ratio` and the measured magnitudes it was computed with.
    is_galaxy : `numpy.ndarray`
        ``(N,)`` true classes.
    groups : `numpy.ndarray`
        ``(N,)`` visit of each source: a source's probability comes from a fit on other visits.
    n_folds : `int`, optional
        Folds of visits.
    seed : `int`, optional
        Seed of the assignment of visits to folds.
    extra : `numpy.ndarray`, optional
        ``(N,)`` or ``(N, k)`` further inputs of the regression (e.g. another classifier's
        logit, to measure what the ratio adds to it).

    Returns
    -------
    prob : `numpy.ndarray`
        ``(N,)`` P(galaxy); NaN where an input is not finite.
    """
    from lsst.meas.contextnet.evaluation.trivial import cross_fit_predict

    columns = [np.asarray(llr, dtype=np.float64), np.asarray(mag, dtype=np.float64)]
    if extra is not None:
        columns.append(np.asarray(extra, dtype=np.float64).reshape(len(columns[0]), -1))
    inputs = np.column_stack(columns)
    labels = np.asarray(is_galaxy, dtype=bool)
    good = np.all(np.isfinite(inputs), axis=1)
    prob = np.full(len(labels), np.nan)
    prob[good] = cross_fit_predict(
        _LogisticPosterior,
        inputs[good],
        labels[good],
        groups=np.asarray(groups)[good],
        n_folds=n_folds,
        rng=np.random.default_rng(seed),
    )
    return prob
