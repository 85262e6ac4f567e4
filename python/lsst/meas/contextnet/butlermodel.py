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

"""The model as a Butler dataset: ``contextnet ingest-model`` and the task's side of it.

A model file is stored as the dimensionless dataset ``contextnet_model`` (default RUN collection
``pretrained_models/contextnet``), its bytes held as a uint8 ``NumpyArray``: a storage class
every Butler repository knows, so no repository configuration is needed. With
``useButlerModel = True`` the classifier takes it as a prerequisite input, so the quantum graph
and the outputs' provenance name the exact dataset; the task writes the bytes to a local cache
file named by their SHA-256 and loads that.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MODEL_COLLECTION", "MODEL_DATASET_TYPE", "butler_model_file", "ingest_model"]

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

MODEL_DATASET_TYPE = "contextnet_model"
"""Dimensionless dataset type of models stored in the Butler by ``contextnet ingest-model``."""

DEFAULT_MODEL_COLLECTION = "pretrained_models/contextnet"
"""RUN collection ``contextnet ingest-model`` writes to by default."""


def ingest_model(
    repo: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    collection: str = DEFAULT_MODEL_COLLECTION,
) -> dict[str, Any]:
    """Store a model file in a Butler repository as a ``contextnet_model`` dataset.

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        Butler repository.
    model : `str` or `os.PathLike`, optional
        Model file (``~`` and environment variables expanded; default: the model shipped with the
        package). It is loaded and checked first.
    collection : `str`, optional
        RUN collection to write to (created if needed).

    Returns
    -------
    record : `dict`
        ``collection``, ``dataset_id``, ``sha256`` and ``path``.

    Raises
    ------
    FileNotFoundError
        If the model file does not exist.
    lsst.meas.contextnet.modelio.ModelFileError
        If it is not a valid ContextNet model.
    FileExistsError
        If the collection already holds a different model (a RUN collection holds one
        dimensionless dataset of a type); the same model again is not an error.
    """
    from lsst.daf.butler import Butler, DatasetType
    from lsst.meas.contextnet.modelcheck import resolve_model
    from lsst.meas.contextnet.modelio import load_model

    path = resolve_model(model)
    loaded = load_model(path, "cpu")
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    butler = Butler.from_config(str(repo), writeable=True)
    try:
        butler.registry.registerDatasetType(
            DatasetType(MODEL_DATASET_TYPE, (), "NumpyArray", universe=butler.dimensions)
        )
        existing = (
            butler.find_dataset(MODEL_DATASET_TYPE, collections=[collection])
            if _has_run(butler, collection)
            else None
        )
        if existing is not None:
            stored = hashlib.sha256(np.asarray(butler.get(existing)).tobytes()).hexdigest()
            if stored != loaded.sha256:
                raise FileExistsError(
                    f"collection {collection!r} already holds another ContextNet model (sha256 {stored}); "
                    "ingest into another collection with --collection"
                )
            ref = existing
        else:
            butler.collections.register(collection)
            ref = butler.put(data, MODEL_DATASET_TYPE, run=collection)
    finally:
        butler.close()
    return {"collection": collection, "dataset_id": str(ref.id), "sha256": loaded.sha256, "path": str(path)}


def _has_run(butler: Any, collection: str) -> bool:
    from lsst.daf.butler import MissingCollectionError

    try:
        butler.collections.get_info(collection)
    except MissingCollectionError:
        return False
    return True


def butler_model_file(payload: np.ndarray) -> Path:
    """Write a model read from the Butler to a local cache file named by its SHA-256.

    Parameters
    ----------
    payload : `numpy.ndarray`
        The model file's bytes (uint8), as ``contextnet ingest-model`` stores them.

    Returns
    -------
    path : `pathlib.Path`
        ``$TMPDIR/contextnet-models-<uid>/<sha256>.pt``: one directory per user (a shared
        temporary directory holds other users' files, which this user may not replace), written
        once per content and written again when the file there no longer has that content.
    """
    import tempfile

    data = np.ascontiguousarray(payload, dtype=np.uint8).tobytes()
    digest = hashlib.sha256(data).hexdigest()
    directory = Path(tempfile.gettempdir()) / f"contextnet-models-{os.getuid()}"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{digest}.pt"
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    return path
