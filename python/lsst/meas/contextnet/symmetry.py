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

"""The 8 symmetries of the square, applied to cutouts and their position features.

Training augments each set of sources with one of them (the whole detector seen through a rotated
or mirrored camera); the classifier can average its predictions over several
(`SYMMETRY_GROUPS`, the task's ``nSymmetries``).
"""

from __future__ import annotations

__all__ = ["SYMMETRY_GROUPS", "apply_symmetry"]

import numpy as np

SYMMETRY_GROUPS: dict[int, tuple[int, ...]] = {
    1: (0,),
    4: (0, 3, 6, 5),
    8: tuple(range(8)),
}
"""Symmetry codes (see `apply_symmetry`) by group size: the identity, the four rotations by
multiples of 90 degrees (codes 3 and 5 rotate by 90 degrees one way and the other, 6 by 180), all
eight."""


def apply_symmetry(cutouts: np.ndarray, positions: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply one of the 8 symmetries of the square to cutouts and their positions.

    Parameters
    ----------
    cutouts : `numpy.ndarray`
        Cutouts, shape ``(..., S, S)`` indexed ``[y, x]``, source at pixel ``(S // 2, S // 2)``.
    positions : `numpy.ndarray`
        Position features ``(x, y)`` in ``[-1, 1]``, shape ``(..., 2)``.
    code : `int`
        Symmetry, 0 to 7: bit 0 transposes (swaps x and y), bit 1 flips x, bit 2 flips y, applied
        in that order. 0 is the identity; the 8 codes are the 8 distinct symmetries.

    Returns
    -------
    cutouts, positions : `tuple` [`numpy.ndarray`, `numpy.ndarray`]
        Transformed copies.

    Raises
    ------
    ValueError
        If ``code`` is not in 0-7.

    Notes
    -----
    Flips mirror the cutout about its centre pixel ``c = S // 2`` (pixel ``i`` goes to
    ``2c - i``), the pixel the source was centred on, and ``x -> -x`` in the position features,
    as if the whole detector were mirrored. For even ``S`` the row or column at ``2c - 0 = S``
    falls outside the cutout; it is taken from pixel 0 (wrapping), a one-pixel border of sky.

    """
    if code not in range(8):
        raise ValueError(f"symmetry code must be an integer from 0 to 7, got {code!r}")
    out = np.asarray(cutouts)
    pos = np.array(positions, copy=True)
    size = out.shape[-1]
    mirror = (2 * (size // 2) - np.arange(size)) % size
    if code & 1:
        out = np.swapaxes(out, -1, -2)
        pos = pos[..., ::-1].copy()
    if code & 2:
        out = out[..., :, mirror]
        pos[..., 0] = -pos[..., 0]
    if code & 4:
        out = out[..., mirror, :]
        pos[..., 1] = -pos[..., 1]
    return np.ascontiguousarray(out), pos
