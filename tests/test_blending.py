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

"""Tests of the blend test of simulated truth (lsst.meas.contextnet.evaluation.blending)."""

import numpy as np
import pytest
from astropy.table import Table
from lsst.meas.contextnet.evaluation.blending import (
    BLEND_MAX_FAINTER_MAG,
    BLEND_MAX_SEPARATION_FWHM,
    blended_objects,
    truth_blended,
)
from lsst.meas.contextnet.evaluation.matching import join_classification_truth

ARCSEC = 1.0 / 3600.0


def brute_force(ra, dec, fwhm, mag, separation, fainter):
    """Every pair tested, with great-circle separations (haversine)."""
    ra, dec = np.radians(ra), np.radians(dec)
    half = np.sin((dec[:, None] - dec[None, :]) / 2) ** 2
    half += np.cos(dec[:, None]) * np.cos(dec[None, :]) * np.sin((ra[:, None] - ra[None, :]) / 2) ** 2
    distance = np.degrees(2 * np.arcsin(np.sqrt(half))) * 3600.0
    close = distance < separation * fwhm[:, None]
    close &= mag[None, :] - mag[:, None] <= fainter
    np.fill_diagonal(close, False)
    return close.any(axis=1)


def test_blend_rule_on_hand_made_objects():
    # Object 0 (mag 20) has object 1 (mag 24, 1" away): 4 mag fainter, so 0 is not blended, but
    # 1 has a brighter neighbour within 2 FWHM (0.8" x 2 = 1.6"), so it is.  Object 2 (mag 21,
    # 1.5" from object 3, mag 22) and object 3 blend each other; object 4 is 6' from the others.
    ra = np.array([10.0, 10.0 + ARCSEC, 10.1, 10.1 + 1.5 * ARCSEC, 10.2])
    dec = np.zeros(5)
    fwhm = np.full(5, 0.8)
    mag = np.array([20.0, 24.0, 21.0, 22.0, 18.0])
    assert blended_objects(ra, dec, fwhm, mag).tolist() == [False, True, True, True, False]
    # The separation is in units of each object's own FWHM: a sharper PSF at object 3 keeps it
    # apart (1.5" > 2 x 0.7") while object 2 still sees it.
    fwhm[3] = 0.7
    assert blended_objects(ra, dec, fwhm, mag).tolist() == [False, True, True, False, False]
    # Looser limits count object 1 as a neighbour of object 0.
    assert blended_objects(ra, dec, fwhm, mag, max_fainter_mag=5.0)[0]
    # A neighbour exactly 3 mag fainter still counts.
    assert blended_objects(ra[:2], dec[:2], fwhm[:2], np.array([20.0, 23.0])).tolist() == [True, True]
    # Without a PSF FWHM an object is not blended, but it blends its neighbours.
    fwhm[2], fwhm[3] = np.nan, 0.8
    assert blended_objects(ra, dec, fwhm, mag).tolist() == [False, True, False, True, False]
    # A non-finite magnitude neither blends nor is blended.
    fwhm[2] = 0.8
    mag[1] = np.nan
    assert blended_objects(ra, dec, fwhm, mag).tolist() == [False, False, True, True, False]


def test_blend_rule_matches_every_pair_and_wraps_ra():
    rng = np.random.default_rng(3)
    n = 600
    for ra0 in (150.0, 0.0):
        # A 10' field; at ra0 = 0 half of it lies just below 360 degrees.
        ra = (ra0 + rng.uniform(-300, 300, n) * ARCSEC) % 360.0
        dec = -30.0 + rng.uniform(-300, 300, n) * ARCSEC
        fwhm = rng.uniform(0.5, 2.0, n)
        mag = rng.uniform(18.0, 26.0, n)
        found = blended_objects(ra, dec, fwhm, mag)
        expected = brute_force(ra, dec, fwhm, mag, BLEND_MAX_SEPARATION_FWHM, BLEND_MAX_FAINTER_MAG)
        assert np.array_equal(found, expected)
        assert 0 < found.sum() < n


def test_blend_rule_rejects_bad_arguments():
    one = np.zeros(3)
    with pytest.raises(ValueError, match="1-d of one length"):
        blended_objects(one, one, one, np.zeros(2))
    with pytest.raises(ValueError, match="limits must be positive"):
        blended_objects(one, one, one + 1, one, max_separation_fwhm=0.0)
    assert blended_objects(one[:1], one[:1], one[:1] + 1, one[:1]).tolist() == [False]


def test_join_marks_blended_truth():
    # The neighbour that blends source 1 was not detected (sourceId -1): it still counts.
    truth = Table(
        {
            "sourceId": np.array([1, 2, -1], dtype=np.int64),
            "is_galaxy": [False, False, True],
            "mag": [21.0, 21.0, 22.0],
            "ra_true": [10.0, 10.01, 10.0 + ARCSEC],
            "dec_true": [0.0, 0.0, 0.0],
            "psf_fwhm": [1.0, 1.0, 1.0],
        }
    )
    classification = Table(
        {"sourceId": np.array([2, 1], dtype=np.int64), "classification_galaxyProb": [0.1, 0.9]}
    )
    catalog = join_classification_truth(classification, truth).catalog
    assert catalog["sourceId"].tolist() == [2, 1]
    assert catalog["blended"].tolist() == [False, True]
    # Without the columns the test needs, no column is made.
    assert truth_blended(truth[["sourceId", "mag"]]) is None
    plain = join_classification_truth(classification, truth[["sourceId", "mag"]]).catalog
    assert "blended" not in plain.colnames
