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

"""Tests of the symmetries of the square applied to cutouts and positions."""

import numpy as np
import pytest
from lsst.meas.contextnet.symmetry import SYMMETRY_GROUPS, apply_symmetry

SIZE = 28


def test_symmetries_are_the_eight_distinct_ones():
    rng = np.random.default_rng(0)
    cutout = rng.normal(size=(SIZE, SIZE))
    results = [apply_symmetry(cutout, np.array([0.3, -0.6]), code) for code in range(8)]
    np.testing.assert_array_equal(results[0][0], cutout)
    keys = {(r[0][1:, 1:].tobytes(), tuple(r[1])) for r in results}
    assert len(keys) == 8
    positions = {tuple(np.round(r[1], 6)) for r in results}
    assert positions == {
        (sx * a, sy * b) for a, b in [(0.3, -0.6), (-0.6, 0.3)] for sx in (1, -1) for sy in (1, -1)
    }
    with pytest.raises(ValueError, match="0 to 7"):
        apply_symmetry(cutout, np.zeros(2), 8)


@pytest.mark.parametrize("code", range(8))
@pytest.mark.parametrize("shape", [(61, 61), (53, 67)])
def test_symmetry_equals_transforming_the_detector(code, shape):
    """Cutting the transformed detector image equals transforming cutout and position."""
    height, width = shape
    rng = np.random.default_rng(code)
    image = rng.normal(size=shape)
    x, y = 20, 31
    half = SIZE // 2

    def cut(img, px, py):
        return img[py - half : py + half, px - half : px + half]

    def scaled(px, py, w, h):
        return np.array([2 * px / (w - 1) - 1, 2 * py / (h - 1) - 1])

    new, w, h, nx, ny = image, width, height, x, y
    if code & 1:
        new, w, h, nx, ny = new.T, h, w, ny, nx
    if code & 2:
        new, nx = new[:, ::-1], w - 1 - nx
    if code & 4:
        new, ny = new[::-1, :], h - 1 - ny
    out_cutout, out_position = apply_symmetry(cut(image, x, y), scaled(x, y, width, height), code)
    np.testing.assert_allclose(out_position, scaled(nx, ny, w, h), atol=1e-12)
    # Row and column 0 wrap around for even cutout sizes (see apply_symmetry's notes).
    np.testing.assert_array_equal(out_cutout[1:, 1:], cut(new, nx, ny)[1:, 1:])


def test_symmetry_groups():
    """Group 4 is the four rotations, group 8 all eight symmetries, each once."""
    rng = np.random.default_rng(1)
    cutout = rng.normal(size=(SIZE + 1, SIZE + 1))  # odd: the mirror needs no wrap
    rotations = {np.rot90(cutout, k).tobytes() for k in range(4)}
    assert {
        apply_symmetry(cutout, np.zeros(2), code)[0].tobytes() for code in SYMMETRY_GROUPS[4]
    } == rotations
    assert SYMMETRY_GROUPS[1] == (0,)
    assert sorted(SYMMETRY_GROUPS[8]) == list(range(8))
    assert all(len(set(codes)) == size for size, codes in SYMMETRY_GROUPS.items())
