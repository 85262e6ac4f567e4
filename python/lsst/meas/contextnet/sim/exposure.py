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

"""Simulate one LSST-like visit-detector exposure end to end, in memory.

`simulate_exposure` draws the visit's PSF field, the source population, renders the pixels,
detects sources with ``sep``, measures the pipelines' baselines and matches detections to the
truth.  It is a pure function of its arguments: the same configuration, visit, detector and
seed give identical arrays and tables.  Writing the result to a Butler repository is the job of
`lsst.meas.contextnet.sim.simulate`.

Random streams: with an integer ``seed``, the visit-level PSF FWHM comes from
``SeedSequence([seed, visit])`` (all detectors of a visit share it) and everything else from
``SeedSequence([seed, visit, detector])``; with a `numpy.random.Generator`, everything is drawn
from it.

Sky geometry: each visit points at ``(ra0 + visit * visit_ra_step, dec0)``; detectors sit on a
grid of 3 columns around the boresight (`detector_offset`), and each gets a TAN WCS of the
LSST pixel scale (`make_tan_wcs`), with north up and east to the left (−x).
"""

from __future__ import annotations

__all__ = [
    "SimulationConfig",
    "SimulatedExposure",
    "simulate_exposure",
    "detector_offset",
    "visit_pointing",
    "make_source_ids",
    "DETECTIONS_PER_FULL_DETECTOR",
    "FULL_DETECTOR_SIZE",
]

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table
from lsst.meas.contextnet.serialization import dataclass_to_dict
from lsst.meas.contextnet.sim import survey
from lsst.meas.contextnet.sim.detect import (
    DetectionConfig,
    detect_sources,
    match_to_truth,
    truth_match_radius,
)
from lsst.meas.contextnet.sim.measure import measure_sources
from lsst.meas.contextnet.sim.population import PopulationConfig, detection_kernel, draw_population
from lsst.meas.contextnet.sim.psf import PsfField, visit_psf_fields
from lsst.meas.contextnet.sim.render import RENDER_MASK_BITS, render_exposure
from lsst.meas.contextnet.sim.wcs import detector_offset, make_tan_wcs
from lsst.meas.contextnet.sim.world import SceneConfig, VisitConditions

if TYPE_CHECKING:
    from astropy.wcs import WCS

FULL_DETECTOR_SIZE: int = 4096
"""Side of an LSST science detector in pixels."""

DETECTIONS_PER_FULL_DETECTOR: float = 1700.0
"""Expected detected sources on a 4096x4096 detector with ``density_scale = 1``."""

_SOURCE_INDEX_BITS = 20


@dataclasses.dataclass(frozen=True)
class SimulationConfig(SceneConfig):
    """Parameters of a simulated exposure.

    The visits' conditions and populations are drawn from a `~lsst.meas.contextnet.sim.world.World`
    (``world``, a preset name); the scalar options below, when given, fix one of its
    distributions (`~lsst.meas.contextnet.sim.world.resolve_world`), `None` keeps the world's.

    Attributes
    ----------
    (those of `~lsst.meas.contextnet.sim.world.SceneConfig`, and)
    size : `int`
        Detector side in pixels (square detectors).
    density_scale : `float`, optional
        Multiplies the expected number of detections, 1700 per 4096x4096 detector (scaled by
        area for other sizes).
    edge_width : `int`
        Width of the EDGE mask border in pixels.
    ra0, dec0 : `float`
        Pointing of visit 0 in degrees.
    visit_ra_step : `float`
        RA step between consecutive visits' pointings in degrees.
    """

    size: int = FULL_DETECTOR_SIZE
    density_scale: float | None = None
    edge_width: int = 8
    ra0: float = 150.0
    dec0: float = 2.0
    visit_ra_step: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 32:
            raise ValueError(f"size must be an integer of at least 32 pixels, got {self.size!r}")
        if not (0 <= self.edge_width < self.size // 2):
            raise ValueError(f"edge_width must be in [0, size / 2), got {self.edge_width!r}")
        if not (-90.0 <= self.dec0 <= 90.0):
            raise ValueError(f"dec0 must be in [-90, 90] degrees, got {self.dec0!r}")

    def expected_detections(self, conditions: VisitConditions) -> float:
        """Return the expected number of detected sources on one detector.

        Parameters
        ----------
        conditions : `~lsst.meas.contextnet.sim.world.VisitConditions`
            The visit's conditions (their density scale).

        Returns
        -------
        n : `float`
            Expected detections.
        """
        return DETECTIONS_PER_FULL_DETECTOR * conditions.density_scale * (self.size / FULL_DETECTOR_SIZE) ** 2

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-compatible dictionary.

        Returns
        -------
        config : `dict`
            Field name to value (tuples as lists), the options left to the world omitted, and
            ``resolved_world``: the world's distributions with the fixed options applied.
        """
        data = {k: v for k, v in dataclass_to_dict(self).items() if v is not None}
        data["resolved_world"] = self.resolved_world().to_dict()
        return data


@dataclasses.dataclass
class SimulatedExposure:
    """One simulated visit-detector exposure.

    Attributes
    ----------
    image : `numpy.ndarray`
        Sky-subtracted pixels in electrons, float32, shape (size, size).
    variance : `numpy.ndarray`
        Variance in electrons squared, float32.
    mask : `numpy.ndarray`
        int32 bit mask, bits in ``mask_planes``.
    mask_planes : `dict` [`str`, `int`]
        Mask plane name to bit number.
    psf_field : `~lsst.meas.contextnet.sim.psf.PsfField`
        The exposure's PSF model (``psf_field.to_piff()`` gives the Piff model).
    wcs : `astropy.wcs.WCS`
        TAN WCS of the detector.
    src : `astropy.table.Table`
        Detected sources with their measurements (design section 3 columns).
    truth : `astropy.table.Table`
        Every simulated source, ``sourceId = -1`` when not detected.
    noise_sigma : `float`
        ``sqrt(median(variance))``.
    sky_level : `float`
        Sky subtracted from the image, electrons per pixel.
    metadata : `dict` [`str`, `typing.Any`]
        Band, visit, detector, exposure time, zero point, PSF summary, world and visit
        conditions, counts, configuration.
    true_psf_field : `~lsst.meas.contextnet.sim.psf.PsfField`
        The PSF the pixels were drawn with.
    """

    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    mask_planes: dict[str, int]
    psf_field: PsfField
    wcs: WCS
    src: Table
    truth: Table
    noise_sigma: float
    sky_level: float
    metadata: dict[str, Any]
    true_psf_field: PsfField | None = None
    """The PSF the pixels were drawn with (differs from ``psf_field`` outside the narrow world)."""


def visit_pointing(visit: int, config: SimulationConfig) -> tuple[float, float]:
    """Return the boresight of a visit.

    Parameters
    ----------
    visit : `int`
        Visit number.
    config : `SimulationConfig`
        Supplies ``ra0``, ``dec0`` and ``visit_ra_step``.

    Returns
    -------
    ra, dec : `float`
        Degrees.
    """
    return float((config.ra0 + visit * config.visit_ra_step) % 360.0), float(config.dec0)


def make_source_ids(visit: int, detector: int, n: int) -> np.ndarray:
    """Source IDs unique across visits and detectors.

    ``sourceId = ((visit * 1000 + detector) << 20) + index + 1``.

    Parameters
    ----------
    visit, detector : `int`
        Visit and detector numbers (detector below 1000).
    n : `int`
        Number of sources (below 2**20).

    Returns
    -------
    ids : `numpy.ndarray`
        int64.

    Raises
    ------
    ValueError
        If an argument is out of range.
    """
    if visit < 0 or not (0 <= detector < 1000) or not (0 <= n < 2**_SOURCE_INDEX_BITS):
        raise ValueError(f"cannot build source IDs for visit={visit}, detector={detector}, n={n}")
    base = (int(visit) * 1000 + int(detector)) << _SOURCE_INDEX_BITS
    return base + np.arange(1, n + 1, dtype=np.int64)


def visit_conditions(config: SimulationConfig, visit: int, seed: int) -> VisitConditions:
    """Draw the conditions of a visit, shared by all its detectors.

    Parameters
    ----------
    config : `SimulationConfig`
        Simulation parameters (their world).
    visit : `int`
        Visit number.
    seed : `int`
        Seed of the simulation.

    Returns
    -------
    conditions : `~lsst.meas.contextnet.sim.world.VisitConditions`
        Drawn from ``SeedSequence([seed, visit])``.
    """
    visit_rng, _ = _generators(seed, visit, 0)
    return config.resolved_world().draw_visit(visit_rng)


def _generators(
    seed: int | np.random.Generator, visit: int, detector: int
) -> tuple[np.random.Generator, list[np.random.Generator]]:
    if isinstance(seed, np.random.Generator):
        return seed, [seed, seed, seed]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    visit_rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(visit)]))
    children = np.random.SeedSequence([int(seed), int(visit), int(detector)]).spawn(3)
    return visit_rng, [np.random.default_rng(c) for c in children]


def simulate_exposure(
    config: SimulationConfig, visit: int, detector: int, seed: int | np.random.Generator
) -> SimulatedExposure:
    """Simulate, detect and measure one visit-detector exposure.

    Parameters
    ----------
    config : `SimulationConfig`
        Simulation parameters.
    visit : `int`
        Visit number (non-negative).
    detector : `int`
        Detector number (0-999).
    seed : `int` or `numpy.random.Generator`
        Seed (see the module notes on random streams) or generator.

    Returns
    -------
    exposure : `SimulatedExposure`
        Pixels, PSF, WCS, ``src`` and ``truth`` tables.

    Raises
    ------
    ValueError
        If ``visit``, ``detector`` or ``seed`` is out of range.
    """
    if isinstance(visit, bool) or not isinstance(visit, (int, np.integer)) or visit < 0:
        raise ValueError(f"visit must be a non-negative integer, got {visit!r}")
    if isinstance(detector, bool) or not isinstance(detector, (int, np.integer)) or not 0 <= detector < 1000:
        raise ValueError(f"detector must be an integer in [0, 1000), got {detector!r}")
    visit_rng, (psf_rng, population_rng, noise_rng) = _generators(seed, visit, detector)
    world = config.resolved_world()
    conditions = world.draw_visit(visit_rng)
    band = survey.get_band(conditions.band)
    scale = band.pixel_scale
    size = int(config.size)

    # Detection and measurement use the PSF model the exposure carries, as a pipeline would.
    true_psf, psf_field = visit_psf_fields(
        psf_rng,
        conditions,
        size,
        variation=config.psf_variation,
        fwhm_range=world.fwhm_range,
        nominal_fwhm=band.psf_fwhm,
        pixel_scale=scale,
    )
    visit_fwhm = conditions.fwhm if config.psf_variation == "full" else band.psf_fwhm
    sky = survey.sky_level(conditions.band, conditions.exposure_time)
    population = PopulationConfig.from_conditions(conditions, faint_margin=config.faint_margin)
    truth = draw_population(
        population_rng,
        psf_field,
        band=conditions.band,
        exposure_time=conditions.exposure_time,
        n_detected=config.expected_detections(conditions),
        config=population,
        threshold=config.detection_threshold,
    )
    truth["psf_fwhm"] = true_psf.fwhm_at(np.asarray(truth["x_true"]), np.asarray(truth["y_true"]))
    rendered = render_exposure(
        truth,
        true_psf,
        sky_level=sky,
        rng=noise_rng,
        saturation=config.saturation,
        edge_width=config.edge_width,
        cosmic_ray_rate=conditions.cosmic_ray_rate,
        exposure_time=conditions.exposure_time,
        bad_column_rate=conditions.bad_column_rate,
    )
    mask = rendered.mask
    bad = (mask & (1 << RENDER_MASK_BITS["BAD"])) != 0
    kernel = detection_kernel(psf_field)
    detections, segmentation = detect_sources(
        rendered.image,
        rendered.variance,
        kernel,
        bad=bad,
        config=DetectionConfig(threshold=config.detection_threshold),
    )
    mask[segmentation > 0] |= 1 << RENDER_MASK_BITS["DETECTED"]
    excluded = (mask & ((1 << RENDER_MASK_BITS["BAD"]) | (1 << RENDER_MASK_BITS["SAT"]))) != 0
    measurements = measure_sources(
        rendered.image,
        rendered.variance,
        psf_field,
        detections["x"],
        detections["y"],
        excluded=excluded,
        saturated=(mask & (1 << RENDER_MASK_BITS["SAT"])) != 0,
        segmentation=segmentation,
        radius=detections["a"],
    )

    ra0, dec0 = visit_pointing(visit, config)
    wcs = make_tan_wcs(
        ra0, dec0, size, size, offset=detector_offset(detector, size), pixel_scale_arcsec=scale
    )
    source_ids = make_source_ids(visit, detector, len(detections))
    det_ra, det_dec = wcs.pixel_to_world_values(np.asarray(detections["x"]), np.asarray(detections["y"]))
    src = Table(
        {
            "sourceId": source_ids,
            "coord_ra": np.asarray(det_ra, dtype=np.float64).reshape(-1),
            "coord_dec": np.asarray(det_dec, dtype=np.float64).reshape(-1),
            "x": np.asarray(detections["x"], dtype=np.float64),
            "y": np.asarray(detections["y"], dtype=np.float64),
        }
    )
    for name in (
        "psfFlux",
        "psfFluxErr",
        "gaussianFlux",
        "gaussianFluxErr",
        "extendedness",
        "sizeExtendedness",
        "extendedness_flag",
        "sizeExtendedness_flag",
        "psfFlux_flag",
        "gaussianFlux_flag",
    ):
        src[name] = measurements[name]

    fwhm_px = np.asarray(truth["psf_fwhm"]) / scale
    match = match_to_truth(
        detections["x"],
        detections["y"],
        truth["x_true"],
        truth["y_true"],
        truth["flux"],
        truth_match_radius(fwhm_px),
    )
    true_ra, true_dec = wcs.pixel_to_world_values(np.asarray(truth["x_true"]), np.asarray(truth["y_true"]))
    truth_out = Table()
    truth_out["sourceId"] = np.where(
        match >= 0, source_ids[np.maximum(match, 0)] if len(source_ids) else -1, -1
    )
    truth_out["sourceId"] = truth_out["sourceId"].astype(np.int64)
    for name in ("is_galaxy", "mag", "hlr_arcsec", "ellipticity", "rotation_deg", "x_true", "y_true"):
        truth_out[name] = truth[name]
    truth_out["ra_true"] = np.asarray(true_ra, dtype=np.float64).reshape(-1)
    truth_out["dec_true"] = np.asarray(true_dec, dtype=np.float64).reshape(-1)
    for name in ("psf_fwhm", "flux", "bulge_fraction", "galaxy_family", "sersic_n", "snr_expected"):
        truth_out[name] = truth[name]
    truth_out["is_galaxy"] = truth_out["is_galaxy"].astype(bool)

    metadata = {
        "band": conditions.band,
        "visit": int(visit),
        "detector": int(detector),
        "exposure_time": float(conditions.exposure_time),
        "world": world.name,
        "conditions": conditions.to_dict(),
        "psf_family": conditions.psf_family,
        "zero_point": band.zero_point,
        "pixel_scale": scale,
        "sky_level": rendered.sky_level,
        "noise_sigma": rendered.noise_sigma,
        "psf_variation": config.psf_variation,
        "psf_fwhm_visit": float(visit_fwhm),
        "psf_fwhm_mean": psf_field.mean_fwhm(),
        "boresight_ra": ra0,
        "boresight_dec": dec0,
        "seed": None if isinstance(seed, np.random.Generator) else int(seed),
        "n_truth": len(truth_out),
        "n_detected": len(src),
        "n_matched": int(np.sum(match >= 0)),
        "config": config.to_dict(),
    }
    return SimulatedExposure(
        image=rendered.image,
        variance=rendered.variance,
        mask=mask,
        mask_planes=dict(RENDER_MASK_BITS),
        psf_field=psf_field,
        true_psf_field=true_psf,
        wcs=wcs,
        src=src,
        truth=truth_out,
        noise_sigma=rendered.noise_sigma,
        sky_level=rendered.sky_level,
        metadata=metadata,
    )
