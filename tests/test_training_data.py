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

"""Tests of the fast training-data generator: renderer accuracy, detection criterion, sets,
shards, determinism independent of the process count, and the CLI subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import json

import galsim
import numpy as np
import pytest
from lsst.meas.contextnet.cli.make_training_data import add_subcommand
from lsst.meas.contextnet.evaluation.blending import blended_objects
from lsst.meas.contextnet.sim.detect import matched_filter_image
from lsst.meas.contextnet.sim.generator import (
    MANIFEST_NAME,
    TrainingDataConfig,
    _blended_sources,
    _label_by_brightest,
    generate_set,
    write_training_data,
)
from lsst.meas.contextnet.sim.render import galaxy_profile
from lsst.meas.contextnet.sim.stamps import StampRenderer, matched_filter_snr
from lsst.meas.contextnet.training.shards import iter_training_sets, iter_training_shards, read_manifest

SMALL = TrainingDataConfig(m=40, detector_size=512, sets_per_shard=2)


def _galsim_stamp(size, flux, dx, dy, fwhm, pg1, pg2, galaxy, hlr=0.0, e=0.0, rotation=0.0, bulge=0.0):
    psf = galsim.Moffat(beta=3.5, fwhm=1.0).dilate(fwhm).shear(g1=pg1, g2=pg2)
    obj = galsim.Convolve(galaxy_profile(flux, hlr, e, rotation, bulge), psf) if galaxy else psf * flux
    image = galsim.ImageD(size, size, xmin=0, ymin=0, scale=0.2)
    obj.drawImage(image, center=(size // 2 + dx, size // 2 + dy))
    return image.array


@pytest.mark.parametrize(
    "params",
    [
        dict(flux=1.0e4, dx=0.3, dy=-0.4, fwhm=0.7, pg1=0.03, pg2=-0.02, galaxy=False),
        dict(flux=1.0e4, dx=-0.5, dy=0.2, fwhm=1.25, pg1=0.0, pg2=0.04, galaxy=False),
        dict(
            flux=1.0e4,
            dx=0.1,
            dy=0.45,
            fwhm=0.9,
            pg1=-0.02,
            pg2=0.0,
            galaxy=True,
            hlr=0.5,
            e=0.35,
            rotation=40.0,
            bulge=0.3,
        ),
        dict(
            flux=1.0e4,
            dx=-0.2,
            dy=-0.1,
            fwhm=0.55,
            pg1=0.0,
            pg2=0.0,
            galaxy=True,
            hlr=1.6,
            e=0.6,
            rotation=110.0,
            bulge=0.8,
        ),
    ],
)
def test_stamp_renderer_matches_galsim(params):
    theta = np.deg2rad(params.get("rotation", 0.0))
    e = params.get("e", 0.0)
    ours = StampRenderer().render(
        28,
        flux=[params["flux"]],
        dx=[params["dx"]],
        dy=[params["dy"]],
        psf_fwhm=[params["fwhm"]],
        psf_g1=[params["pg1"]],
        psf_g2=[params["pg2"]],
        is_galaxy=[params["galaxy"]],
        hlr=[params.get("hlr", 0.0)],
        g1=[e * np.cos(2 * theta)],
        g2=[e * np.sin(2 * theta)],
        bulge_fraction=[params.get("bulge", 0.0)],
    )[0]
    reference = _galsim_stamp(
        28,
        params["flux"],
        params["dx"],
        params["dy"],
        params["fwhm"],
        params["pg1"],
        params["pg2"],
        params["galaxy"],
        params.get("hlr", 0.0),
        e,
        params.get("rotation", 0.0),
        params.get("bulge", 0.0),
    )
    assert np.abs(ours - reference).max() < 2e-3 * reference.max()
    assert ours.sum() == pytest.approx(reference.sum(), rel=2e-3)
    assert np.unravel_index(np.argmax(ours), ours.shape) == np.unravel_index(np.argmax(reference), ours.shape)


def test_stamp_snr_is_the_detection_snr():
    rng = np.random.default_rng(0)
    kernel = galsim.Moffat(beta=3.5, fwhm=0.8).drawImage(nx=9, ny=9, scale=0.2).array
    stamps = rng.normal(0.0, 30.0, size=(3, 28, 28))
    stamps[:, 13:16, 13:16] += np.array([50.0, 200.0, 500.0])[:, None, None]
    variance = 900.0 + np.clip(stamps, 0, None)
    snr = matched_filter_snr(stamps, variance, kernel, search_radius=2)
    for i in range(3):
        full = matched_filter_image(stamps[i], variance[i], kernel)
        assert snr[i] == pytest.approx(full[12:17, 12:17].max(), rel=1e-4)
    with pytest.raises(ValueError, match="too small"):
        matched_filter_snr(stamps[:, :10, :10], variance[:, :10, :10], kernel)


def test_generate_set_contents():
    data = generate_set(SMALL, np.random.default_rng(1))
    m = SMALL.m
    assert data["cutouts"].shape == (m, 28, 28) and data["cutouts"].dtype == np.float32
    assert data["positions"].shape == (m, 2) and np.all(np.abs(data["positions"]) <= 1.0)
    assert data["labels"].dtype == np.uint8 and set(np.unique(data["labels"])) <= {0, 1}
    assert 0 < data["labels"].sum() < m
    # The narrow world draws no neighbours, so nothing is blended.
    assert data["blended"].dtype == np.uint8 and not data["blended"].any()
    assert np.all(data["snr"] >= 5.0)
    assert np.all(data["hlr_arcsec"][data["labels"] == 0] == 0)
    assert np.all(data["hlr_arcsec"][data["labels"] == 1] > 0)
    assert np.all((data["psf_fwhm"] > 0.4) & (data["psf_fwhm"] < 1.6))
    # One visit: one PSF field, so the FWHM spread within a set is only the spatial variation.
    assert np.ptp(data["psf_fwhm"]) / np.mean(data["psf_fwhm"]) < 0.3
    # Sky-subtracted, sky-noise level; bright sources peak at the centre pixel.
    assert float(data["noise_sigma"]) == pytest.approx(np.sqrt(709.87), rel=0.01)
    edges = np.concatenate([data["cutouts"][:, 0, :], data["cutouts"][:, -1, :]], axis=1)
    assert abs(np.median(edges)) < 5.0
    # Saturated cores are masked (bad, set to 0) as the task masks them: check unsaturated ones.
    unsaturated = np.flatnonzero(data["bad"].sum(axis=(1, 2)) == 0)
    assert np.all(data["cutouts"][data["bad"].astype(bool)] == 0)
    bright = unsaturated[np.argsort(data["snr"][unsaturated])[-5:]]
    for i in bright:
        peak = np.unravel_index(np.argmax(data["cutouts"][i]), (28, 28))
        assert abs(peak[0] - 14) <= 1 and abs(peak[1] - 14) <= 1


def test_measured_centroids_scatter_like_the_detection():
    true = generate_set(
        TrainingDataConfig(world="randomized", m=300, labels="central"), np.random.default_rng(7)
    )
    config = TrainingDataConfig(world="randomized", m=300, centroids="measured", labels="central")
    measured = generate_set(config, np.random.default_rng(7))
    # Only where the PSF channel is placed changes.
    np.testing.assert_array_equal(measured["cutouts"], true["cutouts"])
    np.testing.assert_array_equal(measured["labels"], true["labels"])
    error = np.hypot(*(measured["offsets"] - true["offsets"]).T)
    assert np.all(error <= 3.0)
    bright, faint = true["snr"] >= 50, true["snr"] < 10
    # Measured: centroid errors shrink with S/N (the windowed centroid's noise goes as 1/S/N);
    # a few sources merged into a neighbour by the deblender keep their true position (error 0).
    assert np.median(error[bright]) < 0.05
    assert np.median(error[faint]) > 0.3
    assert 0 < np.mean(error == 0) < 0.2
    again = generate_set(config, np.random.default_rng(7))
    np.testing.assert_array_equal(again["offsets"], measured["offsets"])
    with pytest.raises(ValueError, match="centroids must be one of"):
        TrainingDataConfig(centroids="peak")


def test_label_by_brightest_follows_the_truth_match():
    # Five kept stamps (of stamps 0-5, stamp 3 not kept), FWHM 4 pixels: match radius 2 pixels.
    keep = np.array([0, 1, 2, 4, 5])
    source = {
        "offsets": np.array([[0.0, 0.0], [0.3, -0.2], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]),
        "labels": np.array([1, 0, 1, 1, 0], dtype=np.uint8),
        "mag": np.array([22.0, 21.0, 23.0, 22.5, 20.0]),
        "hlr_arcsec": np.array([0.5, 0.0, 0.4, 0.6, 0.0]),
        "ellipticity": np.array([0.2, 0.0, 0.1, 0.3, 0.0]),
    }
    neighbours = {
        # stamp 0: a brighter star 1.5 px away (taken); stamp 1: a brighter galaxy 1.8 px from
        # its measured position but 2.11 from the centre (taken: the position is what matters);
        # stamp 2: a fainter star and a brighter one 2.5 px away (neither); stamp 3: not kept;
        # stamp 4: two brighter galaxies within the radius (the brightest taken); stamp 5: none.
        "host": np.array([0, 1, 2, 2, 3, 4, 4]),
        "position": np.array(
            [[1.5, 0.0], [2.1, -0.2], [1.0, 1.0], [2.5, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
        ),
        "is_galaxy": np.array([False, True, False, False, False, True, True]),
        "mag": np.array([21.0, 20.5, 23.5, 19.0, 15.0, 21.0, 20.0]),
        "hlr_arcsec": np.array([0.0, 0.8, 0.0, 0.0, 0.0, 0.7, 0.9]),
        "ellipticity": np.array([0.0, 0.4, 0.0, 0.0, 0.0, 0.5, 0.6]),
    }
    _label_by_brightest(source, keep, neighbours, np.full(5, 4.0))
    np.testing.assert_array_equal(source["labels"], [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(source["mag"], [21.0, 20.5, 23.0, 20.0, 20.0])
    np.testing.assert_array_equal(source["hlr_arcsec"], [0.0, 0.8, 0.4, 0.9, 0.0])
    np.testing.assert_array_equal(source["ellipticity"], [0.0, 0.4, 0.1, 0.6, 0.0])
    # The radius follows the FWHM (at least 1.5 pixels): a tiny PSF keeps stamp 0's neighbour
    # (1.5 px) but not stamp 1's (1.8 px), a wide one (radius 3) adds stamp 2's star at 2.5 px.
    for fwhm, labels, mag in ((1.0, [0, 0, 1, 1, 0], 23.0), (6.0, [0, 1, 0, 1, 0], 19.0)):
        fresh = {key: value.copy() for key, value in source.items()}
        fresh["labels"] = np.array([1, 0, 1, 1, 0], dtype=np.uint8)
        fresh["mag"] = np.array([22.0, 21.0, 23.0, 22.5, 20.0])
        _label_by_brightest(fresh, keep, neighbours, np.full(5, fwhm))
        np.testing.assert_array_equal(fresh["labels"], labels)
        assert fresh["mag"][2] == mag


def test_blended_sources_follow_the_evaluation_rule():
    # Four kept stamps (stamps 1, 3, 4 and 6; 0, 2 and 5 not kept), FWHM 4 pixels: blended within
    # 8 pixels by an object at most 3 magnitudes fainter than the one that labels the source.
    keep = np.array([1, 3, 4, 6])
    own_offsets = np.array([[0.0, 0.0], [0.0, 0.0], [0.2, 0.0], [0.0, 0.0]])
    own_mag = np.array([20.0, 20.0, 23.0, 23.5])
    neighbours = {
        # stamp 1: 2.5 mag fainter at 5 px (blends it); stamp 3: 3.5 fainter at 5 px (too faint)
        # and a brighter one at 9 px (too far); stamps 4 and 6: a neighbour 0.8 and 1 px away
        # labels the source, whose own object is then the other one, 3 and 3.5 mag fainter;
        # stamps 0, 2 and 5, not kept, have close bright neighbours that must not count.
        "host": np.array([0, 1, 2, 3, 3, 4, 5, 6]),
        "position": np.array(
            [[1.0, 0.0], [5.0, 0.0], [1.0, 0.0], [5.0, 0.0], [9.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]
        ),
        "mag": np.array([15.0, 22.5, 15.0, 23.5, 19.0, 20.0, 15.0, 20.0]),
    }
    chosen = np.array([-1, -1, 5, 7])
    mag = np.array([20.0, 20.0, 20.0, 20.0])
    blended = _blended_sources(own_offsets, own_mag, keep, neighbours, chosen, mag, np.full(4, 4.0))
    np.testing.assert_array_equal(blended, [True, False, True, False])
    # Twice the FWHM reaches stamp 3's bright neighbour at 9 px.
    blended = _blended_sources(own_offsets, own_mag, keep, neighbours, chosen, mag, np.full(4, 8.0))
    np.testing.assert_array_equal(blended, [True, True, True, False])
    # Without neighbours nothing is blended.
    alone = _blended_sources(own_offsets, own_mag, keep, None, np.full(4, -1), own_mag, np.full(4, 4.0))
    assert not alone.any()


def test_blended_sources_agree_with_the_evaluation_on_random_stamps():
    # Random stamps, some not kept, with Poisson neighbours (every fifth near the centre, so that
    # some name their source); each kept stamp's objects scored by the evaluation's own function.
    rng = np.random.default_rng(4)
    keep = np.sort(rng.choice(300, 200, replace=False))
    host = np.repeat(np.arange(300), rng.poisson(3, 300))
    n = len(host)
    neighbours = {
        "host": host,
        "position": rng.uniform(-12, 12, (n, 2)),
        "mag": rng.uniform(18, 25, n),
        "is_galaxy": rng.integers(0, 2, n),
        "hlr_arcsec": np.zeros(n),
        "ellipticity": np.zeros(n),
    }
    neighbours["position"][::5] = rng.uniform(-1, 1, (len(neighbours["position"][::5]), 2))
    own = rng.uniform(-0.5, 0.5, (len(keep), 2))
    own_mag = rng.uniform(18, 25, len(keep))
    fwhm = rng.uniform(3, 6, len(keep))
    source = {
        "offsets": own.copy(),
        "labels": np.zeros(len(keep), np.uint8),
        "mag": own_mag.copy(),
        "hlr_arcsec": np.zeros(len(keep)),
        "ellipticity": np.zeros(len(keep)),
    }
    chosen = _label_by_brightest(source, keep, neighbours, fwhm)
    blended = _blended_sources(own, own_mag, keep, neighbours, chosen, source["mag"], fwhm)
    degrees = 0.2 / 3600.0
    expected = np.zeros(len(keep), dtype=bool)
    for row, stamp in enumerate(keep):
        mine = np.flatnonzero(host == stamp)
        position = np.vstack([own[row], neighbours["position"][mine]]) * degrees
        mags = np.concatenate([[own_mag[row]], neighbours["mag"][mine]])
        flags = blended_objects(position[:, 0], position[:, 1], np.full(len(mags), fwhm[row] * 0.2), mags)
        expected[row] = flags[0 if chosen[row] < 0 else 1 + int(np.flatnonzero(mine == chosen[row])[0])]
    assert 10 < (chosen >= 0).sum() and 20 < expected.sum() < len(keep) - 20
    np.testing.assert_array_equal(blended, expected)


def test_blend_labels_change_only_labels():
    config = TrainingDataConfig(world="hard-context", m=1000, centroids="measured")
    brightest = generate_set(config, np.random.default_rng(11))
    central = generate_set(dataclasses.replace(config, labels="central"), np.random.default_rng(11))
    np.testing.assert_array_equal(brightest["cutouts"], central["cutouts"])
    np.testing.assert_array_equal(brightest["offsets"], central["offsets"])
    # A few sources share their position with a brighter neighbour, which then names them
    # (its magnitude always; its class where it differs).
    named = brightest["mag"] != central["mag"]
    relabelled = brightest["labels"] != central["labels"]
    assert 0 < relabelled.sum() < named.sum() < 0.05 * len(named)
    assert np.all(named[relabelled])
    assert np.all(brightest["mag"][named] < central["mag"][named])
    for key in ("labels", "hlr_arcsec", "ellipticity", "snr", "psf_fwhm"):
        np.testing.assert_array_equal(brightest[key][~named], central[key][~named])
    # A source named by a brighter neighbour is blended by its own object when that is at most 3
    # magnitudes fainter (it lies within the match radius, well inside 2 FWHM).
    assert 0 < brightest["blended"].mean() < 0.3
    close = named & (central["mag"] - brightest["mag"] <= 3.0)
    assert close.any() and brightest["blended"][close].all()


def test_neighbour_positions_are_where_they_are_drawn():
    # Bright point sources as neighbours of empty stamps: each recorded position (from the
    # stamp's centre pixel, the frame of ``offsets``) is the centroid of the light it added.
    from astropy.table import Table
    from lsst.meas.contextnet.sim.generator import _add_neighbours
    from lsst.meas.contextnet.sim.psf import PsfField

    stamp = 61
    # FWHM 0.7" (3.5 pixels), the same everywhere.
    psf = PsfField(4096, 4096, [0.7, 0, 0, 0, 0, 0], [0.0] * 6, [0.0] * 6, pixel_scale=0.2)
    renderer = StampRenderer(0.2, 3.5)

    def draw(n):
        zeros = np.zeros(n)
        return Table(
            {
                "x_true": np.full(n, 2048.0),
                "y_true": np.full(n, 2048.0),
                "rotation_deg": zeros,
                "ellipticity": zeros,
                "flux": np.full(n, 1e6),
                "is_galaxy": np.zeros(n, dtype=bool),
                "hlr_arcsec": zeros,
                "bulge_fraction": zeros,
                "sersic_n": np.ones(n),
                "mag": np.full(n, 18.0),
            }
        )

    found = 0
    rng = np.random.default_rng(3)
    for _ in range(120):
        model = np.zeros((1, stamp, stamp))
        neighbours = _add_neighbours(model, rng, 1.0, draw, renderer, psf)
        position = neighbours["position"]
        # One neighbour well inside the stamp: its light is all there.
        if len(position) != 1 or np.any(np.abs(position) > stamp // 2 - 14):
            continue
        found += 1
        grid = np.arange(stamp) - stamp // 2
        total = model[0].sum()
        centroid = [(model[0].sum(axis=0) * grid).sum() / total, (model[0].sum(axis=1) * grid).sum() / total]
        # Within 0.02 pixel (the Moffat wings cut by the stamp's edge); a frame error is >= 0.5.
        np.testing.assert_allclose(centroid, position[0], atol=0.02)
    assert found >= 5
    with pytest.raises(ValueError, match="labels must be one of"):
        TrainingDataConfig(labels="nearest")


def test_psf_variation_none_is_fixed():
    config = TrainingDataConfig(m=10, detector_size=256, psf_variation="none")
    fwhms = [generate_set(config, np.random.default_rng(s))["psf_fwhm"] for s in range(3)]
    np.testing.assert_allclose(np.concatenate(fwhms), 0.81, rtol=1e-6)


def _all_sets(directory):
    return list(iter_training_sets(directory))


def test_shards_roundtrip_and_process_independence(tmp_path):
    one = tmp_path / "one"
    two = tmp_path / "two"
    manifest_path = write_training_data(one, 3, SMALL, seed=7, processes=1, progress=False)
    config_two = TrainingDataConfig(m=40, detector_size=512, sets_per_shard=1)
    write_training_data(two, 3, config_two, seed=7, processes=2, progress=False)

    manifest = json.loads(manifest_path.read_text())
    assert manifest == read_manifest(one)
    assert [s["file"] for s in manifest["shards"]] == ["shard_00000.h5", "shard_00001.h5"]
    assert manifest["n_stars"] + manifest["n_galaxies"] == 3 * 40
    assert manifest["seed"] == 7 and manifest["m"] == 40 and manifest["cutout_size"] == 28

    shards = list(iter_training_shards(one))
    assert [s["cutouts"].shape for s in shards] == [(2, 40, 28, 28), (1, 40, 28, 28)]
    attrs = shards[0]["attrs"]
    assert attrs["m"] == 40 and attrs["cutout_size"] == 28 and attrs["world"] == "narrow"
    assert attrs["psf_variation"] == "full" and attrs["detector_size"] == 512 and attrs["seed"] == 7
    assert json.loads(attrs["config"])["m"] == 40
    for key, dtype in [
        ("cutouts", np.float32),
        ("noise_sigma", np.float32),
        ("positions", np.float32),
        ("labels", np.uint8),
        ("mag", np.float32),
        ("hlr_arcsec", np.float32),
        ("ellipticity", np.float32),
        ("psf_fwhm", np.float32),
    ]:
        assert shards[0][key].dtype == dtype, key
    assert shards[0]["positions"].shape == (2, 40, 2) and shards[0]["noise_sigma"].shape == (2,)

    # Same seed, other shard size and process count: identical sets.
    sets_one, sets_two = _all_sets(one), _all_sets(two)
    assert len(sets_one) == len(sets_two) == 3
    for a, b in zip(sets_one, sets_two):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    # Sets of one data set differ from each other, and another seed differs.
    assert not np.array_equal(sets_one[0]["cutouts"], sets_one[1]["cutouts"])
    other = tmp_path / "other"
    write_training_data(other, 1, SMALL, seed=8, progress=False)
    assert not np.array_equal(_all_sets(other)[0]["cutouts"], sets_one[0]["cutouts"])


def test_write_refuses_bad_arguments_and_existing_data(tmp_path):
    write_training_data(tmp_path, 1, TrainingDataConfig(m=5, detector_size=128), seed=1, progress=False)
    with pytest.raises(FileExistsError, match="already holds training data"):
        write_training_data(tmp_path, 1, TrainingDataConfig(m=5, detector_size=128), seed=1, progress=False)
    write_training_data(
        tmp_path, 1, TrainingDataConfig(m=6, detector_size=128), seed=1, progress=False, overwrite=True
    )
    assert read_manifest(tmp_path)["m"] == 6
    with pytest.raises(ValueError, match="n_sets"):
        write_training_data(tmp_path / "x", 0, SMALL, seed=1)
    with pytest.raises(ValueError, match="processes"):
        write_training_data(tmp_path / "x", 1, SMALL, seed=1, processes=0)
    with pytest.raises(ValueError, match="unknown band 'q'"):
        TrainingDataConfig(band="q")
    with pytest.raises(ValueError, match="m must be an integer"):
        TrainingDataConfig(m=0)
    with pytest.raises(ValueError, match="psf_variation"):
        TrainingDataConfig(psf_variation="all")
    with pytest.raises(FileNotFoundError, match="manifest"):
        read_manifest(tmp_path / "missing")
    (tmp_path / "shard_00000.h5").unlink()
    with pytest.raises(FileNotFoundError, match="shard_00000.h5"):
        list(iter_training_sets(tmp_path))


def test_cli_subcommand(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="contextnet")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_subcommand(subparsers)
    args = parser.parse_args(
        [
            "make-training-data",
            "--output",
            str(tmp_path),
            "--sets",
            "2",
            "--m",
            "8",
            "--band",
            "i",
            "--psf-variation",
            "spatial",
            "--seed",
            "3",
            "--processes",
            "1",
            "--detector-size",
            "256",
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    assert "wrote 2 sets of 8 cutouts" in capsys.readouterr().out
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert (
        manifest["world"]["bands"] == ["i"]
        and manifest["psf_variation"] == "spatial"
        and manifest["n_sets"] == 2
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["make-training-data", "--output", "x", "--sets", "1", "--psf-variation", "bad"])
