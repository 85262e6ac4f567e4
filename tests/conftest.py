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

"""Test configuration shared by the whole suite."""

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (and in CI), so the suite is deterministic;
# set HYPOTHESIS_PROFILE=explore to search with fresh random examples.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TINY_CONFIG: dict[str, Any] = {
    "architecture": "tiny-test",
    "cutout_size": 28,
    "m": 16,
    "conv_channels": (2,),
    "kernel_size": 3,
    "n_local": 4,
    "global_widths": (8,),
    "predict_widths": (4,),
}
"""A ContextNet small enough to build and run in milliseconds (random weights)."""


def export_tiny_model(
    path: Path, seed: int = 0, metadata: dict[str, Any] | None = None, config: Any = None, **overrides: Any
) -> Path:
    """Export a randomly initialized ContextNet (a test fixture, not a trained model).

    ``config`` (a `ContextNetConfig`) replaces `TINY_CONFIG`; ``overrides`` change its fields.
    """
    import torch
    from lsst.meas.contextnet.model import ContextNetConfig, build_model
    from lsst.meas.contextnet.modelio import export_model

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = build_model(config if config is not None else ContextNetConfig(**(TINY_CONFIG | overrides)))
    card = {"training": {"data": "none: random initialization for tests", "seed": seed}}
    export_model(module, path, card | (metadata or {}))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialized `TINY_CONFIG` model file, shared by the whole session."""
    return export_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny.pt")
