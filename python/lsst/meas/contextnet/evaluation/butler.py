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

"""Read classifications, source tables and truth of a Butler repository and join them."""

from __future__ import annotations

__all__ = ["evaluate_repository", "load_from_butler"]

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lsst.meas.contextnet.evaluation.matching import JoinResult, concatenate_joins, join_classification_truth

if TYPE_CHECKING:
    from lsst.daf.butler import Butler
    from lsst.meas.contextnet.evaluation.scoring import EvaluationResult

_LOG = logging.getLogger(__name__)


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


def evaluate_repository(
    repo: str | os.PathLike[str],
    collections: Sequence[str],
    output: str | os.PathLike[str],
    *,
    where: str = "",
    instrument: str | None = None,
    mag_bins: Sequence[float] | None = None,
    threshold: float | None = None,
    exclude_flagged: bool = False,
    seed: int = 0,
    peer: bool = True,
    peer_path: str | None = None,
    plots: bool = True,
    progress: bool = True,
) -> tuple[EvaluationResult, list[Path]]:
    """Read a repository's classifications and truth, score them, and write tables and figures.

    The one "read, evaluate, plot, write" sequence of ``contextnet evaluate`` and the demo;
    every default is that of `~lsst.meas.contextnet.evaluation.task.ContextNetEvaluationConfig`.

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        Butler repository.
    collections : `~collections.abc.Sequence` [`str`]
        Collections holding ``contextnet_classification``, ``truth`` and ``src``.
    output : `str` or `os.PathLike`
        Directory for ``metrics.csv``, ``metrics.json``, ``summary.txt`` and the figures.
    where : `str`, optional
        Butler query restricting the data IDs.
    instrument : `str`, optional
        Instrument name, when the repository has several.
    mag_bins : `~collections.abc.Sequence` [`float`], optional
        Magnitude bin edges (default: the evaluation task's).
    threshold : `float`, optional
        P(galaxy) threshold (default: the evaluation task's).
    exclude_flagged : `bool`, optional
        Leave flagged classifications out of ContextNet's scores.
    seed : `int`, optional
        Seed of the cross-fitted trivial predictors and the plotted subsample.
    peer : `bool`, optional
        Score the catalog-feature peer beside ContextNet.
    peer_path : `str`, optional
        Peer file written by ``contextnet train-peer`` (default: the shipped one).
    plots : `bool`, optional
        Write the figures.
    progress : `bool`, optional
        Show a progress bar while reading.

    Returns
    -------
    result : `~lsst.meas.contextnet.evaluation.scoring.EvaluationResult`
        The scores.
    written : `list` [`pathlib.Path`]
        Files written.
    """
    from lsst.daf.butler import Butler
    from lsst.meas.contextnet.evaluation.peer import CatalogPeer
    from lsst.meas.contextnet.evaluation.scoring import evaluate_catalog, make_figures, write_outputs
    from lsst.meas.contextnet.evaluation.task import ContextNetEvaluationConfig

    defaults = ContextNetEvaluationConfig()
    threshold = defaults.threshold if threshold is None else threshold
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1); got {threshold}.")
    butler = Butler.from_config(str(repo), writeable=False)
    try:
        joined, bands = load_from_butler(
            butler, collections, where=where, instrument=instrument, progress=progress
        )
    finally:
        butler.close()
    result = evaluate_catalog(
        joined.catalog,
        counts=joined.counts,
        mag_bins=list(defaults.magBins if mag_bins is None else mag_bins),
        threshold=threshold,
        baseline_threshold=defaults.baselineThreshold,
        n_calibration_bins=defaults.nCalibrationBins,
        exclude_flagged=exclude_flagged,
        n_folds=defaults.nFolds,
        seed=seed,
        peer=CatalogPeer.load(peer_path or defaults.peerPath or None) if peer else None,
    )
    result.settings.update(repo=str(repo), collections=list(collections), where=where, bands=bands)
    figures = None
    if plots:
        figures = make_figures(
            result, band=bands[0] if len(bands) == 1 else None, max_points=defaults.maxPlotPoints, seed=seed
        )
    try:
        written = write_outputs(result, output, figures)
    finally:
        if figures:
            import matplotlib.pyplot as plt

            for figure in figures.values():
                plt.close(figure)
    return result, written
