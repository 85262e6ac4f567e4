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

"""``contextnet evaluate``: score a repository's classifications against truth."""

from __future__ import annotations

__all__ = ["add_subcommand", "run_evaluate_command"]

import argparse


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand to the ``contextnet`` command.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        Subparsers of the top-level parser.

    """
    from lsst.meas.contextnet.cli.arguments import add_repository_arguments
    from lsst.meas.contextnet.evaluation.task import ContextNetEvaluationConfig

    defaults = ContextNetEvaluationConfig()
    parser = subparsers.add_parser(
        "evaluate",
        help="compare ContextNet with the DM extendedness baselines against simulation truth",
        description=(
            "Join every contextnet_classification in the collections with its truth (by sourceId) and "
            "write metrics.csv, metrics.json, summary.txt and PNG figures to --output; print the "
            "comparison. Truth objects that were not detected are counted, not scored."
        ),
    )
    add_repository_arguments(parser, "the classifications and the truth")
    parser.add_argument(
        "--mag-bins",
        nargs="+",
        metavar="EDGE",
        default=None,
        help=(
            "magnitude bin edges, e.g. '18 19 20 21' or a range '16:26:0.5' "
            f"(default {defaults.magBins[0]:g}:{defaults.magBins[-1]:g}:"
            f"{defaults.magBins[1] - defaults.magBins[0]:g})."
        ),
    )
    parser.add_argument("--where", default="", help='Butler query expression, e.g. "visit IN (1, 2)".')
    parser.add_argument(
        "--instrument",
        default=None,
        help="instrument constraint (default: the repository's only instrument when --where is given).",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=defaults.threshold,
        help="ContextNet galaxy when P(galaxy) >= this (default %(default)s).",
    )
    parser.add_argument(
        "--exclude-flagged",
        action="store_true",
        help="treat ContextNet probabilities with classification_flag set as missing.",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the trivial predictors' folds (default %(default)s).",
    )
    parser.add_argument("--no-plots", action="store_true", help="do not write the PNG figures.")
    parser.add_argument(
        "--peer",
        default=None,
        help="catalog-feature peer file written by 'contextnet train-peer' (default: the shipped one).",
    )
    parser.add_argument("--no-peer", action="store_true", help="do not score the catalog-feature peer.")
    parser.set_defaults(func=run_evaluate_command)


def run_evaluate_command(args: argparse.Namespace) -> int:
    """Run ``contextnet evaluate`` with parsed arguments.

    Parameters
    ----------
    args : `argparse.Namespace`
        Parsed arguments of the subcommand.

    Returns
    -------
    status : `int`
        0 on success.

    """
    from lsst.meas.contextnet.evaluation.butler import evaluate_repository
    from lsst.meas.contextnet.evaluation.scoring import parse_mag_bins

    result, paths = evaluate_repository(
        args.repo,
        args.collections,
        args.output,
        where=args.where,
        instrument=args.instrument,
        mag_bins=parse_mag_bins(args.mag_bins) if args.mag_bins else None,
        threshold=args.threshold,
        exclude_flagged=args.exclude_flagged,
        seed=args.seed,
        peer=not args.no_peer,
        peer_path=args.peer,
        plots=not args.no_plots,
    )
    print(result.format_report())
    print()
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0
