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

"""`ContextNetEvaluationTask`: ContextNet metrics and figures as Butler datasets."""

from __future__ import annotations

__all__ = ["ContextNetEvaluationConfig", "ContextNetEvaluationConnections", "ContextNetEvaluationTask"]

import dataclasses
from collections.abc import Sequence
from typing import Any

import lsst.pipe.base.connectionTypes as cT
from astropy.table import Table
from lsst.meas.contextnet.evaluation.matching import concatenate_joins, join_classification_truth
from lsst.meas.contextnet.evaluation.metrics import DEFAULT_MAG_BINS
from lsst.meas.contextnet.evaluation.peer import CatalogPeer
from lsst.meas.contextnet.evaluation.scoring import _FIGURE_NAMES, evaluate_catalog, make_figures
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
        "lsst.meas.contextnet.evaluation.peer); reads src.",
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
