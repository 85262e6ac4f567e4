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

"""Tests of the worlds: presets, their distributions, and how the generators use them."""

import galsim
import numpy as np
import pytest
from lsst.meas.contextnet.sim.exposure import SimulationConfig, simulate_exposure, visit_conditions
from lsst.meas.contextnet.sim.generator import TrainingDataConfig, generate_set
from lsst.meas.contextnet.sim.psf import (
    RENDER_GSPARAMS,
    PsfField,
    area_fwhm,
    draw_visit_fwhm,
    fit_moffat,
    unit_fwhm_profile,
)
from lsst.meas.contextnet.sim.world import (
    RANDOMIZED,
    TRAINING_WORLDS,
    WORLDS,
    get_world,
    resolve_world,
)


def _draws(world, n=3000, seed=5):
    rng = np.random.default_rng(seed)
    return [world.draw_visit(rng) for _ in range(n)]


def test_randomized_distributions_cover_their_ranges():
    draws = _draws(RANDOMIZED)
    fwhm = np.array([d.fwhm for d in draws])
    assert fwhm.min() >= 0.35 and fwhm.max() <= 2.0
    # Log-uniform: the median is the geometric mean of the ends.
    assert np.median(fwhm) == pytest.approx(np.sqrt(0.35 * 2.0), rel=0.05)
    stars = np.array([d.star_fraction for d in draws])
    assert stars.min() >= 0.05 and stars.max() <= 0.9 and np.mean(stars) == pytest.approx(0.475, abs=0.02)
    density = np.array([d.density_scale for d in draws])
    assert density.min() >= 0.3 and density.max() <= 3.0
    assert np.median(density) == pytest.approx(np.sqrt(0.3 * 3.0), rel=0.08)
    assert {d.band for d in draws} == set("ugrizy")
    assert {d.psf_family for d in draws} == {"moffat", "kolmogorov"}
    betas = np.array([d.moffat_beta for d in draws])
    assert betas.min() >= 2.0 and betas.max() <= 5.0 and np.allclose(betas * 10, np.round(betas * 10))
    times = np.array([d.exposure_time for d in draws])
    assert times.min() >= 15.0 and times.max() <= 30.0
    errors = np.array([d.psf_model_size_error for d in draws])
    assert np.std(errors) == pytest.approx(0.015, rel=0.1) and not any(d.exact_psf_model for d in draws)
    hlr = np.array([d.hlr_at_22 for d in draws])
    assert hlr.min() >= 0.35 and hlr.max() <= 0.9


def test_draws_are_deterministic_and_test_worlds_change_one_distribution():
    first = _draws(RANDOMIZED, 5, seed=11)
    assert first == _draws(RANDOMIZED, 5, seed=11)
    assert first != _draws(RANDOMIZED, 5, seed=12)
    bad = _draws(get_world("bad-seeing"), 500)
    assert min(d.fwhm for d in bad) >= 1.3
    rich = _draws(get_world("star-rich"), 500)
    assert min(d.star_fraction for d in rich) >= 0.7
    optical = get_world("psf-optical").draw_visit(np.random.default_rng(1))
    assert optical.psf_family == "kolmogorov_optical" and len(optical.aberrations) == 8
    assert get_world("galaxy-knots").galaxy_families == ("knots",)
    for name, world in WORLDS.items():
        if name.startswith("band-"):
            assert world.bands == (name[-1],)


def test_hard_context_world_is_the_randomized_corner_of_broad_psfs_and_few_stars():
    hard = get_world("hard-context")
    draws = _draws(hard, 1000)
    fwhm = np.array([d.fwhm for d in draws])
    stars = np.array([d.star_fraction for d in draws])
    assert fwhm.min() >= 0.9 and fwhm.max() <= 2.0 and stars.min() >= 0.05 and stars.max() <= 0.35
    # Only those two distributions differ from the randomized world's.
    assert (
        hard.replace(name="randomized", fwhm_range=(0.35, 2.0), star_fraction_range=(0.05, 0.9)) == RANDOMIZED
    )
    assert "hard-context" in TRAINING_WORLDS


def test_hard_psf_model_world_doubles_the_psf_model_errors_of_hard_context():
    world = get_world("hard-psf-model")
    assert world.replace(
        name="hard-context", psf_model_size_error=0.015, psf_model_shear_error=0.01
    ) == get_world("hard-context")
    draws = _draws(world, 2000)
    size = np.array([d.psf_model_size_error for d in draws])
    shear = np.array([d.psf_model_shear_error for d in draws])
    assert np.std(size) == pytest.approx(0.03, rel=0.08) and abs(np.mean(size)) < 0.003
    assert np.std(shear) == pytest.approx(0.02, rel=0.08)
    # The world's index leaves the test worlds' seeds and visits where they were.
    assert list(WORLDS).index("hard-psf-model") == list(WORLDS).index("hard-context") + 1
    assert "hard-psf-model" in TRAINING_WORLDS


def test_beyond_seeing_world_lies_outside_the_training_seeing():
    world = get_world("beyond-seeing")
    assert world.replace(name="randomized", fwhm_range=(0.35, 2.0)) == RANDOMIZED
    fwhm = np.array([d.fwhm for d in _draws(world, 500)])
    training_high = max(get_world(name).fwhm_range[1] for name in TRAINING_WORLDS)
    assert fwhm.min() >= 2.2 > training_high and fwhm.max() <= 2.8
    # Added last, so the seeds and visits of the worlds before it stay where they were.
    assert list(WORLDS)[-1] == "beyond-seeing" and "beyond-seeing" not in TRAINING_WORLDS


def test_narrow_world_keeps_the_historical_fwhm_stream():
    narrow = get_world("narrow")
    for seed in range(5):
        conditions = narrow.draw_visit(np.random.default_rng(seed))
        assert conditions.fwhm == draw_visit_fwhm(np.random.default_rng(seed), "full", (0.5, 1.3))
        assert conditions.band == "r" and conditions.star_fraction == 0.4 and conditions.exact_psf_model


def test_resolve_world_fixes_distributions_and_rejects_bad_values():
    world = resolve_world("randomized", band="g", star_fraction=0.2, psf_fwhm_range=(1.0, 1.1))
    assert (
        world.bands == ("g",) and world.star_fraction_range == (0.2, 0.2) and world.fwhm_range == (1.0, 1.1)
    )
    with pytest.raises(ValueError, match="unknown world"):
        get_world("mars")
    with pytest.raises(ValueError, match="unknown band"):
        resolve_world("narrow", band="w")
    with pytest.raises(ValueError, match="star_fraction"):
        resolve_world("narrow", star_fraction=1.5)
    with pytest.raises(ValueError, match="full-image simulator only"):
        TrainingDataConfig(world="psf-optical")


def test_area_fwhm_holds_for_a_strongly_aberrated_core():
    # Aberrations of up to 0.27 waves per term (a visit the earlier world drew) break the core
    # up: a radial half-maximum search from the centre returns a few hundredths of an arcsecond,
    # the area-equivalent FWHM a width larger than the atmosphere's 1".
    optics = galsim.OpticalPSF(
        lam_over_diam=0.47,
        obscuration=0.61,
        aberrations=[0.0] * 4 + [0.04, -0.09, -0.19, 0.24, -0.09, 0.27, -0.24, 0.24],
    )
    profile = galsim.Convolve(galsim.Kolmogorov(fwhm=1.0), optics)
    assert profile.drawImage(nx=192, ny=192, scale=0.02, method="no_pixel").calculateFWHM() < 0.1
    assert 1.0 < area_fwhm(profile) < 8.0
    assert area_fwhm(galsim.Gaussian(fwhm=1.3)) == pytest.approx(1.3, rel=0.01)


def test_psf_families_have_unit_fwhm_and_fitted_models():
    for family in ("moffat", "kolmogorov", "kolmogorov_optical"):
        profile = unit_fwhm_profile(family, 3.0, (0.1, 0.0, 0.05), 0.4)
        assert area_fwhm(profile) == pytest.approx(1.0, rel=0.03)
        if family != "kolmogorov_optical":
            image = profile.drawImage(nx=256, ny=256, scale=0.01, method="no_pixel")
            assert image.calculateFWHM() == pytest.approx(1.0, rel=0.03)
    assert fit_moffat("moffat", 2.7) == (2.7, 1.0)
    beta, scale = fit_moffat("kolmogorov")
    assert 2.0 < beta < 8.0 and 0.9 < scale < 1.1
    true = PsfField.from_rng(np.random.default_rng(2), 512, 512, family="kolmogorov")
    model = true.fitted_model(0.02, (0.01, 0.0))
    assert model.family == "moffat"
    np.testing.assert_allclose(model.fwhm_at(100, 300), 1.02 * scale * true.fwhm_at(100, 300))
    with pytest.raises(ValueError, match="only a Moffat field"):
        true.to_piff()


def _sigma(profile) -> float:
    return profile.drawImage(nx=128, ny=128, scale=0.05).FindAdaptiveMom().moments_sigma * 0.05


def test_fitted_model_has_the_size_of_an_aberrated_psf():
    # The FWHM of an aberrated optical PSF is its core's; the fit must also take the halo (a
    # Moffat of heavier wings than the default), or PSF photometry with the model would call
    # stars extended.
    aberrations = (0.12, -0.08, 0.1, 0.05, -0.1, 0.07, 0.02, -0.04)
    true = unit_fwhm_profile("kolmogorov_optical", 3.5, aberrations, 0.5)
    beta, scale = fit_moffat("kolmogorov_optical", 3.5, aberrations, 0.5)
    assert beta < 3.0
    fitted = galsim.Moffat(beta=beta, fwhm=scale)
    assert _sigma(fitted) == pytest.approx(_sigma(true), rel=0.05)


def test_optical_psf_is_not_recomputed_for_each_galaxy():
    # GalSim copies (and recomputes the phase screen of) a profile whose settings differ from those
    # of the convolution; the field's profile carries the renderer's settings, so it is reused.
    field = PsfField.from_rng(
        np.random.default_rng(3),
        512,
        512,
        family="kolmogorov_optical",
        aberrations=(0.1, 0.05),
        optical_fraction=0.4,
    )
    psf = field.galsim_profile(100.0, 200.0)
    assert psf.withGSParams(RENDER_GSPARAMS) is psf


def test_visit_conditions_are_shared_by_detectors_and_reach_the_exposure():
    config = SimulationConfig(world="randomized", size=256)
    conditions = visit_conditions(config, 7, 3)
    exposure = simulate_exposure(config, 7, 1, 3)
    assert exposure.metadata["band"] == conditions.band
    assert exposure.metadata["psf_family"] == conditions.psf_family
    assert exposure.true_psf_field.family == conditions.psf_family and exposure.psf_field.family == "moffat"
    assert exposure.psf_field.mean_fwhm() != pytest.approx(exposure.true_psf_field.mean_fwhm(), rel=1e-6)


def test_randomized_training_sets_follow_their_conditions():
    config = TrainingDataConfig(world="randomized", m=60, detector_size=1024)
    data = generate_set(config, np.random.default_rng(8))
    conditions = data["conditions"]
    assert data["psf_grid"].shape == (5, 5, 28, 28)
    np.testing.assert_allclose(data["psf_grid"].sum(axis=(2, 3)), 1.0, rtol=1e-5)
    assert np.all(data["cutouts"][data["bad"].astype(bool)] == 0)
    assert np.all(np.abs(data["offsets"]) <= 0.5)
    fwhm = data["psf_fwhm"]
    assert np.all(np.abs(fwhm / conditions.fwhm - 1) < 0.3)
