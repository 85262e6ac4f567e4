"""Read classifications, source tables and truth of a Butler repository and join them."""

from __future__ import annotations

__all__ = ["load_from_butler"]

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lsst.meas.contextnet.evaluation.matching import JoinResult, concatenate_joins, join_classification_truth

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

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
