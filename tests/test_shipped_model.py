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

"""The shipped model against a floor on a small fixed set of the randomized world it was made for."""

from pathlib import Path

import numpy as np
import pytest
from lsst.meas.contextnet.classifier import default_model_path
from lsst.meas.contextnet.ensemble import ensemble_predict
from lsst.meas.contextnet.modelio import load_model
from lsst.meas.contextnet.sim.generator import TrainingDataConfig, write_training_data
from lsst.meas.contextnet.training.data import load_training_data

# Seed of the scored sets: never used to train the shipped model (its card records seed 5 and
# data seeds 20261208 and 20261209; the models it continues, 20261201 and 20261202).
SCORE_SEED = 31_337
N_SETS = 3
# Measured 0.902 on these 3 sets (3,000 sources, three visits of different seeing) with the
# shipped model (0.899 with the generator's former labels, --labels central); a model that
# loses 0.03 here (about 5 binomial standard errors) has regressed.
ACCURACY_FLOOR = 0.87


@pytest.fixture(scope="module")
def scored_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray, int]:
    model = load_model(default_model_path(), "cpu")
    directory = tmp_path_factory.mktemp("shipped-floor")
    write_training_data(directory, N_SETS, TrainingDataConfig(world="randomized"), SCORE_SEED, progress=False)
    softening = float(model.metadata["normalization"]["softening"])
    data = load_training_data(directory, softening=softening, inputs=model.inputs)
    probabilities = np.concatenate(
        [
            ensemble_predict(model, data.cutouts[v], data.positions[v], n_p=1, seed=0, m=data.m).mean
            for v in range(data.n_visits)
        ]
    )
    return probabilities, data.labels.ravel(), data.m


def test_shipped_model_is_the_documented_one() -> None:
    card = load_model(default_model_path(), "cpu").metadata
    assert card["training"]["seed"] != SCORE_SEED
    assert Path(default_model_path()).stat().st_size <= 30 * 2**20


def test_shipped_model_accuracy_floor(scored_sets: tuple[np.ndarray, np.ndarray, int]) -> None:
    probabilities, labels, _ = scored_sets
    assert np.all(np.isfinite(probabilities))
    accuracy = float(np.mean((probabilities >= 0.5) == (labels >= 0.5)))
    assert accuracy >= ACCURACY_FLOOR, f"shipped model accuracy {accuracy:.3f} < floor {ACCURACY_FLOOR}"
