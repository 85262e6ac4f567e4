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

"""``contextnet bayes-reference``: score classifications beside the Bayes reference classifier."""

from __future__ import annotations

__all__ = ["add_subcommand"]

import argparse
import logging

from lsst.meas.contextnet.cli.arguments import add_repository_arguments


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    from lsst.meas.contextnet.evaluation.bayes import BayesReferenceConfig
    from lsst.meas.contextnet.evaluation.scoring import parse_mag_bins
    from lsst.meas.contextnet.tools.bayesref import bayes_reference_repository

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    result, paths = bayes_reference_repository(
        args.repo,
        args.collections,
        args.output,
        config=BayesReferenceConfig(draws=args.draws),
        seed=args.seed,
        mag_bins=parse_mag_bins(args.mag_bins) if args.mag_bins else None,
        peer=not args.no_peer,
    )
    print(result.format_report())
    print()
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add ``contextnet bayes-reference`` to the command-line parser.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        Subparsers of the top-level parser.
    """
    parser = subparsers.add_parser(
        "bayes-reference",
        help="score classifications beside the Bayes reference classifier of a simulated world",
        description=(
            "For a repository simulated in a world whose population and PSF the reference models "
            "exactly (the narrow world), compute for every matched source the likelihood ratio of "
            "its pixels as a galaxy of the world's population and as a star, turn it into P(galaxy) "
            "fitted on the other visits, and score it (bayes_reference) and its combination with "
            "ContextNet's logit (contextnet_plus_bayes) beside ContextNet, extendedness and the "
            "catalog peer; writes metrics.csv, metrics.json and summary.txt to --output."
        ),
    )
    add_repository_arguments(parser, "the classifications, truth, src and calexp")
    parser.add_argument(
        "--draws",
        type=_positive_int,
        default=48,
        help="galaxies of the population averaged over per source (default %(default)s).",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the galaxy draws and visit folds (default %(default)s)."
    )
    parser.add_argument(
        "--mag-bins", nargs="+", metavar="EDGE", default=None, help="magnitude bin edges, as for evaluate."
    )
    parser.add_argument("--no-peer", action="store_true", help="do not score the catalog-feature peer.")
    parser.set_defaults(func=_run)
