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

"""Standard errors that treat visits, not objects, as the independent draws.

The objects of one visit share its seeing, PSF family, PSF-model error, star fraction and
density, so their classification errors are correlated: a test set of 16 visits and 8000 objects
holds far less information than 8000 independent objects.  A binomial standard error over
objects then understates the noise of an accuracy, a recall or a difference of two classifiers'
accuracies.

Here every such figure is a proportion ``p = sum(hits) / n`` over the counted objects, and its
standard error is the cluster-robust (delta-method) one: with the influence of object ``i``,
``u_i = (hit_i - p) / n`` (0 for objects not counted), and ``U_c`` the sum of ``u_i`` over the
objects of cluster ``c`` (a visit),

``SE = sqrt(G / (G - 1) * sum_c U_c**2)``

over the ``G`` clusters that hold counted objects.  The difference of two proportions measured
on the same objects (``margin``: two classifiers' accuracies over the objects both score) has
influence ``u_i(A) - u_i(B)``, so its standard error includes the correlation of the two
classifiers' errors.  With one object per cluster the formula is the binomial
``sqrt(p (1 - p) / (n - 1))``.
"""

from __future__ import annotations

__all__ = [
    "clustered_proportion",
    "clustered_standard_error",
    "margin_table",
    "proportion_influence",
]

import math
from collections.abc import Mapping, Sequence

import numpy as np
from astropy.table import Table
from lsst.meas.contextnet.evaluation.metrics import galaxy_calls, magnitude_bin_index
from numpy.typing import ArrayLike, NDArray


def clustered_standard_error(influence: ArrayLike, clusters: ArrayLike) -> float:
    """Cluster-robust standard error of a statistic from its per-object influence.

    Parameters
    ----------
    influence : array-like of `float`
        Influence of each object on the statistic (`proportion_influence`).
    clusters : array-like
        Cluster label of each object (e.g. the visit).

    Returns
    -------
    se : `float`
        ``sqrt(G / (G - 1) * sum_c U_c**2)``; NaN with fewer than two clusters.

    Raises
    ------
    ValueError
        Raised if the inputs have different lengths.
    """
    values = np.asarray(influence, dtype=np.float64)
    labels = np.asarray(clusters)
    if values.shape != labels.shape or values.ndim != 1:
        raise ValueError(f"influence {values.shape} and clusters {labels.shape} must be 1-d of one length")
    unique, index = np.unique(labels, return_inverse=True)
    if unique.size < 2:
        return math.nan
    totals = np.bincount(index, weights=values, minlength=unique.size)
    return float(math.sqrt(unique.size / (unique.size - 1) * float(np.sum(totals**2))))


def proportion_influence(hits: ArrayLike, counted: ArrayLike) -> tuple[float, NDArray[np.float64]]:
    """A proportion over the counted objects and each object's influence on it.

    Parameters
    ----------
    hits : array-like of `bool`
        Whether each object is a success (e.g. classified correctly).
    counted : array-like of `bool`
        Whether each object enters the proportion.

    Returns
    -------
    p : `float`
        ``sum(hits & counted) / sum(counted)``; NaN when nothing is counted.
    influence : `numpy.ndarray`
        ``(hit - p) / n`` for counted objects, 0 otherwise (all 0 when nothing is counted).
    """
    hit = np.asarray(hits, dtype=bool)
    used = np.asarray(counted, dtype=bool)
    if hit.shape != used.shape:
        raise ValueError(f"hits {hit.shape} and counted {used.shape} differ in shape")
    n = int(np.count_nonzero(used))
    if n == 0:
        return math.nan, np.zeros(hit.shape, dtype=np.float64)
    p = float(np.count_nonzero(hit & used)) / n
    return p, np.where(used, (hit.astype(np.float64) - p) / n, 0.0)


def clustered_proportion(hits: ArrayLike, counted: ArrayLike, clusters: ArrayLike) -> tuple[float, float]:
    """A proportion and its cluster-robust standard error.

    Parameters
    ----------
    hits, counted : array-like of `bool`
        As for `proportion_influence`.
    clusters : array-like
        Cluster label of each object.

    Returns
    -------
    p, se : `float`
        The proportion and its standard error (NaN when undefined).
    """
    p, influence = proportion_influence(hits, counted)
    if math.isnan(p):
        return p, math.nan
    used = np.asarray(counted, dtype=bool)
    return p, clustered_standard_error(influence[used], np.asarray(clusters)[used])


def margin_table(
    is_galaxy: ArrayLike,
    scores: Mapping[str, ArrayLike],
    thresholds: Mapping[str, float],
    mag: ArrayLike,
    clusters: ArrayLike,
    *,
    reference: str,
    others: Sequence[str],
    mag_bins: Sequence[float],
) -> Table:
    """Accuracy of one classifier and its margins over others, with cluster-robust errors.

    The reference's accuracy is taken over the objects it scores (a finite score), as in
    `~lsst.meas.contextnet.evaluation.metrics.compare_classifiers`.  A margin over another
    classifier is the difference of the two accuracies over the objects *both* score (a
    baseline such as extendedness has no value for some objects; each accuracy over its own
    objects would mix the difference of the classifiers with that of the objects), and its
    error includes their correlation.  The errors count the clusters that hold counted objects.

    Parameters
    ----------
    is_galaxy : array-like of `bool`
        True class of each object.
    scores : `~collections.abc.Mapping` [`str`, array-like]
        Score of each classifier per object (non-finite: not scored).
    thresholds : `~collections.abc.Mapping` [`str`, `float`]
        Galaxy when the score is at least the classifier's threshold.
    mag : array-like of `float`
        Magnitude of each object.
    clusters : array-like
        Cluster (visit) of each object.
    reference : `str`
        Classifier whose accuracy and margins are given.
    others : `~collections.abc.Sequence` [`str`]
        Classifiers it is compared with (those absent from ``scores`` are skipped).
    mag_bins : `~collections.abc.Sequence` [`float`]
        Magnitude bin edges; a row for all objects (``bin == -1``) comes first.

    Returns
    -------
    table : `astropy.table.Table`
        Columns ``bin``, ``mag_lo``, ``mag_hi``, ``n``, ``n_clusters``, ``accuracy``,
        ``accuracy_se`` and, per other classifier ``X``, ``margin_X``, ``margin_X_se`` and
        ``margin_X_n`` (the objects both score).
    """
    labels = np.asarray(is_galaxy, dtype=bool)
    groups = np.asarray(clusters)
    names = [reference, *[name for name in others if name in scores and name != reference]]
    correct = {}
    scored = {}
    for name in names:
        scored[name], galaxy = galaxy_calls(scores[name], thresholds[name])
        correct[name] = galaxy == labels
    edges = [float(edge) for edge in mag_bins]
    bin_index = magnitude_bin_index(mag, edges)
    selections = [(-1, -math.inf, math.inf, np.ones(labels.size, dtype=bool))]
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        selections.append((i, lo, hi, bin_index == i))
    rows = []
    for index, lo, hi, selected in selections:
        counted = selected & scored[reference]
        accuracy, influence = proportion_influence(correct[reference], counted)
        row: dict[str, float | int] = {
            "bin": index,
            "mag_lo": lo,
            "mag_hi": hi,
            "n": int(np.count_nonzero(counted)),
            "n_clusters": int(np.unique(groups[counted]).size),
            "accuracy": accuracy,
            "accuracy_se": (
                clustered_standard_error(influence[counted], groups[counted]) if counted.any() else math.nan
            ),
        }
        for name in names[1:]:
            both = counted & scored[name]
            mine, my_influence = proportion_influence(correct[reference], both)
            other, other_influence = proportion_influence(correct[name], both)
            margin = mine - other
            row[f"margin_{name}"] = margin
            row[f"margin_{name}_se"] = (
                clustered_standard_error((my_influence - other_influence)[both], groups[both])
                if not math.isnan(margin)
                else math.nan
            )
            row[f"margin_{name}_n"] = int(np.count_nonzero(both))
        rows.append(row)
    return Table(rows=rows)
