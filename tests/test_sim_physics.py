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

"""Tests of the simulator's physics: survey numbers, PSF field, population, rendering,
detection, matching, baseline measurements and the end-to-end exposure."""

from __future__ import annotations

import galsim
import numpy as np
import pytest
from astropy.table import Table, join
from lsst.meas.contextnet.baseline import compute_extendedness, compute_size_extendedness
from lsst.meas.contextnet.sim import survey
from lsst.meas.contextnet.sim.detect import detect_sources, match_to_truth, matched_filter_image
from lsst.meas.contextnet.sim.exposure import (
    SimulationConfig,
    detector_offset,
    make_source_ids,
    simulate_exposure,
)
from lsst.meas.contextnet.sim.measure import measure_sources
from lsst.meas.contextnet.sim.population import draw_population, point_source_depth
from lsst.meas.contextnet.sim.psf import PsfField, draw_visit_fwhm
from lsst.meas.contextnet.sim.render import RENDER_MASK_BITS, render_exposure
from lsst.meas.contextnet.sim.wcs import make_tan_wcs


def _grid(field: PsfField, n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    g = np.linspace(0.0, 1.0, n)
    return np.meshgrid(g * (field.width - 1), g * (field.height - 1))


def _truth_rows(rows: list[dict]) -> Table:
    base = {
        "is_galaxy": False,
        "hlr_arcsec": 0.0,
        "ellipticity": 0.0,
        "rotation_deg": 0.0,
        "bulge_fraction": 0.0,
    }
    return Table([{**base, **row} for row in rows])


@pytest.fixture(scope="module")
def small_exposure():
    config = SimulationConfig(size=512, density_scale=4.0)
    return config, simulate_exposure(config, 1, 4, 11)


# --- survey -------------------------------------------------------------------------------


def test_survey_numbers_come_from_surveycodex():
    r = survey.get_band("r")
    assert r.pixel_scale == pytest.approx(0.2)
    assert r.zero_point == pytest.approx(28.13)
    assert r.sky_brightness == pytest.approx(21.2)
    assert survey.available_bands() == ("u", "g", "r", "i", "z", "y")
    # 1 electron per second at the zero point.
    assert survey.mag_to_flux(r.zero_point, "r", 30.0) == pytest.approx(30.0)
    assert survey.flux_to_mag(survey.mag_to_flux(22.5, "i"), "i") == pytest.approx(22.5)
    # Sky per pixel: sky brightness over 0.04 arcsec^2 for 30 s.
    expected = 30.0 * 10 ** (-0.4 * (21.2 - 2.5 * np.log10(0.04) - 28.13))
    assert survey.sky_level("r") == pytest.approx(expected)
    assert survey.sky_level("y") > survey.sky_level("g")


def test_unknown_band_is_named():
    with pytest.raises(ValueError, match="unknown band 'w'"):
        survey.get_band("w")
    with pytest.raises(ValueError, match="exposure_time"):
        survey.mag_to_flux(20.0, "r", exposure_time=-1.0)


# --- PSF field ----------------------------------------------------------------------------


def test_visit_fwhm_spread_across_visits():
    rng = np.random.default_rng(1)
    fields = [PsfField.from_rng(rng, 512, 512, variation="full") for _ in range(30)]
    means = np.array([f.mean_fwhm() for f in fields])
    assert means.min() >= 0.5 - 1e-9 and means.max() <= 1.3 + 1e-9
    assert np.ptp(means) > 0.5
    fixed = [draw_visit_fwhm(rng, "spatial", nominal_fwhm=0.81) for _ in range(5)]
    assert fixed == [0.81] * 5


def test_psf_varies_across_one_detector():
    field = PsfField.from_rng(np.random.default_rng(2), 4096, 4096, variation="full")
    gx, gy = _grid(field, 33)
    fwhm, g1, g2 = field.params_at(gx, gy)
    assert np.ptp(fwhm) / np.mean(fwhm) >= 0.10
    assert np.ptp(fwhm) / np.mean(fwhm) <= 0.25
    shear = np.hypot(g1, g2)
    assert 0.0 < shear.max() < 0.12
    assert np.ptp(g1) > 0.005 and np.ptp(g2) > 0.005


def test_psf_variation_modes():
    rng = np.random.default_rng(3)
    nones = [PsfField.from_rng(rng, 256, 256, variation="none", nominal_fwhm=0.81) for _ in range(3)]
    for field in nones:
        gx, gy = _grid(field)
        fwhm, g1, g2 = field.params_at(gx, gy)
        np.testing.assert_allclose(fwhm, 0.81)
        np.testing.assert_allclose(g1, 0.0)
        np.testing.assert_allclose(g2, 0.0)
    spatial = [PsfField.from_rng(rng, 256, 256, variation="spatial", nominal_fwhm=0.81) for _ in range(3)]
    for field in spatial:
        gx, gy = _grid(field)
        assert field.mean_fwhm() == pytest.approx(0.81, rel=1e-3)
        assert np.ptp(field.fwhm_at(gx, gy)) / 0.81 >= 0.09
    with pytest.raises(ValueError, match="psf_variation 'wobbly'"):
        PsfField.from_rng(rng, 256, 256, variation="wobbly")
    with pytest.raises(ValueError, match="detector size"):
        PsfField(1, 256, [1, 0, 0, 0, 0, 0], [0] * 6, [0] * 6)
    with pytest.raises(ValueError, match="not positive"):
        PsfField(256, 256, [0.1, 0.5, 0, 0, 0, 0], [0] * 6, [0] * 6)


def test_piff_model_reproduces_the_field():
    field = PsfField.from_rng(np.random.default_rng(4), 4096, 4096, variation="full")
    psf = field.to_piff()
    for x, y in [(0.0, 0.0), (4095.0, 10.0), (1234.3, 3000.7), (4095.0, 4095.0)]:
        piff_image = psf.draw(x, y, stamp_size=25)
        ours = galsim.ImageD(piff_image.bounds, scale=field.pixel_scale)
        field.galsim_profile(x, y).drawImage(ours, center=(x, y))
        np.testing.assert_allclose(piff_image.array, ours.array, atol=1e-12)
        # FWHM of the Piff profile from the area above half maximum (the shear preserves area).
        profile, method = psf.get_profile(x, y)
        assert method == "auto"
        fine = profile.drawImage(nx=301, ny=301, scale=0.01, method="no_pixel").array
        area = np.count_nonzero(fine > 0.5 * fine.max()) * 0.01**2
        fwhm = 2.0 * np.sqrt(area / np.pi)
        assert fwhm == pytest.approx(float(field.fwhm_at(x, y)), rel=0.01)


# --- population ---------------------------------------------------------------------------


def test_population_magnitudes_and_shapes():
    rng = np.random.default_rng(5)
    field = PsfField.from_rng(rng, 2048, 2048, variation="full", visit_fwhm=0.8)
    truth = draw_population(rng, field, band="r", n_detected=600)
    depth = point_source_depth(field, "r", 30.0)
    assert 23.8 < depth < 25.0
    stars, galaxies = truth[~truth["is_galaxy"]], truth[truth["is_galaxy"]]
    # Magnitudes reach beyond the detection limit; galaxies are fainter than stars on average.
    assert truth["mag"].max() > depth + 0.5
    assert np.median(galaxies["mag"]) > np.median(stars["mag"])
    detectable = truth["snr_expected"] > 5
    assert np.median(truth["mag"][detectable & truth["is_galaxy"]]) > np.median(
        truth["mag"][detectable & ~truth["is_galaxy"]]
    )
    # Sizes shrink with magnitude; shapes are physical.
    bright = galaxies["mag"] < 21.5
    faint = galaxies["mag"] > 23.5
    assert np.median(galaxies["hlr_arcsec"][bright]) > 1.5 * np.median(galaxies["hlr_arcsec"][faint])
    assert np.all((galaxies["ellipticity"] >= 0) & (galaxies["ellipticity"] < 0.9))
    assert np.all((galaxies["bulge_fraction"] >= 0) & (galaxies["bulge_fraction"] <= 1))
    assert np.all(stars["hlr_arcsec"] == 0)
    # Expected detections hit the target, with the requested star fraction.
    from scipy.special import ndtr

    p = ndtr(truth["snr_expected"] - 5.0)
    assert p.sum() == pytest.approx(600, rel=0.15)
    assert p[~truth["is_galaxy"]].sum() / p.sum() == pytest.approx(0.4, abs=0.07)


# --- rendering ----------------------------------------------------------------------------


def test_render_noise_variance_and_masks():
    field = PsfField.from_rng(np.random.default_rng(6), 256, 256, variation="none", nominal_fwhm=0.7)
    sky = survey.sky_level("r")
    truth = _truth_rows(
        [
            {"x_true": 60.2, "y_true": 70.7, "flux": 5.0e7, "mag": 14.0},
            {"x_true": 190.0, "y_true": 190.0, "flux": 2.0e5, "mag": 19.0},
        ]
    )
    out = render_exposure(truth, field, sky_level=sky, rng=np.random.default_rng(7), n_bad_columns=2)
    assert out.image.dtype == np.float32 and out.variance.dtype == np.float32
    sat = (out.mask & (1 << RENDER_MASK_BITS["SAT"])) != 0
    bad = (out.mask & (1 << RENDER_MASK_BITS["BAD"])) != 0
    edge = (out.mask & (1 << RENDER_MASK_BITS["EDGE"])) != 0
    # The very bright star saturates at its core and is clipped there.
    assert sat[70, 60]
    assert np.all(out.image[sat & ~bad] == pytest.approx(1.0e5 - sky))
    assert not sat[190, 190]
    # A saturated centre is not measured: every measurement is flagged.
    flagged = measure_sources(out.image, out.variance, field, [60.2, 190.0], [70.7, 190.0], saturated=sat)
    assert flagged["psfFlux_flag"].tolist() == [True, False]
    assert flagged["extendedness_flag"].tolist() == [True, False]
    assert flagged["sizeExtendedness_flag"].tolist() == [True, False]
    assert np.isnan(flagged["gaussianFlux"][0]) and flagged["extendedness"][1] == 0.0
    # Bad pixels (two partial columns and isolated ones) hold the background.
    assert bad.sum() > 2
    assert np.all(out.image[bad] == 0.0)
    assert edge[0, 100] and edge[255, 100] and edge[100, 0] and edge[100, 255] and not edge[100, 100]
    # Blank sky: zero mean, Poisson sigma; the variance plane is the sky there.
    blank = out.image[120:180, 20:80][~bad[120:180, 20:80]]
    assert abs(blank.mean()) < 3 * np.sqrt(sky / blank.size)
    assert blank.std() == pytest.approx(np.sqrt(sky), rel=0.05)
    assert np.median(out.variance) == pytest.approx(sky, rel=1e-3)
    assert out.noise_sigma == pytest.approx(np.sqrt(sky), rel=1e-3)
    # Around the unsaturated star the variance includes the source.
    assert out.variance[190, 190] > sky + 1000
    # Total flux of the faint star is recovered.
    box = out.image[160:221, 160:221].astype(np.float64)
    assert box.sum() == pytest.approx(2.0e5, rel=0.02)


# --- detection and matching ---------------------------------------------------------------


def test_matching_hand_built_case():
    det_x = np.array([10.0, 50.0, 90.3, 200.0])
    det_y = np.array([10.0, 50.0, 90.0, 200.0])
    truth_x = np.array([10.5, 50.8, 49.6, 90.0, 130.0, 201.0])
    truth_y = np.array([10.0, 50.0, 50.5, 90.0, 130.0, 201.0])
    flux = np.array([100.0, 50.0, 400.0, 10.0, 1000.0, 20.0])
    match = match_to_truth(det_x, det_y, truth_x, truth_y, flux, 1.5)
    # Truth 2 (brighter) wins detection 1 over the nearer truth 1; truth 4 has no detection;
    # truth 5 is 1.41 px away (inside 1.5 px).
    assert match.tolist() == [0, -1, 1, 2, -1, 3]
    # A per-object radius can exclude the same pair.
    match = match_to_truth(det_x, det_y, truth_x, truth_y, flux, [1.5, 1.5, 1.5, 1.5, 1.5, 1.0])
    assert match[5] == -1
    assert match_to_truth([], [], truth_x, truth_y, flux, 1.5).tolist() == [-1] * 6
    with pytest.raises(ValueError, match="radius"):
        match_to_truth(det_x, det_y, truth_x, truth_y, flux, -1.0)


def test_detection_threshold_and_centroids():
    field = PsfField.from_rng(np.random.default_rng(8), 200, 200, variation="none", nominal_fwhm=0.8)
    sky = 700.0
    kernel = field.kernel_image(100, 100, 4)
    unit = galsim.ImageD(200, 200, xmin=0, ymin=0, scale=0.2)
    field.galsim_profile(50, 50).drawImage(unit, center=(50.0, 50.0))
    nu_unit = float(matched_filter_image(unit.array, np.full((200, 200), sky), kernel)[50, 50])
    truth = _truth_rows(
        [
            {"x_true": 50.3, "y_true": 60.6, "flux": 100.0 / nu_unit, "mag": 21.0},
            {"x_true": 150.0, "y_true": 50.0, "flux": 9.0 / nu_unit, "mag": 23.0},
            {"x_true": 100.0, "y_true": 150.0, "flux": 1.5 / nu_unit, "mag": 25.0},
        ]
    )
    out = render_exposure(
        truth, field, sky_level=sky, rng=np.random.default_rng(9), n_bad_columns=0, n_bad_pixels=0
    )
    sources, segmentation = detect_sources(out.image, out.variance, kernel)
    assert len(sources) == 2
    match = match_to_truth(sources["x"], sources["y"], truth["x_true"], truth["y_true"], truth["flux"], 1.5)
    assert match[0] >= 0 and match[1] >= 0 and match[2] == -1
    bright = sources[match[0]]
    assert abs(bright["x"] - 50.3) < 0.1 and abs(bright["y"] - 60.6) < 0.1
    # The source's own Poisson variance lowers its S/N below the sky-limited 100.
    model = unit.array * (100.0 / nu_unit)
    expected = matched_filter_image(model, sky + model, kernel)[50, 50]
    assert 60.0 < expected < 95.0
    assert bright["peak_snr"] == pytest.approx(expected, rel=0.1)
    assert segmentation[60, 50] == match[0] + 1


# --- baselines ----------------------------------------------------------------------------


def test_extendedness_rules():
    value, flag = compute_extendedness(
        np.array([100.0, 100.0, 100.0, np.nan]), np.array([100.0, 105.0, 106.0, 1.0])
    )
    # 0.95 * 105 = 99.75 < 100 -> point-like; 0.95 * 106 = 100.7 -> extended.
    assert value[:3].tolist() == [0.0, 0.0, 1.0]
    assert np.isnan(value[3]) and flag.tolist() == [False, False, False, True]
    value, _ = compute_extendedness(
        np.array([100.0]),
        np.array([106.0]),
        psf_flux_err=np.array([1.0]),
        psf_err_factor=1.0,
    )
    assert value.tolist() == [0.0]
    with pytest.raises(ValueError, match="psf_flux_err"):
        compute_extendedness(np.array([1.0]), np.array([1.0]), psf_err_factor=1.0)
    size, flag = compute_size_extendedness(np.array([4.0, 6.0, 5.0, 1.0]), np.array([4.0, 4.0, 0.0, np.nan]))
    assert size[0] == 0.0
    assert size[1] == pytest.approx(1.0 - np.exp(-0.5 * (2.0 / 2.0) ** 2))
    assert flag.tolist() == [False, False, True, True] and np.all(np.isnan(size[2:]))


def test_measurements_on_isolated_star_and_galaxy():
    field = PsfField.from_rng(np.random.default_rng(10), 256, 256, variation="spatial", nominal_fwhm=0.8)
    truth = _truth_rows(
        [
            {"x_true": 70.4, "y_true": 80.2, "flux": 3.0e5, "mag": 18.5},
            {
                "x_true": 180.7,
                "y_true": 170.1,
                "flux": 3.0e5,
                "mag": 18.5,
                "is_galaxy": True,
                "hlr_arcsec": 1.0,
                "ellipticity": 0.3,
                "rotation_deg": 30.0,
                "bulge_fraction": 0.3,
            },
        ]
    )
    out = render_exposure(
        truth, field, sky_level=700.0, rng=np.random.default_rng(11), n_bad_columns=0, n_bad_pixels=0
    )
    table = measure_sources(out.image, out.variance, field, truth["x_true"], truth["y_true"])
    star, galaxy = table[0], table[1]
    assert star["psfFlux"] == pytest.approx(3.0e5, rel=0.01)
    # Error of the PSF fit with the sky + source variance: sqrt(sum(P^2 var)) / sum(P^2).
    psf = field.galsim_profile(70.4, 80.2).drawImage(nx=61, ny=61, scale=0.2).array
    p2 = np.sum(psf**2)
    expected_err = np.sqrt(np.sum(psf**2 * (700.0 + 3.0e5 * psf))) / p2
    assert star["psfFluxErr"] == pytest.approx(expected_err, rel=0.05)
    assert star["gaussianFlux"] == pytest.approx(star["psfFlux"], rel=0.02)
    assert star["T_obj"] == pytest.approx(star["T_psf"], rel=0.03)
    assert star["extendedness"] == 0.0 and star["sizeExtendedness"] < 0.1
    assert galaxy["extendedness"] == 1.0 and galaxy["sizeExtendedness"] > 0.9
    assert galaxy["gaussianFlux"] > galaxy["psfFlux"] / 0.95
    assert not any(
        table[name].any() for name in ("extendedness_flag", "sizeExtendedness_flag", "psfFlux_flag")
    )
    # A position outside the image fails cleanly with flags.
    failed = measure_sources(out.image, out.variance, field, [-500.0], [-500.0])
    assert (
        failed["psfFlux_flag"][0] and failed["extendedness_flag"][0] and np.isnan(failed["extendedness"][0])
    )


# --- end-to-end exposure ------------------------------------------------------------------


def test_exposure_tables_and_baselines(small_exposure):
    config, exposure = small_exposure
    src, truth = exposure.src, exposure.truth
    for name, dtype in [
        ("sourceId", np.int64),
        ("coord_ra", np.float64),
        ("coord_dec", np.float64),
        ("x", np.float64),
        ("y", np.float64),
        ("psfFlux", np.float64),
        ("psfFluxErr", np.float64),
        ("gaussianFlux", np.float64),
        ("gaussianFluxErr", np.float64),
        ("extendedness", np.float64),
        ("sizeExtendedness", np.float64),
        ("extendedness_flag", bool),
        ("sizeExtendedness_flag", bool),
    ]:
        assert src[name].dtype == dtype, name
    for name in (
        "sourceId",
        "is_galaxy",
        "mag",
        "hlr_arcsec",
        "ellipticity",
        "rotation_deg",
        "x_true",
        "y_true",
        "ra_true",
        "dec_true",
        "psf_fwhm",
        "flux",
        "bulge_fraction",
    ):
        assert name in truth.colnames, name
    assert len(np.unique(src["sourceId"])) == len(src)
    assert exposure.image.shape == (512, 512) and exposure.image.dtype == np.float32
    assert exposure.noise_sigma == pytest.approx(np.sqrt(exposure.sky_level), rel=0.01)
    assert np.any((exposure.mask & (1 << RENDER_MASK_BITS["DETECTED"])) != 0)
    matched = truth[truth["sourceId"] >= 0]
    assert len(np.unique(matched["sourceId"])) == len(matched)
    assert np.all(np.isin(matched["sourceId"], src["sourceId"]))
    assert np.any(truth["sourceId"] == -1)
    joined = join(matched, src, keys="sourceId")
    assert np.all(np.hypot(joined["x"] - joined["x_true"], joined["y"] - joined["y_true"]) < 3.5)
    # Bright stars are point-like; large bright galaxies are extended.
    bright_stars = joined[~joined["is_galaxy"] & (joined["mag"] < 20) & ~joined["extendedness_flag"]]
    big_galaxies = joined[
        joined["is_galaxy"]
        & (joined["mag"] < 21.5)
        & (joined["hlr_arcsec"] > 0.8)
        & ~joined["extendedness_flag"]
    ]
    assert len(bright_stars) >= 3 and len(big_galaxies) >= 1
    assert np.all(bright_stars["extendedness"] == 0)
    assert np.all(big_galaxies["extendedness"] == 1)
    # Sky coordinates follow the TAN WCS.
    ra, dec = exposure.wcs.pixel_to_world_values(src["x"], src["y"])
    np.testing.assert_allclose(src["coord_ra"], ra)
    assert exposure.metadata["n_detected"] == len(src)


def test_exposure_is_deterministic(small_exposure):
    config, exposure = small_exposure
    again = simulate_exposure(config, 1, 4, 11)
    np.testing.assert_array_equal(again.image, exposure.image)
    np.testing.assert_array_equal(again.mask, exposure.mask)
    np.testing.assert_array_equal(np.asarray(again.src["psfFlux"]), np.asarray(exposure.src["psfFlux"]))
    assert again.truth.as_array().tobytes() == exposure.truth.as_array().tobytes()
    other = simulate_exposure(config, 1, 4, 12)
    assert not np.array_equal(other.image, exposure.image)
    # Detectors of one visit share the visit FWHM; another visit differs.
    d0 = simulate_exposure(SimulationConfig(size=128), 2, 0, 5)
    d1 = simulate_exposure(SimulationConfig(size=128), 2, 1, 5)
    d2 = simulate_exposure(SimulationConfig(size=128), 3, 0, 5)
    assert d0.metadata["psf_fwhm_visit"] == d1.metadata["psf_fwhm_visit"]
    assert d0.metadata["psf_fwhm_visit"] != d2.metadata["psf_fwhm_visit"]
    assert not np.array_equal(d0.image, d1.image)


def test_source_count_scales_with_area_and_density(small_exposure):
    config, exposure = small_exposure
    expected = config.expected_detections(config.resolved_world().draw_visit(np.random.default_rng(0)))
    assert expected == pytest.approx(1700 * 4 / 64)
    assert abs(len(exposure.src) - expected) < 4 * np.sqrt(expected)
    sparse = simulate_exposure(SimulationConfig(size=512, density_scale=1.0), 1, 4, 11)
    assert len(sparse.src) < len(exposure.src) / 2


@pytest.mark.slow
def test_full_detector_source_count():
    exposure = simulate_exposure(SimulationConfig(), 0, 4, 2024)
    assert 1200 <= len(exposure.src) <= 2200
    matched = exposure.truth[exposure.truth["sourceId"] >= 0]
    assert 1.0 - np.mean(matched["is_galaxy"]) == pytest.approx(0.4, abs=0.06)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="size must be an integer of at least 32"):
        SimulationConfig(size=-5)
    with pytest.raises(ValueError, match="unknown band 'w'"):
        SimulationConfig(band="w")
    with pytest.raises(ValueError, match="star_fraction"):
        SimulationConfig(star_fraction=1.5)
    with pytest.raises(ValueError, match="psf_variation"):
        SimulationConfig(psf_variation="some")
    with pytest.raises(ValueError, match="visit must be a non-negative integer"):
        simulate_exposure(SimulationConfig(size=64), -1, 0, 1)
    with pytest.raises(ValueError, match="seed"):
        simulate_exposure(SimulationConfig(size=64), 0, 0, -3)
    with pytest.raises(ValueError, match="detector"):
        detector_offset(-1, 64)


def test_wcs_and_ids():
    wcs = make_tan_wcs(150.0, 2.0, 4096, 4096, offset=detector_offset(4, 4096))
    ra, dec = wcs.pixel_to_world_values(2047.5, 2047.5)
    assert ra == pytest.approx(150.0) and dec == pytest.approx(2.0)
    ra1, dec1 = wcs.pixel_to_world_values(2047.5, 2048.5)
    assert (dec1 - dec) * 3600 == pytest.approx(0.2, rel=1e-4)
    ra2, _ = wcs.pixel_to_world_values(2048.5, 2047.5)
    assert ra2 < ra  # east is -x
    corner = make_tan_wcs(150.0, 2.0, 4096, 4096, offset=detector_offset(0, 4096))
    ra0, dec0 = corner.pixel_to_world_values(2047.5, 2047.5)
    assert ra0 > 150.0 and dec0 < 2.0  # detector 0 sits at -x, -y
    ids = make_source_ids(7, 3, 5)
    assert ids.dtype == np.int64 and len(np.unique(ids)) == 5
    assert not set(ids) & set(make_source_ids(7, 4, 5).tolist())
