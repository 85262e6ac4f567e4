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

"""``contextnet ingest-model``: store a model file in a Butler repository."""

from __future__ import annotations

__all__ = ["add_subcommand"]

import argparse
import json
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from lsst.meas.contextnet.butlermodel import ingest_model

    record = ingest_model(args.repo, args.model, args.collection)
    print(json.dumps(record, indent=2))
    print(
        f"Run the task on it with: -c contextnetClassifier:useButlerModel=True and "
        f"-i {record['collection']} among the input collections."
    )
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest-model`` subcommand to the ``contextnet`` command.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        The subparsers of the top-level parser.
    """
    from lsst.meas.contextnet.butlermodel import DEFAULT_MODEL_COLLECTION

    parser = subparsers.add_parser(
        "ingest-model",
        help="store a model file in a Butler repository (dataset type contextnet_model)",
        description=(
            "Store a ContextNet model file as the dimensionless dataset contextnet_model in a RUN "
            "collection, so that the classifier can take it as a prerequisite input "
            "(config useButlerModel=True) and provenance names the exact model."
        ),
    )
    parser.add_argument("--repo", required=True, help="Butler repository")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped one)")
    parser.add_argument(
        "--collection",
        default=DEFAULT_MODEL_COLLECTION,
        help=f"RUN collection (default {DEFAULT_MODEL_COLLECTION})",
    )
    parser.set_defaults(func=_run)
