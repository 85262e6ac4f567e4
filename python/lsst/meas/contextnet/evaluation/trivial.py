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

"""Trivial classifiers every evaluation is compared with: majority class and magnitude only."""

from __future__ import annotations

__all__ = ["MagnitudeOnlyClassifier", "MajorityClassClassifier", "TrivialClassifier", "cross_fit_predict"]

import math
from collections.abc import Callable
from typing import Protocol, Self

import numpy as np
from lsst.meas.contextnet.evaluation.metrics import _as_labels, _as_scores, _check_edges
from numpy.typing import ArrayLike, NDArray


class TrivialClassifier(Protocol):
    """Interface of the classifiers `cross_fit_predict` fits: fit on labelled objects, predict
    probabilities.  The trivial predictors take magnitudes; others take rows of features.
    """

    def fit(self, features: ArrayLike, is_galaxy: ArrayLike) -> Self:
        """Fit on labelled objects and return self."""
        ...

    def predict_proba(self, features: ArrayLike) -> NDArray[np.float64]:
        """Return P(galaxy) for each object."""
        ...


class MajorityClassClassifier:
    """Predict the training galaxy fraction for every object.

    With the threshold 0.5 this classifies everything as the training set's majority class;
    as a probability it is calibrated overall and one fit has an AUC of exactly 0.5. Cross-fitted
    (`cross_fit_predict`), each fold gets a slightly different constant that is anti-correlated
    with the fold's own galaxy fraction, so its AUC can come out a little below 0.5.
    """

    def __init__(self) -> None:
        self.galaxy_fraction: float = math.nan

    def fit(self, mag: ArrayLike, is_galaxy: ArrayLike) -> Self:
        """Fit the galaxy fraction.

        Parameters
        ----------
        mag : array-like of `float`
            Magnitudes (unused; present for a common interface).
        is_galaxy : array-like of `bool`
            True class of each training object.

        Returns
        -------
        self : `MajorityClassClassifier`
            The fitted classifier.

        Raises
        ------
        ValueError
            Raised if there are no training objects.

        """
        labels = _as_labels(is_galaxy)
        if labels.size == 0:
            raise ValueError("MajorityClassClassifier.fit needs at least one training object.")
        self.galaxy_fraction = float(np.mean(labels))
        return self

    def predict_proba(self, mag: ArrayLike) -> NDArray[np.float64]:
        """Predict the training galaxy fraction for each object.

        Parameters
        ----------
        mag : array-like of `float`
            Magnitudes (only their number is used).

        Returns
        -------
        prob : `numpy.ndarray` of `float`
            Constant P(galaxy).

        """
        if math.isnan(self.galaxy_fraction):
            raise RuntimeError("MajorityClassClassifier must be fitted before predicting.")
        return np.full(np.asarray(mag).shape[0], self.galaxy_fraction, dtype=np.float64)


class MagnitudeOnlyClassifier:
    """Predict P(galaxy | magnitude bin) measured on training objects.

    Parameters
    ----------
    mag_bins : array-like of `float`, optional
        Bin edges of the fitted histogram (default 0.25 mag from 14 to 30). Magnitudes outside
        the edges use the first or last bin; non-finite magnitudes get a NaN (missing)
        prediction.
    prior_strength : `float`, optional
        Pseudo-count pulling each bin toward the overall training galaxy fraction:
        ``P = (n_galaxy_bin + a * f) / (n_bin + a)``, so sparse or empty bins fall back to the
        overall fraction.

    """

    def __init__(self, mag_bins: ArrayLike | None = None, prior_strength: float = 1.0) -> None:
        self.mag_bins = _check_edges(np.arange(14.0, 30.01, 0.25) if mag_bins is None else mag_bins)
        if prior_strength < 0:
            raise ValueError(f"prior_strength must be non-negative; got {prior_strength}.")
        self.prior_strength = float(prior_strength)
        self.galaxy_fraction: NDArray[np.float64] | None = None

    def _clipped_index(self, mag: NDArray[np.float64]) -> NDArray[np.int64]:
        index = np.searchsorted(self.mag_bins, mag, side="right") - 1
        return np.clip(index, 0, self.mag_bins.size - 2)

    def fit(self, mag: ArrayLike, is_galaxy: ArrayLike) -> Self:
        """Fit the galaxy fraction in each magnitude bin.

        Parameters
        ----------
        mag : array-like of `float`
            Magnitude of each training object; non-finite ones are ignored.
        is_galaxy : array-like of `bool`
            True class of each training object.

        Returns
        -------
        self : `MagnitudeOnlyClassifier`
            The fitted classifier.

        Raises
        ------
        ValueError
            Raised if no training object has a finite magnitude.

        """
        labels = _as_labels(is_galaxy)
        magnitudes = _as_scores(mag, labels.size, name="mag")
        good = np.isfinite(magnitudes)
        if not np.any(good):
            raise ValueError("MagnitudeOnlyClassifier.fit needs at least one object with a finite magnitude.")
        index = self._clipped_index(magnitudes[good])
        n_bins = self.mag_bins.size - 1
        n = np.bincount(index, minlength=n_bins).astype(np.float64)
        k = np.bincount(index, weights=labels[good].astype(np.float64), minlength=n_bins)
        overall = float(np.mean(labels[good]))
        a = self.prior_strength
        with np.errstate(invalid="ignore", divide="ignore"):
            self.galaxy_fraction = np.where(n + a > 0, (k + a * overall) / (n + a), overall)
        return self

    def predict_proba(self, mag: ArrayLike) -> NDArray[np.float64]:
        """Predict P(galaxy) from the magnitude.

        Parameters
        ----------
        mag : array-like of `float`
            Magnitudes.

        Returns
        -------
        prob : `numpy.ndarray` of `float`
            P(galaxy) of each object's magnitude bin; NaN for a non-finite magnitude.

        """
        if self.galaxy_fraction is None:
            raise RuntimeError("MagnitudeOnlyClassifier must be fitted before predicting.")
        magnitudes = np.asarray(mag, dtype=np.float64)
        good = np.isfinite(magnitudes)
        prob = np.full(magnitudes.shape, np.nan)
        prob[good] = self.galaxy_fraction[self._clipped_index(magnitudes[good])]
        return prob


def cross_fit_predict(
    factory: Callable[[], TrivialClassifier],
    features: ArrayLike,
    is_galaxy: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    n_folds: int = 5,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Predict every object with a classifier fitted only on other objects (cross-fitting).

    Parameters
    ----------
    factory : callable
        Returns a fresh, unfitted `TrivialClassifier`.
    features : array-like of `float`
        What the classifier is fitted on: the magnitude of each object (one-dimensional, as the
        trivial predictors take it), or one row of features per object (``(N, k)``).
    is_galaxy : array-like of `bool`
        True class of each object.
    groups : array-like, optional
        Group label of each object (e.g. the visit). Folds are made of whole groups, so an
        object is never predicted from a fit that saw its own group. With fewer than two groups
        (or no ``groups``), folds are random subsets of objects.
    n_folds : `int`, optional
        Number of folds (at least 2; reduced to the number of groups when there are fewer).
    rng : `numpy.random.Generator`
        Random generator for the assignment of groups (or objects) to folds.

    Returns
    -------
    prob : `numpy.ndarray` of `float`
        Out-of-fold P(galaxy) of each object; NaN where the classifier gives none, or when
        there is a single object.

    Raises
    ------
    ValueError
        Raised if ``n_folds < 2`` or the arrays have different lengths.

    Notes
    -----
    This is K-fold cross-fitting: each fold is predicted by a classifier fitted on the other
    K - 1 folds, so the reported metrics of a fitted trivial predictor are out-of-sample, as
    they would be for a classifier trained on separate simulations. Grouping by visit keeps
    sources of one exposure (which share a PSF and sky) out of their own fit.

    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2; got {n_folds}.")
    labels = _as_labels(is_galaxy)
    values = np.asarray(features, dtype=np.float64)
    if values.ndim == 2:
        if values.shape[0] != labels.size:
            raise ValueError(f"features must have one row per label ({labels.size}); got {values.shape}.")
        inputs = values
    else:
        inputs = _as_scores(values, labels.size, name="features")
    prob = np.full(labels.size, np.nan)
    if labels.size < 2:
        return prob
    if groups is not None:
        group_values = np.asarray(groups)
        if group_values.shape != labels.shape:
            raise ValueError(f"groups must have one entry per object; got shape {group_values.shape}.")
        unique, group_index = np.unique(group_values, return_inverse=True)
    else:
        unique, group_index = np.zeros(1), np.zeros(labels.size, dtype=np.int64)
    if unique.size >= 2:
        k = min(n_folds, unique.size)
        fold_of_group = rng.permutation(np.arange(unique.size) % k)
        fold = fold_of_group[group_index]
    else:
        k = min(n_folds, labels.size)
        fold = rng.permutation(np.arange(labels.size) % k)
    for i in range(k):
        test = fold == i
        train = ~test
        classifier = factory().fit(inputs[train], labels[train])
        prob[test] = classifier.predict_proba(inputs[test])
    return prob
