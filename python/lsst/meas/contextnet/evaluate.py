"""Evaluate ContextNet classifications against simulation truth.

Three layers, each usable on its own:

- plain functions on astropy tables: `join_classification_truth` matches one exposure's
  ``contextnet_classification`` (and optionally ``src``) to its ``truth`` by ``sourceId``,
  `concatenate_joins` gathers exposures, and `evaluate_catalog` scores ContextNet, the DM
  ``extendedness``/``sizeExtendedness`` baselines and two trivial predictors overall and in
  magnitude bins (the paper's Table 2 and Figure 5);
- the ``contextnet evaluate`` command (`add_subcommand`), which reads a Butler repository and
  writes ``metrics.csv``, ``metrics.json`` and PNG figures;
- `ContextNetEvaluationTask`, a gathering `~lsst.pipe.base.PipelineTask` that writes the same
  metrics and figures as Butler datasets.

Truth rows with ``sourceId == -1`` (or null) were not detected: they cannot be classified, so
they are left out of every metric, and their number is reported.
"""

from __future__ import annotations

__all__ = [
    "CLASSIFIER_ORDER",
    "ContextNetEvaluationConfig",
    "ContextNetEvaluationConnections",
    "ContextNetEvaluationTask",
    "EvaluationResult",
    "JoinResult",
    "add_subcommand",
    "concatenate_joins",
    "evaluate_catalog",
    "join_classification_truth",
    "load_from_butler",
    "make_figures",
    "parse_mag_bins",
    "run_evaluate_command",
    "write_outputs",
]

import argparse
import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lsst.pipe.base.connectionTypes as cT
import numpy as np
from astropy.table import Table, vstack
from lsst.pex.config import ChoiceField, Field, FieldValidationError, ListField, RangeField
from lsst.pipe.base import (
    InputQuantizedConnection,
    NoWorkFound,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)

from .metrics import (
    DEFAULT_MAG_BINS,
    METRIC_NAMES,
    MagnitudeOnlyClassifier,
    MajorityClassClassifier,
    compare_classifiers,
    cross_fit_predict,
    reliability_bins,
)
from .peer import CatalogPeer
from .serialization import json_compatible

if TYPE_CHECKING:
    from lsst.daf.butler import Butler
    from matplotlib.figure import Figure

_LOG = logging.getLogger(__name__)

PEER_NAME = "catalog_gbdt"
"""Name of the catalog-feature peer in evaluation tables."""

CLASSIFIER_ORDER: tuple[str, ...] = (
    "ContextNet",
    "extendedness",
    "sizeExtendedness",
    "majority_class",
    "magnitude_only",
)
"""Names of the classifiers compared by `evaluate_catalog`, in display order."""

_COUNT_KEYS: tuple[str, ...] = (
    "n_exposures",
    "n_classified",
    "n_truth",
    "n_truth_undetected",
    "n_truth_detected",
    "n_matched",
    "n_unmatched_detections",
    "n_truth_not_classified",
    "n_truth_duplicate_matches",
)

_FIGURE_NAMES: dict[str, str] = {
    "accuracyPlot": "accuracy_vs_magnitude",
    "parameterPlot": "galaxyProb_vs_truth",
    "sizePlot": "galaxyProb_vs_size",
    "reliabilityPlot": "reliability",
}


# ---------------------------------------------------------------------------------------------
# Joining
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class JoinResult:
    """Classifications matched to truth, with the bookkeeping of what did not match."""

    catalog: Table
    """One row per classified source that has a truth match: the classification columns, then
    the truth columns (``truth_`` prefixed where a name collides), then ``src`` columns not
    already present, then ``visit`` and ``detector`` when known."""

    counts: dict[str, int]
    """``n_exposures``; ``n_classified`` (classification rows); ``n_truth`` (truth rows);
    ``n_truth_undetected`` (truth rows with ``sourceId`` -1 or null, excluded from metrics);
    ``n_truth_detected``; ``n_matched`` (rows of ``catalog``); ``n_unmatched_detections``
    (classified sources with no truth, e.g. spurious detections, excluded);
    ``n_truth_not_classified`` (detected truth whose ``sourceId`` is not in the classification);
    ``n_truth_duplicate_matches`` (extra truth rows sharing a ``sourceId``, e.g. blends; the
    brightest is kept)."""


def _int_ids(column: Any, fill: int = -1) -> np.ndarray:
    """Return a column of integer ids as int64, nulls replaced by ``fill``."""
    return np.asarray(np.ma.filled(np.ma.asarray(column), fill), dtype=np.int64)


def join_classification_truth(
    classification: Table,
    truth: Table,
    src: Table | None = None,
    *,
    visit: int | None = None,
    detector: int | None = None,
) -> JoinResult:
    """Match one exposure's classifications to its truth (and source) table by ``sourceId``.

    Parameters
    ----------
    classification : `astropy.table.Table`
        ``contextnet_classification`` of one (visit, detector); ``sourceId`` must be unique.
    truth : `astropy.table.Table`
        ``truth`` of the same exposure; ``sourceId`` is -1 (or null) for undetected objects.
        When several truth rows share a ``sourceId`` (a blend), the brightest (smallest ``mag``,
        if that column exists) is the match.
    src : `astropy.table.Table`, optional
        ``src`` of the same exposure; its columns that the classification lacks are added
        (e.g. ``extendedness_flag``). It must contain every classified ``sourceId``.
    visit, detector : `int`, optional
        Added as ``visit`` and ``detector`` columns (used to group exposures).

    Returns
    -------
    result : `JoinResult`
        Matched rows, in classification order, and counts.

    Raises
    ------
    ValueError
        Raised if a table has no ``sourceId`` column, the classification repeats a
        ``sourceId``, or ``src`` lacks a classified source.

    """
    for name, table in (("classification", classification), ("truth", truth), ("src", src)):
        if table is not None and "sourceId" not in table.colnames:
            raise ValueError(f"{name} table has no 'sourceId' column (columns: {table.colnames}).")
    class_ids = _int_ids(classification["sourceId"])
    unique_ids, id_counts = np.unique(class_ids, return_counts=True)
    if np.any(id_counts > 1):
        raise ValueError(
            f"classification repeats sourceId values, e.g. {unique_ids[id_counts > 1][:5].tolist()}."
        )

    truth_ids = _int_ids(truth["sourceId"])
    detected = truth_ids >= 0
    detected_rows = np.flatnonzero(detected)
    if "mag" in truth.colnames:
        mags = np.ma.filled(np.ma.asarray(truth["mag"], dtype=np.float64), np.inf)[detected_rows]
        detected_rows = detected_rows[np.lexsort((mags, truth_ids[detected_rows]))]
    else:
        detected_rows = detected_rows[np.argsort(truth_ids[detected_rows], kind="stable")]
    sorted_ids = truth_ids[detected_rows]
    keep_first = np.ones(sorted_ids.size, dtype=bool)
    keep_first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    n_duplicates = int(np.count_nonzero(~keep_first))
    truth_rows = detected_rows[keep_first]
    truth_sorted_ids = sorted_ids[keep_first]

    position = np.searchsorted(truth_sorted_ids, class_ids)
    position_clipped = np.minimum(position, max(truth_sorted_ids.size - 1, 0))
    found = (
        (position < truth_sorted_ids.size) & (truth_sorted_ids[position_clipped] == class_ids)
        if truth_sorted_ids.size
        else np.zeros(class_ids.size, dtype=bool)
    )
    matched_truth = truth[truth_rows[position_clipped[found]]] if np.any(found) else truth[:0]

    catalog = Table(classification[found], copy=True)
    catalog.meta = {}
    for name in truth.colnames:
        if name == "sourceId":
            continue
        new_name = f"truth_{name}" if name in catalog.colnames else name
        catalog[new_name] = matched_truth[name]

    if src is not None:
        src_ids = _int_ids(src["sourceId"])
        src_order = np.argsort(src_ids, kind="stable")
        src_sorted = src_ids[src_order]
        matched_ids = class_ids[found]
        src_position = np.searchsorted(src_sorted, matched_ids)
        src_clipped = np.minimum(src_position, max(src_sorted.size - 1, 0))
        in_src = (src_position < src_sorted.size) & (src_sorted[src_clipped] == matched_ids)
        if not np.all(in_src):
            raise ValueError(
                f"src lacks {int(np.count_nonzero(~in_src))} classified sourceId values, "
                f"e.g. {matched_ids[~in_src][:5].tolist()}; classification and src do not belong together."
            )
        src_rows = src[src_order[src_clipped]]
        for name in src.colnames:
            if name not in catalog.colnames:
                catalog[name] = src_rows[name]

    for name, value in (("visit", visit), ("detector", detector)):
        if value is not None and name not in catalog.colnames:
            catalog[name] = np.full(len(catalog), int(value), dtype=np.int64)

    n_matched = int(np.count_nonzero(found))
    counts = {
        "n_exposures": 1,
        "n_classified": int(class_ids.size),
        "n_truth": int(truth_ids.size),
        "n_truth_undetected": int(np.count_nonzero(~detected)),
        "n_truth_detected": int(np.count_nonzero(detected)),
        "n_matched": n_matched,
        "n_unmatched_detections": int(class_ids.size - n_matched),
        "n_truth_not_classified": int(truth_sorted_ids.size - n_matched),
        "n_truth_duplicate_matches": n_duplicates,
    }
    return JoinResult(catalog=catalog, counts=counts)


def concatenate_joins(joins: Sequence[JoinResult]) -> JoinResult:
    """Stack the joined catalogs of several exposures and add up their counts.

    Parameters
    ----------
    joins : `~collections.abc.Sequence` [`JoinResult`]
        Per-exposure results.

    Returns
    -------
    result : `JoinResult`
        All rows (columns missing in some exposures are masked there) and summed counts.

    """
    counts = {key: sum(join.counts.get(key, 0) for join in joins) for key in _COUNT_KEYS}
    catalogs = [join.catalog for join in joins]
    if not catalogs:
        return JoinResult(catalog=Table(), counts=counts)
    catalog = (
        vstack(catalogs, join_type="outer", metadata_conflicts="silent") if len(catalogs) > 1 else catalogs[0]
    )
    return JoinResult(catalog=catalog, counts=counts)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def _float_column(catalog: Table, name: str) -> np.ndarray:
    """Return a column as float64 with masked entries as NaN."""
    return np.asarray(np.ma.filled(np.ma.asarray(catalog[name], dtype=np.float64), np.nan), dtype=np.float64)


def _bool_column(catalog: Table, name: str, fill: bool) -> np.ndarray:
    """Return a column as bool with masked entries as ``fill``."""
    return np.asarray(np.ma.filled(np.ma.asarray(catalog[name]), fill), dtype=bool)


def _table_rows(table: Table) -> list[dict[str, Any]]:
    return [{name: json_compatible(row[name]) for name in table.colnames} for row in table]


@dataclasses.dataclass
class EvaluationResult:
    """Everything `evaluate_catalog` computes."""

    catalog: Table
    """The evaluated objects: the input catalog plus ``score_majority_class`` and
    ``score_magnitude_only`` (out-of-fold trivial predictions) when computed."""

    metrics: Table
    """`lsst.meas.contextnet.metrics.compare_classifiers` output: one row per classifier for
    all objects (``bin == -1``) then one per magnitude bin."""

    reliability: dict[str, Table]
    """Reliability-diagram bins per classifier whose score lies in [0, 1]."""

    counts: dict[str, int]
    """Join bookkeeping (see `JoinResult.counts`) plus ``n_evaluated`` and ``n_flagged``
    (evaluated objects with ``classification_flag`` set)."""

    settings: dict[str, Any]
    """Parameters of the evaluation (bins, thresholds, columns, seed, ...)."""

    classifiers: list[str]
    """Names of the classifiers evaluated, in display order."""

    @property
    def summary(self) -> Table:
        """Rows of `metrics` over all objects (``bin == -1``), one per classifier."""
        return self.metrics[self.metrics["bin"] == -1]

    @property
    def by_magnitude(self) -> Table:
        """Rows of `metrics` for the magnitude bins."""
        return self.metrics[self.metrics["bin"] >= 0]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON/YAML-serializable description (non-finite numbers become `None`).

        Returns
        -------
        data : `dict` [`str`, `typing.Any`]
            Keys ``counts``, ``settings``, ``classifiers``, ``summary`` (list of per-classifier
            dicts), ``by_magnitude`` (list of per-bin dicts) and ``reliability`` (classifier name
            to list of bins).

        """
        summary = self.summary.copy()
        summary.remove_columns(["bin", "mag_lo", "mag_hi"])
        return {
            "counts": json_compatible(self.counts),
            "settings": json_compatible(self.settings),
            "classifiers": list(self.classifiers),
            "summary": _table_rows(summary),
            "by_magnitude": _table_rows(self.by_magnitude),
            "reliability": {name: _table_rows(table) for name, table in self.reliability.items()},
        }

    def format_counts(self) -> str:
        """Describe what was evaluated and what was left out.

        Returns
        -------
        text : `str`
            A few lines of counts.

        """
        c = self.counts
        return (
            f"exposures: {c.get('n_exposures', 0)}; truth objects: {c.get('n_truth', 0)} "
            f"({c.get('n_truth_undetected', 0)} undetected, excluded from the metrics)\n"
            f"classified sources: {c.get('n_classified', 0)}; matched to truth and evaluated: "
            f"{c.get('n_evaluated', 0)}; without truth match (excluded): "
            f"{c.get('n_unmatched_detections', 0)}\n"
            f"detected truth not in the classification: {c.get('n_truth_not_classified', 0)}; "
            f"blended truth rows (brightest kept): {c.get('n_truth_duplicate_matches', 0)}; "
            f"evaluated with classification_flag set: {c.get('n_flagged', 0)}"
        )

    def format_summary(self) -> str:
        """Format the overall comparison in the style of the paper's Table 2.

        Returns
        -------
        text : `str`
            One line per classifier: scored and missing counts, accuracy, balanced accuracy,
            precision and recall of both classes, AUC and ECE.

        """
        header = (
            f"{'classifier':<18}{'n':>9}{'missing':>9}{'accuracy':>10}{'bal.acc':>9}"
            f"{'gal.prec':>10}{'gal.rec':>9}{'star.prec':>11}{'star.rec':>10}{'AUC':>8}{'ECE':>8}"
        )
        lines = [header, "-" * len(header)]
        for row in self.summary:
            values = "".join(
                f"{_format_number(row[name]):>{width}}"
                for name, width in zip(METRIC_NAMES, (10, 9, 10, 9, 11, 10, 8, 8))
            )
            lines.append(f"{row['classifier']:<18}{row['n']:>9d}{row['n_missing']:>9d}{values}")
        return "\n".join(lines)

    def format_by_magnitude(self, metric: str = "accuracy") -> str:
        """Format one metric per magnitude bin, classifiers side by side.

        Parameters
        ----------
        metric : `str`, optional
            Metric column to show (default ``accuracy``).

        Returns
        -------
        text : `str`
            One line per magnitude bin with the objects' counts (from the first classifier's
            scored objects) and the metric of each classifier.

        """
        rows = self.by_magnitude
        names = self.classifiers
        width = max(12, *(len(name) + 2 for name in names)) if names else 12
        header = f"{'mag range':<14}{'n':>8}{'n_gal':>8}{'n_star':>8}" + "".join(
            f"{name:>{width}}" for name in names
        )
        lines = [f"{metric} by true magnitude", header, "-" * len(header)]
        if not names:
            return "\n".join(lines)
        first = rows[rows["classifier"] == names[0]]
        by_name = {name: rows[rows["classifier"] == name] for name in names}
        for i, row in enumerate(first):
            values = "".join(f"{_format_number(by_name[name][i][metric]):>{width}}" for name in names)
            lines.append(
                f"{row['mag_lo']:>6.2f}-{row['mag_hi']:<7.2f}{row['n']:>8d}{row['n_galaxy']:>8d}"
                f"{row['n_star']:>8d}{values}"
            )
        return "\n".join(lines)


def _format_number(value: float) -> str:
    return "-" if not math.isfinite(float(value)) else f"{float(value):.3f}"


def evaluate_catalog(
    catalog: Table,
    *,
    mag_bins: Sequence[float] = DEFAULT_MAG_BINS,
    threshold: float = 0.5,
    baseline_threshold: float = 0.5,
    n_calibration_bins: int = 10,
    prob_column: str = "classification_galaxyProb",
    flag_column: str = "classification_flag",
    baseline_columns: Sequence[str] = ("extendedness", "sizeExtendedness"),
    class_column: str = "is_galaxy",
    mag_column: str = "mag",
    group_column: str = "visit",
    exclude_flagged: bool = False,
    do_trivial: bool = True,
    trivial_mag_bins: Sequence[float] | None = None,
    n_folds: int = 5,
    seed: int = 0,
    counts: Mapping[str, int] | None = None,
    peer: CatalogPeer | None = None,
) -> EvaluationResult:
    """Score ContextNet, the DM baselines, the catalog peer and trivial predictors on matched objects.

    Parameters
    ----------
    catalog : `astropy.table.Table`
        Joined catalog (`join_classification_truth` / `concatenate_joins`).
    mag_bins : `~collections.abc.Sequence` [`float`], optional
        Magnitude bin edges for the per-bin metrics (``mag_column`` is binned).
    threshold : `float`, optional
        ContextNet and trivial predictors: galaxy when P(galaxy) >= ``threshold``.
    baseline_threshold : `float`, optional
        Baselines: galaxy when the score >= ``baseline_threshold`` (0.5 turns the 0/1
        ``extendedness`` into its own decision and cuts ``sizeExtendedness`` at 0.5).
    n_calibration_bins : `int`, optional
        Probability bins of the reliability diagram and ECE.
    prob_column, flag_column : `str`, optional
        ContextNet probability and flag columns.
    baseline_columns : `~collections.abc.Sequence` [`str`], optional
        Baseline score columns; one that is absent is skipped (noted in ``settings``). Where a
        ``<name>_flag`` column exists and is set, that baseline's score is missing.
    class_column, mag_column : `str`, optional
        True class (bool) and true magnitude columns.
    group_column : `str`, optional
        Column grouping objects into exposures for the trivial predictors' cross-fitting (see
        `lsst.meas.contextnet.metrics.cross_fit_predict`); ignored when absent.
    exclude_flagged : `bool`, optional
        Treat ContextNet probabilities with ``flag_column`` set as missing.
    do_trivial : `bool`, optional
        Also evaluate the majority-class and magnitude-only predictors.
    trivial_mag_bins : `~collections.abc.Sequence` [`float`], optional
        Bin edges of the magnitude-only predictor (default: its own 0.25 mag bins).
    n_folds : `int`, optional
        Cross-fitting folds of the trivial predictors.
    seed : `int`, optional
        Seed of the fold assignment.
    counts : `~collections.abc.Mapping` [`str`, `int`], optional
        Join bookkeeping to carry into the result.
    peer : `~lsst.meas.contextnet.peer.CatalogPeer`, optional
        The catalog-feature peer, scored as ``catalog_gbdt`` (the catalog needs the ``src``
        flux and size columns).

    Returns
    -------
    result : `EvaluationResult`
        Metrics, reliability bins, counts and the evaluated catalog.

    Raises
    ------
    ValueError
        Raised if the probability, class or magnitude column is missing.

    """
    for name in (prob_column, class_column, mag_column):
        if name not in catalog.colnames:
            raise ValueError(f"catalog has no {name!r} column (columns: {catalog.colnames}).")
    catalog = catalog.copy(copy_data=False)
    labels = _bool_column(catalog, class_column, fill=False)
    mag = _float_column(catalog, mag_column)
    scores: dict[str, np.ndarray] = {}
    thresholds: dict[str, float] = {}

    prob = _float_column(catalog, prob_column)
    flagged = (
        _bool_column(catalog, flag_column, fill=False)
        if flag_column in catalog.colnames
        else np.zeros(len(catalog), bool)
    )
    if exclude_flagged:
        prob = np.where(flagged, np.nan, prob)
    scores["ContextNet"] = prob
    thresholds["ContextNet"] = threshold

    skipped = []
    for name in baseline_columns:
        if name not in catalog.colnames:
            skipped.append(name)
            continue
        score = _float_column(catalog, name)
        if f"{name}_flag" in catalog.colnames:
            score = np.where(_bool_column(catalog, f"{name}_flag", fill=False), np.nan, score)
        scores[name] = score
        thresholds[name] = baseline_threshold

    peer_skipped = None
    if peer is not None:
        try:
            scores[PEER_NAME] = peer.predict(catalog)
        except ValueError as exc:  # the catalog lacks the src columns the peer needs
            peer_skipped = str(exc)
            _LOG.warning("Not scoring the catalog peer: %s", exc)
        else:
            thresholds[PEER_NAME] = threshold
            catalog[f"score_{PEER_NAME}"] = scores[PEER_NAME]

    if do_trivial:
        rng = np.random.default_rng(seed)
        groups = np.asarray(catalog[group_column]) if group_column in catalog.colnames else None
        good = np.isfinite(mag)
        factories = {
            "majority_class": MajorityClassClassifier,
            "magnitude_only": lambda: MagnitudeOnlyClassifier(trivial_mag_bins),
        }
        for name, factory in factories.items():
            score = np.full(len(catalog), np.nan)
            if np.count_nonzero(good) >= 2:
                score[good] = cross_fit_predict(
                    factory,
                    mag[good],
                    labels[good],
                    groups=None if groups is None else groups[good],
                    n_folds=n_folds,
                    rng=rng,
                )
            scores[name] = score
            thresholds[name] = threshold
            catalog[f"score_{name}"] = score

    metrics = compare_classifiers(
        labels,
        scores,
        mag,
        mag_bins=mag_bins,
        threshold=thresholds,
        n_calibration_bins=n_calibration_bins,
    )
    reliability = {}
    for name, score in scores.items():
        finite = score[np.isfinite(score)]
        if finite.size == 0 or (finite.min() >= 0.0 and finite.max() <= 1.0):
            reliability[name] = reliability_bins(labels, score, n_bins=n_calibration_bins)

    all_counts = {key: int((counts or {}).get(key, 0)) for key in _COUNT_KEYS}
    all_counts.update({key: int(value) for key, value in (counts or {}).items()})
    all_counts["n_evaluated"] = len(catalog)
    all_counts["n_flagged"] = int(np.count_nonzero(flagged))
    settings = {
        "mag_bins": [float(x) for x in mag_bins],
        "mag_column": mag_column,
        "class_column": class_column,
        "prob_column": prob_column,
        "threshold": float(threshold),
        "baseline_threshold": float(baseline_threshold),
        "n_calibration_bins": int(n_calibration_bins),
        "exclude_flagged": bool(exclude_flagged),
        "baselines_missing": skipped,
        "peer": None if peer is None else {"card": peer.card, "skipped": peer_skipped},
        "trivial": (
            {
                "n_folds": int(n_folds),
                "seed": int(seed),
                "group_column": group_column if group_column in catalog.colnames else None,
                "method": "K-fold cross-fitting by group: each fold predicted by a fit on the others",
            }
            if do_trivial
            else None
        ),
    }
    return EvaluationResult(
        catalog=catalog,
        metrics=metrics,
        reliability=reliability,
        counts=all_counts,
        settings=settings,
        classifiers=list(scores),
    )


def make_figures(
    result: EvaluationResult,
    *,
    band: str | None = None,
    max_points: int | None = 20000,
    seed: int = 0,
) -> dict[str, Figure]:
    """Draw the evaluation figures.

    Parameters
    ----------
    result : `EvaluationResult`
        Output of `evaluate_catalog`.
    band : `str`, optional
        Band name for axis labels.
    max_points : `int` or `None`, optional
        Largest number of objects drawn in the scatter plots.
    seed : `int`, optional
        Seed of the scatter plots' subsample.

    Returns
    -------
    figures : `dict` [`str`, `matplotlib.figure.Figure`]
        ``accuracy_vs_magnitude`` (Figure 5), ``galaxyProb_vs_truth`` (Figure 6; only when the
        truth size/shape columns exist), ``galaxyProb_vs_size`` (Figure 7; likewise) and
        ``reliability``.

    """
    from .plotting import (
        plot_magnitude_performance,
        plot_probability_vs_size,
        plot_probability_vs_truth,
        plot_reliability_diagram,
    )

    settings = result.settings
    catalog = result.catalog
    baselines = [name for name in ("extendedness", "sizeExtendedness") if name in result.classifiers]
    figures: dict[str, Figure] = {
        "accuracy_vs_magnitude": plot_magnitude_performance(
            _float_column(catalog, settings["mag_column"]) if len(catalog) else np.zeros(0),
            _bool_column(catalog, settings["class_column"], False) if len(catalog) else np.zeros(0, bool),
            result.metrics,
            classifiers=["ContextNet", *baselines],
            band=band,
        )
    }
    parameter_columns = ("hlr_arcsec", "ellipticity", "rotation_deg")
    if all(name in catalog.colnames for name in parameter_columns):
        figures["galaxyProb_vs_truth"] = plot_probability_vs_truth(
            catalog,
            prob_column=settings["prob_column"],
            class_column=settings["class_column"],
            mag_column=settings["mag_column"],
            max_points=max_points,
            seed=seed,
            band=band,
        )
        figures["galaxyProb_vs_size"] = plot_probability_vs_size(
            catalog,
            prob_column=settings["prob_column"],
            class_column=settings["class_column"],
            mag_column=settings["mag_column"],
            max_points=max_points,
            seed=seed,
            band=band,
        )
    figures["reliability"] = plot_reliability_diagram(
        {name: result.reliability[name] for name in ["ContextNet", *baselines] if name in result.reliability}
    )
    return figures


def write_outputs(
    result: EvaluationResult, output: str | Path, figures: Mapping[str, Figure] | None = None
) -> list[Path]:
    """Write ``metrics.csv``, ``metrics.json``, ``summary.txt`` and ``<figure>.png`` files.

    Parameters
    ----------
    result : `EvaluationResult`
        Output of `evaluate_catalog`.
    output : `str` or `pathlib.Path`
        Directory; created if needed, existing files of the same names are replaced.
    figures : `~collections.abc.Mapping` [`str`, `matplotlib.figure.Figure`], optional
        Figures to save as ``<name>.png``.

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        Files written.

    """
    directory = Path(output)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    csv_path = directory / "metrics.csv"
    result.metrics.write(csv_path, format="ascii.csv", overwrite=True)
    paths.append(csv_path)
    json_path = directory / "metrics.json"
    json_path.write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    paths.append(json_path)
    text_path = directory / "summary.txt"
    text_path.write_text(
        "\n\n".join([result.format_counts(), result.format_summary(), result.format_by_magnitude()]) + "\n"
    )
    paths.append(text_path)
    for name, figure in (figures or {}).items():
        path = directory / f"{name}.png"
        figure.savefig(path, dpi=110)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Butler access and the command line
# ---------------------------------------------------------------------------------------------


def load_from_butler(
    butler: Butler,
    collections: Sequence[str],
    *,
    where: str = "",
    instrument: str | None = None,
    classification_type: str = "contextnet_classification",
    truth_type: str = "truth",
    src_type: str | None = "src",
    progress: bool = True,
) -> tuple[JoinResult, list[str]]:
    """Read every classification in some collections with its truth (and src) and join them.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the repository.
    collections : `~collections.abc.Sequence` [`str`]
        Collections to search, in order (first match wins for each data ID); they must hold the
        classifications and the truth (e.g. the classification run and the simulation run).
    where : `str`, optional
        Butler query expression restricting the data IDs (e.g. ``"visit IN (1, 2)"``).
    instrument : `str`, optional
        Instrument constraint. Default: none, except that a ``where`` expression in a
        repository with a single instrument is constrained to it (the Butler requires the
        instrument of a ``visit``/``detector`` constraint).
    classification_type, truth_type : `str`, optional
        Dataset type names.
    src_type : `str` or `None`, optional
        Dataset type of the source table, read when present for extra columns (flags); `None`
        to skip.
    progress : `bool`, optional
        Show a progress bar on a terminal.

    Returns
    -------
    joined : `JoinResult`
        Joined catalog of all exposures; ``counts`` also has ``n_exposures_without_truth``.
    bands : `list` [`str`]
        Bands of the exposures read.

    Raises
    ------
    ValueError
        Raised if no classification is found, or none has a truth table.

    """
    from lsst.daf.butler import ButlerUserError, EmptyQueryResultError, MissingDatasetTypeError
    from lsst.daf.butler.registry import DataIdError, UserExpressionError
    from tqdm import tqdm

    collections = list(collections)
    if instrument is None and where:
        instruments = butler.query_dimension_records("instrument", explain=False)
        if len(instruments) == 1:
            instrument = str(instruments[0].name)
    data_id = {"instrument": instrument} if instrument is not None else None
    try:
        refs = butler.query_datasets(
            classification_type,
            collections=collections,
            where=where,
            data_id=data_id,
            find_first=True,
            limit=None,
        )
    except (
        EmptyQueryResultError,
        MissingDatasetTypeError,
        ButlerUserError,
        DataIdError,
        UserExpressionError,
    ) as exc:
        raise ValueError(
            f"no {classification_type!r} datasets in collections {collections}"
            + (f" with where={where!r}" if where else "")
            + f": {exc}"
        ) from exc
    if not refs:
        raise ValueError(f"no {classification_type!r} datasets in collections {collections}.")
    refs = sorted(
        refs, key=lambda ref: (str(ref.dataId["instrument"]), ref.dataId["visit"], ref.dataId["detector"])
    )
    joins = []
    bands: set[str] = set()
    without_truth = 0
    for ref in tqdm(refs, desc="reading", unit="detector", disable=None if progress else True):
        data_id = ref.dataId
        truth_ref = butler.find_dataset(truth_type, data_id, collections=collections)
        if truth_ref is None:
            _LOG.warning("No %r for %s; skipping this exposure.", truth_type, data_id)
            without_truth += 1
            continue
        src = None
        if src_type is not None:
            try:
                src_ref = butler.find_dataset(src_type, data_id, collections=collections)
            except MissingDatasetTypeError:
                src_ref = None
            if src_ref is not None:
                src = butler.get(src_ref)
        joins.append(
            join_classification_truth(
                butler.get(ref),
                butler.get(truth_ref),
                src,
                visit=int(data_id["visit"]),
                detector=int(data_id["detector"]),
            )
        )
        try:
            bands.add(str(data_id["band"]))
        except KeyError:
            pass
    if not joins:
        raise ValueError(
            f"none of the {len(refs)} {classification_type!r} datasets has a {truth_type!r} in {collections}."
        )
    joined = concatenate_joins(joins)
    joined.counts["n_exposures_without_truth"] = without_truth
    return joined, sorted(bands)


def parse_mag_bins(values: Sequence[str]) -> list[float]:
    """Parse ``--mag-bins``: either edges (``18 19 20``) or one ``START:STOP:STEP`` range.

    Parameters
    ----------
    values : `~collections.abc.Sequence` [`str`]
        Command-line tokens.

    Returns
    -------
    edges : `list` [`float`]
        Bin edges (a range includes STOP when it falls on the grid).

    Raises
    ------
    ValueError
        Raised if the tokens are not numbers, or the edges are not increasing.

    """
    if len(values) == 1 and ":" in values[0]:
        parts = values[0].split(":")
        if len(parts) != 3:
            raise ValueError(f"--mag-bins range must be START:STOP:STEP; got {values[0]!r}.")
        start, stop, step = (float(p) for p in parts)
        if step <= 0 or stop <= start:
            raise ValueError(f"--mag-bins range needs STOP > START and STEP > 0; got {values[0]!r}.")
        n = int(math.floor((stop - start) / step + 1e-9))
        edges = [start + i * step for i in range(n + 1)]
    else:
        try:
            edges = [float(v) for v in values]
        except ValueError as exc:
            raise ValueError(f"--mag-bins values must be numbers; got {list(values)}.") from exc
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"--mag-bins needs at least two increasing edges; got {edges}.")
    return edges


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand to the ``contextnet`` command.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        Subparsers of the top-level parser.

    """
    defaults = ContextNetEvaluationConfig()
    parser = subparsers.add_parser(
        "evaluate",
        help="compare ContextNet with the DM extendedness baselines against simulation truth",
        description=(
            "Join every contextnet_classification in the collections with its truth (by sourceId) and "
            "write metrics.csv, metrics.json, summary.txt and PNG figures to --output; print the "
            "comparison. Truth objects that were not detected are counted, not scored."
        ),
    )
    parser.add_argument("--repo", required=True, help="Butler repository (path or URI).")
    parser.add_argument(
        "--collections",
        required=True,
        nargs="+",
        metavar="C",
        help="collections holding the classifications and the truth, searched in order.",
    )
    parser.add_argument("--output", required=True, help="output directory (created if needed).")
    parser.add_argument(
        "--mag-bins",
        nargs="+",
        metavar="EDGE",
        default=None,
        help=(
            "magnitude bin edges, e.g. '18 19 20 21' or a range '16:26:0.5' "
            f"(default {defaults.magBins[0]:g}:{defaults.magBins[-1]:g}:"
            f"{defaults.magBins[1] - defaults.magBins[0]:g})."
        ),
    )
    parser.add_argument("--where", default="", help='Butler query expression, e.g. "visit IN (1, 2)".')
    parser.add_argument(
        "--instrument",
        default=None,
        help="instrument constraint (default: the repository's only instrument when --where is given).",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=defaults.threshold,
        help="ContextNet galaxy when P(galaxy) >= this (default %(default)s).",
    )
    parser.add_argument(
        "--exclude-flagged",
        action="store_true",
        help="treat ContextNet probabilities with classification_flag set as missing.",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the trivial predictors' folds (default %(default)s).",
    )
    parser.add_argument("--no-plots", action="store_true", help="do not write the PNG figures.")
    parser.add_argument(
        "--peer",
        default=None,
        help="catalog-feature peer file written by 'contextnet train-peer' (default: the shipped one).",
    )
    parser.add_argument("--no-peer", action="store_true", help="do not score the catalog-feature peer.")
    parser.set_defaults(func=run_evaluate_command)


def run_evaluate_command(args: argparse.Namespace) -> int:
    """Run ``contextnet evaluate`` with parsed arguments.

    Parameters
    ----------
    args : `argparse.Namespace`
        Parsed arguments of the subcommand.

    Returns
    -------
    status : `int`
        0 on success.

    """
    from lsst.daf.butler import Butler

    defaults = ContextNetEvaluationConfig()
    mag_bins = parse_mag_bins(args.mag_bins) if args.mag_bins else list(defaults.magBins)
    if not 0.0 < args.threshold < 1.0:
        raise ValueError(f"--threshold must be in (0, 1); got {args.threshold}.")
    butler = Butler.from_config(args.repo, writeable=False)
    joined, bands = load_from_butler(butler, args.collections, where=args.where, instrument=args.instrument)
    result = evaluate_catalog(
        joined.catalog,
        counts=joined.counts,
        mag_bins=mag_bins,
        threshold=args.threshold,
        baseline_threshold=defaults.baselineThreshold,
        n_calibration_bins=defaults.nCalibrationBins,
        exclude_flagged=args.exclude_flagged,
        n_folds=defaults.nFolds,
        seed=args.seed,
        peer=None if args.no_peer else CatalogPeer.load(args.peer),
    )
    result.settings["repo"] = str(args.repo)
    result.settings["collections"] = list(args.collections)
    result.settings["where"] = args.where
    result.settings["bands"] = bands
    figures = None
    if not args.no_plots:
        figures = make_figures(
            result,
            band=bands[0] if len(bands) == 1 else None,
            max_points=defaults.maxPlotPoints,
            seed=args.seed,
        )
    paths = write_outputs(result, args.output, figures)
    print(result.format_counts())
    print()
    print(result.format_summary())
    print()
    print(result.format_by_magnitude())
    print()
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0


# ---------------------------------------------------------------------------------------------
# PipelineTask
# ---------------------------------------------------------------------------------------------


class ContextNetEvaluationConnections(PipelineTaskConnections, dimensions=("instrument",)):
    """Connections of `ContextNetEvaluationTask`: gather every (visit, detector) of a quantum."""

    classification = cT.Input(
        doc="ContextNet classifications, one table per detector.",
        name="contextnet_classification",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
    )
    truth = cT.Input(
        doc="Simulation truth per detector (sourceId -1 for undetected objects).",
        name="truth",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
    )
    catalog = cT.Input(
        doc="Source tables per detector: the catalog columns the catalog-feature peer scores.",
        name="src",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
    )
    metrics = cT.Output(
        doc="Metrics per classifier, overall (bin -1) and per magnitude bin.",
        name="contextnet_metrics",
        storageClass="ArrowAstropy",
        dimensions=("instrument",),
    )
    summary = cT.Output(
        doc="Counts, settings, overall and per-bin metrics and reliability bins as a dictionary.",
        name="contextnet_metrics_summary",
        storageClass="StructuredDataDict",
        dimensions=("instrument",),
    )
    accuracyPlot = cT.Output(
        doc="Magnitude distributions and accuracy against magnitude (paper Figure 5).",
        name="contextnet_accuracy_vs_magnitude_plot",
        storageClass="Plot",
        dimensions=("instrument",),
    )
    parameterPlot = cT.Output(
        doc="P(galaxy) against true size, magnitude, ellipticity and rotation (paper Figure 6).",
        name="contextnet_galaxyProb_vs_truth_plot",
        storageClass="Plot",
        dimensions=("instrument",),
    )
    sizePlot = cT.Output(
        doc="P(galaxy) against true size colored by magnitude (paper Figure 7).",
        name="contextnet_galaxyProb_vs_size_plot",
        storageClass="Plot",
        dimensions=("instrument",),
    )
    reliabilityPlot = cT.Output(
        doc="Reliability diagram of ContextNet and the baselines.",
        name="contextnet_reliability_plot",
        storageClass="Plot",
        dimensions=("instrument",),
    )

    def __init__(self, *, config: ContextNetEvaluationConfig | None = None) -> None:
        if config is None:
            return
        if config.scope == "visit":
            self.dimensions.add("visit")
            # Per-visit outputs get their own dataset types (a repository cannot hold one name with
            # two sets of dimensions).
            for name in list(self.outputs):
                connection = getattr(self, name)
                setattr(
                    self,
                    name,
                    dataclasses.replace(
                        connection, name=connection.name + "_visit", dimensions=("instrument", "visit")
                    ),
                )
        if not config.doPlots:
            for name in _FIGURE_NAMES:
                delattr(self, name)
        if not config.doPeer:
            del self.catalog


class ContextNetEvaluationConfig(PipelineTaskConfig, pipelineConnections=ContextNetEvaluationConnections):
    """Configuration of `ContextNetEvaluationTask` (its defaults are also those of the CLI)."""

    scope = ChoiceField[str](
        doc=(
            "What one quantum gathers. 'visit' gives the outputs the dimensions {instrument, visit} and "
            "appends '_visit' to their dataset type names."
        ),
        default="instrument",
        allowed={
            "instrument": "all visits and detectors of the instrument in the graph: one set of metrics",
            "visit": "the detectors of one visit: metrics per visit",
        },
    )
    magBins = ListField[float](
        doc="Bin edges (true AB magnitude) of the per-magnitude metrics, strictly increasing.",
        default=list(DEFAULT_MAG_BINS),
    )
    threshold = RangeField[float](
        doc="ContextNet (and trivial predictors): galaxy when P(galaxy) >= threshold.",
        default=0.5,
        min=0.0,
        max=1.0,
        inclusiveMin=False,
        inclusiveMax=False,
    )
    baselineThreshold = RangeField[float](
        doc=(
            "Baselines: galaxy when the score >= this. 0.5 keeps the 0/1 extendedness decision and cuts "
            "sizeExtendedness (in [0, 1]) at 0.5."
        ),
        default=0.5,
        min=0.0,
        max=1.0,
        inclusiveMin=False,
        inclusiveMax=True,
    )
    baselineColumns = ListField[str](
        doc="Baseline score columns of the classification table (skipped when absent).",
        default=["extendedness", "sizeExtendedness"],
    )
    probColumn = Field[str](
        doc="ContextNet probability column of the classification table.",
        default="classification_galaxyProb",
    )
    magColumn = Field[str](doc="True magnitude column of the truth table.", default="mag")
    nCalibrationBins = RangeField[int](
        doc="Equal-width probability bins of the reliability diagram and the expected calibration error.",
        default=10,
        min=1,
    )
    excludeFlagged = Field[bool](
        doc="Treat ContextNet probabilities with classification_flag set as missing (else they count).",
        default=False,
    )
    doTrivial = Field[bool](
        doc="Also score a majority-class and a magnitude-only predictor, cross-fitted over visits.",
        default=True,
    )
    nFolds = RangeField[int](
        doc="Cross-fitting folds of the trivial predictors (folds are groups of visits).",
        default=5,
        min=2,
    )
    doPeer = Field[bool](
        doc="Also score the catalog-feature peer (gradient-boosted trees on src columns, "
        "lsst.meas.contextnet.peer); reads src.",
        default=True,
    )
    peerPath = Field[str](
        doc="Catalog-peer file ('contextnet train-peer'); None uses the one shipped with the package.",
        default=None,
        optional=True,
    )
    seed = Field[int](doc="Seed of the fold assignment and of the plots' subsample.", default=0)
    doPlots = Field[bool](doc="Write the figures (Plot datasets).", default=True)
    maxPlotPoints = RangeField[int](
        doc="Largest number of objects drawn in the scatter plots (a random subsample beyond it).",
        default=20000,
        min=1,
    )

    def validate(self) -> None:
        """Check the magnitude bin edges.

        Raises
        ------
        lsst.pex.config.FieldValidationError
            Raised if ``magBins`` has fewer than two edges or is not strictly increasing.

        """
        super().validate()
        edges = list(self.magBins)
        if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise FieldValidationError(
                type(self).magBins, self, f"needs at least two strictly increasing edges; got {edges}."
            )


class ContextNetEvaluationTask(PipelineTask):
    """Compare ContextNet with the DM extendedness baselines against simulation truth.

    Gathers the ``contextnet_classification`` and ``truth`` tables of every (visit, detector) in
    a quantum, joins them by ``sourceId`` (undetected truth is counted, not scored) and writes
    the metrics of ContextNet, ``extendedness``, ``sizeExtendedness`` and two cross-fitted
    trivial predictors, overall and per magnitude bin, with figures after Kennamer et al. (2018).
    """

    ConfigClass = ContextNetEvaluationConfig
    _DefaultName = "contextnetEvaluation"

    config: ContextNetEvaluationConfig

    def run(
        self,
        classification: Sequence[Table],
        truth: Sequence[Table],
        visits: Sequence[int] | None = None,
        detectors: Sequence[int] | None = None,
        band: str | None = None,
        catalog: Sequence[Table] | None = None,
    ) -> Struct:
        """Evaluate classifications of several exposures against their truth.

        Parameters
        ----------
        classification : `~collections.abc.Sequence` [`astropy.table.Table`]
            ``contextnet_classification`` tables.
        truth : `~collections.abc.Sequence` [`astropy.table.Table`]
            ``truth`` tables, in the same order.
        visits, detectors : `~collections.abc.Sequence` [`int`], optional
            Visit and detector of each pair (visits group the trivial predictors' folds).
        band : `str`, optional
            Band, for figure labels.
        catalog : `~collections.abc.Sequence` [`astropy.table.Table`], optional
            ``src`` tables in the same order, for the catalog-feature peer (``doPeer``).

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``metrics`` (`astropy.table.Table`), ``summary`` (`dict`), ``evaluation``
            (`EvaluationResult`) and, with ``doPlots``, ``accuracyPlot``, ``parameterPlot``
            (`None` without truth shape columns), ``sizePlot`` (likewise) and
            ``reliabilityPlot`` (`matplotlib.figure.Figure`).

        Raises
        ------
        ValueError
            Raised if the sequences have different lengths.

        """
        n = len(classification)
        if (
            len(truth) != n
            or (visits is not None and len(visits) != n)
            or (detectors is not None and len(detectors) != n)
        ):
            raise ValueError(
                f"classification ({n}), truth ({len(truth)}), visits and detectors must have one entry "
                "per exposure."
            )
        joins = [
            join_classification_truth(
                classification[i],
                truth[i],
                catalog[i] if catalog is not None else None,
                visit=None if visits is None else visits[i],
                detector=None if detectors is None else detectors[i],
            )
            for i in range(n)
        ]
        joined = concatenate_joins(joins)
        config = self.config
        result = evaluate_catalog(
            joined.catalog,
            counts=joined.counts,
            mag_bins=list(config.magBins),
            threshold=config.threshold,
            baseline_threshold=config.baselineThreshold,
            n_calibration_bins=config.nCalibrationBins,
            prob_column=config.probColumn,
            baseline_columns=list(config.baselineColumns),
            mag_column=config.magColumn,
            exclude_flagged=config.excludeFlagged,
            do_trivial=config.doTrivial,
            n_folds=config.nFolds,
            seed=config.seed,
            peer=CatalogPeer.load(config.peerPath) if config.doPeer and catalog is not None else None,
        )
        self.log.info("Evaluated %d objects.\n%s", result.counts["n_evaluated"], result.format_counts())
        self.log.info("Overall comparison:\n%s", result.format_summary())
        struct = Struct(metrics=result.metrics, summary=result.to_dict(), evaluation=result)
        if config.doPlots:
            figures = make_figures(result, band=band, max_points=config.maxPlotPoints, seed=config.seed)
            for connection, figure_name in _FIGURE_NAMES.items():
                setattr(struct, connection, figures.get(figure_name))
        return struct

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Pair classification and truth by data ID, run, and write the outputs.

        Parameters
        ----------
        butlerQC : `lsst.pipe.base.QuantumContext`
            Butler access of this quantum.
        inputRefs : `lsst.pipe.base.InputQuantizedConnection`
            Input references.
        outputRefs : `lsst.pipe.base.OutputQuantizedConnection`
            Output references.

        Raises
        ------
        lsst.pipe.base.NoWorkFound
            Raised if no (visit, detector) has both a classification and a truth table.

        """
        classification_refs = {_exposure_key(ref.dataId): ref for ref in inputRefs.classification}
        truth_refs = {_exposure_key(ref.dataId): ref for ref in inputRefs.truth}
        keys = sorted(classification_refs.keys() & truth_refs.keys())
        unpaired = len(classification_refs.keys() ^ truth_refs.keys())
        if unpaired:
            self.log.warning("%d exposures have a classification or a truth table but not both.", unpaired)
        if not keys:
            raise NoWorkFound("No exposure has both a classification and a truth table.")
        bands = set()
        for key in keys:
            try:
                bands.add(str(classification_refs[key].dataId["band"]))
            except KeyError:
                pass
        catalog = None
        if self.config.doPeer:
            catalog_refs = {_exposure_key(ref.dataId): ref for ref in inputRefs.catalog}
            missing = [key for key in keys if key not in catalog_refs]
            if missing:
                raise NoWorkFound(
                    f"No src for exposures {missing[:5]}; set doPeer=False to evaluate without it."
                )
            catalog = [butlerQC.get(catalog_refs[key]) for key in keys]
        outputs = self.run(
            catalog=catalog,
            classification=[butlerQC.get(classification_refs[key]) for key in keys],
            truth=[butlerQC.get(truth_refs[key]) for key in keys],
            visits=[key[0] for key in keys],
            detectors=[key[1] for key in keys],
            band=bands.pop() if len(bands) == 1 else None,
        )
        # Figures that could not be drawn (no truth shape columns) stay None and are not written.
        butlerQC.put(outputs, outputRefs)


def _exposure_key(data_id: Any) -> tuple[int, int]:
    """Return ``(visit, detector)`` of a data ID."""
    return int(data_id["visit"]), int(data_id["detector"])
