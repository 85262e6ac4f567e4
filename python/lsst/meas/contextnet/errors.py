"""Errors the classifier task raises on input it cannot classify, or on a model that misbehaves."""

from __future__ import annotations

__all__ = ["MissingPsfError", "ModelOutputError", "NoUsablePixelsError", "NoiseEstimateError"]


from lsst.pipe.base import AlgorithmError


class NoiseEstimateError(AlgorithmError):
    """Raised when the variance plane gives no usable background noise level.

    Parameters
    ----------
    noise_sigma : `float`
        The noise level computed, ``sqrt(nanmedian(variance))``.

    """

    def __init__(self, noise_sigma: float) -> None:
        super().__init__(
            f"cannot normalize cutouts: noise_sigma = sqrt(nanmedian(variance)) = {noise_sigma!r} "
            "is not positive and finite"
        )
        self._noise_sigma = float(noise_sigma)

    @property
    def metadata(self) -> dict[str, float]:
        """The noise level that was rejected (`dict` [`str`, `float`])."""
        return {"noise_sigma": self._noise_sigma}


class NoUsablePixelsError(AlgorithmError):
    """Raised when no source of a quantum has enough good pixels to be classified.

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
