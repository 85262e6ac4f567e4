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

"""Score ContextNet classifications against simulation truth.

`evaluate_catalog` scores ContextNet, the DM ``extendedness``/``sizeExtendedness`` baselines, the
catalog-feature peer and two trivial predictors, overall and in magnitude bins (the paper's
Table 2 and Figure 5), on a catalog joined to truth by
`lsst.meas.contextnet.evaluation.matching.join_classification_truth`; `make_figures` and
`write_outputs` turn the result into figures and files. The same scores are written by
``contextnet evaluate`` (`lsst.meas.contextnet.evaluation.butler.evaluate_repository`) and, as
Butler datasets, by `lsst.meas.contextnet.evaluation.task.ContextNetEvaluationTask`.

Truth rows with ``sourceId == -1`` (or null) were not detected: they cannot be classified, so
they are left out of every metric, and their number is reported.
"""

from __future__ import annotations

__all__ = [
    "CLASSIFIER_ORDER",
    "EvaluationResult",
    "PEER_NAME",
    "bool_column",
    "evaluate_catalog",
    "float_column",
    "make_figures",
    "parse_mag_bins",
    "write_outputs",
]

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table
from lsst.meas.contextnet.evaluation.clustered import margin_table
from lsst.meas.contextnet.evaluation.metrics import (
    DEFAULT_MAG_BINS,
    METRIC_NAMES,
    compare_classifiers,
    reliability_bins,
)
from lsst.meas.contextnet.evaluation.peer import CatalogPeer
from lsst.meas.contextnet.evaluation.trivial import (
    MagnitudeOnlyClassifier,
    MajorityClassClassifier,
    cross_fit_predict,
)
from lsst.meas.contextnet.outputcolumns import OUTSIDE_TRAINING_COLUMN
from lsst.meas.contextnet.serialization import json_compatible, table_rows

if TYPE_CHECKING:
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
# Evaluation
# ---------------------------------------------------------------------------------------------


def float_column(catalog: Table, name: str) -> np.ndarray:
    """Return a table column as float64, masked entries as NaN."""
    return np.asarray(np.ma.filled(np.ma.asarray(catalog[name], dtype=np.float64), np.nan), dtype=np.float64)


def bool_column(catalog: Table, name: str, fill: bool) -> np.ndarray:
    """Return a table column as booleans, masked entries as ``fill``.

    Parameters
    ----------
    catalog : `astropy.table.Table`
        The table.
    name : `str`
        The column.
    fill : `bool`
        The value of masked entries.

    Returns
    -------
    values : `numpy.ndarray`
        Boolean array of the column's length.
    """
    return np.asarray(np.ma.filled(np.ma.asarray(catalog[name]), fill), dtype=bool)


def _add_accuracy_se(
    metrics: Table,
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray],
    thresholds: Mapping[str, float],
    mag: np.ndarray,
    catalog: Table,
    group_column: str,
) -> None:
    """Add ``accuracy_se``: the standard error of each accuracy with the groups (visits) as the
    independent draws (`~lsst.meas.contextnet.evaluation.clustered`); NaN without groups.
    """
    se = np.full(len(metrics), np.nan)
    if group_column in catalog.colnames:
        groups = np.asarray(catalog[group_column])
        edges = metrics.meta["mag_bins"]
        by_classifier = {
            name: margin_table(
                labels, scores, thresholds, mag, groups, reference=name, others=(), mag_bins=edges
            )
            for name in scores
        }
        for i, row in enumerate(metrics):
            rows = by_classifier[row["classifier"]]
            se[i] = rows["accuracy_se"][rows["bin"] == row["bin"]][0]
    metrics.add_column(se, name="accuracy_se", index=metrics.index_column("accuracy") + 1)
    metrics[
        "accuracy_se"
    ].description = f"Standard error of the accuracy clustered by {group_column!r} (NaN without it)."


@dataclasses.dataclass
class EvaluationResult:
    """Everything `evaluate_catalog` computes."""

    catalog: Table
    """The evaluated objects: the input catalog plus ``score_majority_class`` and
    ``score_magnitude_only`` (out-of-fold trivial predictions) when computed."""

    metrics: Table
    """`lsst.meas.contextnet.evaluation.metrics.compare_classifiers` output: one row per classifier for
    all objects (``bin == -1``) then one per magnitude bin."""

    reliability: dict[str, Table]
    """Reliability-diagram bins per classifier whose score lies in [0, 1]."""

    counts: dict[str, int]
    """Join bookkeeping (see `JoinResult.counts`) plus ``n_evaluated``, ``n_flagged``
    (evaluated objects with ``classification_flag`` set) and, when the classification has the
    column, ``n_outside_training`` (with ``classification_flag_outsideTraining`` set)."""

    settings: dict[str, Any]
    """Parameters of the evaluation (bins, thresholds, columns, seed, ...)."""

    classifiers: list[str]
    """Names of the classifiers evaluated, in display order."""

    scores: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    """Per-object score of each classifier as scored (NaN: not scored, e.g. a flagged baseline)."""

    thresholds: dict[str, float] = dataclasses.field(default_factory=dict)
    """Galaxy when a classifier's score is at least its threshold."""

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
            "summary": table_rows(summary),
            "by_magnitude": table_rows(self.by_magnitude),
            "reliability": {name: table_rows(table) for name, table in self.reliability.items()},
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
            f"truth rows sharing a detection (brightest kept): {c.get('n_truth_duplicate_matches', 0)}; "
            f"evaluated with classification_flag set: {c.get('n_flagged', 0)}"
            + (
                f"; from exposures outside the model's training conditions: {c['n_outside_training']}"
                if "n_outside_training" in c
                else ""
            )
        )

    def format_summary(self) -> str:
        """Format the overall comparison in the style of the paper's Table 2.

        Returns
        -------
        text : `str`
            One line per classifier: scored and missing counts, accuracy and its standard
            error clustered by visit, balanced accuracy, precision and recall of both classes,
            AUC and ECE.

        """
        header = (
            f"{'classifier':<18}{'n':>9}{'missing':>9}{'accuracy':>10}{'acc.se':>8}{'bal.acc':>9}"
            f"{'gal.prec':>10}{'gal.rec':>9}{'star.prec':>11}{'star.rec':>10}{'AUC':>8}{'ECE':>8}"
        )
        lines = [header, "-" * len(header)]
        widths = (10, 9, 10, 9, 11, 10, 8, 8)
        for row in self.summary:
            cells = [f"{_format_number(row[name]):>{width}}" for name, width in zip(METRIC_NAMES, widths)]
            se = row["accuracy_se"] if "accuracy_se" in row.colnames else math.nan
            cells.insert(1, f"{se:>8.4f}" if math.isfinite(se) else f"{'-':>8}")
            lines.append(f"{row['classifier']:<18}{row['n']:>9d}{row['n_missing']:>9d}{''.join(cells)}")
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

    def format_report(self) -> str:
        """Format the counts, the summary and the accuracy by magnitude, as ``summary.txt`` holds them.

        Returns
        -------
        text : `str`
            The three blocks (`format_counts`, `format_summary`, `format_by_magnitude`), a blank
            line apart.
        """
        return "\n\n".join([self.format_counts(), self.format_summary(), self.format_by_magnitude()])


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
        `lsst.meas.contextnet.evaluation.trivial.cross_fit_predict`); ignored when absent.
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
    peer : `~lsst.meas.contextnet.evaluation.peer.CatalogPeer`, optional
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
    labels = bool_column(catalog, class_column, fill=False)
    mag = float_column(catalog, mag_column)
    scores: dict[str, np.ndarray] = {}
    thresholds: dict[str, float] = {}

    prob = float_column(catalog, prob_column)
    flagged = (
        bool_column(catalog, flag_column, fill=False)
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
        score = float_column(catalog, name)
        if f"{name}_flag" in catalog.colnames:
            score = np.where(bool_column(catalog, f"{name}_flag", fill=False), np.nan, score)
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
    _add_accuracy_se(metrics, labels, scores, thresholds, mag, catalog, group_column)
    reliability = {}
    for name, score in scores.items():
        finite = score[np.isfinite(score)]
        if finite.size == 0 or (finite.min() >= 0.0 and finite.max() <= 1.0):
            reliability[name] = reliability_bins(labels, score, n_bins=n_calibration_bins)

    all_counts = {key: int((counts or {}).get(key, 0)) for key in _COUNT_KEYS}
    all_counts.update({key: int(value) for key, value in (counts or {}).items()})
    all_counts["n_evaluated"] = len(catalog)
    all_counts["n_flagged"] = int(np.count_nonzero(flagged))
    if OUTSIDE_TRAINING_COLUMN in catalog.colnames:
        all_counts["n_outside_training"] = int(
            np.count_nonzero(bool_column(catalog, OUTSIDE_TRAINING_COLUMN, fill=False))
        )
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
        scores=scores,
        thresholds=thresholds,
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
    from lsst.meas.contextnet.evaluation.plotting import (
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
            float_column(catalog, settings["mag_column"]) if len(catalog) else np.zeros(0),
            bool_column(catalog, settings["class_column"], False) if len(catalog) else np.zeros(0, bool),
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
    text_path.write_text(result.format_report() + "\n")
    paths.append(text_path)
    for name, figure in (figures or {}).items():
        path = directory / f"{name}.png"
        figure.savefig(path, dpi=110)
        paths.append(path)
    return paths


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
