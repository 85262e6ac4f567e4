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

"""Exposures the benchmark measures on: simulated or synthetic, in memory or in a repository."""

from __future__ import annotations

__all__ = ["BenchExposure", "make_bench_exposure"]

import dataclasses
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astropy.table import Table
    from astropy.wcs import WCS
    from lsst.images import VisitImage

_BAND = "r"
_EXPOSURE_TIME_S = 30.0
_BEGIN = "2026-01-01T03:00:00"
_VISIT = 0
_DETECTOR = 0
_RUN = "bench/inputs"


@dataclasses.dataclass
class BenchExposure:
    """The exposure and source table every measurement of `run_benchmark` uses."""

    calexp: VisitImage
    """The image as the Butler stores it (`lsst.images.VisitImage`, electrons)."""

    src: Table
    """The sources to classify (`astropy.table.Table`, the simulator's ``src`` columns)."""

    truth: Table
    """True properties of the sources (`astropy.table.Table`); written to the Butler beside ``src``."""

    wcs: WCS
    """WCS of the detector (`astropy.wcs.WCS`), needed to register the visit."""

    description: dict[str, Any]
    """How the exposure was made: ``kind``, ``size``, ``n_sources``, ``seconds`` (to make it), ..."""


def _simulated_exposure(size: int, sources: int, rng: np.random.Generator) -> dict[str, Any]:
    """Simulate an exposure with about 20% more detections than needed, then keep ``sources``."""
    from lsst.meas.contextnet.sim.exposure import (
        DETECTIONS_PER_FULL_DETECTOR,
        FULL_DETECTOR_SIZE,
        SimulationConfig,
        simulate_exposure,
    )
    from lsst.meas.contextnet.sim.repo import LEGACY_MASK_PLANE_NAMES, MASK_PLANES

    per_unit = DETECTIONS_PER_FULL_DETECTOR * (size / FULL_DETECTOR_SIZE) ** 2
    config = SimulationConfig(band=_BAND, size=size, density_scale=1.2 * sources / per_unit)
    seed = int(rng.integers(0, 2**31))
    sim = simulate_exposure(config, _VISIT, _DETECTOR, seed)
    src = sim.src
    if len(src) > sources:
        keep = np.sort(rng.choice(len(src), size=sources, replace=False))
        src = src[keep]
    truth = sim.truth.copy()
    dropped = ~np.isin(truth["sourceId"], src["sourceId"]) & (truth["sourceId"] >= 0)
    truth["sourceId"][dropped] = -1
    masks = {
        name: (sim.mask & (1 << bit)) != 0
        for name, bit in sim.mask_planes.items()
        if name in MASK_PLANES or name in LEGACY_MASK_PLANE_NAMES
    }
    return {
        "image": sim.image,
        "variance": sim.variance,
        "masks": masks,
        "wcs": sim.wcs,
        "psf": sim.psf_field.to_piff(),
        "src": src,
        "truth": truth,
        "details": {
            "simulator": "lsst.meas.contextnet.sim.exposure.simulate_exposure",
            "simulation_seed": seed,
            "n_detected": len(sim.src),
            "psf_fwhm_mean_arcsec": float(sim.psf_field.mean_fwhm()),
            "noise_sigma": float(sim.noise_sigma),
            "config": config.to_dict(),
        },
    }


def _synthetic_exposure(size: int, sources: int, rng: np.random.Generator) -> dict[str, Any]:
    """Sky noise plus ``sources`` circular Gaussian sources (40% PSF-like stars, 60% wider galaxies)."""
    from astropy.table import Table
    from lsst.meas.contextnet.cutouts import nearest_pixel
    from lsst.meas.contextnet.sim.psf import PsfField
    from lsst.meas.contextnet.sim.wcs import make_tan_wcs

    sky = 1200.0  # electrons per pixel, about an LSST r-band 30 s sky
    fwhm_arcsec, pixel_scale = 0.8, 0.2
    psf_sigma = fwhm_arcsec / pixel_scale / 2.3548
    x = rng.uniform(0.0, size - 1.0, sources)
    y = rng.uniform(0.0, size - 1.0, sources)
    is_galaxy = rng.random(sources) >= 0.4
    sigma = np.where(is_galaxy, psf_sigma * rng.uniform(1.2, 2.5, sources), psf_sigma)
    flux = 10.0 ** rng.uniform(3.0, 5.5, sources)

    model = np.zeros((size, size), dtype=np.float64)
    half = 12
    offsets = np.arange(-half, half + 1)
    for chunk in np.array_split(np.arange(sources), max(1, sources // 256)):
        col = nearest_pixel(x[chunk])[:, None] + offsets
        row = nearest_pixel(y[chunk])[:, None] + offsets
        dx = col - x[chunk, None]
        dy = row - y[chunk, None]
        s2 = 2.0 * sigma[chunk, None, None] ** 2
        stamps = np.exp(-(dy[:, :, None] ** 2 + dx[:, None, :] ** 2) / s2)
        stamps *= (flux[chunk] / (np.pi * s2[:, 0, 0]))[:, None, None]
        rows = np.broadcast_to(row[:, :, None], stamps.shape)
        cols = np.broadcast_to(col[:, None, :], stamps.shape)
        inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
        np.add.at(model, (rows[inside], cols[inside]), stamps[inside])
    variance = sky + model
    image = (model + rng.normal(0.0, 1.0, model.shape) * np.sqrt(variance)).astype(np.float32)
    edge = np.zeros((size, size), dtype=bool)
    edge[:8, :] = edge[-8:, :] = edge[:, :8] = edge[:, -8:] = True
    masks = {"EDGE": edge, "SAT": (model + sky) > 1.0e5}

    wcs = make_tan_wcs(150.0, 2.0, size, size)
    x_meas = x + rng.normal(0.0, 0.05, sources)
    y_meas = y + rng.normal(0.0, 0.05, sources)
    ra, dec = wcs.pixel_to_world_values(x_meas, y_meas)
    ids = np.arange(1, sources + 1, dtype=np.int64)
    flux_err = np.sqrt(flux + 4.0 * np.pi * sigma**2 * sky)
    ratio = (psf_sigma / sigma) ** 2
    src = Table(
        {
            "sourceId": ids,
            "coord_ra": np.asarray(ra, dtype=np.float64),
            "coord_dec": np.asarray(dec, dtype=np.float64),
            "x": x_meas,
            "y": y_meas,
            "psfFlux": flux * 2.0 * ratio / (1.0 + ratio),
            "psfFluxErr": flux_err,
            "gaussianFlux": flux,
            "gaussianFluxErr": flux_err,
            "extendedness": is_galaxy.astype(np.float64),
            "sizeExtendedness": 1.0 - np.exp(-0.5 * ((sigma / psf_sigma) ** 2 - 1.0) ** 2 * 25.0),
            "extendedness_flag": np.zeros(sources, dtype=bool),
            "sizeExtendedness_flag": np.zeros(sources, dtype=bool),
        }
    )
    truth = Table({"sourceId": ids, "is_galaxy": is_galaxy, "x_true": x, "y_true": y, "flux": flux})
    coeffs = np.array([fwhm_arcsec, 0.0, 0.0, 0.0, 0.0, 0.0])
    psf = PsfField(size, size, coeffs, np.zeros(6), np.zeros(6), pixel_scale=pixel_scale).to_piff()
    return {
        "image": image,
        "variance": variance.astype(np.float32),
        "masks": masks,
        "wcs": wcs,
        "psf": psf,
        "src": src,
        "truth": truth,
        "details": {
            "generator": "noise plus circular Gaussian sources at uniform random positions",
            "sky_electrons": sky,
            "psf_fwhm_arcsec": fwhm_arcsec,
            "noise_sigma": math.sqrt(sky),
        },
    }


def make_bench_exposure(size: int, sources: int, kind: str, seed: int) -> BenchExposure:
    """Make the exposure and source table the benchmark classifies.

    Parameters
    ----------
    size : `int`
        Side of the square detector in pixels.
    sources : `int`
        Sources wanted. A simulated exposure is drawn with about 20% more expected detections
        and a random subset of ``sources`` detections is kept (all of them when fewer were
        detected); a synthetic one has exactly ``sources``.
    kind : `str`
        ``"simulated"`` (`lsst.meas.contextnet.sim.exposure.simulate_exposure`: GalSim
        galaxies and stars, varying PSF, detection and measurement) or ``"synthetic"`` (sky
        noise plus Gaussian sources at random positions, a constant Moffat PSF model attached).
    seed : `int`
        Seed of every random draw.

    Returns
    -------
    exposure : `BenchExposure`
        The `~lsst.images.VisitImage` (visit 0, detector 0 of ``SimCam``, band r), ``src``,
        ``truth``, WCS and a description (kind, size, number of sources, seconds to make it).

    Raises
    ------
    ValueError
        If ``kind`` is unknown or a size is out of range.

    """
    from astropy.time import Time
    from lsst.meas.contextnet.sim.repo import make_visit_image

    if kind not in ("simulated", "synthetic"):
        raise ValueError(f"kind must be 'simulated' or 'synthetic', got {kind!r}")
    if size < 64 or sources < 1:
        raise ValueError(f"need size >= 64 and sources >= 1, got size={size}, sources={sources}")
    rng = np.random.default_rng([seed, 17])
    start = time.perf_counter()
    made = (_simulated_exposure if kind == "simulated" else _synthetic_exposure)(size, sources, rng)
    calexp = make_visit_image(
        made["image"],
        made["variance"],
        made["masks"],
        made["wcs"],
        made["psf"],
        visit=_VISIT,
        detector=_DETECTOR,
        band=_BAND,
        exposure_time_s=_EXPOSURE_TIME_S,
        begin=Time(_BEGIN, scale="tai"),
    )
    seconds = time.perf_counter() - start
    description = {
        "kind": kind,
        "size": size,
        "n_sources": len(made["src"]),
        "n_sources_requested": sources,
        "band": _BAND,
        "seconds_to_make": seconds,
        **made["details"],
    }
    return BenchExposure(calexp, made["src"], made["truth"], made["wcs"], description)


def _pixel_planes(calexp: VisitImage) -> dict[str, Any]:
    """Variance, mask and bad-plane bits as the classifier passes them to the cutout extraction."""
    schema = calexp.mask.schema
    planes = [name for name in _bad_mask_planes() if name in schema.names]
    return {
        "variance": calexp.variance.array,
        "mask": calexp.mask.array if planes else None,
        "bad_mask_bits": schema.bitmask(*planes) if planes else None,
    }


def _task_inputs(exposure: BenchExposure, model_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs and positions of the classifiable sources, from the task's own preprocessing."""
    from lsst.meas.contextnet.classifier import ContextNetClassifierTask

    task = ContextNetClassifierTask(config=_classifier_config(model_path, "cpu", 1))
    prepared = task.prepare_inputs(exposure.calexp, exposure.src, task.load_model())
    return prepared.inputs, prepared.positions


def _bad_mask_planes() -> tuple[str, ...]:
    """The classifier's default bad mask planes."""
    from lsst.meas.contextnet.classifier import ContextNetClassifierConfig

    return tuple(ContextNetClassifierConfig().badMaskPlanes)


def _classifier_config(model_path: Path, device: str, n_ensemble: int) -> Any:
    from lsst.meas.contextnet.classifier import ContextNetClassifierConfig

    config = ContextNetClassifierConfig()
    config.modelPath = str(model_path)
    config.device = device
    config.nEnsemble = n_ensemble
    return config
