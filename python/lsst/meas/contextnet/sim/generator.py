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

"""Fast training data: sets of detected-source cutouts drawn without full images.

Each *set* is one simulated visit: its conditions are drawn from a
`~lsst.meas.contextnet.sim.world.World` (the same definition the full-image simulator uses), a
true PSF field is drawn as for a full exposure (`~lsst.meas.contextnet.sim.psf.PsfField.from_rng`)
with the exposure's PSF *model* beside it (the field itself in the narrow world, else the Moffat
fit with its errors, `~lsst.meas.contextnet.sim.psf.PsfField.fitted_model`), then candidate
stars and galaxies are drawn from the full simulator's population
(`~lsst.meas.contextnet.sim.population`) at uniform random detector positions, each rendered in
a stamp with the local true PSF (`~lsst.meas.contextnet.sim.stamps.StampRenderer`, checked
against GalSim), with neighbours from the same population when the world has blends, given
Poisson noise of sky plus source (the exposure's sky level), clipped at saturation, hit by
cosmic rays and bad columns at the world's rates, and kept only when it passes the full
simulator's detection criterion: peak PSF-matched-filter S/N
``sum(k d / var) / sqrt(sum(k**2 / var)) >= threshold`` within 2 pixels of the source, with the
same kernel (the PSF model at the detector centre) as `~lsst.meas.contextnet.sim.detect`,
evaluated on the noisy stamp.  The number of stars among the ``m`` detected sources of a set is
a binomial draw with probability of the visit's star fraction.  Saturated, cosmic-ray and
bad-column pixels are flagged in ``bad`` and set to 0, as the classifier task treats the
planes it masks.  The PSF model is stored on the grid the task draws it on
(`~lsst.meas.contextnet.psfinputs.evaluate_psf_grid`), so training and inference build the
PSF channel through the same code.

Differences from full exposures, by design: sources are rendered as if the detector extended
beyond its edges; deblending is absent; neighbours are drawn for the cutout only.

Output: HDF5 shards (``shard_00000.h5`` ...) of ``sets_per_shard`` sets each and a
``manifest.json`` (format in the package's shared contracts).  Set ``i`` is drawn from
``numpy.random.SeedSequence(seed, spawn_key=(i,))``, so the data do not depend on the number of
processes or on the shard size.
"""

from __future__ import annotations

__all__ = ["CENTROIDS", "LABELS", "TrainingDataConfig", "generate_set", "write_training_data"]

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from lsst.meas.contextnet.cutouts import scale_positions
from lsst.meas.contextnet.evaluation.blending import BLEND_MAX_FAINTER_MAG, BLEND_MAX_SEPARATION_FWHM
from lsst.meas.contextnet.psfinputs import DEFAULT_PSF_GRID, evaluate_psf_grid, subpixel_offsets
from lsst.meas.contextnet.sim import survey
from lsst.meas.contextnet.sim.detect import (
    DetectionConfig,
    detect_sources,
    match_to_truth,
    truth_match_radius,
)
from lsst.meas.contextnet.sim.population import (
    PopulationConfig,
    detection_kernel,
    draw_candidates,
    point_source_depth,
)
from lsst.meas.contextnet.sim.psf import PSF_MODEL_STAMP_SIZE, PsfField, visit_psf_fields
from lsst.meas.contextnet.sim.render import add_cosmic_rays
from lsst.meas.contextnet.sim.stamps import StampRenderer, matched_filter_snr
from lsst.meas.contextnet.sim.world import SceneConfig
from lsst.meas.contextnet.training.shards import FORMAT_VERSION, MANIFEST_NAME, SHARD_DATASETS

_SEARCH_RADIUS = 2
_ALL_SOURCES_PER_DETECTION = 2.5  # drawn sources (detected or not) per detected source

CENTROIDS: tuple[str, ...] = ("true", "measured")
"""Values of `TrainingDataConfig.centroids`."""

LABELS: tuple[str, ...] = ("brightest", "central")
"""Values of `TrainingDataConfig.labels`."""

_LABEL_COLUMNS = ("is_galaxy", "mag", "hlr_arcsec", "ellipticity")


@dataclasses.dataclass(frozen=True)
class TrainingDataConfig(SceneConfig):
    """Parameters of the training-data generator.

    Visits are drawn from the world ``world``; the scalar options, when given, fix one of its
    distributions (`~lsst.meas.contextnet.sim.world.resolve_world`), `None` keeps the world's.

    Attributes
    ----------
    (those of `~lsst.meas.contextnet.sim.world.SceneConfig`, and)
    m : `int`
        Sources per set.
    cutout_size : `int`
        Cutout side in pixels.
    detector_size : `int`
        Side of the simulated detector in pixels (positions are drawn over it).
    sets_per_shard : `int`
        Sets per HDF5 shard.
    psf_grid : `int`
        Points per detector side of the stored PSF-model grid.
    centroids : `str`
        Where the PSF channel places each source (the stored ``offsets``): ``"true"``, its true
        position, or ``"measured"``, the centroid the full-image simulator's detection
        (`~lsst.meas.contextnet.sim.detect.detect_sources`) measures on the stamp, as the task
        places it at the catalog's centroid (`_measured_offsets`).
    labels : `str`
        Whose truth labels a source (``labels``, and its ``mag``, ``hlr_arcsec`` and
        ``ellipticity``): ``"brightest"``, the brightest object within the truth-matching
        radius of its position, itself or a neighbour (`_label_by_brightest`); ``"central"``,
        always its own (the generator's labels before this option, and what data written
        without a ``labels`` entry in their manifest's configuration hold).
    """

    m: int = 1000
    cutout_size: int = 28
    detector_size: int = 4096
    sets_per_shard: int = 16
    psf_grid: int = DEFAULT_PSF_GRID
    centroids: str = "true"
    labels: str = "brightest"

    def __post_init__(self) -> None:
        super().__post_init__()
        world = self.resolved_world()
        bad_families = set(world.psf_families) - {"moffat", "kolmogorov"}
        bad_families |= set(world.galaxy_families) - {"bulge_disk", "sersic"}
        if bad_families:
            raise ValueError(
                f"the fast generator cannot draw {sorted(bad_families)} (full-image simulator only); "
                f"world {self.world!r} is a test world"
            )
        for name, minimum in (("m", 1), ("cutout_size", 8), ("detector_size", 32), ("sets_per_shard", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if (
            isinstance(self.psf_grid, bool)
            or not isinstance(self.psf_grid, (int, np.integer))
            or self.psf_grid < 2
        ):
            raise ValueError(f"psf_grid must be an integer >= 2, got {self.psf_grid!r}")
        if self.centroids not in CENTROIDS:
            raise ValueError(f"centroids must be one of {CENTROIDS}, got {self.centroids!r}")
        if self.labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, got {self.labels!r}")


def _set_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def _render_candidates(
    renderer: StampRenderer, stamp: int, cand: Any, psf_field: PsfField, dx: np.ndarray, dy: np.ndarray
) -> np.ndarray:
    """Render candidates (a `draw_candidates` table) centred in stamps with sub-pixel offsets."""
    x = np.asarray(cand["x_true"])
    y = np.asarray(cand["y_true"])
    fwhm, pg1, pg2 = psf_field.params_at(x, y)
    theta = np.deg2rad(np.asarray(cand["rotation_deg"]))
    e = np.asarray(cand["ellipticity"])
    return renderer.render(
        stamp,
        flux=np.asarray(cand["flux"]),
        dx=dx,
        dy=dy,
        psf_fwhm=fwhm,
        psf_g1=pg1,
        psf_g2=pg2,
        is_galaxy=np.asarray(cand["is_galaxy"], dtype=bool),
        hlr=np.asarray(cand["hlr_arcsec"]),
        g1=e * np.cos(2 * theta),
        g2=e * np.sin(2 * theta),
        bulge_fraction=np.asarray(cand["bulge_fraction"]),
        sersic_n=np.asarray(cand["sersic_n"]),
    )


def _measured_offsets(
    pixels: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray,
    kernel: np.ndarray,
    threshold: float,
    true_offsets: np.ndarray,
) -> np.ndarray:
    """Measure each stamp's source position as the full-image simulator does.

    The stamps are laid side by side in one image and run through
    `~lsst.meas.contextnet.sim.detect.detect_sources` (the full-image simulator's detection,
    deblending and windowed centroids); each source takes the detection nearest its true
    position within 3 pixels (`~lsst.meas.contextnet.sim.detect.match_to_truth`). A source with
    none (merged by the deblender into a neighbour, which the full-image catalog would not list
    on its own) keeps its true position.

    Parameters
    ----------
    pixels, variance, bad : `numpy.ndarray`
        Sky-subtracted pixels, their variance and bad pixels, shape ``(n, S, S)``.
    kernel : `numpy.ndarray`
        Detection kernel.
    threshold : `float`
        Detection threshold (sigma of the matched-filtered image).
    true_offsets : `numpy.ndarray`
        True position of each source relative to its stamp's centre pixel ``(S // 2, S // 2)``,
        shape ``(n, 2)`` as ``(x, y)``.

    Returns
    -------
    offsets : `numpy.ndarray`
        The measured positions relative to the stamps' centre pixels, shape ``(n, 2)``; the true
        position where no detection lies within 3 pixels of it.
    """
    n, side, _ = pixels.shape
    if n == 0:
        return true_offsets
    # Stamps in a square grid, apart by the kernel's width of empty sky so that neither the
    # matched filter nor the segmentation joins sources of different stamps.
    pitch = side + kernel.shape[0]
    columns = int(np.ceil(np.sqrt(n)))
    rows = -(-n // columns)

    def tile(stamps: np.ndarray, fill: Any) -> np.ndarray:
        grid = np.full((rows * columns, pitch, pitch), fill, dtype=stamps.dtype)
        grid[:n, :side, :side] = stamps
        return grid.reshape(rows, columns, pitch, pitch).swapaxes(1, 2).reshape(rows * pitch, columns * pitch)

    detections, _ = detect_sources(
        tile(pixels, 0.0),
        tile(variance, float(np.median(variance))),
        kernel,
        bad=tile(bad, False),
        config=DetectionConfig(threshold=threshold),
    )
    index = np.arange(n)
    centre = np.stack([(index % columns) * pitch, (index // columns) * pitch], axis=1) + side // 2
    true = centre + true_offsets
    # One source per stamp, stamps far apart: the match is each source's nearest detection.
    match = match_to_truth(detections["x"], detections["y"], true[:, 0], true[:, 1], np.ones(n), 3.0)
    hit = match >= 0
    found = np.stack([np.asarray(detections["x"]), np.asarray(detections["y"])], axis=1)
    offsets = true_offsets.copy()
    offsets[hit] = found[match[hit]] - centre[hit]
    return offsets


def _add_neighbours(
    model: np.ndarray,
    rng: np.random.Generator,
    mean: float,
    draw: Any,
    renderer: StampRenderer,
    psf_field: PsfField,
) -> dict[str, np.ndarray]:
    """Add Poisson(``mean``) neighbours per stamp, drawn by ``draw(n)``, at random offsets in place.

    Returns
    -------
    neighbours : `dict` [`str`, `numpy.ndarray`]
        One entry per neighbour: ``host`` (index of its stamp), ``position`` (x, y) relative to
        the stamp's centre pixel, and its ``mag``, ``is_galaxy``, ``hlr_arcsec`` and
        ``ellipticity``.
    """
    n_stamps, stamp, _ = model.shape
    counts = rng.poisson(mean, size=n_stamps)
    total = int(counts.sum())
    host = np.repeat(np.arange(n_stamps), counts)
    if total == 0:
        return {"host": host, "position": np.zeros((0, 2))}
    cand = draw(total)
    reach = stamp // 2 + 4
    ox = rng.integers(-reach, reach + 1, size=total)
    oy = rng.integers(-reach, reach + 1, size=total)
    sub_x, sub_y = rng.uniform(-0.5, 0.5, total), rng.uniform(-0.5, 0.5, total)
    images = _render_candidates(renderer, stamp, cand, psf_field, sub_x, sub_y)
    for k in range(total):
        x0, y0 = int(ox[k]), int(oy[k])
        src_x = slice(max(0, -x0), min(stamp, stamp - x0))
        src_y = slice(max(0, -y0), min(stamp, stamp - y0))
        dst_x = slice(max(0, x0), min(stamp, stamp + x0))
        dst_y = slice(max(0, y0), min(stamp, stamp + y0))
        model[host[k], dst_y, dst_x] += images[k, src_y, src_x]
    neighbours = {"host": host, "position": np.stack([ox + sub_x, oy + sub_y], axis=1)}
    for key in _LABEL_COLUMNS:
        neighbours[key] = np.asarray(cand[key])
    return neighbours


def _label_by_brightest(
    source: dict[str, np.ndarray],
    keep: np.ndarray,
    neighbours: dict[str, np.ndarray],
    fwhm_pixels: np.ndarray,
) -> np.ndarray:
    """Give each kept source the truth of the brightest object near its position, in place.

    The full-image simulator's truth table gives a detection to the brightest true object within
    `~lsst.meas.contextnet.sim.detect.truth_match_radius` of it
    (`~lsst.meas.contextnet.sim.detect.match_to_truth`); a stamp whose neighbour lies that close
    to the source's position (``source["offsets"]``) and is brighter than the source takes the
    neighbour's ``is_galaxy`` (as ``labels``), ``mag``, ``hlr_arcsec`` and ``ellipticity``, so that
    a blend of a star and a galaxy is labelled as the evaluation labels it.

    This follows the truth table's rule up to two approximations: the radius is the source's
    (the truth table uses each object's own, at most a few percent apart over a stamp), and the
    stamp is taken as one detection, where the truth table matches one to one (a pair split by
    the deblender, rare this close, gives the neighbour its own detection there).  With true
    positions as ``offsets`` the distance is measured from the source, not from the blend's
    centroid, which the brighter neighbour pulls towards itself, so fewer sources are renamed
    than with measured ones.

    Parameters
    ----------
    source : `dict` [`str`, `numpy.ndarray`]
        The kept sources' ``offsets`` (x, y from the stamp's centre pixel), ``labels``, ``mag``,
        ``hlr_arcsec`` and ``ellipticity``; the last four are updated.
    keep : `numpy.ndarray`
        Index of each kept source's stamp.
    neighbours : `dict` [`str`, `numpy.ndarray`]
        `_add_neighbours`'s record of every stamp's neighbours.
    fwhm_pixels : `numpy.ndarray`
        PSF FWHM at each kept source, in pixels.

    Returns
    -------
    chosen : `numpy.ndarray`
        For each kept source, the index of the neighbour whose truth it took, -1 for its own.
    """
    chosen = np.full(len(keep), -1)
    if len(neighbours["host"]) == 0 or len(keep) == 0:
        return chosen
    row = _neighbour_rows(keep, neighbours)
    near = np.flatnonzero(row >= 0)
    row = row[near]
    distance = np.hypot(*(neighbours["position"][near] - source["offsets"][row]).T)
    close = distance <= truth_match_radius(fwhm_pixels[row])
    near, row = near[close], row[close]
    # Brightest first, so that the first neighbour of each source is its brightest close one.
    order = np.argsort(neighbours["mag"][near], kind="stable")
    near, row = near[order], row[order]
    row, first = np.unique(row, return_index=True)
    near = near[first]
    brighter = neighbours["mag"][near] < source["mag"][row]
    row, near = row[brighter], near[brighter]
    source["labels"][row] = neighbours["is_galaxy"][near]
    for key in ("mag", "hlr_arcsec", "ellipticity"):
        source[key][row] = neighbours[key][near]
    chosen[row] = near
    return chosen


def _neighbour_rows(keep: np.ndarray, neighbours: dict[str, np.ndarray]) -> np.ndarray:
    """Return the row (index among the kept sources) of each neighbour's stamp, -1 if not kept."""
    row_of_stamp = np.full(int(max(keep.max(), neighbours["host"].max())) + 1, -1)
    row_of_stamp[keep] = np.arange(len(keep))
    return row_of_stamp[neighbours["host"]]


def _blended_sources(
    own_offsets: np.ndarray,
    own_mag: np.ndarray,
    keep: np.ndarray,
    neighbours: dict[str, np.ndarray] | None,
    chosen: np.ndarray,
    mag: np.ndarray,
    fwhm_pixels: np.ndarray,
) -> np.ndarray:
    """Return which kept sources' labelled object is blended, by the evaluation's rule.

    The object that labels a source (itself, or the neighbour `_label_by_brightest` chose) is
    blended when another object of its stamp, the source itself or a neighbour, lies closer than
    `~lsst.meas.contextnet.evaluation.blending.BLEND_MAX_SEPARATION_FWHM` PSF FWHM and is at most
    `~lsst.meas.contextnet.evaluation.blending.BLEND_MAX_FAINTER_MAG` fainter
    (`~lsst.meas.contextnet.evaluation.blending.blended_objects` on a full exposure's truth).
    Two approximations: the FWHM is the source's, also for a neighbour that labels it (the
    evaluation takes each object's own, a few percent apart at most within the match radius), and
    neighbours are drawn for each stamp only, so objects beyond its edge are not seen.

    Parameters
    ----------
    own_offsets : `numpy.ndarray`
        True position of each kept source (x, y from the stamp's centre pixel).
    own_mag : `numpy.ndarray`
        True magnitude of each kept source's own object.
    keep : `numpy.ndarray`
        Index of each kept source's stamp.
    neighbours : `dict` [`str`, `numpy.ndarray`] or `None`
        `_add_neighbours`'s record of every stamp's neighbours; `None` when there are none.
    chosen : `numpy.ndarray`
        `_label_by_brightest`'s neighbour index per kept source (-1: its own object labels it).
    mag : `numpy.ndarray`
        Magnitude of the object that labels each kept source.
    fwhm_pixels : `numpy.ndarray`
        PSF FWHM at each kept source, in pixels.

    Returns
    -------
    blended : `numpy.ndarray`
        Boolean, one per kept source.
    """
    blended = np.zeros(len(keep), dtype=bool)
    if neighbours is None or len(neighbours["host"]) == 0 or len(keep) == 0:
        return blended
    labelled = chosen >= 0
    position = own_offsets.copy()
    position[labelled] = neighbours["position"][chosen[labelled]]
    reach = BLEND_MAX_SEPARATION_FWHM * fwhm_pixels
    row = _neighbour_rows(keep, neighbours)
    near = np.flatnonzero(row >= 0)
    row = row[near]
    other = near != chosen[row]
    near, row = near[other], row[other]
    distance = np.hypot(*(neighbours["position"][near] - position[row]).T)
    hit = (distance < reach[row]) & (neighbours["mag"][near] - mag[row] <= BLEND_MAX_FAINTER_MAG)
    blended[row[hit]] = True
    distance = np.hypot(*(own_offsets - position).T)
    blended |= labelled & (distance < reach) & (own_mag - mag <= BLEND_MAX_FAINTER_MAG)
    return blended


def _bad_columns(rng: np.random.Generator, n: int, stamp: int, rate: float) -> np.ndarray:
    """Boolean (n, stamp, stamp): partial bad columns at ``rate`` per 4096 detector columns."""
    bad = np.zeros((n, stamp, stamp), dtype=bool)
    hit = np.flatnonzero(rng.uniform(size=n) < rate * stamp / 4096.0)
    for index in hit:
        column = int(rng.integers(0, stamp))
        start = int(rng.integers(0, stamp))
        if rng.uniform() < 0.5:
            bad[index, start:, column] = True
        else:
            bad[index, : start + 1, column] = True
    return bad


def generate_set(
    config: TrainingDataConfig, rng: np.random.Generator, renderer: StampRenderer | None = None
) -> dict[str, np.ndarray]:
    """Simulate one visit and return ``m`` detected sources' cutouts.

    Parameters
    ----------
    config : `TrainingDataConfig`
        Generator parameters.
    rng : `numpy.random.Generator`
        Random number generator.
    renderer : `StampRenderer`, optional
        Renderer to reuse (only when its PSF family and index are the visit's; ignored
        otherwise).

    Returns
    -------
    data : `dict` [`str`, `numpy.ndarray`]
        ``cutouts`` float32 (m, S, S) sky-subtracted electrons, source at ``(S//2, S//2)`` plus
        its sub-pixel offset, bad pixels 0; ``bad`` uint8 (m, S, S), 1 on saturated, cosmic-ray
        and bad-column pixels; ``noise_sigma`` float32 scalar (sqrt of the sky level);
        ``positions`` float32 (m, 2); ``pixel_xy`` float32 (m, 2) detector pixels;
        ``offsets`` float32 (m, 2) sub-pixel offsets (x, y); ``psf_grid`` float32
        (G, G, S, S) the PSF model on the task's grid; ``labels`` uint8 (1 galaxy); ``blended``
        uint8, 1 where the object that labels the source is blended (`_blended_sources`); ``mag``,
        ``hlr_arcsec``, ``ellipticity``, ``psf_fwhm`` (true, arcsec at the source), ``snr``
        (detection S/N), all float32 (m,); ``conditions`` the visit's
        `~lsst.meas.contextnet.sim.world.VisitConditions`.
    """
    size = config.detector_size
    world = config.resolved_world()
    conditions = world.draw_visit(rng)
    band = survey.get_band(conditions.band)
    true_psf, model_psf = visit_psf_fields(
        rng,
        conditions,
        size,
        variation=config.psf_variation,
        fwhm_range=world.fwhm_range,
        nominal_fwhm=band.psf_fwhm,
        pixel_scale=band.pixel_scale,
    )
    if renderer is None or renderer.psf_family != true_psf.family or renderer.beta != true_psf.beta:
        renderer = StampRenderer(band.pixel_scale, true_psf.beta, psf_family=true_psf.family)
    exposure_time = conditions.exposure_time
    sky = survey.sky_level(conditions.band, exposure_time)
    kernel = detection_kernel(model_psf)
    half = kernel.shape[0] // 2
    faint = point_source_depth(model_psf, conditions.band, exposure_time, config.detection_threshold)
    faint += config.faint_margin
    population = PopulationConfig.from_conditions(conditions, faint_margin=config.faint_margin)
    stamp = max(config.cutout_size, 2 * (half + _SEARCH_RADIUS) + 1)
    lo = stamp // 2 - config.cutout_size // 2
    cut = slice(lo, lo + config.cutout_size)
    # Every drawn source, detected or not, per pixel of the detector.
    density = _ALL_SOURCES_PER_DETECTION * 1700.0 * conditions.density_scale / 4096.0**2
    neighbour_mean = density * stamp * stamp if conditions.neighbours else 0.0

    def draw_any(n: int) -> Any:
        from astropy.table import vstack

        n_gal = int(rng.binomial(n, 1.0 - conditions.star_fraction))
        parts = [
            draw_candidates(rng, k, gal, faint, population, true_psf, conditions.band, exposure_time)
            for gal, k in ((False, n - n_gal), (True, n_gal))
            if k > 0
        ]
        return vstack(parts) if len(parts) > 1 else parts[0]

    n_stars = int(rng.binomial(config.m, conditions.star_fraction))
    parts: list[dict[str, np.ndarray]] = []
    for galaxies, wanted in ((False, n_stars), (True, config.m - n_stars)):
        found = drawn = passed = 0
        while found < wanted:
            # Draw about what the pass rate seen so far needs (at least 128, at most 4096).
            pass_rate = (passed + 1.0) / (drawn + 2.0) if drawn else 0.5
            n_draw = int(min(4096, max(128, 1.1 * (wanted - found) / pass_rate)))
            cand = draw_candidates(
                rng, n_draw, galaxies, faint, population, true_psf, conditions.band, exposure_time
            )
            x = np.asarray(cand["x_true"])
            y = np.asarray(cand["y_true"])
            # The pixel that holds the source by the task's rule, halves rounded up.
            dx, dy = subpixel_offsets(x, y)
            model = _render_candidates(renderer, stamp, cand, true_psf, dx, dy)
            neighbours = None
            if neighbour_mean > 0:
                neighbours = _add_neighbours(model, rng, neighbour_mean, draw_any, renderer, true_psf)
            np.clip(model, 0.0, None, out=model)
            expected = model + sky
            counts = rng.poisson(expected).astype(np.float64)
            bad = counts >= config.saturation
            np.minimum(counts, config.saturation, out=counts)
            pixels = counts - sky
            if conditions.cosmic_ray_rate > 0:
                rate = conditions.cosmic_ray_rate * n_draw * stamp * stamp / 4096.0**2 * exposure_time / 30.0
                bad |= add_cosmic_rays(pixels, int(rng.poisson(rate)), rng)
            if conditions.bad_column_rate > 0:
                bad |= _bad_columns(rng, n_draw, stamp, conditions.bad_column_rate)
            pixels[bad] = 0.0
            snr = matched_filter_snr(pixels, expected, kernel, search_radius=_SEARCH_RADIUS)
            detected = np.flatnonzero(snr >= config.detection_threshold)
            drawn += n_draw
            passed += len(detected)
            keep = detected[: wanted - found]
            found += len(keep)
            fwhm = true_psf.fwhm_at(x[keep], y[keep])
            offsets = np.stack([dx[keep], dy[keep]], axis=1)
            if config.centroids == "measured":
                offsets = _measured_offsets(
                    pixels[keep], expected[keep], bad[keep], kernel, config.detection_threshold, offsets
                )
            source = {
                "cutouts": pixels[keep, cut, cut],
                "bad": bad[keep, cut, cut],
                "positions": scale_positions(x[keep], y[keep], size, size),
                "pixel_xy": np.stack([x[keep], y[keep]], axis=1),
                "offsets": offsets,
                "labels": np.full(len(keep), galaxies, dtype=np.uint8),
                "mag": np.asarray(cand["mag"])[keep],
                "hlr_arcsec": np.asarray(cand["hlr_arcsec"])[keep],
                "ellipticity": np.asarray(cand["ellipticity"])[keep],
                "psf_fwhm": fwhm,
                "snr": snr[keep],
            }
            chosen = np.full(len(keep), -1)
            if config.labels == "brightest" and neighbours is not None:
                chosen = _label_by_brightest(source, keep, neighbours, fwhm / band.pixel_scale)
            source["blended"] = _blended_sources(
                np.stack([dx[keep], dy[keep]], axis=1),
                np.asarray(cand["mag"])[keep],
                keep,
                neighbours,
                chosen,
                source["mag"],
                fwhm / band.pixel_scale,
            )
            parts.append(source)
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    order = rng.permutation(config.m)
    out: dict[str, Any] = {key: value[order] for key, value in merged.items()}
    for key in (
        "cutouts",
        "positions",
        "pixel_xy",
        "offsets",
        "mag",
        "hlr_arcsec",
        "ellipticity",
        "psf_fwhm",
        "snr",
    ):
        out[key] = out[key].astype(np.float32)
    out["labels"] = out["labels"].astype(np.uint8)
    out["blended"] = out["blended"].astype(np.uint8)
    out["bad"] = out["bad"].astype(np.uint8)
    out["noise_sigma"] = np.float32(np.sqrt(sky))
    half_kernel = PSF_MODEL_STAMP_SIZE // 2
    out["psf_grid"] = evaluate_psf_grid(
        lambda px, py: model_psf.kernel_image(px, py, half_kernel),
        size,
        size,
        config.cutout_size,
        config.psf_grid,
    )
    out["conditions"] = conditions
    return out


def _shard_path(directory: Path, index: int) -> Path:
    return directory / f"shard_{index:05d}.h5"


def _write_shard(args: tuple[str, int, int, int, int, dict[str, Any]]) -> dict[str, Any]:
    """Generate and write one shard (runs in a worker process)."""
    import h5py

    directory, shard_index, first_set, n_sets, seed, config_dict = args
    config = TrainingDataConfig.from_dict(config_dict)
    sets = [generate_set(config, _set_rng(seed, first_set + k)) for k in range(n_sets)]
    path = _shard_path(Path(directory), shard_index)
    tmp = path.with_suffix(".h5.tmp")
    with h5py.File(tmp, "w") as f:
        for key in SHARD_DATASETS:
            data = np.stack([s[key] for s in sets])
            chunks = (1,) + data.shape[1:] if data.ndim > 1 else None
            f.create_dataset(key, data=data, chunks=chunks, compression="lzf" if key == "bad" else None)
        f.attrs["conditions"] = json.dumps([s["conditions"].to_dict() for s in sets], sort_keys=True)
        f.attrs["cutout_size"] = config.cutout_size
        f.attrs["m"] = config.m
        f.attrs["world"] = config.world
        f.attrs["seed"] = seed
        f.attrs["psf_variation"] = config.psf_variation
        f.attrs["detector_size"] = config.detector_size
        f.attrs["config"] = json.dumps(config_dict, sort_keys=True)
        f.attrs["first_set"] = first_set
        f.attrs["format_version"] = FORMAT_VERSION
    os.replace(tmp, path)
    n_galaxies = int(sum(int(s["labels"].sum()) for s in sets))
    return {
        "file": path.name,
        "first_set": first_set,
        "n_sets": n_sets,
        "n_galaxies": n_galaxies,
        "n_stars": n_sets * config.m - n_galaxies,
    }


def write_training_data(
    output: str | os.PathLike[str],
    n_sets: int,
    config: TrainingDataConfig,
    seed: int,
    *,
    processes: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    command: str | None = None,
) -> Path:
    """Generate training sets and write them as HDF5 shards with a manifest.

    Parameters
    ----------
    output : `str` or `os.PathLike`
        Output directory (created if missing).
    n_sets : `int`
        Number of sets (simulated visits).
    config : `TrainingDataConfig`
        Generator parameters.
    seed : `int`
        Master seed; set ``i`` uses ``SeedSequence(seed, spawn_key=(i,))``.
    processes : `int`, optional
        Worker processes (shards are generated in parallel; the result does not depend on it).
    progress : `bool`, optional
        Show a ``tqdm`` progress bar over sets.
    overwrite : `bool`, optional
        Replace an existing data set in ``output``.
    command : `str`, optional
        Command line that made the data, recorded in the manifest (and so in the model card of
        models trained on it).

    Returns
    -------
    manifest : `pathlib.Path`
        Path of the written ``manifest.json``.

    Raises
    ------
    ValueError
        If ``n_sets``, ``seed`` or ``processes`` is out of range.
    FileExistsError
        If ``output`` already holds a manifest or shards and ``overwrite`` is false.
    """
    if isinstance(n_sets, bool) or not isinstance(n_sets, (int, np.integer)) or n_sets < 1:
        raise ValueError(f"n_sets must be a positive integer, got {n_sets!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(processes, bool) or not isinstance(processes, (int, np.integer)) or processes < 1:
        raise ValueError(f"processes must be a positive integer, got {processes!r}")
    from tqdm import tqdm

    directory = Path(output)
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(directory.glob("shard_*.h5")) + sorted(directory.glob(MANIFEST_NAME))
    if existing:
        if not overwrite:
            raise FileExistsError(
                f"{directory} already holds training data ({existing[0].name}); use overwrite"
            )
        for path in existing:
            path.unlink()
    per_shard = config.sets_per_shard
    n_shards = (n_sets + per_shard - 1) // per_shard
    config_dict = config.to_dict()
    tasks = [
        (str(directory), k, k * per_shard, min(per_shard, n_sets - k * per_shard), int(seed), config_dict)
        for k in range(n_shards)
    ]
    results: list[dict[str, Any]] = []
    with tqdm(total=n_sets, unit="set", desc="training sets", disable=not progress) as bar:
        if processes == 1 or n_shards == 1:
            for task in tasks:
                results.append(_write_shard(task))
                bar.update(task[3])
        else:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with context.Pool(min(processes, n_shards)) as pool:
                for result in pool.imap_unordered(_write_shard, tasks):
                    results.append(result)
                    bar.update(result["n_sets"])
    results.sort(key=lambda r: r["first_set"])
    manifest = {
        "format_version": FORMAT_VERSION,
        "generator": "lsst.meas.contextnet.sim.generator",
        "seed": int(seed),
        "n_sets": int(n_sets),
        "m": config.m,
        "cutout_size": config.cutout_size,
        "world": config.resolved_world().to_dict(),
        "psf_variation": config.psf_variation,
        "detector_size": config.detector_size,
        "n_stars": int(sum(r["n_stars"] for r in results)),
        "n_galaxies": int(sum(r["n_galaxies"] for r in results)),
        "config": config_dict,
        "command": command,
        "shards": results,
    }
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
