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

    # Centred on the pixel size // 2, as the task's PSF grid and kernel images are.
    profile = unit_fwhm_profile(family).dilate(fwhm)
    odd = size + 1 - size % 2
    return profile.drawImage(nx=odd, ny=odd, scale=0.2).array[:size, :size]


@pytest.mark.parametrize("size", [27, 28])
@pytest.mark.parametrize("family", ["moffat", "kolmogorov", "kolmogorov_optical"])
def test_psf_fwhm_measures_the_seeing_a_world_draws(family: str, size: int) -> None:
    # Within -0.5% and +3% of the drawn FWHM, from undersampled (0.35": 1.75 pixels) to wide.
    drawn = np.array([0.35, 0.5, 0.7, 1.0, 1.5, 2.0, 2.5])
    measured = 0.2 * psf_fwhm(np.stack([_draw(family, f, size) for f in drawn]))
    assert np.all((measured >= 0.995 * drawn) & (measured <= 1.031 * drawn)), measured / drawn


def test_psf_fwhm_is_infinite_for_a_core_wider_than_its_image() -> None:
    wide = _draw("moffat", 6.0, 25)
    assert psf_fwhm(np.stack([wide, _draw("moffat", 1.0, 25)]))[0] == np.inf
    assert np.isfinite(psf_fwhm(_draw("moffat", 6.0, 41)))


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
    # The bands in the order ugrizy.
    assert training_conditions(card) == TrainingConditions(
        fwhm_range=(0.35, 2.4), bands=("g", "r", "y"), worlds=("randomized", "hard-context")
    )
    card["training"]["data"]["parts"][0]["manifest"]["world"]["bands"] = ["y", "z", "i", "N921", "u"]
    assert training_conditions(card).bands == ("u", "r", "i", "z", "y", "N921")
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
    for fwhm, band in [(1.0, "r"), (1.42, "i"), (0.46, "r"), (None, None), (None, "r"), (1.0, None)]:
        check = check_conditions(conditions, fwhm, band, 0.1)
        assert not check.outside and check.checked is (fwhm is not None or band is not None)
    too_wide = check_conditions(conditions, 1.44, "r", 0.1)
    assert too_wide.outside
    assert too_wide.reasons == ('PSF FWHM 1.44" outside the training range 0.50"-1.30" (tolerance 10%)',)
    assert check_conditions(conditions, 0.44, "r", 0.1).outside
    assert check_conditions(conditions, 1.35, "r", 0.0).outside
    assert (
        check_conditions(conditions, np.inf, None, 0.1).reasons[0].startswith("PSF core wider than its image")
    )
    both = check_conditions(conditions, 2.0, "u", 0.1)
    assert len(both.reasons) == 2 and "band 'u'" in both.reasons[1]
