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

"""The model the classifier task runs: loaded once per process, checked against the task's inputs."""

from __future__ import annotations

__all__ = [
    "SUPPORTED_NORMALIZATIONS",
    "SUPPORTED_POSITION_FEATURES",
    "check_model",
    "default_model_path",
    "load_checked_model",
    "load_model_file",
    "model_file",
    "model_source",
    "resolve_model",
]

import functools
import importlib.resources
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsst.meas.contextnet.modelio import LoadedModel

SUPPORTED_NORMALIZATIONS: tuple[str, ...] = ("asinh_noise",)
"""Pixel normalizations the task applies (``normalization.kind`` of a model card)."""

SUPPORTED_POSITION_FEATURES: tuple[str, ...] = ("scaled_xy",)
"""Position features the task computes (``position_features.kind`` of a model card)."""


def check_model(loaded: LoadedModel, path: Path) -> None:
    """Check that the network accepts what its metadata declares; raise `ModelFileError`."""
    import torch
    from lsst.meas.contextnet.modelio import ModelFileError

    metadata = loaded.metadata
    kind = metadata["normalization"].get("kind")
    if kind not in SUPPORTED_NORMALIZATIONS:
        raise ModelFileError(
            f"{path}: pixel normalization {kind!r} is not supported (this task applies "
            f"{SUPPORTED_NORMALIZATIONS})"
        )
    softening = metadata["normalization"].get("softening")
    if isinstance(softening, bool) or not isinstance(softening, int | float) or not softening > 0:
        raise ModelFileError(f"{path}: normalization softening must be positive, got {softening!r}")
    positions = metadata.get("position_features", {})
    position_kind = positions.get("kind") if isinstance(positions, Mapping) else positions
    if position_kind not in SUPPORTED_POSITION_FEATURES:
        raise ModelFileError(
            f"{path}: position features {position_kind!r} are not supported (this task computes "
            f"{SUPPORTED_POSITION_FEATURES})"
        )
    size, m = loaded.cutout_size, loaded.m
    # One blank cutout and one set through the network: a network built for another cutout
    # size, set size, number of channels or of position features fails here with a clear
    # message rather than in the middle of a run.
    with torch.inference_mode():
        try:
            features = loaded.module.local_features(
                torch.zeros((1, len(loaded.inputs), size, size), device=loaded.device),
                torch.zeros((1, 2), device=loaded.device),
            )
            probabilities = loaded.module.predict_sets(features.unsqueeze(0).expand(1, m, -1))
        except (RuntimeError, torch.jit.Error) as exc:  # a scripted raise is a torch.jit.Error
            message = str(exc).strip().splitlines()
            raise ModelFileError(
                f"{path}: the network rejects inputs of the size its metadata declares "
                f"(cutout_size={size}, m={m}, inputs {list(loaded.inputs)}, 2 position features): "
                f"{message[-1] if message else type(exc).__name__}"
            ) from exc
    if tuple(probabilities.shape) != (1, m):
        raise ModelFileError(
            f"{path}: predict_sets returned shape {tuple(probabilities.shape)} for one set of m={m}"
        )


@functools.lru_cache(maxsize=2)
def load_checked_model(path: str, mtime_ns: int, size: int, device: str) -> LoadedModel:
    """Load and check a model, cached per process.

    ``pipetask`` builds a new task for every quantum; the cache (keyed by the file's path,
    modification time and size, and the requested device) lets the quanta of one process share
    one loaded model.
    """
    from lsst.meas.contextnet.modelio import load_model

    loaded = load_model(path, device)
    check_model(loaded, Path(path))
    return loaded


def default_model_path() -> Path:
    """Return the path of the model shipped with the package.

    Returns
    -------
    path : `pathlib.Path`
        ``lsst/meas/contextnet/data/contextnet.pt`` inside the installed package, found with
        `importlib.resources`; the file may not exist (e.g. in a checkout without a trained model).

    """
    return Path(str(importlib.resources.files("lsst.meas.contextnet").joinpath("data", "contextnet.pt")))


def model_file(model_path: str | None) -> Path:
    """Return the model file a ``modelPath`` value selects (`None`: the shipped model).

    Parameters
    ----------
    model_path : `str` or `None`
        The configured path; environment variables and ``~`` are expanded.

    Returns
    -------
    path : `pathlib.Path`
        The file.
    """
    if model_path is None:
        return default_model_path()
    return Path(os.path.expanduser(os.path.expandvars(model_path)))


def model_source(model_path: str | None) -> str:
    """Name the configuration that selects a model file, for error messages.

    Parameters
    ----------
    model_path : `str` or `None`
        The configured ``modelPath`` (`None`: the shipped model).

    Returns
    -------
    source : `str`
        ``"the shipped model"`` or ``"config.modelPath"``.
    """
    return "the shipped model" if model_path is None else "config.modelPath"


def load_model_file(path: Path, device: str, source: str) -> LoadedModel:
    """Load and check a model file on a device, through the per-process cache.

    Parameters
    ----------
    path : `pathlib.Path`
        The model file.
    device : `str`
        The requested device (see `~lsst.meas.contextnet.modelio.resolve_device`).
    source : `str`
        What selected the file (`model_source`), named in the error when it is missing.

    Returns
    -------
    loaded : `~lsst.meas.contextnet.modelio.LoadedModel`
        The checked model; the same object for the same file and device.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    lsst.meas.contextnet.modelio.ModelFileError
        If the file is not a valid model or its network rejects its declared inputs.
    RuntimeError
        If the device asks for CUDA and none is usable.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"ContextNet model file {str(path)!r} ({source}) does not exist; train one with "
            "'contextnet train' or set config.modelPath"
        )
    stat = path.stat()
    return load_checked_model(str(path), stat.st_mtime_ns, stat.st_size, device)


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """Return the model file a command's ``--model`` option selects, checking that it exists.

    Parameters
    ----------
    model : `str`, `os.PathLike` or `None`
        A model file (``~`` and environment variables expanded), or `None` for the model
        shipped with the package (`default_model_path`).

    Returns
    -------
    path : `pathlib.Path`
        Absolute path of an existing file.

    Raises
    ------
    FileNotFoundError
        Raised, naming the path, if the file does not exist.
    """
    path = model_file(None if model is None else os.fspath(model))
    if model is None and not path.is_file():
        raise FileNotFoundError(
            f"the shipped model {str(path)!r} does not exist (not trained or not installed yet); "
            "train one with 'contextnet make-training-data' and 'contextnet train', or pass "
            "--model PATH."
        )
    if not path.is_file():
        raise FileNotFoundError(f"--model {str(path)!r} does not exist or is not a file.")
    return path.resolve()
