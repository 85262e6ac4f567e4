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

"""Errors the classifier task raises on input it cannot classify, or on a model that misbehaves."""

from __future__ import annotations

__all__ = [
    "MissingPsfError",
    "PedestalError",
    "ModelOutputError",
    "NoUsablePixelsError",
    "NoiseEstimateError",
]


from lsst.meas.contextnet.cutouts import NOISE_SUBSAMPLE_STRIDE
from lsst.pipe.base import AlgorithmError


class NoiseEstimateError(AlgorithmError):
    """Raised when the variance plane gives no usable background noise level.

    Parameters
    ----------
    noise_sigma : `float`
        The noise level computed, the square root of the median of the variance plane's finite
        values on a regular subsample (`~lsst.meas.contextnet.cutouts.background_noise`).

    """

    def __init__(self, noise_sigma: float) -> None:
        super().__init__(
            f"cannot normalize cutouts: noise_sigma = sqrt(median of the variance plane, every "
            f"{NOISE_SUBSAMPLE_STRIDE}th row and column) = {noise_sigma!r} is not positive and finite"
        )
        self._noise_sigma = float(noise_sigma)

    @property
    def metadata(self) -> dict[str, float]:
        """The noise level that was rejected (`dict` [`str`, `float`])."""
        return {"noise_sigma": self._noise_sigma}


class NoUsablePixelsError(AlgorithmError):
    """Raised when the image has no good pixel, so that no source of a quantum can be classified.

    Sources whose cutouts lack good pixels in an image that has some are flagged instead
    (``classification_flag_noData``).

    Parameters
    ----------
    n_sources : `int`
        Sources in the catalog.
    min_fraction : `float`
        The configured ``minGoodPixelFraction``.

    """

    def __init__(self, n_sources: int, min_fraction: float) -> None:
        super().__init__(
            f"none of the {n_sources} sources has at least {min_fraction:.0%} good pixels in its cutout "
            "(finite, in the image, not in a bad mask plane): the image holds no usable pixels"
        )
        self._n_sources = int(n_sources)

    @property
    def metadata(self) -> dict[str, int]:
        """The number of sources (`dict` [`str`, `int`])."""
        return {"n_sources": self._n_sources}


class ModelOutputError(RuntimeError):
    """Raised when the model returns probabilities that are not finite or not in [0, 1]."""


class MissingPsfError(AlgorithmError):
    """Raised when a PSF-aware model is given an exposure without a PSF model.

    Parameters
    ----------
    inputs : `tuple` [`str`, ...]
        The inputs the model declares.

    """

    def __init__(self, inputs: tuple[str, ...]) -> None:
        super().__init__(
            f"the ContextNet model needs the exposure's PSF model (its inputs are {list(inputs)}), but the "
            "exposure has no PSF; attach one (e.g. the PSF fit by calibrateImage) or configure a PSF-blind "
            "model (config.modelPath)"
        )
        self._inputs = tuple(inputs)

    @property
    def metadata(self) -> dict[str, str]:
        """The inputs the model declares (`dict` [`str`, `str`])."""
        return {"inputs": ",".join(self._inputs)}


class PedestalError(AlgorithmError):
    """Raised when an image does not look sky-subtracted and ``pedestalAction`` is ``"raise"``.

    Parameters
    ----------
    pedestal_sigma : `float`
        Median pixel value in units of the background noise.
    limit : `float`
        The configured ``maxPedestal``.
    """

    def __init__(self, pedestal_sigma: float, limit: float) -> None:
        super().__init__(
            f"the image's median pixel is {pedestal_sigma:.1f} times the background noise (more than "
            f"maxPedestal = {limit}): it does not look sky-subtracted; subtract the background first, "
            "or set pedestalAction='warn'"
        )
        self.pedestal_sigma = pedestal_sigma
        self.limit = limit

    @property
    def metadata(self) -> dict[str, float]:
        """The rejected pedestal and the limit (`dict` [`str`, `float`])."""
        return {"pedestal_sigma": self.pedestal_sigma, "limit": self.limit}
