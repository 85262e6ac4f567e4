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

"""Ensembled ContextNet inference over any number of objects (paper section 3).

A model sees sets of exactly ``m`` objects. For ``n`` objects we build
``S = ceil(n_p * n / m)`` random sets without duplicates in which every object appears at least
``n_p`` times, predict every set, and average each object's predictions.

The local network depends only on the object, so its features are computed once per object and
gathered into every set that contains it (`ensemble_predict` with ``method="cached"``); the
paper's wording reruns it inside every set, which costs ``n_p`` times as much for the same answer
(``method="recompute"``, kept as a reference and for benchmarks).

Each set can also be predicted under several symmetries of the square (``symmetries``: the whole
detector rotated or mirrored, as in the training augmentation); a set's prediction is then the
mean over them.
"""

from __future__ import annotations

__all__ = [
    "EnsembleResult",
    "ProgressModule",
    "build_sets",
    "count_sets",
    "ensemble_predict",
    "model_set_size",
    "seed_from_data_id",
]

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from lsst.meas.contextnet.symmetry import apply_symmetry

if TYPE_CHECKING:
    from lsst.utils.logging import PeriodicLogger


class EnsembleResult(NamedTuple):
    """Per-object result of `ensemble_predict`."""

    mean: np.ndarray
    """Mean galaxy probability over the sets containing the object (float32, shape ``(n,)``)."""

    std: np.ndarray
    """Standard deviation (``ddof=0``) of the per-set predictions (float32, shape ``(n,)``)."""

    n_sets: np.ndarray
    """Number of distinct sets that contained the object (int32, shape ``(n,)``)."""


def _check_sizes(n: int, m: int, n_p: int) -> None:
    for name, value, minimum in (("n", n, 0), ("m", m, 1), ("n_p", n_p, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def count_sets(n: int, m: int, n_p: int) -> int:
    """Number of sets `build_sets` draws for ``n`` objects, sets of ``m``, each object in ``n_p``.

    Parameters
    ----------
    n, m, n_p : `int`
        Objects, set size and minimum number of sets per object.

    Returns
    -------
    n_sets : `int`
        ``ceil(n_p * n / m)`` when ``n >= m``, else ``n_p`` (every set holds every object).
    """
    return math.ceil(n_p * n / m) if n >= m else n_p


def build_sets(n: int, m: int, n_p: int, rng: np.random.Generator) -> np.ndarray:
    """Draw random sets of ``m`` objects covering ``n`` objects at least ``n_p`` times each.

    Parameters
    ----------
    n : `int`
        Number of objects (indices ``0 .. n - 1``).
    m : `int`
        Set size (the model's ``m``).
    n_p : `int`
        Minimum number of sets that contain each object.
    rng : `numpy.random.Generator`
        Source of randomness.

    Returns
    -------
    sets : `numpy.ndarray`
        Object indices, int64, shape ``(S, m)``. For ``n >= m``, ``S = ceil(n_p * n / m)``, no set
        contains an object twice, every object is in ``n_p`` or ``n_p + 1`` sets and exactly
        ``S * m - n_p * n`` objects are in ``n_p + 1``. For ``0 < n < m``, ``S = n_p``: every set
        holds every object ``m // n`` or ``m // n + 1`` times (the only case with duplicates
        inside a set), in random order. For
        ``n = 0``, shape ``(0, m)``.

    Raises
    ------
    ValueError
        If ``n < 0``, ``m < 1`` or ``n_p < 1``.

    Notes
    -----
    For ``n >= m`` the sets are consecutive chunks of ``n_p`` concatenated random permutations
    (plus the start of one more to fill the last set). A chunk can only contain an object twice
    where it straddles two permutations; those duplicates in the head of the later permutation
    are swapped with randomly chosen later elements of the same permutation that are not in the
    chunk (there are always at least ``n - m + d >= d`` of them for ``d`` duplicates). Swaps
    inside one permutation keep it a permutation, so the counts are unchanged.

    """
    _check_sizes(n, m, n_p)
    n, m, n_p = int(n), int(m), int(n_p)
    if n == 0:
        return np.empty((0, m), dtype=np.int64)
    if n < m:
        sets = np.empty((n_p, m), dtype=np.int64)
        base = np.tile(np.arange(n, dtype=np.int64), m // n)
        for i in range(n_p):
            extra = rng.choice(n, size=m % n, replace=False)
            sets[i] = rng.permutation(np.concatenate([base, extra]))
        return sets

    n_sets = count_sets(n, m, n_p)
    total = n_sets * m
    n_perms = math.ceil(total / n)
    stream = np.empty(n_perms * n, dtype=np.int64)
    for k in range(n_perms):
        perm = rng.permutation(n).astype(np.int64)
        start = k * n
        tail = start % m
        if k > 0 and tail:
            # The set containing ``start`` holds ``tail`` elements of the previous permutation and
            # the first ``m - tail`` of this one.
            previous = stream[start - tail : start]
            head = m - tail
            is_dup = np.isin(perm[:head], previous)
            if is_dup.any():
                dup_positions = np.flatnonzero(is_dup)
                candidates = head + np.flatnonzero(~np.isin(perm[head:], previous))
                chosen = rng.choice(candidates, size=dup_positions.size, replace=False)
                perm[dup_positions], perm[chosen] = perm[chosen], perm[dup_positions].copy()
        stream[start : start + n] = perm
    return stream[:total].reshape(n_sets, m)


def model_set_size(model: Any) -> int:
    """Return the set size ``m`` a model expects.

    Parameters
    ----------
    model : `~lsst.meas.contextnet.modelio.LoadedModel` or `torch.nn.Module`
        A loaded model (``m`` read from its metadata) or a module with an ``m`` attribute.

    Returns
    -------
    m : `int`
        Set size.

    Raises
    ------
    ValueError
        If ``m`` cannot be found.

    """
    metadata = getattr(model, "metadata", None)
    if isinstance(metadata, dict) and "m" in metadata:
        return int(metadata["m"])
    module = getattr(model, "module", model)
    m = getattr(module, "m", None)
    if m is None:
        raise ValueError(f"cannot find the set size m of {type(model).__name__}; pass m explicitly")
    return int(m)


def _object_statistics(sets: np.ndarray, predictions: np.ndarray, n: int) -> EnsembleResult:
    """Average per-set predictions per object, counting duplicates inside a set once."""
    n_sets, m = sets.shape
    order = np.argsort(sets, axis=1, kind="stable")
    sorted_ids = np.take_along_axis(sets, order, axis=1)
    first = np.ones_like(sorted_ids, dtype=bool)
    first[:, 1:] = sorted_ids[:, 1:] != sorted_ids[:, :-1]
    ids = sorted_ids[first]
    values = np.take_along_axis(predictions.astype(np.float64), order, axis=1)[first]
    counts = np.bincount(ids, minlength=n)
    mean = np.bincount(ids, weights=values, minlength=n) / np.maximum(counts, 1)
    variance = np.bincount(ids, weights=(values - mean[ids]) ** 2, minlength=n) / np.maximum(counts, 1)
    return EnsembleResult(
        mean=mean.astype(np.float32),
        std=np.sqrt(variance).astype(np.float32),
        n_sets=counts.astype(np.int32),
    )


def ensemble_predict(
    model: Any,
    normalized_cutouts: np.ndarray,
    positions: np.ndarray,
    n_p: int,
    seed: int | np.random.Generator,
    batch_sets: int = 64,
    device: str | torch.device | None = None,
    local_batch: int = 4096,
    *,
    m: int | None = None,
    method: str = "cached",
    symmetries: Sequence[int] = (0,),
) -> EnsembleResult:
    """Predict galaxy probabilities for ``n`` objects by ensembling over random sets.

    Parameters
    ----------
    model : `~lsst.meas.contextnet.modelio.LoadedModel` or `torch.nn.Module`
        A loaded model or a (scripted or eager) module with ``local_features``,
        ``predict_sets`` and ``forward`` as in `lsst.meas.contextnet.model`. It must already be on
        ``device`` and in evaluation mode.
    normalized_cutouts : `numpy.ndarray`
        Model inputs, shape ``(n, S, S)`` or ``(n, C, S, S)`` (`lsst.meas.contextnet.psfinputs.model_inputs`).
    positions : `numpy.ndarray`
        Position features, shape ``(n, 2)``.
    n_p : `int`
        Minimum number of sets per object.
    seed : `int` or `numpy.random.Generator`
        Seed (or generator) for the set construction.
    batch_sets : `int`, optional
        Sets predicted per call of the model (bounds memory at ``batch_sets * m`` feature
        vectors, or cutouts with ``method="recompute"``).
    device : `str` or `torch.device`, optional
        Device the model runs on; default: the device of a `LoadedModel`, otherwise that of the
        module's first parameter.
    local_batch : `int`, optional
        Cutouts per call of the local network.
    m : `int`, optional
        Set size; default: the model's (see `model_set_size`).
    method : `str`, optional
        ``"cached"`` (local features once per object) or ``"recompute"`` (the local network run
        inside every set, as the paper describes; same results, ``n_p`` times the work).
    symmetries : `~collections.abc.Sequence` [`int`], optional
        Codes of the symmetries of the square (`lsst.meas.contextnet.symmetry.apply_symmetry`)
        under which every set is predicted, all its cutouts and positions alike; a set's
        prediction is the mean over them. Default: the identity alone.

    Returns
    -------
    result : `EnsembleResult`
        ``(mean, std, n_sets)`` per object; empty arrays for ``n = 0``.

    Raises
    ------
    ValueError
        If the arrays have inconsistent shapes, a size is invalid, ``method`` is unknown or
        ``symmetries`` is empty or holds a code that is not 0-7.

    """
    if method not in ("cached", "recompute"):
        raise ValueError(f"method must be 'cached' or 'recompute', got {method!r}")
    codes = [int(code) for code in symmetries]
    if not codes or any(code not in range(8) for code in codes):
        raise ValueError(f"symmetries must be a non-empty sequence of codes 0-7, got {symmetries!r}")
    if batch_sets < 1 or local_batch < 1:
        raise ValueError(f"batch_sets and local_batch must be positive, got {batch_sets}, {local_batch}")
    cutouts = np.asarray(normalized_cutouts, dtype=np.float32)
    if cutouts.ndim == 3:
        cutouts = cutouts[:, np.newaxis]
    if cutouts.ndim != 4 or cutouts.shape[2] != cutouts.shape[3]:
        raise ValueError(f"normalized_cutouts must have shape (n, S, S) or (n, C, S, S), got {cutouts.shape}")
    pos = np.asarray(positions, dtype=np.float32)
    if pos.ndim != 2 or pos.shape[0] != cutouts.shape[0]:
        raise ValueError(f"positions must have shape ({cutouts.shape[0]}, k), got {pos.shape}")
    n = cutouts.shape[0]
    set_size = model_set_size(model) if m is None else int(m)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sets = build_sets(n, set_size, n_p, rng)
    if n == 0:
        return EnsembleResult(np.empty(0, np.float32), np.empty(0, np.float32), np.empty(0, np.int32))

    module = getattr(model, "module", model)
    if device is None:
        device = getattr(model, "device", None)
    if device is None:
        first = next(iter(module.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)

    with torch.inference_mode():
        predictions = np.mean(
            [
                _predict_sets(
                    module, *apply_symmetry(cutouts, pos, code), sets, device, batch_sets, local_batch, method
                )
                for code in codes
            ],
            axis=0,
        )
    return _object_statistics(sets, predictions, n)


def _predict_sets(
    module: Any,
    cutouts: np.ndarray,
    pos: np.ndarray,
    sets: np.ndarray,
    device: torch.device,
    batch_sets: int,
    local_batch: int,
    method: str,
) -> np.ndarray:
    """Each set's predictions, shape ``sets.shape`` (see `ensemble_predict`)."""
    predictions = np.empty(sets.shape, dtype=np.float32)
    if method == "cached":
        chunks = []
        for start in range(0, len(cutouts), local_batch):
            chunks.append(
                module.local_features(
                    torch.from_numpy(cutouts[start : start + local_batch]).to(device),
                    torch.from_numpy(pos[start : start + local_batch]).to(device),
                )
            )
        features = torch.cat(chunks)
        index = torch.from_numpy(sets).to(device)
        for start in range(0, sets.shape[0], batch_sets):
            probs = module.predict_sets(features[index[start : start + batch_sets]])
            predictions[start : start + batch_sets] = probs.float().cpu().numpy()
    else:
        for start in range(0, sets.shape[0], batch_sets):
            chunk = sets[start : start + batch_sets]
            probs = module(
                torch.from_numpy(cutouts[chunk]).to(device), torch.from_numpy(pos[chunk]).to(device)
            )
            predictions[start : start + batch_sets] = probs.float().cpu().numpy()
    return predictions


def seed_from_data_id(base_seed: int, data_id: Mapping[str, Any]) -> int:
    """Derive the seed of one quantum from a configured seed and a data ID.

    The result is a stable function of its inputs (SHA-256, not Python's salted `hash`), so the
    same data ID and configuration give the same ensemble sets in every process and session.

    Parameters
    ----------
    base_seed : `int`
        Seed from the task configuration.
    data_id : `~collections.abc.Mapping` [`str`, `~typing.Any`]
        Data ID values (e.g. ``instrument``, ``visit``, ``detector``); integers and strings.

    Returns
    -------
    seed : `int`
        A non-negative 64-bit seed for `numpy.random.default_rng`.

    """
    payload = json.dumps(
        [int(base_seed), sorted((str(key), value) for key, value in data_id.items())],
        separators=(",", ":"),
        default=str,
    )
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:8], "little")


class ProgressModule:
    """Pass-through to a model's inference methods that logs progress with a `PeriodicLogger`.

    `~lsst.meas.contextnet.ensemble.ensemble_predict` calls ``local_features`` and
    ``predict_sets`` in its own loops; counting the sets here lets the task report progress on
    long runs without reaching into that loop.
    """

    def __init__(self, module: Any, n_sets: int, logger: PeriodicLogger) -> None:
        self._module = module
        self._n_sets = n_sets
        self._done = 0
        self._logger = logger

    def local_features(self, cutouts: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The wrapped module's local features."""
        return self._module.local_features(cutouts, positions)

    def predict_sets(self, features: torch.Tensor) -> torch.Tensor:
        """The wrapped module's set predictions, counting the sets done and logging progress."""
        result = self._module.predict_sets(features)
        self._done += int(features.shape[0])
        self._logger.log("Predicted %d of %d ensemble sets.", self._done, self._n_sets)
        return result
