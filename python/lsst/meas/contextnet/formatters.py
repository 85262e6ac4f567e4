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

"""The Butler formatters of the repositories this package creates.

Repositories made by `lsst.meas.contextnet.sim.repo.create_or_open_repo` name
`VisitImageFormatter` for the ``calexp`` dataset type in their datastore configuration. The
datastore records the formatter of every file it writes and builds that formatter to read the
file back, so any process that reads these ``calexp`` datasets with a plain
``Butler.get`` imports this module, whether or not it imports anything else of the package.
That is what makes the first three measures below hold for every reader:

- **Piff PSFs read back.** Importing this module applies
  `~lsst.meas.contextnet.piff_compat.install_piff_reader_fixes`, the two repairs that let
  ``lsst.images`` read the Piff PSFs it writes (``read_bandpass`` for Piff >= 1.7, and a copy
  of the stored structure so a second ``calexp.psf`` read works).
- **Masks merged a word at a time.** Importing this module also applies
  `~lsst.meas.contextnet.maskmerge.install_mask_merge`: ``lsst.images`` rebuilds a mask read from
  FITS one plane at a time, most of a ``calexp`` read; merging whole words gives the same bits in a
  fraction of the time.
- **Files read in place.** `VisitImageFormatter` hands ``lsst.images`` the open local file, not
  a copy of the whole file in memory, so each plane is read from the file once.
- **Reads bound by the disk, not by decompression.** The image and variance planes are written
  without tile compression and the mask with lossless ``RICE_1`` in 64-row tiles. With
  ``lsst.images``' default (``GZIP_2`` in tiles of a few thousand pixels) astropy decompresses
  tens of thousands of tiles one by one in Python: on a 4096x4096 detector that is most of a
  5 s read. The price is disk space: about 140 MB per 4096x4096 detector instead of 60 MB.
  Real LSST images keep their pipelines' compression; this choice concerns only the simulated
  repositories.

`ClassificationTableFormatter`, named for ``contextnet_classification``, keeps the table's
``meta`` (the model's SHA-256, the seed, ``nEnsemble`` and the Butler provenance) on a default
``butler.get``; the Butler's own Parquet formatter drops it unless the reader passes
``parameters={"strip_astropy_meta_yaml": False}``, which is what to do in other repositories.
"""

from __future__ import annotations

__all__ = ["ClassificationTableFormatter", "SIMULATED_VISIT_IMAGE_COMPRESSION", "VisitImageFormatter"]

from typing import Any

from lsst.daf.butler.formatters.parquet import ParquetFormatter
from lsst.images.fits import FitsCompressionAlgorithm, FitsCompressionOptions
from lsst.images.formatters import GenericFormatter
from lsst.meas.contextnet.maskmerge import install_mask_merge
from lsst.meas.contextnet.piff_compat import install_piff_reader_fixes

install_piff_reader_fixes()
install_mask_merge()

SIMULATED_VISIT_IMAGE_COMPRESSION: dict[str, FitsCompressionOptions | None] = {
    "image": None,
    "variance": None,
    "mask": FitsCompressionOptions(algorithm=FitsCompressionAlgorithm.RICE_1, tile_shape=(64, 4096)),
}
"""FITS compression of each plane of a simulated visit image (`None`: not compressed)."""


class VisitImageFormatter(GenericFormatter):
    """`lsst.images.formatters.GenericFormatter` with Piff read repairs and fast-reading planes.

    A ``recipe`` write parameter configured in the datastore still takes precedence.
    """

    def _get_compression_options(self) -> dict[str, Any]:
        if "recipe" in self.write_parameters:
            return super()._get_compression_options()
        return dict(SIMULATED_VISIT_IMAGE_COMPRESSION)

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        """Read the dataset, or one component, from the file opened in place.

        ``lsst.images`` reads a whole local file into memory before parsing it when the whole
        dataset is asked for: a 135 MB copy of a 4096x4096 visit image, out of which each plane is
        copied again. From the open file each HDU is read once, and only the HDUs needed.
        """
        with open(path, "rb") as stream:
            return self._read_from_resource_path(stream, component)


class ClassificationTableFormatter(ParquetFormatter):
    """The Butler's Parquet formatter, keeping the table's ``meta`` unless the reader says not to."""

    def _keep_meta(self) -> None:
        parameters = dict(self.file_descriptor.parameters or {})
        parameters.setdefault("strip_astropy_meta_yaml", False)
        self.file_descriptor.parameters = parameters

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        """Read as the Parquet formatter does, ``strip_astropy_meta_yaml`` False by default."""
        self._keep_meta()
        return super().read_from_local_file(path, component=component, expected_size=expected_size)

    def read_from_uri(self, uri: Any, component: str | None = None, expected_size: int = -1) -> Any:
        """Read as the Parquet formatter does, ``strip_astropy_meta_yaml`` False by default."""
        self._keep_meta()
        return super().read_from_uri(uri, component=component, expected_size=expected_size)
