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

"""Match ContextNet classifications to simulation truth by ``sourceId``.

Truth rows with ``sourceId == -1`` (or null) were not detected: they cannot be classified, so
they are left out of every metric, and their number is reported.
"""

from __future__ import annotations

__all__ = ["JoinResult", "concatenate_joins", "join_classification_truth"]

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.table import Table, vstack
from lsst.meas.contextnet.evaluation.blending import BLENDED_COLUMN, truth_blended
from lsst.meas.contextnet.evaluation.scoring import _COUNT_KEYS

# ---------------------------------------------------------------------------------------------
# Joining
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class JoinResult:
    """Classifications matched to truth, with the bookkeeping of what did not match."""

    catalog: Table
    """One row per classified source that has a truth match: the classification columns, then
    the truth columns (``truth_`` prefixed where a name collides), among them ``blended``
    (`~lsst.meas.contextnet.evaluation.blending.truth_blended`) when the truth has the columns
    it needs, then ``src`` columns not already present, then ``visit`` and ``detector`` when
    known."""

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
    # From every true object, detected or not: an undetected neighbour still adds its light.
    blended = truth_blended(truth) if BLENDED_COLUMN not in truth.colnames else None
    if blended is not None:
        truth = truth.copy(copy_data=False)
        truth[BLENDED_COLUMN] = blended
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
