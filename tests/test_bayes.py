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

"""Tests of the Bayes reference classifier (`lsst.meas.contextnet.evaluation.bayes`)."""

import numpy as np
import pytest
from lsst.meas.contextnet.evaluation.bayes import (
    BayesReferenceConfig,
    check_world,
    cross_fit_posterior,
    flux_marginal_log_likelihood,
    log_likelihood_ratio,
)
from lsst.meas.contextnet.sim.population import PopulationConfig, draw_galaxy_shapes
from lsst.meas.contextnet.sim.stamps import StampRenderer
from lsst.meas.contextnet.sim.world import get_world

SIDE = 17
NOISE = 10.0


def test_flux_marginal_log_likelihood_is_the_integral_over_positive_fluxes():
    rng = np.random.default_rng(3)
    template = rng.uniform(0.0, 1.0, size=(SIDE, SIDE))
    weights = rng.uniform(0.5, 2.0, size=(SIDE, SIDE))
    for amplitude in (3.0, 0.2, -1.0):
        data = amplitude * template + rng.normal(size=(SIDE, SIDE)) / np.sqrt(weights)
        a = np.linspace(0.0, 20.0, 400001)
        chi2 = np.sum(weights * (data[None] - a[:, None, None] * template[None]) ** 2, axis=(1, 2))
        lowest = chi2.min()
        integral = np.log(np.trapezoid(np.exp(-(chi2 - lowest) / 2), a)) - lowest / 2
        expected = integral + np.sum(weights * data * data) / 2 - np.log(2 * np.pi) / 2
        assert flux_marginal_log_likelihood(template, data, weights) == pytest.approx(expected, abs=1e-4)
    assert flux_marginal_log_likelihood(template, data, np.zeros_like(weights)) == -np.inf


def _sources(galaxy: bool, n: int, rng: np.random.Generator) -> dict:
    renderer = StampRenderer(0.2, 3.5)
    dx, dy = rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n)
    zeros = np.zeros(n)
    stamps = renderer.render(
        SIDE,
        flux=np.full(n, 2.0e4),
        dx=dx,
        dy=dy,
        psf_fwhm=np.full(n, 0.8),
        psf_g1=zeros,
        psf_g2=zeros,
        is_galaxy=np.full(n, galaxy),
        hlr=np.full(n, 0.8),
        g1=np.full(n, 0.1),
        g2=zeros,
        bulge_fraction=np.full(n, 0.2),
    )
    return {
        "data": stamps + NOISE * rng.normal(size=stamps.shape),
        "weights": np.full(stamps.shape, NOISE**-2),
        "dx": dx,
        "dy": dy,
        "psf_fwhm": np.full(n, 0.8),
        "psf_g1": zeros,
        "psf_g2": zeros,
        "mag": np.full(n, 20.5),
    }


def _llr(sources: dict, seed: int = 0) -> np.ndarray:
    return log_likelihood_ratio(
        **sources,
        population=PopulationConfig(),
        renderer=StampRenderer(0.2, 3.5),
        rng=np.random.default_rng(seed),
        config=BayesReferenceConfig(draws=6),
    )


def test_log_likelihood_ratio_separates_bright_stars_and_galaxies():
    rng = np.random.default_rng(5)
    stars, galaxies = _sources(False, 4, rng), _sources(True, 4, rng)
    assert np.all(_llr(stars) < -10)
    assert np.all(_llr(galaxies) > 10)
    # Seeded: the same galaxy draws give the same ratios.
    np.testing.assert_array_equal(_llr(galaxies, seed=1), _llr(galaxies, seed=1))


def test_log_likelihood_ratio_checks_shapes():
    sources = _sources(False, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"data and weights must be \(N, 17, 17\)"):
        _llr(sources | {"data": sources["data"][:, :15, :15]})
    with pytest.raises(ValueError, match="need 2 entries each"):
        _llr(sources | {"mag": np.zeros(3)})
    with pytest.raises(ValueError, match="draws must be at least 1"):
        BayesReferenceConfig(draws=0)


def test_position_grid():
    sx, sy = BayesReferenceConfig(max_shift=1.0, shift_step=0.5).offsets()
    assert len(sx) == 25 and sx.min() == -1.0 and sy.max() == 1.0
    assert len(BayesReferenceConfig(max_shift=0.0).offsets()[0]) == 1


def test_check_world_accepts_the_narrow_world_only():
    check_world(get_world("narrow").to_dict())
    with pytest.raises(ValueError, match="does not model world 'randomized'") as info:
        check_world(get_world("randomized").to_dict())
    for reason in ("not one Moffat family", "not the true PSF", "not bulge+disk alone", "several bands"):
        assert reason in str(info.value)


def test_cross_fit_posterior_is_out_of_sample_and_keeps_missing_inputs_missing():
    rng = np.random.default_rng(2)
    n = 2000
    labels = rng.uniform(size=n) < 0.5
    mag = rng.uniform(20, 25, n)
    llr = np.where(labels, 1.0, -1.0) * 3.0 + rng.normal(size=n) * (mag - 19)
    llr[:5] = np.nan
    visits = rng.integers(0, 10, n)
    prob = cross_fit_posterior(llr, mag, labels, visits, seed=0)
    assert np.all(np.isnan(prob[:5])) and np.all(np.isfinite(prob[5:]))
    accuracy = np.mean((prob[5:] >= 0.5) == labels[5:])
    assert accuracy > 0.7
    # A perfect extra input is used: the combination classifies every object.
    stacked = cross_fit_posterior(llr, mag, labels, visits, seed=0, extra=np.where(labels, 5.0, -5.0))
    assert np.all((stacked[5:] >= 0.5) == labels[5:])


def test_draw_galaxy_shapes_follows_the_population():
    rng = np.random.default_rng(4)
    hlr, bulge, ellipticity, rotation = draw_galaxy_shapes(rng, np.full(20000, 22.0), PopulationConfig())
    assert np.median(hlr) == pytest.approx(0.6, rel=0.03)
    assert np.mean(bulge) == pytest.approx(0.18, abs=0.01)
    assert ellipticity.max() < 0.9 and 0 <= rotation.min() and rotation.max() < 180


@pytest.mark.slow
def test_bayes_reference_repository_scores_the_reference_beside_contextnet(tmp_path, tiny_model):
    from lsst.daf.butler import Butler, DatasetType
    from lsst.meas.contextnet.classifier import ContextNetClassifierConfig, ContextNetClassifierTask
    from lsst.meas.contextnet.sim.exposure import SimulationConfig
    from lsst.meas.contextnet.sim.simulate import simulate_repo
    from lsst.meas.contextnet.tools.bayesref import BAYES_COLUMN, STACK_COLUMN, bayes_reference_repository

    repo = str(tmp_path / "repo")
    config = SimulationConfig(world="narrow", size=512, density_scale=4.0)
    simulate_repo(repo, "sim", visits=2, config=config, seed=3, progress=False)
    butler = Butler.from_config(repo, writeable=True)
    butler.registry.registerDatasetType(
        DatasetType(
            "contextnet_classification",
            {"instrument", "visit", "detector"},
            "ArrowAstropy",
            universe=butler.dimensions,
        )
    )
    butler.collections.register("classify")
    task_config = ContextNetClassifierConfig()
    task_config.modelPath = str(tiny_model)
    task_config.device = "cpu"
    task = ContextNetClassifierTask(config=task_config)
    for ref in butler.query_datasets("calexp", collections="sim"):
        out = task.run(butler.get(ref), butler.get("src", ref.dataId, collections="sim"), seed=1)
        butler.put(out.classification, "contextnet_classification", ref.dataId, run="classify")
    result, paths = bayes_reference_repository(
        repo, ["classify", "sim"], tmp_path / "out", config=BayesReferenceConfig(draws=2), peer=False
    )
    overall = result.metrics[result.metrics["bin"] == -1]
    names = list(overall["classifier"])
    assert BAYES_COLUMN in names and STACK_COLUMN in names and "ContextNet" in names
    # Every source with a measured flux is scored; the others (saturated stars) are missing.
    scored = np.isfinite(np.asarray(result.catalog[BAYES_COLUMN], dtype=float))
    fluxes = np.column_stack(
        [np.ma.filled(result.catalog[name], np.nan) for name in ("psfFlux", "gaussianFlux")]
    )
    np.testing.assert_array_equal(scored, np.any(fluxes > 0, axis=1))
    assert scored.sum() > 100
    from lsst.meas.contextnet.evaluation.metrics import roc_auc

    # The reference knows the world: it separates this world's sources well.
    assert roc_auc(result.catalog["is_galaxy"], result.catalog[BAYES_COLUMN]) > 0.9
    assert {path.name for path in paths} == {"metrics.csv", "metrics.json", "summary.txt"}

    # One exposure: a missing centroid gets no ratio, and a masked pixel is left out, whatever it holds.
    from lsst.meas.contextnet.tools.bayesref import _WorldModel, exposure_llr

    ref = sorted(butler.query_datasets("calexp", collections="sim"), key=lambda r: r.dataId["visit"])[0]
    calexp = butler.get(ref)
    src = butler.get("src", ref.dataId, collections="sim")
    model = _WorldModel.from_record(butler, "sim")
    x, y = np.array(src["x"][:6], dtype=float), np.array(src["y"][:6], dtype=float)
    x[0] = np.nan

    def ratios():
        return exposure_llr(
            calexp,
            x,
            y,
            np.full(6, 0.9),
            np.full(6, 22.0),
            population=model.population,
            renderer=model.renderer,
            rng=np.random.default_rng(0),
            config=BayesReferenceConfig(draws=2),
        )

    before = ratios()
    assert np.isnan(before[0]) and np.all(np.isfinite(before[1:]))
    row, col = int(round(y[1])), int(round(x[1])) + 1
    bad = np.zeros(calexp.image.array.shape, dtype=bool)
    bad[row, col] = True
    calexp.mask.set("BAD", bad)
    calexp.image.array[row, col] = 1.0e6
    after = ratios()
    np.testing.assert_array_equal(after[2:], before[2:])
    # One pixel fewer in its fit moves the ratio a little; the 1e6 it holds would move it by thousands.
    assert 0 < abs(after[1] - before[1]) < 5, (before[1], after[1])
    assert overall["n"][names.index(BAYES_COLUMN)] == scored.sum()


def test_draw_candidates_draws_its_shapes_with_draw_galaxy_shapes():
    from lsst.meas.contextnet.sim.population import _sample_power_law_mags, draw_candidates
    from lsst.meas.contextnet.sim.psf import PsfField

    config = PopulationConfig()
    psf = PsfField.from_rng(np.random.default_rng(1), 256, 256)
    table = draw_candidates(np.random.default_rng(8), 300, True, 26.0, config, psf, "r", 30.0)
    rng = np.random.default_rng(8)
    mag = _sample_power_law_mags(rng, 300, config.galaxy_mag_bright, 26.0, config.galaxy_count_slope)
    rng.uniform(size=600)  # the positions
    hlr, bulge, ellipticity, rotation = draw_galaxy_shapes(rng, mag, config)
    for name, values in (
        ("hlr_arcsec", hlr),
        ("bulge_fraction", bulge),
        ("ellipticity", ellipticity),
        ("rotation_deg", rotation),
    ):
        np.testing.assert_array_equal(table[name], values)


def _galsim_star(x: float, y: float, fwhm: float, g1: float, g2: float, size: int = 64) -> np.ndarray:
    import galsim

    psf = galsim.Moffat(beta=3.5, fwhm=fwhm).shear(g1=g1, g2=g2)
    image = galsim.ImageD(size, size, scale=0.2, xmin=0, ymin=0)
    psf.drawImage(image, center=galsim.PositionD(x, y))
    return image.array


def test_templates_sit_where_the_cutout_puts_the_source():
    from lsst.meas.contextnet.cutouts import extract_cutouts
    from lsst.meas.contextnet.psfinputs import subpixel_offsets

    x, y = np.array([20.3, 45.8]), np.array([19.6, 43.45])
    image = sum(_galsim_star(xi, yi, 0.7, 0.05, -0.03) for xi, yi in zip(x, y))
    cutouts = extract_cutouts(image, x, y, SIDE).cutouts
    dx, dy = subpixel_offsets(x, y)
    templates = StampRenderer(0.2, 3.5).render(
        SIDE,
        flux=np.ones(2),
        dx=dx,
        dy=dy,
        psf_fwhm=np.full(2, 0.7),
        psf_g1=np.full(2, 0.05),
        psf_g2=np.full(2, -0.03),
        is_galaxy=np.zeros(2, bool),
        hlr=np.zeros(2),
        g1=np.zeros(2),
        g2=np.zeros(2),
        bulge_fraction=np.zeros(2),
    )
    # The two stars are far apart: each cutout holds one, drawn where the template is.
    for cutout, template in zip(cutouts, templates):
        assert np.abs(cutout - template).max() < 2e-3 * template.max()


def test_psf_shears_recovers_the_shear_of_a_pixelized_psf_image():
    from lsst.meas.contextnet.tools.bayesref import psf_shears

    images = np.stack([_galsim_star(8.0, 8.0, fwhm, g1, g2, size=SIDE) for fwhm, g1, g2 in PSFS])
    shear = psf_shears(images, np.array([p[0] for p in PSFS]), StampRenderer(0.2, 3.5))
    np.testing.assert_allclose(shear, [p[1:] for p in PSFS], atol=1e-3)


PSFS = [(0.5, 0.05, 0.0), (0.7, 0.0, 0.05), (1.0, 0.03, -0.04)]


def test_a_misplaced_template_moves_the_ratio_towards_galaxy():
    rng = np.random.default_rng(6)
    sources = _sources(False, 6, rng)
    sources["data"] = sources["data"] / 20.0  # S/N about 40
    sources["weights"] = sources["weights"] * 400.0
    exact = BayesReferenceConfig(draws=6, max_shift=0.0)

    def llr(**changes):
        return log_likelihood_ratio(
            **(sources | changes),
            population=PopulationConfig(),
            renderer=StampRenderer(0.2, 3.5),
            rng=np.random.default_rng(0),
            config=exact,
        )

    right = llr()
    assert np.all(llr(dx=sources["dx"] + 1.0) > right + 5)
    assert np.all(llr(psf_fwhm=sources["psf_fwhm"] * 0.8) > right + 5)
