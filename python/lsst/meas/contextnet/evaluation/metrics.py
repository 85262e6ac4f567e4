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

"""Star/galaxy classification metrics, overall and in magnitude bins (pure numpy).

Every function takes the true class as a boolean array ``is_galaxy`` and a classifier output
``score``: a probability of being a galaxy (ContextNet's ``classification_galaxyProb``), a 0/1
decision (the DM ``extendedness``) or a score in [0, 1] (``sizeExtendedness``). A non-finite
score means the classifier gave no answer for that object: it is counted as missing and left
out of every metric. An object is predicted to be a galaxy when ``score >= threshold``
(default 0.5), which for a 0/1 ``extendedness`` is the usual ``extendedness == 1``.

The galaxy is the positive class (``precision``/``recall`` without a prefix would be ambiguous;
the paper's Table 2 does not say which class it reports, so both are given).

The trivial predictors (`MajorityClassClassifier`, `MagnitudeOnlyClassifier`) tell how much of
a classifier's accuracy could be had from the class balance or the magnitude distribution
alone. They are fitted on data and must not be scored on the data they were fitted on:
`cross_fit_predict` fits them on all folds but one and predicts the held-out fold, folds being
whole groups (visits) so that nothing from an exposure is used to predict that exposure.
"""

from __future__ import annotations

__all__ = [
    "BinaryMetrics",
    "DEFAULT_MAG_BINS",
    "METRIC_NAMES",
    "compare_classifiers",
    "compute_metrics",
    "confusion_counts",
    "expected_calibration_error",
    "galaxy_calls",
    "magnitude_bin_index",
    "metrics_by_magnitude",
    "reliability_bins",
    "roc_auc",
]

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import ArrayLike, NDArray

DEFAULT_MAG_BINS: tuple[float, ...] = tuple(float(x) for x in np.arange(16.0, 26.01, 0.5))
"""Default magnitude bin edges (AB mag): 0.5 mag wide from 16 to 26."""

METRIC_NAMES: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "galaxy_precision",
    "galaxy_recall",
    "star_precision",
    "star_recall",
    "auc",
    "ece",
)
"""Names of the metrics in `BinaryMetrics` and in the tables of this module, in display order."""


def _as_labels(is_galaxy: ArrayLike) -> NDArray[np.bool_]:
    """Convert true labels to a 1-d boolean array, rejecting anything that is not 0/1."""
    labels = np.asarray(is_galaxy)
    if labels.ndim != 1:
        raise ValueError(f"is_galaxy must be one-dimensional; got shape {labels.shape}.")
    if labels.dtype == np.bool_:
        return labels
    if labels.size and not np.all((labels == 0) | (labels == 1)):
        bad = labels[(labels != 0) & (labels != 1)][:5]
        raise ValueError(f"is_galaxy must be boolean or 0/1; got values such as {bad.tolist()}.")
    return labels.astype(bool)


def _as_scores(score: ArrayLike, n: int, name: str = "score") -> NDArray[np.float64]:
    """Convert a classifier output to a 1-d float64 array of length ``n``."""
    values = np.asarray(score, dtype=np.float64)
    if values.ndim != 1 or values.shape[0] != n:
        raise ValueError(
            f"{name} must be one-dimensional with {n} entries (one per label); got {values.shape}."
        )
    return values


def _ratio(numerator: float, denominator: float) -> float:
    """Return numerator/denominator, or NaN when the denominator is zero."""
    return float(numerator) / float(denominator) if denominator > 0 else math.nan


def galaxy_calls(score: ArrayLike, threshold: float = 0.5) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which objects a classifier scored, and which it calls galaxies.

    Parameters
    ----------
    score : array-like of `float`
        Classifier output; non-finite values are missing (not scored).
    threshold : `float`, optional
        An object is called a galaxy when ``score >= threshold``.

    Returns
    -------
    scored : `numpy.ndarray` of `bool`
        Finite scores.
    galaxy : `numpy.ndarray` of `bool`
        Scored and at least ``threshold`` (`False` for the missing ones).
    """
    values = np.asarray(score, dtype=np.float64)
    scored = np.isfinite(values)
    return scored, scored & (np.where(scored, values, -np.inf) >= threshold)


def confusion_counts(is_galaxy: ArrayLike, score: ArrayLike, *, threshold: float = 0.5) -> dict[str, int]:
    """Count true/false galaxies and stars after thresholding a score.

    Parameters
    ----------
    is_galaxy : array-like of `bool`
        True class of each object (`True` for a galaxy).
    score : array-like of `float`
        Classifier output; non-finite values are missing and are not counted.
    threshold : `float`, optional
        An object is predicted to be a galaxy when ``score >= threshold``.

    Returns
    -------
    counts : `dict` [`str`, `int`]
        ``true_galaxy`` (galaxy predicted galaxy), ``false_galaxy`` (star predicted galaxy),
        ``true_star``, ``false_star`` (galaxy predicted star) and ``missing``.

    """
    labels = _as_labels(is_galaxy)
    valid, galaxy = galaxy_calls(_as_scores(score, labels.size), threshold)
    predicted = galaxy[valid]
    truth = labels[valid]
    return {
        "true_galaxy": int(np.count_nonzero(predicted & truth)),
        "false_galaxy": int(np.count_nonzero(predicted & ~truth)),
        "true_star": int(np.count_nonzero(~predicted & ~truth)),
        "false_star": int(np.count_nonzero(~predicted & truth)),
        "missing": int(np.count_nonzero(~valid)),
    }


def roc_auc(is_galaxy: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve, galaxies being the positive class.

    Parameters
    ----------
    is_galaxy : array-like of `bool`
        True class of each object.
    score : array-like of `float`
        Classifier output (higher means more galaxy-like); non-finite values are left out.

    Returns
    -------
    auc : `float`
        The probability that a random galaxy scores higher than a random star, ties counting
        one half (the Mann-Whitney U statistic divided by ``n_galaxy * n_star``, computed from
        mid-ranks). NaN when either class is absent.

    Notes
    -----
    With tied scores this is the area under the ROC curve drawn with straight segments
    between thresholds, so a 0/1 classifier gets ``(galaxy_recall + star_recall) / 2``.

    """
    labels = _as_labels(is_galaxy)
    values = _as_scores(score, labels.size)
    valid = np.isfinite(values)
    labels, values = labels[valid], values[valid]
    n_pos = int(np.count_nonzero(labels))
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    # 1-based ranks; a run of tied values at sorted positions first..first+count-1 shares the
    # mean rank first + (count + 1) / 2.
    midranks = np.repeat(first + (counts + 1) / 2.0, counts)
    ranks = np.empty(labels.size, dtype=np.float64)
    ranks[order] = midranks
    u_statistic = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * n_neg))


def reliability_bins(is_galaxy: ArrayLike, score: ArrayLike, *, n_bins: int = 10) -> Table:
    """Reliability-diagram bins: observed galaxy fraction against predicted probability.

    Parameters
    ----------
    is_galaxy : array-like of `bool`
        True class of each object.
    score : array-like of `float`
        Predicted galaxy probability in [0, 1]; non-finite values are left out.
    n_bins : `int`, optional
        Number of equal-width probability bins on [0, 1]; bin ``i`` holds
        ``i / n_bins <= score < (i + 1) / n_bins`` and the last bin also holds ``score == 1``.

    Returns
    -------
    bins : `astropy.table.Table`
        One row per bin: ``prob_lo``, ``prob_hi``, ``n``, ``mean_prob`` (mean score in the bin)
        and ``galaxy_fraction`` (fraction of true galaxies); the last two are NaN for an empty
        bin.

    Raises
    ------
    ValueError
        Raised if ``n_bins`` is not positive or a finite score lies outside [0, 1].

    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1; got {n_bins}.")
    labels = _as_labels(is_galaxy)
    values = _as_scores(score, labels.size)
    valid = np.isfinite(values)
    labels, values = labels[valid], values[valid]
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise ValueError(
            f"score must lie in [0, 1] for a reliability diagram; got range [{values.min()}, {values.max()}]."
        )
    index = np.minimum((values * n_bins).astype(np.int64), n_bins - 1)
    n = np.bincount(index, minlength=n_bins)
    sum_prob = np.bincount(index, weights=values, minlength=n_bins)
    sum_galaxy = np.bincount(index, weights=labels.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.where(n > 0, sum_prob / n, np.nan)
        galaxy_fraction = np.where(n > 0, sum_galaxy / n, np.nan)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return Table(
        {
            "prob_lo": edges[:-1],
            "prob_hi": edges[1:],
            "n": n.astype(np.int64),
            "mean_prob": mean_prob,
            "galaxy_fraction": galaxy_fraction,
        }
    )


def expected_calibration_error(is_galaxy: ArrayLike, score: ArrayLike, *, n_bins: int = 10) -> float:
    """Expected calibration error of a galaxy probability.

    Parameters
    ----------
    is_galaxy : array-like of `bool`
        True class of each object.
    score : array-like of `float`
        Predicted galaxy probability in [0, 1]; non-finite values are left out.
    n_bins : `int`, optional
        Number of equal-width probability bins (see `reliability_bins`).

    Returns
    -------
    ece : `float`
        ``sum_b (n_b / n) * |galaxy_fraction_b - mean_prob_b|`` over the non-empty bins; NaN when
        no object has a finite score. For a 0/1 classifier this is the calibration of the 0/1
        decision taken as a probability.

    """
    bins = reliability_bins(is_galaxy, score, n_bins=n_bins)
    n = np.asarray(bins["n"], dtype=np.float64)
    total = n.sum()
    if total == 0:
        return math.nan
    filled = n > 0
    gap = np.abs(np.asarray(bins["galaxy_fraction"])[filled] - np.asarray(bins["mean_prob"])[filled])
    return float(np.sum(n[filled] * gap) / total)


@dataclasses.dataclass(frozen=True)
class BinaryMetrics:
    """Classification metrics of one classifier on one set of objects.

    Ratios whose denominator is zero (e.g. galaxy precision when nothing is predicted to be a
    galaxy) are NaN.
    """

    n: int
    """Number of objects with a finite score (the ones scored)."""

    n_missing: int
    """Number of objects without a finite score (left out)."""

    n_galaxy: int
    """Number of scored objects that are galaxies."""

    n_star: int
    """Number of scored objects that are stars."""

    accuracy: float
    """Fraction of scored objects classified correctly."""

    balanced_accuracy: float
    """Mean of galaxy and star recall (over the classes present)."""

    galaxy_precision: float
    """Fraction of objects predicted to be galaxies that are galaxies."""

    galaxy_recall: float
    """Fraction of galaxies predicted to be galaxies (completeness)."""

    star_precision: float
    """Fraction of objects predicted to be stars that are stars (purity of a star sample)."""

    star_recall: float
    """Fraction of stars predicted to be stars."""

    auc: float
    """Area under the ROC curve (`roc_auc`)."""

    ece: float
    """Expected calibration error (`expected_calibration_error`)."""

    def as_dict(self) -> dict[str, int | float]:
        """Return the metrics as a plain dictionary.

        Returns
        -------
        values : `dict` [`str`, `int` or `float`]
            Field name to value.

        """
        return dataclasses.asdict(self)


def compute_metrics(
    is_galaxy: ArrayLike, score: ArrayLike, *, threshold: float = 0.5, n_calibration_bins: int = 10
) -> BinaryMetrics:
    """Compute every classification metric of one classifier.

    Parameters
    ----------
    is_galaxy : array-like of `bool`
        True class of each object.
    score : array-like of `float`
        Classifier output; non-finite values are missing (counted in ``n_missing``, not scored).
    threshold : `float`, optional
        Galaxy when ``score >= threshold``.
    n_calibration_bins : `int`, optional
        Probability bins for the expected calibration error.

    Returns
    -------
    metrics : `BinaryMetrics`
        The metrics.

    Raises
    ------
    ValueError
        Raised if the inputs have different lengths or labels are not 0/1.

    Notes
    -----
    ``ece`` is NaN when a finite score lies outside [0, 1] (the score is not a probability).

    """
    labels = _as_labels(is_galaxy)
    values = _as_scores(score, labels.size)
    counts = confusion_counts(labels, values, threshold=threshold)
    tg, fg, ts, fs = counts["true_galaxy"], counts["false_galaxy"], counts["true_star"], counts["false_star"]
    n = tg + fg + ts + fs
    n_galaxy = tg + fs
    n_star = ts + fg
    galaxy_recall = _ratio(tg, n_galaxy)
    star_recall = _ratio(ts, n_star)
    recalls = [r for r in (galaxy_recall, star_recall) if not math.isnan(r)]
    return BinaryMetrics(
        n=n,
        n_missing=counts["missing"],
        n_galaxy=n_galaxy,
        n_star=n_star,
        accuracy=_ratio(tg + ts, n),
        balanced_accuracy=float(np.mean(recalls)) if recalls else math.nan,
        galaxy_precision=_ratio(tg, tg + fg),
        galaxy_recall=galaxy_recall,
        star_precision=_ratio(ts, ts + fs),
        star_recall=star_recall,
        auc=roc_auc(labels, values),
        ece=_ece_if_probability(labels, values, n_calibration_bins),
    )


def _ece_if_probability(labels: NDArray[np.bool_], values: NDArray[np.float64], n_bins: int) -> float:
    """Expected calibration error, or NaN when a finite score lies outside [0, 1]."""
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        return math.nan
    return expected_calibration_error(labels, values, n_bins=n_bins)


def _check_edges(mag_bins: ArrayLike) -> NDArray[np.float64]:
    """Validate magnitude bin edges: at least two, finite, strictly increasing."""
    edges = np.asarray(mag_bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(f"mag_bins must hold at least two edges; got {edges.tolist()}.")
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError(f"mag_bins must be finite and strictly increasing; got {edges.tolist()}.")
    return edges


def magnitude_bin_index(mag: ArrayLike, mag_bins: ArrayLike) -> NDArray[np.int64]:
    """Magnitude bin of each object.

    Parameters
    ----------
    mag : array-like of `float`
        Magnitudes.
    mag_bins : array-like of `float`
        Bin edges, strictly increasing; bin ``i`` is ``mag_bins[i] <= mag < mag_bins[i + 1]``.

    Returns
    -------
    index : `numpy.ndarray` of `int`
        Bin index in ``[0, len(mag_bins) - 2]``, or -1 for a magnitude outside the edges or not
        finite.

    """
    edges = _check_edges(mag_bins)
    values = np.asarray(mag, dtype=np.float64)
    index = np.searchsorted(edges, values, side="right") - 1
    outside = ~np.isfinite(values) | (index < 0) | (index >= edges.size - 1)
    return np.where(outside, -1, index).astype(np.int64)


def _metrics_rows(
    name: str,
    labels: NDArray[np.bool_],
    values: NDArray[np.float64],
    bin_index: NDArray[np.int64],
    edges: NDArray[np.float64],
    threshold: float,
    n_calibration_bins: int,
    include_overall: bool,
) -> list[dict[str, Any]]:
    """Build the table rows of one classifier: overall (bin -1) then one per magnitude bin."""
    rows = []
    selections: list[tuple[int, float, float, NDArray[np.bool_]]] = []
    if include_overall:
        selections.append((-1, -math.inf, math.inf, np.ones(labels.size, dtype=bool)))
    for i in range(edges.size - 1):
        selections.append((i, float(edges[i]), float(edges[i + 1]), bin_index == i))
    for index, lo, hi, selected in selections:
        metrics = compute_metrics(
            labels[selected], values[selected], threshold=threshold, n_calibration_bins=n_calibration_bins
        )
        rows.append({"classifier": name, "bin": index, "mag_lo": lo, "mag_hi": hi, **metrics.as_dict()})
    return rows


_COLUMN_DESCRIPTIONS = {
    "classifier": "Classifier name.",
    "bin": "Magnitude bin index; -1 for all objects.",
    "mag_lo": "Lower magnitude edge (inclusive); -inf for all objects.",
    "mag_hi": "Upper magnitude edge (exclusive); +inf for all objects.",
    "n": "Objects scored (finite classifier output).",
    "n_missing": "Objects without a finite classifier output (not scored).",
    "n_galaxy": "Scored objects that are galaxies.",
    "n_star": "Scored objects that are stars.",
    "accuracy": "Fraction classified correctly.",
    "balanced_accuracy": "Mean of galaxy and star recall.",
    "galaxy_precision": "Fraction of predicted galaxies that are galaxies.",
    "galaxy_recall": "Fraction of galaxies predicted to be galaxies.",
    "star_precision": "Fraction of predicted stars that are stars.",
    "star_recall": "Fraction of stars predicted to be stars.",
    "auc": "Area under the ROC curve (galaxy positive, ties count 1/2).",
    "ece": "Expected calibration error.",
}


def _rows_to_table(rows: list[dict[str, Any]]) -> Table:
    """Turn metric rows into a table with fixed column order, dtypes and descriptions."""
    int_columns = {"bin", "n", "n_missing", "n_galaxy", "n_star"}
    table = Table()
    for column, description in _COLUMN_DESCRIPTIONS.items():
        values = [row[column] for row in rows]
        if column == "classifier":
            data: np.ndarray = np.array(values, dtype=str) if values else np.zeros(0, dtype="U1")
        elif column in int_columns:
            data = np.array(values, dtype=np.int64)
        else:
            data = np.array(values, dtype=np.float64)
        table[column] = data
        table[column].description = description
    return table


def metrics_by_magnitude(
    is_galaxy: ArrayLike,
    score: ArrayLike,
    mag: ArrayLike,
    *,
    mag_bins: ArrayLike = DEFAULT_MAG_BINS,
    threshold: float = 0.5,
    n_calibration_bins: int = 10,
    include_overall: bool = True,
    name: str = "classifier",
) -> Table:
    """Metrics of one classifier overall and in magnitude bins.

    Parameters
    ----------
    is_galaxy : array-like of `bool`
        True class of each object.
    score : array-like of `float`
        Classifier output; non-finite values are missing.
    mag : array-like of `float`
        Magnitude of each object (the true magnitude in our evaluations).
    mag_bins : array-like of `float`, optional
        Bin edges; bin ``i`` is ``[mag_bins[i], mag_bins[i + 1])``. Objects outside the edges
        (or with a non-finite magnitude) appear only in the overall row.
    threshold : `float`, optional
        Galaxy when ``score >= threshold``.
    n_calibration_bins : `int`, optional
        Probability bins for the expected calibration error.
    include_overall : `bool`, optional
        Whether to start with a row over all objects (``bin == -1``).
    name : `str`, optional
        Value of the ``classifier`` column.

    Returns
    -------
    table : `astropy.table.Table`
        Columns ``classifier``, ``bin``, ``mag_lo``, ``mag_hi``, ``n``, ``n_missing``,
        ``n_galaxy``, ``n_star`` and the metrics of `METRIC_NAMES`; one row per bin, every bin
        present even when empty (its metrics are then NaN).

    """
    return compare_classifiers(
        is_galaxy,
        {name: score},
        mag,
        mag_bins=mag_bins,
        threshold=threshold,
        n_calibration_bins=n_calibration_bins,
        include_overall=include_overall,
    )


def compare_classifiers(
    is_galaxy: ArrayLike,
    scores: Mapping[str, ArrayLike],
    mag: ArrayLike,
    *,
    mag_bins: ArrayLike = DEFAULT_MAG_BINS,
    threshold: float | Mapping[str, float] = 0.5,
    n_calibration_bins: int = 10,
    include_overall: bool = True,
) -> Table:
    """Compare several classifiers on the same objects, overall and in magnitude bins.

    Parameters
    ----------
    is_galaxy : array-like of `bool`
        True class of each object.
    scores : `~collections.abc.Mapping` [`str`, array-like]
        Classifier name to its output for every object (same order as ``is_galaxy``);
        non-finite values are missing for that classifier only.
    mag : array-like of `float`
        Magnitude of each object.
    mag_bins : array-like of `float`, optional
        Bin edges; see `metrics_by_magnitude`.
    threshold : `float` or `~collections.abc.Mapping` [`str`, `float`], optional
        Decision threshold, one for all or per classifier name (missing names use 0.5).
    n_calibration_bins : `int`, optional
        Probability bins for the expected calibration error.
    include_overall : `bool`, optional
        Whether each classifier's rows start with one over all objects (``bin == -1``).

    Returns
    -------
    table : `astropy.table.Table`
        One row per classifier per bin (classifiers in the order given), columns as in
        `metrics_by_magnitude`; ``meta`` holds ``mag_bins`` and ``thresholds``.

    Raises
    ------
    ValueError
        Raised if arrays have different lengths, the bin edges are not increasing, or a
        threshold is given for an unknown classifier.

    """
    labels = _as_labels(is_galaxy)
    magnitudes = _as_scores(mag, labels.size, name="mag")
    edges = _check_edges(mag_bins)
    bin_index = magnitude_bin_index(magnitudes, edges)
    if isinstance(threshold, Mapping):
        unknown = set(threshold) - set(scores)
        if unknown:
            raise ValueError(f"threshold given for unknown classifiers {sorted(unknown)}.")
        thresholds = {name: float(threshold.get(name, 0.5)) for name in scores}
    else:
        thresholds = {name: float(threshold) for name in scores}
    rows: list[dict[str, Any]] = []
    for name, score in scores.items():
        values = _as_scores(score, labels.size, name=f"scores[{name!r}]")
        rows.extend(
            _metrics_rows(
                name, labels, values, bin_index, edges, thresholds[name], n_calibration_bins, include_overall
            )
        )
    table = _rows_to_table(rows)
    table.meta["mag_bins"] = edges.tolist()
    table.meta["thresholds"] = thresholds
    return table
