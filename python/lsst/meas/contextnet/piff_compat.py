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

"""Compatibility repairs for reading Piff PSFs attached to ``lsst.images`` visit images."""

from __future__ import annotations

__all__ = ["install_piff_reader_fixes"]

import copy
from typing import Any


def install_piff_reader_fixes() -> None:
    """Make ``lsst.images`` able to read back the Piff PSFs it writes, whatever the Piff version.

    ``lsst.images`` (30.2026.4300) reads a `~lsst.images.psfs.PiffWrapper` through an adapter,
    ``lsst.images.psfs._piff._ArchivePiffReader``, with two defects this function repairs in place
    (idempotent; each repair only where needed):

    - it has no ``read_bandpass`` method, which Piff >= 1.7 calls while reading, so every read of
      a ``calexp`` with a Piff PSF fails with AttributeError.  The adapter never writes a bandpass
      (chromatic PSFs are refused), so the repair returns `None`;
    - ``read_struct`` hands Piff the stored dict itself, and Piff pops keys from it, so a second
      deserialization of the same tree fails with ``KeyError: 'type'``.  The Butler formatter
      caches the last tree it read and serves component reads from it, so reading ``calexp.psf``
      after ``calexp`` or ``calexp.psf`` of the same dataset in one process fails.  The repair
      returns a copy.

    Importing `lsst.meas.contextnet.formatters`, the formatter the repositories of this package
    name for ``calexp``, calls it, so every ``butler.get`` of such a ``calexp`` has it applied.
    """
    from lsst.images.psfs import _piff

    reader = _piff._ArchivePiffReader
    if getattr(reader, "_contextnet_fixed", False):
        return
    if not hasattr(reader, "read_bandpass"):

        def read_bandpass(self: Any, name: str) -> None:
            return None

        reader.read_bandpass = read_bandpass
    original_read_struct = reader.read_struct

    def read_struct(self: Any, name: str) -> Any:
        return copy.deepcopy(original_read_struct(self, name))

    reader.read_struct = read_struct
    reader._contextnet_fixed = True
