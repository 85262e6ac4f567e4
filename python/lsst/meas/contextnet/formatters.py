"""The Butler formatter of the visit images this package's simulator writes.

Repositories made by `lsst.meas.contextnet.sim.repo.create_or_open_repo` name
`VisitImageFormatter` for the ``calexp`` dataset type in their datastore configuration. The
datastore records the formatter of every file it writes and builds that formatter to read the
file back, so any process that reads these ``calexp`` datasets with a plain
``Butler.get`` imports this module, whether or not it imports anything else of the package.
That is what makes the two measures below hold for every reader:

- **Piff PSFs read back.** Importing this module applies
  `~lsst.meas.contextnet.piff_compat.install_piff_reader_fixes`, the two repairs that let
  ``lsst.images`` read the Piff PSFs it writes (``read_bandpass`` for Piff >= 1.7, and a copy
  of the stored structure so a second ``calexp.psf`` read works).
- **Reads bound by the disk, not by decompression.** The image and variance planes are written
  without tile compression and the mask with lossless ``RICE_1`` in 64-row tiles. With
  ``lsst.images``' default (``GZIP_2`` in tiles of a few thousand pixels) astropy decompresses
  tens of thousands of tiles one by one in Python: on a 4096x4096 detector that is most of a
  5 s read. The price is disk space: about 140 MB per 4096x4096 detector instead of 60 MB.
  Real LSST images keep their pipelines' compression; this choice concerns only the simulated
  repositories.
"""

from __future__ import annotations

__all__ = ["SIMULATED_VISIT_IMAGE_COMPRESSION", "VisitImageFormatter"]

from typing import Any

from lsst.images.fits import FitsCompressionAlgorithm, FitsCompressionOptions
from lsst.images.formatters import GenericFormatter
from lsst.meas.contextnet.piff_compat import install_piff_reader_fixes

install_piff_reader_fixes()

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
