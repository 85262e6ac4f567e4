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

"""Tests of the training conditions a model card declares and the PSF FWHM they are checked with."""

import numpy as np
import pytest
from lsst.meas.contextnet.trainingworld import (
    TrainingConditions,
    check_conditions,
    psf_fwhm,
    training_conditions,
)


def _draw(family: str, fwhm: float, size: int = 28) -> np.ndarray:
    from lsst.meas.contextnet.sim.psf import unit_fwhm_profile

    # An odd stamp cropped to even puts the centre on a pixel, as the task's PSF grid does.
    profile = unit_fwhm_profile(family).dilate(fwhm)
    return profile.drawImage(nx=size + 1, ny=size + 1, scale=0.2).array[:size, :size]


@pytest.mark.parametrize("family", ["moffat", "kolmogorov", "kolmogorov_optical"])
def test_psf_fwhm_measures_the_seeing_a_world_draws(family: str) -> None:
    # Within -0.5% and +3% of the drawn FWHM, from undersampled (0.35": 1.75 pixels) to wide.
    drawn = np.array([0.35, 0.5, 0.7, 1.0, 1.5, 2.0, 2.5])
    measured = 0.2 * psf_fwhm(np.stack([_draw(family, f) for f in drawn]))
    assert np.all((measured >= 0.995 * drawn) & (measured <= 1.031 * drawn)), measured / drawn


def test_psf_fwhm_keeps_the_leading_shape_and_ignores_normalization() -> None:
    image = _draw("moffat", 1.0)
    grid = np.stack([np.stack([image, 3.0 * image])] * 3)
    fwhm = psf_fwhm(grid)
    assert fwhm.shape == (3, 2)
    np.testing.assert_array_equal(fwhm, fwhm[0, 0])
    with pytest.raises(ValueError, match="1 PSF image"):
        psf_fwhm(np.stack([image, np.zeros((28, 28))]))
    with pytest.raises(ValueError, match="1 PSF image"):
        psf_fwhm(np.where(image > image.max() / 2, np.nan, image))
    with pytest.raises(ValueError, match="square and at least 2-d"):
        psf_fwhm(np.ones(5))
    with pytest.raises(ValueError, match="square and at least 2-d"):
        psf_fwhm(np.ones((28, 27)))


def _world(name: str, low: float, high: float, bands: list[str]) -> dict:
    return {"name": name, "fwhm_range": [low, high], "bands": bands, "star_fraction_range": [0.1, 0.5]}


def test_training_conditions_join_the_worlds_of_every_part() -> None:
    card = {
        "training": {
            "data": {
                "parts": [
                    {"manifest": {"world": _world("randomized", 0.35, 2.0, ["g", "r"])}},
                    {"manifest": {"world": _world("hard-context", 0.9, 2.4, ["r", "y"])}},
                ]
            }
        }
    }
    assert training_conditions(card) == TrainingConditions(
        fwhm_range=(0.35, 2.4), bands=("g", "r", "y"), worlds=("randomized", "hard-context")
    )
    single = {"training": {"data": {"manifest": {"world": _world("narrow", 0.5, 1.3, ["r"])}}}}
    assert training_conditions(single) == TrainingConditions((0.5, 1.3), ("r",), ("narrow",))


@pytest.mark.parametrize(
    "card",
    [
        {},
        {"training": {"data": "none: random initialization for tests"}},
        {"training": {"data": {"manifest": None}}},
        # One part without its world: the conditions are unknown, not those of the other part.
        {
            "training": {
                "data": {
                    "parts": [{"manifest": {"world": _world("narrow", 0.5, 1.3, ["r"])}}, {"manifest": {}}]
                }
            }
        },
    ],
)
def test_cards_without_worlds_declare_no_conditions(card: dict) -> None:
    assert training_conditions(card) is None


def test_check_conditions_applies_the_tolerance_and_the_bands() -> None:
    conditions = TrainingConditions((0.5, 1.3), ("r", "i"), ("narrow",))
    assert not check_conditions(conditions, 1.0, "r", 0.1).outside
    assert not check_conditions(conditions, 1.43, "i", 0.1).outside
    assert not check_conditions(conditions, 0.45, "r", 0.1).outside
    assert not check_conditions(conditions, None, None, 0.1).outside
    too_wide = check_conditions(conditions, 1.44, "r", 0.1)
    assert too_wide.outside and too_wide.reasons == (
        'PSF FWHM 1.44" outside the training range 0.50"-1.30" (tolerance 10%)',
    )
    assert check_conditions(conditions, 0.44, "r", 0.1).outside
    assert check_conditions(conditions, 1.35, "r", 0.0).outside
    both = check_conditions(conditions, 2.0, "u", 0.1)
    assert len(both.reasons) == 2 and "band 'u'" in both.reasons[1]
