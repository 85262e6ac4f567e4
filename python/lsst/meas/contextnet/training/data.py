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

"""Training data as the model sees them: the generator's sets turned into model inputs."""

from __future__ import annotations

__all__ = ["TrainingData", "combine_training_data", "load_training_data"]

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lsst.meas.contextnet.cutouts import DEFAULT_NORMALIZATION
from lsst.meas.contextnet.modelio import file_sha256
from lsst.meas.contextnet.psfinputs import DEFAULT_PSF_GRID, interpolate_psf, model_inputs, needs_psf
from lsst.meas.contextnet.training.shards import MANIFEST_NAME, list_shards

_REQUIRED_DATASETS = ("cutouts", "noise_sigma", "positions", "labels")


@dataclasses.dataclass
class TrainingData:
    """Training sets held in memory, pixels already normalized."""

    cutouts: np.ndarray
    """Model inputs, float32, shape ``(V, M, C, S, S)`` (``V`` visits of ``M`` sources, ``C``
    channels built by `lsst.meas.contextnet.psfinputs.model_inputs`)."""

    positions: np.ndarray
    """Position features in ``[-1, 1]``, float32, shape ``(V, M, 2)``."""

    labels: np.ndarray
    """1 for galaxies, 0 for stars, float32, shape ``(V, M)``."""

    description: dict[str, Any]
    """JSON-serializable description of the source (directory, shards, manifest, counts)."""

    mag: np.ndarray | None = None
    """True magnitudes in each set's band, float32, shape ``(V, M)``; `None` when a shard has none."""

    snr: np.ndarray | None = None
    """Detection S/N, float32, shape ``(V, M)``; `None` when a shard has none."""

    blended: np.ndarray | None = None
    """True where the object that labels a source is blended with a neighbour, bool, shape
    ``(V, M)``; `None` when a shard has none (data written before the generator recorded it)."""

    def __post_init__(self) -> None:
        # Shards store the flags as uint8, which NumPy would read as indices, not as a mask.
        if self.blended is not None:
            self.blended = np.asarray(self.blended, dtype=bool)

    @property
    def n_visits(self) -> int:
        """Number of sets (visits)."""
        return int(self.cutouts.shape[0])

    @property
    def m(self) -> int:
        """Sources per stored set."""
        return int(self.cutouts.shape[1])

    @property
    def cutout_size(self) -> int:
        """Side of the cutouts in pixels."""
        return int(self.cutouts.shape[-1])

    @property
    def n_channels(self) -> int:
        """Input channels per source."""
        return int(self.cutouts.shape[2])


def _json_attr(value: Any) -> Any:
    """Convert an HDF5 attribute to a JSON-serializable value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def load_training_data(
    directory: str | os.PathLike[str],
    softening: float = float(DEFAULT_NORMALIZATION["softening"]),
    inputs: tuple[str, ...] = ("image",),
) -> TrainingData:
    """Read every shard of a training-data directory and build the model's inputs.

    The inputs are made by `lsst.meas.contextnet.psfinputs.model_inputs`, the function the
    classifier task uses, from the stored cutouts, bad-pixel masks, PSF-model grids and
    positions.

    Parameters
    ----------
    directory : `str` or `os.PathLike`
        Directory with ``shard_*.h5`` files (and normally ``manifest.json``) as written by
        `lsst.meas.contextnet.sim.generator`.
    softening : `float`, optional
        Softening of `~lsst.meas.contextnet.cutouts.normalize_cutouts`.
    inputs : `tuple` [`str`, ...], optional
        Channels of the model (``("image",)``, ``("image", "psf")``, ...; see
        `lsst.meas.contextnet.psfinputs.model_inputs`).

    Returns
    -------
    data : `TrainingData`
        All sets of all shards, in shard order.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist or holds no shard.
    ValueError
        If a shard lacks a dataset, has inconsistent shapes, or shards disagree on the cutout size
        or set size.

    """
    import h5py

    root = Path(directory)
    shards, manifest = list_shards(root)
    manifest_path = root / MANIFEST_NAME

    cutouts, positions, labels, mags, snrs, blends = [], [], [], [], [], []
    psf_grid = DEFAULT_PSF_GRID
    shape: tuple[int, int] | None = None
    attrs: dict[str, Any] = {}
    for shard in shards:
        with h5py.File(shard, "r") as h5:
            missing = [name for name in _REQUIRED_DATASETS if name not in h5]
            if missing:
                raise ValueError(f"shard {str(shard)!r} lacks the datasets {missing}")
            raw = np.asarray(h5["cutouts"][...], dtype=np.float32)
            sigma = np.asarray(h5["noise_sigma"][...], dtype=np.float32)
            pos = np.asarray(h5["positions"][...], dtype=np.float32)
            lab = np.asarray(h5["labels"][...])
            mags.append(np.asarray(h5["mag"][...], dtype=np.float32) if "mag" in h5 else None)
            snrs.append(np.asarray(h5["snr"][...], dtype=np.float32) if "snr" in h5 else None)
            blends.append(h5["blended"][...] if "blended" in h5 else None)
            if needs_psf(inputs):
                missing = [name for name in ("bad", "psf_grid", "pixel_xy", "offsets") if name not in h5]
                if missing:
                    raise ValueError(f"shard {str(shard)!r} lacks {missing}, needed by a PSF-aware model")
                psf_data = {name: h5[name][...] for name in ("bad", "psf_grid", "pixel_xy", "offsets")}
                psf_grid = int(psf_data["psf_grid"].shape[1])
                detector_size = int(h5.attrs["detector_size"])
            if shard == shards[0]:
                attrs = {key: _json_attr(value) for key, value in h5.attrs.items() if key != "config"}
        n_sets = raw.shape[0]
        if (
            raw.ndim != 4
            or raw.shape[2] != raw.shape[3]
            or sigma.shape != (n_sets,)
            or pos.shape != raw.shape[:2] + (2,)
            or lab.shape != raw.shape[:2]
        ):
            raise ValueError(
                f"shard {str(shard)!r} has inconsistent shapes: cutouts {raw.shape}, noise_sigma "
                f"{sigma.shape}, positions {pos.shape}, labels {lab.shape}"
            )
        if shape is None:
            shape = (raw.shape[1], raw.shape[2])
        elif (raw.shape[1], raw.shape[2]) != shape:
            raise ValueError(
                f"shard {str(shard)!r} has sets of {raw.shape[1]} cutouts of {raw.shape[2]} pixels, "
                f"earlier shards {shape[0]} of {shape[1]}"
            )
        if not np.isin(lab, (0, 1)).all():
            raise ValueError(f"shard {str(shard)!r} has labels other than 0 and 1")
        normalization = {**DEFAULT_NORMALIZATION, "softening": softening}
        per_set = []
        for index in range(n_sets):
            if needs_psf(inputs):
                xy = psf_data["pixel_xy"][index]
                psf = interpolate_psf(
                    psf_data["psf_grid"][index], xy[:, 0], xy[:, 1], detector_size, detector_size
                )
                per_set.append(
                    model_inputs(
                        raw[index],
                        float(sigma[index]),
                        normalization,
                        inputs,
                        bad=psf_data["bad"][index].astype(bool),
                        psf=psf,
                        dx=psf_data["offsets"][index, :, 0],
                        dy=psf_data["offsets"][index, :, 1],
                    )
                )
            else:
                per_set.append(model_inputs(raw[index], float(sigma[index]), normalization, inputs))
        cutouts.append(np.stack(per_set))
        positions.append(pos)
        labels.append(lab.astype(np.float32))
    all_labels = np.concatenate(labels)
    description = {
        "directory": str(root.resolve()),
        "shards": [shard.name for shard in shards],
        "manifest": manifest,
        "manifest_sha256": file_sha256(manifest_path) if manifest is not None else None,
        "attrs": attrs,
        "n_sets": int(all_labels.shape[0]),
        "m": int(all_labels.shape[1]),
        "n_objects": int(all_labels.size),
        "galaxy_fraction": float(all_labels.mean()) if all_labels.size else math.nan,
        "psf_grid": psf_grid,
        "inputs": list(inputs),
        "normalization": {**DEFAULT_NORMALIZATION, "softening": softening},
    }
    return TrainingData(
        cutouts=np.concatenate(cutouts),
        positions=np.concatenate(positions),
        labels=all_labels,
        description=description,
        mag=_joined(mags),
        snr=_joined(snrs),
        blended=_joined(blends),
    )


def _joined(parts: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Concatenate per-part arrays, or `None` if any part has none."""
    if not parts or any(part is None for part in parts):
        return None
    return np.concatenate(parts)


def combine_training_data(parts: Sequence[TrainingData]) -> TrainingData:
    """Join the sets of several training-data directories into one training set.

    Parameters
    ----------
    parts : `~collections.abc.Sequence` [`TrainingData`]
        Data of each directory (`load_training_data`), in the order to join them.

    Returns
    -------
    data : `TrainingData`
        All sets, in order; a single part is returned as it is. The description keeps each
        part's description under ``"parts"`` (its directory, shards and manifest) and the joint
        counts at the top (no ``attrs``: the parts' shard attributes stay with each part).

    Raises
    ------
    ValueError
        If ``parts`` is empty, a directory is given twice (its sets would fall on both sides of the
        validation split), or the parts differ in set size, cutout size, channels or PSF grid.
    """
    if not parts:
        raise ValueError("no training data to combine")
    directories = [part.description["directory"] for part in parts]
    if len(set(directories)) < len(directories):
        raise ValueError(f"a training-data directory is given more than once: {directories}")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    for part in parts[1:]:
        for what in ("m", "cutout_size", "n_channels"):
            if getattr(part, what) != getattr(first, what):
                raise ValueError(
                    f"training data {part.description['directory']!r} has {what} {getattr(part, what)}, "
                    f"{first.description['directory']!r} has {getattr(first, what)}"
                )
        if part.description["psf_grid"] != first.description["psf_grid"]:
            raise ValueError(
                f"training data {part.description['directory']!r} has a PSF grid of "
                f"{part.description['psf_grid']}, {first.description['directory']!r} of "
                f"{first.description['psf_grid']}"
            )
    labels = np.concatenate([part.labels for part in parts])
    description = {
        "parts": [part.description for part in parts],
        "shards": [
            f"{part.description['directory']}/{name}" for part in parts for name in part.description["shards"]
        ],
        "n_sets": int(labels.shape[0]),
        "m": int(labels.shape[1]),
        "n_objects": int(labels.size),
        "galaxy_fraction": float(labels.mean()),
        "psf_grid": first.description["psf_grid"],
        "inputs": first.description["inputs"],
    }
    return TrainingData(
        cutouts=np.concatenate([part.cutouts for part in parts]),
        positions=np.concatenate([part.positions for part in parts]),
        labels=labels,
        description=description,
        mag=_joined([part.mag for part in parts]),
        snr=_joined([part.snr for part in parts]),
        blended=_joined([part.blended for part in parts]),
    )
