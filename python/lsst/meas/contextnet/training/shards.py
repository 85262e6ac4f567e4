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

"""The one reader of training-data directories: manifest check and shard iteration."""

from __future__ import annotations

__all__ = [
    "list_shards",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "SHARD_DATASETS",
    "iter_training_sets",
    "iter_training_shards",
    "read_manifest",
]

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_NAME = "manifest.json"
"""File name of the manifest of a training-data directory."""

FORMAT_VERSION = 2
"""Version of the training-data format this package writes and reads."""

SHARD_DATASETS: tuple[str, ...] = (
    "cutouts",
    "bad",
    "noise_sigma",
    "positions",
    "pixel_xy",
    "offsets",
    "psf_grid",
    "labels",
    "blended",
    "mag",
    "hlr_arcsec",
    "ellipticity",
    "psf_fwhm",
    "snr",
)
"""HDF5 datasets of every shard, one row per set."""


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a training-data manifest.

    Parameters
    ----------
    directory : `str` or `os.PathLike`
        Directory written by `write_training_data`.

    Returns
    -------
    manifest : `dict`
        The manifest.

    Raises
    ------
    FileNotFoundError
        If the manifest or a shard it lists is missing.
    ValueError
        If the manifest's format version is not supported.
    """
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no training-data manifest at {path}")
    manifest = json.loads(path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format_version {manifest.get('format_version')!r}")
    for shard in manifest["shards"]:
        if not (directory / shard["file"]).is_file():
            raise FileNotFoundError(f"{path} lists {shard['file']}, which is missing")
    return manifest


def list_shards(directory: str | os.PathLike[str]) -> tuple[list[Path], dict[str, Any] | None]:
    """Return a training-data directory's shard files and its checked manifest.

    The one listing of shards: a directory with a manifest (every directory the generator
    writes) gives the shards the manifest lists, after `read_manifest` has checked its format
    version and that they exist; a directory of shards without a manifest gives its
    ``shard_*.h5`` files in name order, and `None`.

    Parameters
    ----------
    directory : `str` or `os.PathLike`
        Training-data directory.

    Returns
    -------
    shards : `list` [`pathlib.Path`]
        Shard files, in order.
    manifest : `dict` or `None`
        The manifest.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist or holds no shard.
    ValueError
        If the manifest's format version is not supported.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"training data directory {str(root)!r} does not exist")
    manifest = read_manifest(root) if (root / MANIFEST_NAME).is_file() else None
    if manifest is not None:
        shards = [root / shard["file"] for shard in manifest["shards"]]
    else:
        shards = sorted(root.glob("shard_*.h5"))
    if not shards:
        raise FileNotFoundError(f"no shard_*.h5 files in training data directory {str(root)!r}")
    return shards, manifest


def iter_training_shards(directory: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Iterate over the shards of a training data set, loading each whole.

    Parameters
    ----------
    directory : `str` or `os.PathLike`
        Directory written by `write_training_data`.

    Yields
    ------
    shard : `dict` [`str`, `typing.Any`]
        The shard's arrays (``cutouts`` (S, m, size, size), ``noise_sigma`` (S,),
        ``positions`` (S, m, 2), ``labels``, ``blended``, ``mag``, ``hlr_arcsec``,
        ``ellipticity``, ``psf_fwhm``, ``snr`` (S, m); those a shard lacks are absent) and
        ``attrs`` (a `dict` of the file attributes).

    Raises
    ------
    FileNotFoundError, ValueError
        See `read_manifest`; `ValueError` also if a shard's shapes disagree with the manifest.
    """
    import h5py

    directory = Path(directory)
    manifest = read_manifest(directory)
    m, size = manifest["m"], manifest["cutout_size"]
    for shard in manifest["shards"]:
        path = directory / shard["file"]
        with h5py.File(path, "r") as f:
            data: dict[str, Any] = {key: f[key][()] for key in SHARD_DATASETS if key in f}
            data["attrs"] = dict(f.attrs)
        expected = (shard["n_sets"], m, size, size)
        if data["cutouts"].shape != expected:
            raise ValueError(f"{path}: cutouts have shape {data['cutouts'].shape}, expected {expected}")
        yield data


def iter_training_sets(directory: str | os.PathLike[str]) -> Iterator[dict[str, np.ndarray]]:
    """Iterate over single sets, reading one set at a time.

    Parameters
    ----------
    directory : `str` or `os.PathLike`
        Directory written by `write_training_data`.

    Yields
    ------
    data : `dict` [`str`, `numpy.ndarray`]
        One set: ``cutouts`` (m, size, size), ``noise_sigma`` (scalar array), ``positions``
        (m, 2), ``labels``, ``blended``, ``mag``, ``hlr_arcsec``, ``ellipticity``, ``psf_fwhm``,
        ``snr`` (m,); those a shard lacks are absent.
    """
    import h5py

    directory = Path(directory)
    manifest = read_manifest(directory)
    for shard in manifest["shards"]:
        with h5py.File(directory / shard["file"], "r") as f:
            keys = [key for key in SHARD_DATASETS if key in f]
            for index in range(shard["n_sets"]):
                yield {key: f[key][index] for key in keys}
