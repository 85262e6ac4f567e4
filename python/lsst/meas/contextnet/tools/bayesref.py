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

"""``contextnet bayes-reference``: score ContextNet against the Bayes reference classifier.

Reads the classifications, truth and ``src`` of a simulated repository (as ``contextnet
evaluate`` does), computes the Bayes reference (`lsst.meas.contextnet.evaluation.bayes`) of every
matched source from its ``calexp``, and scores beside ContextNet, the DM baselines and the catalog
peer two more classifiers: ``bayes_reference`` (the reference's out-of-sample P(galaxy)) and
``contextnet_plus_bayes`` (a logistic regression on the reference's inputs and ContextNet's
logit, fitted on other visits: if it beats ContextNet, the reference holds information the
network does not use).
"""

from __future__ import annotations

__all__ = ["BAYES_COLUMN", "STACK_COLUMN", "bayes_reference_repository", "exposure_llr", "psf_shears"]

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from lsst.meas.contextnet.evaluation.bayes import (
    BayesReferenceConfig,
    check_world,
    cross_fit_posterior,
    log_likelihood_ratio,
)
from lsst.meas.contextnet.evaluation.scoring import EvaluationResult

if TYPE_CHECKING:
    from lsst.images import VisitImage
    from lsst.meas.contextnet.sim.population import PopulationConfig
    from lsst.meas.contextnet.sim.stamps import StampRenderer

_LOG = logging.getLogger(__name__)

BAYES_COLUMN = "bayes_reference"
"""Column (and classifier name) of the Bayes reference's P(galaxy)."""

STACK_COLUMN = "contextnet_plus_bayes"
"""Column of the logistic combination of ContextNet's logit with the reference's inputs."""


def _hsm_shears(images: np.ndarray) -> np.ndarray:
    """Adaptive-moment shear ``(g1, g2)`` of each image; NaN where the moments do not converge."""
    import galsim

    shear = np.full((len(images), 2), np.nan)
    for i, image in enumerate(images):
        try:
            moments = galsim.hsm.FindAdaptiveMom(galsim.Image(np.asarray(image, dtype=np.float64)))
        except galsim.GalSimError:
            continue
        shear[i] = moments.observed_shape.g1, moments.observed_shape.g2
    return shear


def psf_shears(psf_images: np.ndarray, psf_fwhm: np.ndarray, renderer: StampRenderer) -> np.ndarray:
    """Return the Moffat shear that the renderer must draw to reproduce each PSF model image.

    The adaptive moments of a pixelized PSF image measure its shear diluted by the pixel (by
    2-7% at 1.0"-0.5" FWHM), while the renderer shears the profile before the pixel: one
    fixed-point step, ``g = g_image + (g_image - g_rendered(g_image))``, removes that.

    Parameters
    ----------
    psf_images : `numpy.ndarray`
        ``(N, S, S)`` PSF model images centred on the central pixel.
    psf_fwhm : `numpy.ndarray`
        ``(N,)`` their FWHM (arcsec).
    renderer : `~lsst.meas.contextnet.sim.stamps.StampRenderer`
        The renderer the templates are drawn with.

    Returns
    -------
    shear : `numpy.ndarray`
        ``(N, 2)`` ``(g1, g2)``; NaN where the moments of an image do not converge.
    """
    measured = _hsm_shears(psf_images)
    n = len(psf_images)
    zeros = np.zeros(n)
    rendered = renderer.render(
        psf_images.shape[-1],
        flux=np.ones(n),
        dx=zeros,
        dy=zeros,
        psf_fwhm=psf_fwhm,
        psf_g1=np.nan_to_num(measured[:, 0]),
        psf_g2=np.nan_to_num(measured[:, 1]),
        is_galaxy=np.zeros(n, dtype=bool),
        hlr=zeros,
        g1=zeros,
        g2=zeros,
        bulge_fraction=zeros,
    )
    return 2.0 * measured - _hsm_shears(rendered)


def exposure_llr(
    exposure: VisitImage,
    x: np.ndarray,
    y: np.ndarray,
    psf_fwhm: np.ndarray,
    mag: np.ndarray,
    *,
    population: PopulationConfig,
    renderer: StampRenderer,
    rng: np.random.Generator,
    config: BayesReferenceConfig,
) -> np.ndarray:
    """Compute the log-likelihood ratio of the sources of one exposure.

    Parameters
    ----------
    exposure : `lsst.images.VisitImage`
        The calibrated exposure, with its PSF model.
    x, y : `numpy.ndarray`
        Centroids (pixels of the exposure's frame).
    psf_fwhm : `numpy.ndarray`
        PSF FWHM at each source (arcsec).
    mag : `numpy.ndarray`
        Measured magnitudes.
    population, renderer, rng, config
        As for `~lsst.meas.contextnet.evaluation.bayes.log_likelihood_ratio`.

    Returns
    -------
    llr : `numpy.ndarray`
        One per source; NaN where the centroid is missing or off the image, the magnitude or
        FWHM is not finite, or the PSF shape cannot be measured.  Pixels of the classifier's
        bad mask planes (``badMaskPlanes``) and pixels beyond the image are left out.
    """
    from lsst.meas.contextnet.classifier import ContextNetClassifierConfig
    from lsst.meas.contextnet.cutouts import bad_mask_bits, extract_cutouts
    from lsst.meas.contextnet.psfinputs import evaluate_psf_grid, interpolate_psf, subpixel_offsets

    side = 2 * config.half_width + 1
    bbox = exposure.bbox
    fx, fy = x - bbox.x.start, y - bbox.y.start
    mask, bits, _ = bad_mask_bits(exposure.mask, ContextNetClassifierConfig().badMaskPlanes)
    cut = extract_cutouts(exposure.image.array, fx, fy, side, mask=mask, bad_mask_bits=bits)
    llr = np.full(len(x), np.nan)
    usable = np.flatnonzero(~(cut.bad_centroid | cut.off_image) & np.isfinite(psf_fwhm) & np.isfinite(mag))
    if not len(usable):
        return llr
    variance = extract_cutouts(exposure.variance.array, fx[usable], fy[usable], side).cutouts
    good = (variance > 0) & np.isfinite(variance) & ~cut.bad[usable]
    weights = np.where(good, 1.0 / np.where(good, variance, 1.0), 0.0)
    grid = evaluate_psf_grid(
        lambda px, py: exposure.psf.compute_kernel_image(x=px, y=py).array,
        bbox.x.size,
        bbox.y.size,
        side,
        x0=bbox.x.start,
        y0=bbox.y.start,
    )
    psf_images = interpolate_psf(grid, fx[usable], fy[usable], bbox.x.size, bbox.y.size)
    shear = psf_shears(psf_images, psf_fwhm[usable], renderer)
    dx, dy = subpixel_offsets(x[usable], y[usable])
    measured = np.all(np.isfinite(shear), axis=1)
    chosen = usable[measured]
    llr[chosen] = log_likelihood_ratio(
        cut.cutouts[chosen],
        weights[measured],
        dx[measured],
        dy[measured],
        psf_fwhm[chosen],
        shear[measured, 0],
        shear[measured, 1],
        mag[chosen],
        population=population,
        renderer=renderer,
        rng=rng,
        config=config,
    )
    return llr


@dataclasses.dataclass(frozen=True)
class _WorldModel:
    """What the reference needs of the world that simulated a collection."""

    population: PopulationConfig
    renderer: StampRenderer
    band: str
    exposure_time: float

    @classmethod
    def from_record(cls, butler: Any, run: str) -> _WorldModel:
        from lsst.meas.contextnet.sim import survey
        from lsst.meas.contextnet.sim.population import PopulationConfig
        from lsst.meas.contextnet.sim.simulate import simulation_record
        from lsst.meas.contextnet.sim.stamps import StampRenderer
        from lsst.meas.contextnet.sim.world import MOFFAT_BETA_STEP

        record = simulation_record(butler, run)
        world = None if record is None else record.get("config", {}).get("resolved_world")
        if world is None:
            raise ValueError(
                f"{run} has no simulation record with its world: the Bayes reference needs the world "
                "that simulated it ('contextnet simulate' records it)"
            )
        check_world(world)
        # As World.draw_visit rounds it.
        beta = round(world["moffat_beta_range"][0] / MOFFAT_BETA_STEP) * MOFFAT_BETA_STEP
        return cls(
            population=PopulationConfig(
                hlr_at_22=world["hlr_at_22_range"][0], hlr_slope=world["hlr_slope_range"][0]
            ),
            renderer=StampRenderer(survey.pixel_scale(), beta),
            band=world["bands"][0],
            exposure_time=float(world["exposure_time_range"][0]),
        )


def bayes_reference_repository(
    repo: str | os.PathLike[str],
    collections: Sequence[str],
    output: str | os.PathLike[str],
    *,
    config: BayesReferenceConfig | None = None,
    seed: int = 0,
    mag_bins: Sequence[float] | None = None,
    peer: bool = True,
) -> tuple[EvaluationResult, list[Path]]:
    """Score a simulated repository's classifications beside the Bayes reference.

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        Butler repository.
    collections : `~collections.abc.Sequence` [`str`]
        Collections holding ``contextnet_classification``, ``truth``, ``src`` and ``calexp``.
    output : `str` or `os.PathLike`
        Directory for ``metrics.csv``, ``metrics.json`` and ``summary.txt``.
    config : `~lsst.meas.contextnet.evaluation.bayes.BayesReferenceConfig`, optional
        The reference's window, position grid and galaxy draws.
    seed : `int`, optional
        Seed of the galaxy draws and of the visit folds.
    mag_bins : `~collections.abc.Sequence` [`float`], optional
        Magnitude bin edges (default: the evaluation task's).
    peer : `bool`, optional
        Score the shipped catalog peer too.

    Returns
    -------
    result : `~lsst.meas.contextnet.evaluation.scoring.EvaluationResult`
        The scores.
    written : `list` [`pathlib.Path`]
        Files written.

    Raises
    ------
    ValueError
        If an exposure's collection has no simulation record, or its world is one the reference
        does not model (`~lsst.meas.contextnet.evaluation.bayes.check_world`).
    """
    from lsst.daf.butler import Butler
    from lsst.meas.contextnet.evaluation.butler import load_from_butler
    from lsst.meas.contextnet.evaluation.peer import CatalogPeer
    from lsst.meas.contextnet.evaluation.scoring import (
        bool_column,
        evaluate_catalog,
        float_column,
        write_outputs,
    )
    from lsst.meas.contextnet.evaluation.task import ContextNetEvaluationConfig
    from lsst.meas.contextnet.sim import survey

    config = config or BayesReferenceConfig()
    defaults = ContextNetEvaluationConfig()
    rng = np.random.default_rng(seed)
    butler = Butler.from_config(str(repo), writeable=False)
    try:
        joined, bands = load_from_butler(butler, collections, progress=False)
        catalog = joined.catalog
        gaussian = float_column(catalog, "gaussianFlux")
        flux = np.where(gaussian > 0, gaussian, float_column(catalog, "psfFlux"))
        x, y, fwhm = (float_column(catalog, name) for name in ("x", "y", "psf_fwhm"))
        llr = np.full(len(catalog), np.nan)
        mag = np.full(len(catalog), np.nan)
        calexps = {
            (int(ref.dataId["visit"]), int(ref.dataId["detector"])): ref
            for ref in butler.query_datasets("calexp", collections=list(collections), explain=False)
        }
        models: dict[str, _WorldModel] = {}
        keys = np.column_stack([np.asarray(catalog["visit"]), np.asarray(catalog["detector"])])
        exposures, index = np.unique(keys, axis=0, return_inverse=True)
        for number, (visit, detector) in enumerate(exposures, start=1):
            rows = np.flatnonzero(index.ravel() == number - 1)
            ref = calexps.get((int(visit), int(detector)))
            if ref is None:
                raise ValueError(f"no calexp for visit {visit}, detector {detector} in {list(collections)}")
            if ref.run not in models:
                models[ref.run] = _WorldModel.from_record(butler, ref.run)
            model = models[ref.run]
            with np.errstate(divide="ignore", invalid="ignore"):
                mag[rows] = survey.flux_to_mag(flux[rows], model.band, model.exposure_time)
            llr[rows] = exposure_llr(
                butler.get(ref),
                x[rows],
                y[rows],
                fwhm[rows],
                mag[rows],
                population=model.population,
                renderer=model.renderer,
                rng=rng,
                config=config,
            )
            _LOG.info(
                "Bayes reference: exposure %d of %d (visit %d, %d sources)",
                number,
                len(exposures),
                visit,
                len(rows),
            )
    finally:
        butler.close()

    labels = bool_column(catalog, "is_galaxy", fill=False)
    visits = np.asarray(catalog["visit"])
    catalog[BAYES_COLUMN] = cross_fit_posterior(llr, mag, labels, visits, seed=seed)
    prob = np.clip(float_column(catalog, "classification_galaxyProb"), 1e-6, 1.0 - 1e-6)
    catalog[STACK_COLUMN] = cross_fit_posterior(
        llr, mag, labels, visits, seed=seed, extra=np.log(prob / (1.0 - prob))
    )
    catalog["bayes_llr"] = llr
    result = evaluate_catalog(
        catalog,
        counts=joined.counts,
        mag_bins=list(defaults.magBins if mag_bins is None else mag_bins),
        baseline_columns=("extendedness", "sizeExtendedness", BAYES_COLUMN, STACK_COLUMN),
        do_trivial=False,
        seed=seed,
        peer=CatalogPeer.load(defaults.peerPath or None) if peer else None,
    )
    result.settings.update(
        repo=str(repo),
        collections=list(collections),
        bands=bands,
        bayes_reference=dataclasses.asdict(config) | {"seed": seed},
    )
    return result, write_outputs(result, output)
