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

"""Writing and reading ContextNet model files (TorchScript with a JSON model card).

A model file is a TorchScript archive holding the scripted module (methods ``local_features``,
``predict_sets``, ``predict_set_logits`` and ``forward``, see `lsst.meas.contextnet.model`) and an
extra file ``contextnet.json`` with the metadata the classifier needs (format version, cutout
size, ``m``, architecture, pixel normalization) and a model card (training data, seed, command,
metrics, code version). `load_model` is the only place that reads TorchScript, so another format
(e.g. ``torch.export`` ``.pt2``) can be added behind it.
"""

from __future__ import annotations

__all__ = [
    "FORMAT_VERSION",
    "METADATA_NAME",
    "LoadedModel",
    "ModelFileError",
    "code_version",
    "export_model",
    "file_sha256",
    "load_model",
    "resolve_device",
]

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from lsst.meas.contextnet.cutouts import DEFAULT_NORMALIZATION
from lsst.meas.contextnet.psfinputs import DEFAULT_PSF_GRID, check_inputs
from lsst.meas.contextnet.version import __version__

FORMAT_VERSION = 1
"""Version of the ``contextnet.json`` layout written by `export_model`."""

METADATA_NAME = "contextnet.json"
"""Name of the metadata extra file inside the TorchScript archive."""

_REQUIRED_METHODS = ("local_features", "predict_sets")
_WEIGHTS_DTYPES = {"float32": torch.float32, "float16": torch.float16}


class ModelFileError(RuntimeError):
    """A model file is missing, unreadable, or not a valid ContextNet model."""


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model read by `load_model`, ready for inference."""

    module: torch.jit.ScriptModule
    """The scripted module, float32, in evaluation mode, on ``device``."""

    metadata: dict[str, Any]
    """The ``contextnet.json`` model card."""

    sha256: str
    """SHA-256 of the model file (hex)."""

    device: torch.device
    """Device the module lives on."""

    @property
    def m(self) -> int:
        """Set size the model expects."""
        return int(self.metadata["m"])

    @property
    def cutout_size(self) -> int:
        """Side of the cutouts the model expects, in pixels."""
        return int(self.metadata["cutout_size"])

    @property
    def inputs(self) -> tuple[str, ...]:
        """Input channels the model needs (``("image",)``, ``("image", "psf")``, ...)."""
        return tuple(self.metadata.get("inputs", ("image",)))

    @property
    def global_kind(self) -> str:
        """``"concat"`` (sets of exactly ``m``) or ``"pool"`` (sets of any size)."""
        return str(self.metadata.get("global_kind", "concat"))

    @property
    def psf_grid(self) -> int:
        """Points per detector side at which a PSF-aware model's PSF inputs are drawn."""
        return int(self.metadata.get("psf_grid", DEFAULT_PSF_GRID))


@contextlib.contextmanager
def _quiet_torchscript() -> Iterator[None]:
    # torch >= 2.9 warns FutureWarning on every torch.jit.script/save/load call (TorchScript is
    # deprecated in favour of torch.export). We depend on TorchScript on purpose (ScriptModules
    # with several exported methods and extra files, which torch.export does not offer) and keep
    # it behind export_model/load_model, so silence exactly that warning, only around our calls.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        yield


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device request into a usable `torch.device`.

    Parameters
    ----------
    device : `str` or `torch.device`, optional
        ``"auto"`` (CUDA when available, otherwise CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    device : `torch.device`
        The resolved device.

    Raises
    ------
    ValueError
        If ``device`` is not one of the forms above.
    RuntimeError
        If a CUDA device is requested but CUDA is not available, or ``N`` is out of range.

    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise ValueError(f"unsupported device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(device)!r} requested but CUDA is not available on this machine; "
            "use device='cpu' or 'auto'"
        )
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise RuntimeError(
            f"device {str(device)!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return resolved


def code_version() -> str:
    """Describe the code that is running: package version plus git commit when available.

    Returns
    -------
    version : `str`
        ``"<version>"``, or ``"<version>+g<12-hex sha>"`` (``".dirty"`` appended with
        uncommitted changes) when the package is imported from a git checkout.

    """
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    if not sha:
        return __version__
    return f"{__version__}+g{sha[:12]}" + (".dirty" if dirty else "")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Compute the SHA-256 of a file.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        File to hash.

    Returns
    -------
    digest : `str`
        Hexadecimal digest.

    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _architecture_metadata(module: torch.nn.Module) -> dict[str, Any]:
    """Describe the module's architecture from its `ContextNetConfig`, when it has one."""
    config = getattr(module, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        return {}
    return {
        "architecture": config.architecture,
        "config": config.to_dict(),
        "cutout_size": config.cutout_size,
        "m": config.m,
        "n_local": config.n_local,
        "n_features": config.n_features,
        "context": config.context,
        "global_widths": list(config.global_widths) if config.context else [],
        "predict_widths": list(config.predict_widths),
        "inputs": list(config.inputs),
        "global_kind": config.global_kind if config.context else "none",
    }


def _validate_metadata(metadata: Mapping[str, Any], where: str) -> None:
    """Check the keys the inference code relies on; raise `ModelFileError` naming ``where``."""
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: unsupported model format_version {version!r} (this code reads {FORMAT_VERSION})"
        )
    for key in ("cutout_size", "m"):
        value = metadata.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelFileError(f"{where}: metadata {key!r} must be a positive integer, got {value!r}")
    normalization = metadata.get("normalization")
    if not isinstance(normalization, Mapping) or "kind" not in normalization:
        raise ModelFileError(f"{where}: metadata 'normalization' must be a mapping with a 'kind'")
    inputs = metadata.get("inputs", ["image"])
    if not isinstance(inputs, list | tuple):
        raise ModelFileError(f"{where}: metadata 'inputs' must be a list of channels, got {inputs!r}")
    try:
        check_inputs(inputs)
    except ValueError as error:
        raise ModelFileError(f"{where}: metadata 'inputs': {error}") from None
    if metadata.get("global_kind", "concat") not in ("concat", "pool", "none"):
        raise ModelFileError(f"{where}: unsupported global_kind {metadata.get('global_kind')!r}")
    dtype = metadata.get("weights_dtype", "float32")
    if dtype not in _WEIGHTS_DTYPES:
        raise ModelFileError(f"{where}: unsupported weights_dtype {dtype!r}")


def export_model(
    module: torch.nn.Module,
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
    *,
    weights_dtype: str = "float32",
) -> dict[str, Any]:
    """Script a model and write it with its metadata.

    Parameters
    ----------
    module : `torch.nn.Module`
        An eager `~lsst.meas.contextnet.model.ContextNet` or
        `~lsst.meas.contextnet.model.LocalOnlyNet` (or any scriptable module with the same
        methods; then ``metadata`` must give ``cutout_size`` and ``m``). It is not modified.
    path : `str` or `os.PathLike`
        Output file (conventionally ``.pt``); parent directories are created.
    metadata : `~collections.abc.Mapping` [`str`, `~typing.Any`], optional
        Model card entries (``training``, ``metrics``, ``normalization``, ...), JSON-serializable;
        they override the entries derived from the module.
    weights_dtype : `str`, optional
        ``"float32"``, or ``"float16"`` to store the weights at half precision (half the file
        size; `load_model` converts them back to float32).

    Returns
    -------
    metadata : `dict` [`str`, `~typing.Any`]
        The metadata written to the file.

    Raises
    ------
    ValueError
        If ``weights_dtype`` is unknown, the metadata is incomplete or not JSON-serializable, or
        the module lacks a required method.

    """
    if weights_dtype not in _WEIGHTS_DTYPES:
        raise ValueError(f"weights_dtype must be one of {sorted(_WEIGHTS_DTYPES)}, got {weights_dtype!r}")
    full: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        **_architecture_metadata(module),
        "normalization": dict(DEFAULT_NORMALIZATION),
        "position_features": {
            "kind": "scaled_xy",
            "definition": "2 * (x, y) / (detector size - 1) - 1, pixel centres at integers",
        },
        "training": {},
        "metrics": {},
        "code_version": code_version(),
    }
    full.update(copy.deepcopy(dict(metadata or {})))
    full["format_version"] = FORMAT_VERSION
    full["weights_dtype"] = weights_dtype
    try:
        _validate_metadata(full, "export_model")
    except ModelFileError as exc:
        raise ValueError(str(exc)) from exc
    try:
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model metadata is not JSON-serializable: {exc}") from exc

    to_save = copy.deepcopy(module).cpu().eval()
    to_save = to_save.to(_WEIGHTS_DTYPES[weights_dtype])
    with _quiet_torchscript():
        scripted = torch.jit.script(to_save)
    missing = [name for name in _REQUIRED_METHODS if not hasattr(scripted, name)]
    if missing:
        raise ValueError(f"module lacks the required methods {missing}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_torchscript():
        torch.jit.save(scripted, str(target), _extra_files={METADATA_NAME: text})
    return json.loads(text)


def load_model(path: str | os.PathLike[str], device: str | torch.device = "auto") -> LoadedModel:
    """Read a model file written by `export_model`.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        Model file.
    device : `str` or `torch.device`, optional
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    model : `LoadedModel`
        The float32 module in evaluation mode on the device, its metadata, the file's SHA-256 and
        the device.

    Raises
    ------
    ModelFileError
        If the file is missing or unreadable, is not a TorchScript archive, has no valid
        ``contextnet.json`` metadata, has an unsupported format version, or lacks the methods
        ``local_features`` / ``predict_sets``.
    RuntimeError
        If a CUDA device is requested but not available.
    ValueError
        If ``device`` is malformed.

    """
    resolved = resolve_device(device)
    source = Path(path)
    if not source.is_file():
        raise ModelFileError(f"{source}: model file not found")
    try:
        sha256 = file_sha256(source)
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot read model file: {exc}") from exc
    extra = {METADATA_NAME: ""}
    try:
        with _quiet_torchscript():
            module = torch.jit.load(str(source), map_location=resolved, _extra_files=extra)
    except (RuntimeError, ValueError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{source}: not a readable TorchScript model file ({first_line})") from exc
    raw = extra[METADATA_NAME]
    if not raw:
        raise ModelFileError(f"{source}: no {METADATA_NAME} metadata in the model file")
    try:
        metadata = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{source}: {METADATA_NAME} is not valid JSON ({exc})") from exc
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{source}: {METADATA_NAME} must hold a JSON object")
    _validate_metadata(metadata, str(source))
    missing = [name for name in _REQUIRED_METHODS if not hasattr(module, name)]
    if missing:
        raise ModelFileError(f"{source}: the module lacks the required methods {missing}")
    module = module.float().eval()
    return LoadedModel(module=module, metadata=metadata, sha256=sha256, device=resolved)
