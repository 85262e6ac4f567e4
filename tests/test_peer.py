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

"""Tests of the catalog-feature peer (gradient-boosted trees on src columns)."""

import numpy as np
import pytest
from astropy.table import Table, vstack
from lsst.meas.contextnet.evaluation.matching import join_classification_truth
from lsst.meas.contextnet.evaluation.peer import PEER_FEATURES, CatalogPeer, catalog_features
from lsst.meas.contextnet.evaluation.scoring import PEER_NAME, evaluate_catalog
from lsst.meas.contextnet.sim.exposure import SimulationConfig, simulate_exposure


def _matched(seed: int, visits=(0, 1)) -> Table:
    tables = []
    for visit in visits:
        exposure = simulate_exposure(SimulationConfig(size=768, density_scale=3.0), visit, 0, seed)
        tables.append(
            join_classification_truth(exposure.src, exposure.truth, visit=visit, detector=0).catalog
        )
    return vstack(tables)


@pytest.fixture(scope="module")
def catalogs():
    return _matched(31), _matched(32, visits=(5,))


def test_features_are_the_four_columns_and_nan_where_undefined():
    table = Table(
        {
            "psfFlux": [100.0, -5.0],
            "psfFluxErr": [10.0, 1.0],
            "gaussianFlux": [120.0, 3.0],
            "sizeExtendedness": [0.3, np.nan],
        }
    )
    features = catalog_features(table)
    assert features.shape == (2, len(PEER_FEATURES))
    np.testing.assert_allclose(features[0], [1.2, 1.0, 0.3, 2.0])
    assert np.isnan(features[1, 1]) and np.isnan(features[1, 3]) and np.isnan(features[1, 2])
    with pytest.raises(ValueError, match="psfFluxErr"):
        catalog_features(table["psfFlux", "gaussianFlux", "sizeExtendedness"])


def test_peer_is_trained_scored_and_saved(catalogs, tmp_path):
    train, test = catalogs
    labels = np.asarray(train["is_galaxy"])
    peer = CatalogPeer.fit(train, labels, np.asarray(train["visit"]), seed=1, card={"collections": ["x"]})
    assert peer.card["n_train"] == len(train) and peer.card["features"] == list(PEER_FEATURES)
    probability = peer.predict(test)
    assert probability.shape == (len(test),) and np.all((probability >= 0) & (probability <= 1))
    labels = np.asarray(test["is_galaxy"], dtype=bool)
    accuracy = np.mean((probability >= 0.5) == labels)
    assert accuracy > 0.8
    path = peer.save(tmp_path / "peer.pkl")
    np.testing.assert_array_equal(CatalogPeer.load(path).predict(test), probability)
    with pytest.raises(FileNotFoundError, match="train-peer"):
        CatalogPeer.load(tmp_path / "missing.pkl")
    test["classification_galaxyProb"] = np.where(labels, 0.9, 0.1).astype(np.float32)
    test["classification_flag"] = np.zeros(len(test), dtype=bool)
    result = evaluate_catalog(test, peer=peer, do_trivial=False)
    row = result.summary[result.summary["classifier"] == PEER_NAME][0]
    assert row["n"] == len(test) and row["accuracy"] == pytest.approx(accuracy)
    with pytest.raises(ValueError, match="both classes"):
        CatalogPeer.fit(train[:10], np.ones(10, dtype=bool), np.arange(10))


def test_early_stopping_holds_out_whole_visits(catalogs):
    train, _ = catalogs
    labels = np.asarray(train["is_galaxy"], dtype=bool)
    visits = np.asarray(train["visit"])
    counts = {visit: int(np.sum(visits == visit)) for visit in np.unique(visits)}
    peer = CatalogPeer.fit(train, labels, visits, seed=3)
    # Two visits: one is held out, all of its sources and none of the other's.
    assert peer.card["n_visits_held_out"] == 1 and peer.card["n_held_out"] in counts.values()
    again = CatalogPeer.fit(train, labels, visits, seed=3)
    np.testing.assert_array_equal(again.predict(train), peer.predict(train))
    with pytest.raises(ValueError, match="two visits"):
        CatalogPeer.fit(train, labels, np.zeros(len(train), dtype=int))
    with pytest.raises(ValueError, match="shape"):
        CatalogPeer.fit(train, labels, visits[:-1])
    # One visit of galaxies only: held out, it could not tell when to stop; fitted alone, the trees
    # would see one class.  Each seed holds out one of the two visits, and both errors occur.
    one_class = labels.copy()
    one_class[visits == visits[0]] = True
    held_out_one_class = set()
    for seed in range(8):
        with pytest.raises(ValueError, match="one class|both classes") as error:
            CatalogPeer.fit(train, one_class, visits, seed=seed)
        held_out_one_class.add("only one class" in str(error.value))
    assert held_out_one_class == {True, False}
