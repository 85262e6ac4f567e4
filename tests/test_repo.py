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

"""Tests of the Butler side of the simulator: SimCam, dimension records, VisitImage I/O."""

from __future__ import annotations

import astropy.units as u
import galsim
import numpy as np
import piff
import pytest
from astropy.table import Table
from astropy.time import Time
from lsst.daf.butler import Butler
from lsst.meas.contextnet.instrument import DEFAULT_N_DETECTORS, SIMCAM_BANDS, SimCam
from lsst.meas.contextnet.sim import repo as simrepo
from lsst.meas.contextnet.sim.wcs import DETECTOR_GAP, detector_offset
from lsst.pipe.base import (
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    Struct,
)
from lsst.pipe.base import connectionTypes as cT
from lsst.pipe.base.script.register_instrument import register_instrument
from lsst.sphgeom import LonLat, UnitVector3d

WIDTH, HEIGHT = 64, 48
VISIT = 4021
BAND = "r"
EXPTIME = 30.0
BEGIN = Time("2026-03-01T03:00:00", scale="tai")
RUN = "sim/test"
DATA_ID = {"instrument": "SimCam", "visit": VISIT, "detector": 0}
# Detector 1 sits just north of detector 0 (0.2"/pixel, 4-pixel gap).
POINTINGS = {0: (150.0, 2.0), 1: (150.0, 2.0 + (HEIGHT + 4) * 0.2 / 3600.0)}
# PSF size ("scale" parameter of the Piff model) grows linearly with x: 1 at x=0, 1.3 at x=WIDTH.
SCALE_SLOPE = 0.3 / WIDTH


def make_piff_psf() -> piff.PSF:
    """Return a Piff PSF (Moffat whose size and shear vary linearly over the detector)."""
    model = piff.GSObjectModel(galsim.Moffat(beta=3.0, fwhm=0.8), include_pixel=True)
    interp = piff.BasisPolynomial(order=1, keys=("x", "y"))
    psf = piff.SimplePSF(model, interp)
    # Parameters (scale, g1, g2); basis terms (1, y, x).
    coefficients = np.zeros((3, 3))
    coefficients[0, 0] = 1.0
    coefficients[0, 2] = SCALE_SLOPE
    coefficients[1, 0] = 0.03
    coefficients[2, 1] = 0.02 / HEIGHT
    interp.q = coefficients
    # set_context only exists from Piff 1.7; plain attributes work with every version.
    psf.wcs = {0: galsim.PixelScale(0.2)}
    psf.pointing = None
    return psf


def make_tables(rng: np.random.Generator) -> tuple[Table, Table]:
    n = 7
    src = Table(
        {
            "sourceId": np.arange(1, n + 1, dtype=np.int64),
            "coord_ra": rng.uniform(149.99, 150.01, n),
            "coord_dec": rng.uniform(1.99, 2.01, n),
            "x": rng.uniform(0, WIDTH - 1, n),
            "y": rng.uniform(0, HEIGHT - 1, n),
            "psfFlux": rng.uniform(100, 1000, n),
            "extendedness": rng.integers(0, 2, n).astype(np.float64),
            "extendedness_flag": rng.integers(0, 2, n).astype(bool),
        }
    )
    truth = Table(
        {
            "sourceId": np.array([1, 2, -1, 3], dtype=np.int64),
            "is_galaxy": np.array([True, False, True, False]),
            "mag": rng.uniform(18, 25, 4),
            "hlr_arcsec": np.array([0.5, 0.0, 0.8, 0.0]),
        }
    )
    truth["mag"].unit = u.mag
    return src, truth


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A repository holding calexp, src and truth for one visit/detector."""
    root = tmp_path_factory.mktemp("simrepo") / "repo"
    rng = np.random.default_rng(20260301)
    butler = simrepo.create_or_open_repo(root, n_detectors=4)
    wcs = {det: simrepo.make_tan_wcs(ra, dec, WIDTH, HEIGHT) for det, (ra, dec) in POINTINGS.items()}
    simrepo.register_visit(
        butler,
        visit=VISIT,
        band=BAND,
        exposure_time_s=EXPTIME,
        begin=BEGIN,
        detector_wcs=wcs,
        width=WIDTH,
        height=HEIGHT,
    )
    image = rng.normal(0.0, 10.0, (HEIGHT, WIDTH)).astype(np.float32)
    variance = rng.uniform(90.0, 110.0, (HEIGHT, WIDTH)).astype(np.float32)
    masks = {
        "BAD": rng.random((HEIGHT, WIDTH)) < 0.05,
        "SAT": rng.random((HEIGHT, WIDTH)) < 0.05,  # afw name, stored as SATURATED
        "DETECTION_EDGE": np.zeros((HEIGHT, WIDTH), dtype=bool),
    }
    masks["DETECTION_EDGE"][:2, :] = True
    psf = make_piff_psf()
    calexp = simrepo.make_visit_image(
        image,
        variance,
        masks,
        wcs[0],
        psf,
        visit=VISIT,
        detector=0,
        band=BAND,
        exposure_time_s=EXPTIME,
        begin=BEGIN,
    )
    src, truth = make_tables(rng)
    refs = simrepo.put_visit_datasets(butler, RUN, calexp, src, truth)
    return {
        "root": str(root),
        "butler": butler,
        "wcs": wcs,
        "image": image,
        "variance": variance,
        "masks": masks,
        "psf": make_piff_psf(),
        "src": src,
        "truth": truth,
        "refs": refs,
    }


def test_repo_has_simcam_and_dataset_types(sim):
    butler = Butler.from_config(sim["root"])
    filters = {r.name: r.band for r in butler.registry.queryDimensionRecords("physical_filter")}
    assert filters == {f"SimCam-{b}": b for b in SIMCAM_BANDS}
    detectors = sorted(r.id for r in butler.registry.queryDimensionRecords("detector"))
    assert detectors == list(range(4))
    (instrument,) = butler.registry.queryDimensionRecords("instrument")
    assert instrument.class_name == "lsst.meas.contextnet.instrument.SimCam"
    for name, storage_class in simrepo.DATASET_TYPES.items():
        dataset_type = butler.get_dataset_type(name)
        assert dataset_type.storageClass_name == storage_class
        assert set(dataset_type.dimensions.required) == {"instrument", "visit", "detector"}
    # Opening again is idempotent and can register more detectors.
    again = simrepo.create_or_open_repo(sim["root"], n_detectors=6)
    assert sorted(r.id for r in again.registry.queryDimensionRecords("detector")) == list(range(6))
    (instrument,) = again.registry.queryDimensionRecords("instrument")
    assert instrument.detector_max == 6


def test_register_instrument_like_the_butler_cli(tmp_path):
    root = str(tmp_path / "cli_repo")
    Butler.makeRepo(root)
    # The function behind `butler register-instrument ROOT lsst.meas.contextnet.instrument.SimCam`.
    register_instrument(root, ["lsst.meas.contextnet.instrument.SimCam"])
    butler = Butler.from_config(root)
    detectors = {r.id: r.full_name for r in butler.registry.queryDimensionRecords("detector")}
    assert detectors == {i: f"S{i:02d}" for i in range(DEFAULT_N_DETECTORS)}
    assert len(list(butler.registry.queryDimensionRecords("physical_filter"))) == 6
    # Registering again is a no-op.
    register_instrument(root, ["lsst.meas.contextnet.instrument.SimCam"])
    with pytest.raises(ValueError, match="n_detectors"):
        SimCam(n_detectors=0)


def test_calexp_pixels_round_trip(sim):
    data = simrepo.get_visit_datasets(sim["butler"], RUN, visit=VISIT, detector=0)
    calexp = data.calexp
    np.testing.assert_array_equal(calexp.image.array, sim["image"])
    np.testing.assert_array_equal(calexp.variance.array, sim["variance"])
    assert calexp.image.array.dtype == np.float32
    assert calexp.unit == u.electron
    assert calexp.variance.unit == u.electron**2
    np.testing.assert_array_equal(calexp.mask.get("BAD"), sim["masks"]["BAD"])
    np.testing.assert_array_equal(calexp.mask.get("SATURATED"), sim["masks"]["SAT"])
    np.testing.assert_array_equal(calexp.mask.get("DETECTION_EDGE"), sim["masks"]["DETECTION_EDGE"])
    assert not calexp.mask.get("NO_DATA").any()
    assert calexp.band == BAND
    assert calexp.physical_filter == "SimCam-r"
    assert calexp.detector.id == 0 and calexp.detector.visit == VISIT
    assert calexp.detector.bbox.x.size == WIDTH and calexp.detector.bbox.y.size == HEIGHT
    assert calexp.obs_info.exposure_time.to_value(u.s) == EXPTIME
    assert calexp.obs_info.visit_id == VISIT and calexp.obs_info.detector_num == 0


def test_calexp_wcs_matches_input(sim):
    calexp = sim["butler"].get("calexp", DATA_ID, collections=RUN)
    x = np.array([0.0, WIDTH - 1.0, 10.3, 31.5])
    y = np.array([0.0, HEIGHT - 1.0, 40.7, 23.5])
    got = calexp.astropy_wcs.pixel_to_world(x, y)
    expected = sim["wcs"][0].pixel_to_world(x, y)
    assert np.all(got.separation(expected).to_value(u.arcsec) < 1e-6)
    assert np.all(calexp.sky_projection.pixel_to_sky(x=x, y=y).separation(expected).to_value(u.arcsec) < 1e-6)
    # The detector centre is the pointing and the pixel scale is 0.2".
    ra_c, dec_c = sim["wcs"][0].pixel_to_world_values((WIDTH - 1) / 2, (HEIGHT - 1) / 2)
    np.testing.assert_allclose([ra_c, dec_c], POINTINGS[0], atol=1e-10)
    ra_n, dec_n = sim["wcs"][0].pixel_to_world_values((WIDTH - 1) / 2, (HEIGHT - 1) / 2 + 1)
    assert (dec_n - dec_c) * 3600 == pytest.approx(0.2, rel=1e-6)


# Not exactly half-integer positions: there lsst.images' PiffWrapper.compute_stellar_image rounds
# half up while Piff rounds half down, and the stellar image is labelled one pixel off.
@pytest.mark.parametrize("xy", [(0.0, 0.0), (31.4, 23.6), (63.0, 47.0), (12.25, 40.75)])
def test_calexp_psf_component_is_normalized_and_matches_piff(sim, xy):
    x, y = xy
    psf = sim["butler"].get("calexp.psf", DATA_ID, collections=RUN)
    kernel = psf.compute_kernel_image(x=x, y=y)
    assert kernel.array.sum() == pytest.approx(1.0, abs=1e-6)
    assert kernel.bbox.x.start == -(simrepo.DEFAULT_PSF_STAMP_SIZE // 2)
    assert np.unravel_index(np.argmax(kernel.array), kernel.array.shape) == (
        simrepo.DEFAULT_PSF_STAMP_SIZE // 2,
        simrepo.DEFAULT_PSF_STAMP_SIZE // 2,
    )
    expected = sim["psf"].draw(x, y, stamp_size=simrepo.DEFAULT_PSF_STAMP_SIZE, center=True).array
    np.testing.assert_allclose(kernel.array, expected / expected.sum(), rtol=0, atol=1e-7)
    stellar = psf.compute_stellar_image(x=x, y=y)
    assert stellar.array.sum() == pytest.approx(1.0, abs=1e-6)
    yy, xx = np.mgrid[stellar.bbox.y.start : stellar.bbox.y.stop, stellar.bbox.x.start : stellar.bbox.x.stop]
    assert np.sum(stellar.array * xx) == pytest.approx(x, abs=0.02)
    assert np.sum(stellar.array * yy) == pytest.approx(y, abs=0.02)


def test_calexp_psf_varies_across_detector_and_reads_repeatedly(sim):
    butler = sim["butler"]
    # Full read, then the component twice: the formatter serves the component from a cached tree.
    butler.get("calexp", DATA_ID, collections=RUN)
    for _ in range(2):
        psf = butler.get("calexp.psf", DATA_ID, collections=RUN)
    sigmas = [
        galsim.Image(psf.compute_kernel_image(x=x, y=HEIGHT / 2).array).FindAdaptiveMom().moments_sigma
        for x in (0.0, WIDTH / 2, WIDTH - 1.0)
    ]
    # Size set to grow by 30% across the detector; pixelization dilutes it a little.
    assert sigmas[0] < sigmas[1] < sigmas[2]
    assert 1.15 < sigmas[2] / sigmas[0] < 1.35


def test_calexp_reads_in_place_match_the_whole_read(sim):
    # The formatter reads from the open file: a sub-image, a component and the whole dataset agree.
    from lsst.images import Box

    butler = sim["butler"]
    whole = butler.get("calexp", DATA_ID, collections=RUN)
    box = Box.factory[5:30, 10:41]
    cut = butler.get("calexp", DATA_ID, collections=RUN, parameters={"bbox": box})
    assert cut.image.array.shape == (25, 31)
    np.testing.assert_array_equal(cut.image.array, whole.image.array[5:30, 10:41])
    np.testing.assert_array_equal(cut.variance.array, whole.variance.array[5:30, 10:41])
    np.testing.assert_array_equal(cut.mask.array, whole.mask.array[5:30, 10:41])
    mask = butler.get("calexp.mask", DATA_ID, collections=RUN)
    np.testing.assert_array_equal(mask.array, whole.mask.array)
    assert whole.image.array.dtype.isnative and whole.image.array.flags.writeable


def test_tables_round_trip(sim):
    data = simrepo.get_visit_datasets(sim["butler"], RUN, visit=VISIT, detector=0)
    for name in ("src", "truth"):
        got, expected = getattr(data, name), sim[name]
        assert got.colnames == expected.colnames
        for column in expected.colnames:
            assert got[column].dtype == expected[column].dtype
            np.testing.assert_array_equal(np.asarray(got[column]), np.asarray(expected[column]))
    assert data.truth["mag"].unit == u.mag


def test_visit_and_detector_regions(sim):
    butler = sim["butler"]
    records = {
        r.detector: r.region
        for r in butler.registry.queryDimensionRecords(
            "visit_detector_region", instrument="SimCam", visit=VISIT
        )
    }
    assert set(records) == {0, 1}
    centers = {
        det: UnitVector3d(
            LonLat.fromDegrees(*map(float, wcs.pixel_to_world_values((WIDTH - 1) / 2, (HEIGHT - 1) / 2)))
        )
        for det, wcs in sim["wcs"].items()
    }
    assert records[0].contains(centers[0]) and not records[0].contains(centers[1])
    assert records[1].contains(centers[1]) and not records[1].contains(centers[0])
    (visit,) = butler.registry.queryDimensionRecords("visit", instrument="SimCam", visit=VISIT)
    assert visit.region.contains(centers[0]) and visit.region.contains(centers[1])
    assert visit.physical_filter == "SimCam-r" and visit.exposure_time == EXPTIME
    assert visit.day_obs == 20260228  # 03:00 TAI is before the 12:00 TAI rollover
    assert visit.timespan.begin == BEGIN
    # The spatial join the graph builder uses finds the dataset from a sky position.
    refs = butler.query_datasets(
        "calexp",
        collections=RUN,
        where="visit_detector_region.region OVERLAPS POINT(ra, dec)",
        bind={"ra": POINTINGS[0][0], "dec": POINTINGS[0][1]},
    )
    assert [ref.dataId["detector"] for ref in refs] == [0]


def test_existing_collection_gives_clear_error(sim):
    butler = sim["butler"]
    data = simrepo.get_visit_datasets(butler, RUN, visit=VISIT, detector=0)
    with pytest.raises(
        simrepo.DatasetsExistError, match=f"Collection '{RUN}' already holds calexp, src, truth"
    ):
        simrepo.put_visit_datasets(butler, RUN, data.calexp, data.src, data.truth)
    with pytest.raises(simrepo.DatasetsExistError, match=f"'{RUN}'.*1 calexp, 1 src, 1 truth"):
        simrepo.check_collection_free(butler, RUN)
    simrepo.check_collection_free(butler, "sim/never-used")
    # Nothing extra was written.
    assert len(butler.query_datasets("calexp", collections=RUN, find_first=False)) == 1


class PsfProbeConnections(PipelineTaskConnections, dimensions=("instrument", "visit", "detector")):
    calexp = cT.Input(
        name="calexp",
        storageClass="VisitImage",
        dimensions=("instrument", "visit", "detector"),
        doc="Simulated image.",
    )
    psf = cT.Input(
        name="calexp.psf",
        storageClass="PointSpreadFunction",
        dimensions=("instrument", "visit", "detector"),
        doc="Its PSF, read as a component.",
    )
    probe = cT.Output(
        name="psf_probe",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
        doc="PSF kernel sums and sizes at a few positions.",
    )


class PsfProbeConfig(PipelineTaskConfig, pipelineConnections=PsfProbeConnections):
    pass


class PsfProbeTask(PipelineTask):
    """Evaluate the PSF of a calexp at a few pixel positions."""

    ConfigClass = PsfProbeConfig
    _DefaultName = "psfProbe"

    def run(self, calexp, psf):
        x = np.array([0.0, 20.5, WIDTH - 1.0])
        y = np.array([3.0, 30.25, HEIGHT - 1.0])
        sums = [psf.compute_kernel_image(x=xi, y=yi).array.sum() for xi, yi in zip(x, y)]
        same = [
            np.array_equal(
                psf.compute_kernel_image(x=xi, y=yi).array, calexp.psf.compute_kernel_image(x=xi, y=yi).array
            )
            for xi, yi in zip(x, y)
        ]
        return Struct(probe=Table({"x": x, "y": y, "kernel_sum": sums, "same_as_calexp_psf": same}))


def test_pipeline_task_reads_calexp_and_psf(sim):
    from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

    butler = SimplePipelineExecutor.prep_butler(sim["root"], inputs=[RUN], output="probe/out")
    executor = SimplePipelineExecutor.from_task_class(PsfProbeTask, butler=butler)
    quanta = executor.run(register_dataset_types=True, save_versions=False)
    assert len(quanta) == 1  # the graph builder found the one visit/detector
    probe = butler.get("psf_probe", DATA_ID)
    np.testing.assert_allclose(probe["kernel_sum"], 1.0, atol=1e-6)
    assert probe["same_as_calexp_psf"].all()


def test_make_visit_image_validates_inputs(sim):
    image = np.zeros((HEIGHT, WIDTH), dtype=np.float32)
    kwargs = dict(visit=VISIT, detector=0, band=BAND, exposure_time_s=EXPTIME, begin=BEGIN)
    wcs = sim["wcs"][0]
    with pytest.raises(ValueError, match="Unknown mask plane 'GLITCH'"):
        simrepo.make_visit_image(image, image, {"GLITCH": image > 0}, wcs, make_piff_psf(), **kwargs)
    with pytest.raises(ValueError, match="variance shape"):
        simrepo.make_visit_image(image, image[:-1], {}, wcs, make_piff_psf(), **kwargs)
    with pytest.raises(ValueError, match="psf_stamp_size"):
        simrepo.make_visit_image(image, image, {}, wcs, make_piff_psf(), psf_stamp_size=24, **kwargs)
    with pytest.raises(ValueError, match="not a SimCam band"):
        simrepo.make_visit_image(image, image, {}, wcs, make_piff_psf(), **{**kwargs, "band": "q"})
    celestial_psf = make_piff_psf()
    celestial_psf.wcs = {0: galsim.JacobianWCS(0.2, 0.01, 0.0, 0.2)}
    with pytest.raises(ValueError, match="WCS map"):
        simrepo.make_visit_image(image, image, {}, wcs, celestial_psf, **kwargs)
    with pytest.raises(TypeError, match="piff.PSF"):
        simrepo.make_visit_image(image, image, {}, wcs, galsim.Gaussian(fwhm=0.7), **kwargs)
    with pytest.raises(ValueError, match="detector_wcs is empty"):
        simrepo.register_visit(
            sim["butler"],
            visit=VISIT + 1,
            band=BAND,
            exposure_time_s=EXPTIME,
            begin=BEGIN,
            detector_wcs={},
            width=WIDTH,
            height=HEIGHT,
        )


def test_detector_geometry():
    detector = simrepo.make_detector(4, WIDTH, HEIGHT, visit=VISIT)
    assert detector.id == 4 and detector.name == "S04" and detector.visit == VISIT
    assert detector.frame.bbox.x.size == WIDTH and detector.frame.bbox.y.size == HEIGHT
    # Detector 4 is the centre of the 3x3 grid; 10 micron pixels; 0.2"/pixel plate scale.
    center = detector.to_focal_plane.apply_forward(x=(WIDTH - 1) / 2, y=(HEIGHT - 1) / 2)
    assert center.x == pytest.approx(0.0, abs=1e-12) and center.y == pytest.approx(0.0, abs=1e-12)
    corner = detector.to_focal_plane.apply_forward(x=(WIDTH - 1) / 2 + 100, y=(HEIGHT - 1) / 2)
    assert corner.x == pytest.approx(1.0)  # mm
    angle = detector.to_field_angle.apply_forward(x=(WIDTH - 1) / 2 + 100, y=(HEIGHT - 1) / 2)
    assert np.degrees(angle.x) * 3600 == pytest.approx(20.0)
    right = simrepo.make_detector(5, WIDTH, HEIGHT).to_focal_plane.apply_forward(
        x=(WIDTH - 1) / 2, y=(HEIGHT - 1) / 2
    )
    # The same layout as the detectors' WCS: one detector width plus the gap to the right.
    assert right.x == pytest.approx((WIDTH + DETECTOR_GAP) * 0.01)
    assert detector_offset(5, WIDTH) == ((WIDTH + DETECTOR_GAP), 0.0)


def test_day_obs_rolls_over_at_noon_tai():
    assert simrepo.day_obs_for(Time("2026-03-01T11:59:59", scale="tai")) == 20260228
    assert simrepo.day_obs_for(Time("2026-03-01T12:00:01", scale="tai")) == 20260301


def test_create_refuses_non_repo_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("not a repository")
    with pytest.raises(ValueError, match="without a butler.yaml"):
        simrepo.create_or_open_repo(tmp_path)


PLAIN_READ = """
import sys
from lsst.daf.butler import Butler

assert not any(name.startswith("lsst.meas.contextnet") for name in sys.modules)
butler = Butler.from_config(sys.argv[1], collections=[sys.argv[2]])
ref = butler.query_datasets("calexp")[0]
calexp = butler.get(ref)
first = butler.get(ref.makeComponentRef("psf"))
second = butler.get(ref.makeComponentRef("psf"))
kernel = first.compute_kernel_image(x=20.0, y=20.0).array
assert (kernel == second.compute_kernel_image(x=20.0, y=20.0).array).all()
assert (kernel == calexp.psf.compute_kernel_image(x=20.0, y=20.0).array).all()
print(type(calexp).__name__, type(first).__name__, calexp.image.array.shape)
"""


def test_plain_butler_reads_in_a_fresh_process(sim) -> None:
    """``Butler.get`` of calexp, then calexp.psf twice, in a process that never imports us."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", PLAIN_READ, sim["root"], RUN], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["VisitImage", "PiffWrapper", f"({HEIGHT},", f"{WIDTH})"]
