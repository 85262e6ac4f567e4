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

"""Simulate visits into a Butler repository: ``contextnet simulate``.

Each (visit, detector) exposure is simulated by `simulate_exposure` in a pool of worker
processes; the parent process registers the visits and writes ``calexp``, ``src`` and ``truth``
(a SQLite registry has one writer).  The outputs depend only on the configuration and the seed,
never on the number of processes.
"""

from __future__ import annotations

__all__ = [
    "SIMULATION_RECORD_KEY",
    "SURVEY_START",
    "SimulationSummary",
    "VISIT_CADENCE_S",
    "simulate_repo",
    "simulation_record",
]

import dataclasses
import json
import logging
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lsst.meas.contextnet.sim.exposure import (
    SimulationConfig,
    detector_offset,
    simulate_exposure,
    visit_conditions,
    visit_pointing,
)
from lsst.meas.contextnet.sim.wcs import make_tan_wcs

if TYPE_CHECKING:
    from astropy.time import Time
    from lsst.daf.butler import Butler
    from lsst.meas.contextnet.sim.exposure import SimulatedExposure

_LOG = logging.getLogger(__name__)

SIMULATION_RECORD_KEY = "contextnet_simulation"
"""Key of the record `simulate_repo` writes as its collection's documentation."""


def simulation_record(butler: Butler, collection: str) -> dict | None:
    """Return what `simulate_repo` recorded of a collection it wrote.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    collection : `str`
        The RUN collection.

    Returns
    -------
    record : `dict` or `None`
        ``seed``, ``first_visit``, ``visits``, ``detectors`` and ``config``
        (`~lsst.meas.contextnet.sim.exposure.SimulationConfig.to_dict`); `None` for a collection
        without a record (written by another program or an earlier version).
    """
    text = butler.collections.get_info(collection).doc
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return parsed.get(SIMULATION_RECORD_KEY) if isinstance(parsed, dict) else None


SURVEY_START = "2026-01-01T00:00:00"
"""TAI start of the first simulated visit; visit ``v`` begins ``v * VISIT_CADENCE_S`` later."""

VISIT_CADENCE_S = 40.0
"""Seconds between the starts of consecutive simulated visits."""


@dataclasses.dataclass(frozen=True)
class SimulationSummary:
    """What `simulate_repo` wrote.

    Attributes
    ----------
    repo : `str`
        Repository root.
    collection : `str`
        RUN collection holding ``calexp``, ``src`` and ``truth``.
    data_ids : `list` [`tuple` [`int`, `int`]]
        (visit, detector) pairs written, in order.
    n_sources : `list` [`int`]
        Detected sources per data ID.
    visit_psf_fwhm : `dict` [`int`, `float`]
        Mean PSF FWHM (arcsec) of each visit's first detector.
    seconds : `float`
        Wall-clock time of the whole simulation.
    """

    repo: str
    collection: str
    data_ids: list[tuple[int, int]]
    n_sources: list[int]
    visit_psf_fwhm: dict[int, float]
    seconds: float


def _visit_begin(visit: int) -> Time:
    from astropy.time import Time, TimeDelta

    return Time(SURVEY_START, scale="tai") + TimeDelta(visit * VISIT_CADENCE_S, format="sec")


def _simulate_one(job: tuple[SimulationConfig, int, int, int]) -> SimulatedExposure:
    config, visit, detector, seed = job
    return simulate_exposure(config, visit, detector, seed)


def _exposures(
    jobs: list[tuple[SimulationConfig, int, int, int]], processes: int
) -> Iterator[SimulatedExposure]:
    if processes <= 1 or len(jobs) <= 1:
        yield from map(_simulate_one, jobs)
        return
    # "spawn" keeps workers independent of the parent's open registry connection.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(processes, len(jobs))) as pool:
        yield from pool.imap(_simulate_one, jobs)


def simulate_repo(
    repo: str | Path,
    collection: str,
    *,
    visits: int,
    config: SimulationConfig,
    seed: int,
    detectors: int = 1,
    first_visit: int = 0,
    processes: int = 1,
    progress: bool = True,
) -> SimulationSummary:
    """Simulate visits and write them to a Butler repository.

    Parameters
    ----------
    repo : `str` or `pathlib.Path`
        Repository root; created (SQLite registry, file datastore) when missing.
    collection : `str`
        RUN collection to write; it must not already hold simulated datasets.
    visits : `int`
        Number of visits (IDs ``first_visit ... first_visit + visits - 1``).
    config : `SimulationConfig`
        Physical simulation parameters (band, detector size, PSF, population).
    seed : `int`
        Seed of every random draw.
    detectors : `int`, optional
        Detectors per visit (IDs ``0 ... detectors - 1``).
    first_visit : `int`, optional
        ID of the first visit.
    processes : `int`, optional
        Worker processes simulating exposures in parallel.
    progress : `bool`, optional
        Show a progress bar.

    Returns
    -------
    summary : `SimulationSummary`
        What was written.

    Raises
    ------
    ValueError
        If a count is out of range.
    lsst.meas.contextnet.sim.repo.DatasetsExistError
        If ``collection`` already holds simulated datasets.
    """
    from lsst.meas.contextnet.sim.repo import (
        LEGACY_MASK_PLANE_NAMES,
        MASK_PLANES,
        check_collection_free,
        create_or_open_repo,
        make_visit_image,
        put_visit_datasets,
        register_visit,
    )
    from tqdm import tqdm

    if visits < 1:
        raise ValueError(f"visits must be at least 1, got {visits}")
    if not 1 <= detectors <= 9:
        raise ValueError(f"detectors must be between 1 and 9, got {detectors}")
    if first_visit < 0:
        raise ValueError(f"first_visit must be non-negative, got {first_visit}")
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if not collection:
        raise ValueError("collection must be a non-empty name")

    start = time.perf_counter()
    butler = create_or_open_repo(repo, n_detectors=max(detectors, 9), run=collection)
    check_collection_free(butler, collection)

    visit_ids = list(range(first_visit, first_visit + visits))
    conditions = {visit: visit_conditions(config, visit, seed) for visit in visit_ids}
    for visit in visit_ids:
        # The same WCS that simulate_exposure gives each detector; the visit's regions need all
        # of them before any exposure is simulated.
        ra, dec = visit_pointing(visit, config)
        detector_wcs = {
            detector: make_tan_wcs(
                ra, dec, config.size, config.size, offset=detector_offset(detector, config.size)
            )
            for detector in range(detectors)
        }
        register_visit(
            butler,
            visit=visit,
            band=conditions[visit].band,
            exposure_time_s=conditions[visit].exposure_time,
            begin=_visit_begin(visit),
            detector_wcs=detector_wcs,
            width=config.size,
            height=config.size,
            update=True,
        )

    jobs = [(config, visit, detector, seed) for visit in visit_ids for detector in range(detectors)]
    data_ids: list[tuple[int, int]] = []
    n_sources: list[int] = []
    visit_fwhm: dict[int, float] = {}
    bar = tqdm(total=len(jobs), desc="simulate", unit="exposure", disable=not progress)
    for (_, visit, detector, _), exposure in zip(jobs, _exposures(jobs, processes), strict=True):
        # Planes the image format does not define (e.g. afw's DETECTED_NEGATIVE) are not stored.
        masks = {
            name: (exposure.mask & (1 << bit)) != 0
            for name, bit in exposure.mask_planes.items()
            if name in MASK_PLANES or name in LEGACY_MASK_PLANE_NAMES
        }
        calexp = make_visit_image(
            exposure.image,
            exposure.variance,
            masks,
            exposure.wcs,
            exposure.psf_field.to_piff(),
            visit=visit,
            detector=detector,
            band=conditions[visit].band,
            exposure_time_s=conditions[visit].exposure_time,
            begin=_visit_begin(visit),
        )
        put_visit_datasets(butler, collection, calexp, exposure.src, exposure.truth)
        data_ids.append((visit, detector))
        n_sources.append(len(exposure.src))
        visit_fwhm.setdefault(visit, float(exposure.psf_field.mean_fwhm()))
        bar.set_postfix(visit=visit, detector=detector, sources=len(exposure.src))
        bar.update(1)
    bar.close()
    # What was simulated, kept with the collection so that a later run can tell whether it may
    # reuse it (`simulation_record`).
    record = {
        "seed": int(seed),
        "first_visit": int(first_visit),
        "visits": int(visits),
        "detectors": int(detectors),
        "config": config.to_dict(),
    }
    butler.registry.setCollectionDocumentation(collection, json.dumps({SIMULATION_RECORD_KEY: record}))
    seconds = time.perf_counter() - start
    _LOG.info("Wrote %d exposures to %s in collection %s in %.1f s", len(data_ids), repo, collection, seconds)
    return SimulationSummary(str(repo), collection, data_ids, n_sources, visit_fwhm, seconds)
