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

"""The pipelines shipped with the package, wherever it is installed.

The YAML files live in the package (``lsst/meas/contextnet/pipelines/``), so a plain
``pip install`` carries them and ``pipetask`` reads them by resource URI::

    pipetask run -p resource://lsst.meas.contextnet/pipelines/ContextNet.yaml ...

A source checkout (and an eups ``setup``, through ``$MEAS_CONTEXTNET_DIR/pipelines``) has them
at ``pipelines/`` too, a link to the same directory.
"""

from __future__ import annotations

__all__ = ["PIPELINE_NAMES", "find_pipeline", "pipeline_uri"]

import importlib.resources
import os
from collections.abc import Mapping
from pathlib import Path

PIPELINE_NAMES: tuple[str, ...] = ("ContextNet.yaml", "ContextNetDM.yaml")
"""The shipped pipelines: the classifier on this package's repositories, and on DM-stack outputs."""


def pipeline_uri(name: str = "ContextNet.yaml") -> str:
    """Return the ``resource://`` URI of a shipped pipeline, for ``pipetask run -p``.

    Parameters
    ----------
    name : `str`, optional
        File name.

    Returns
    -------
    uri : `str`
        ``resource://lsst.meas.contextnet/pipelines/<name>``.
    """
    return f"resource://lsst.meas.contextnet/pipelines/{name}"


def find_pipeline(
    name: str = "ContextNet.yaml",
    *,
    environ: Mapping[str, str] | None = None,
    package_dir: Path | None = None,
) -> Path:
    """Find a shipped pipeline file on disk.

    Looked up, in order, in ``$MEAS_CONTEXTNET_DIR/pipelines`` (set by eups ``setup``) and in the
    installed package.

    Parameters
    ----------
    name : `str`, optional
        File name.
    environ : `~collections.abc.Mapping` [`str`, `str`], optional
        Environment to read ``MEAS_CONTEXTNET_DIR`` from (default: `os.environ`).
    package_dir : `pathlib.Path`, optional
        The package's ``pipelines`` directory (default: located with `importlib.resources`).

    Returns
    -------
    path : `pathlib.Path`
        Absolute path of the pipeline file.

    Raises
    ------
    FileNotFoundError
        Raised, listing every place searched, if no candidate exists.
    """
    environ = os.environ if environ is None else environ
    if package_dir is None:
        package_dir = Path(str(importlib.resources.files("lsst.meas.contextnet") / "pipelines"))
    candidates = []
    if environ.get("MEAS_CONTEXTNET_DIR"):
        candidates.append(Path(environ["MEAS_CONTEXTNET_DIR"]) / "pipelines" / name)
    candidates.append(package_dir / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"pipeline file {name!r} not found; looked in "
        + ", ".join(repr(str(c)) for c in candidates)
        + ". Reinstall the package, or set MEAS_CONTEXTNET_DIR to the package root (eups setup does)."
    )
