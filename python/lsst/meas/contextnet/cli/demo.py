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

"""``contextnet demo``: the whole chain on a small simulated repository."""

from __future__ import annotations

__all__ = ["add_subcommand", "settings_from_args"]

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lsst.meas.contextnet.cli.arguments import add_jobs_argument

if TYPE_CHECKING:
    from lsst.meas.contextnet.tools.demo import DemoSettings


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def settings_from_args(args: argparse.Namespace) -> DemoSettings:
    """Build `DemoSettings` from parsed ``contextnet demo`` arguments.

    Parameters
    ----------
    args : `argparse.Namespace`
        Parsed arguments.

    Returns
    -------
    settings : `DemoSettings`
        Validated settings.

    Raises
    ------
    ValueError
        Raised if a setting is out of range.
    """
    from lsst.meas.contextnet.tools.demo import DemoSettings

    settings = DemoSettings(
        output=Path(args.output),
        size=args.size,
        visits=args.visits,
        detectors=args.detectors,
        seed=args.seed,
        model=None if args.model is None else Path(args.model),
        processes=args.processes,
        jobs=args.jobs,
        keep=args.keep,
    )
    settings.validate()
    return settings


def _run(args: argparse.Namespace) -> int:
    from lsst.meas.contextnet.tools.demo import run_demo

    run_demo(settings_from_args(args), progress=not args.no_progress)
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add ``contextnet demo`` to the command-line parser.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        Subparsers of the ``contextnet`` parser.
    """
    from lsst.meas.contextnet.tools.demo import DEMO_COLLECTION, DEMO_PIPELINE, DemoSettings

    defaults = DemoSettings(output=Path("."))
    parser = subparsers.add_parser(
        "demo",
        help="simulate a small repository, classify it with pipetask, evaluate against truth",
        description=(
            "End-to-end demonstration: simulate LSST-like visits into OUTPUT/repo (collection 'sim'), "
            f"run 'pipetask run' with pipelines/{DEMO_PIPELINE} (output collection '{DEMO_COLLECTION}'), "
            "evaluate ContextNet and the DM extendedness baseline against truth, print the comparison "
            "and write metrics and figures to OUTPUT/eval. An OUTPUT/repo left by an earlier demo is "
            "replaced (or reused with --keep)."
        ),
    )
    parser.add_argument("--output", required=True, help="output directory (created if needed)")
    parser.add_argument(
        "--size", type=int, default=defaults.size, help="detector side in pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--visits", type=int, default=defaults.visits, help="number of visits (default: %(default)s)"
    )
    parser.add_argument(
        "--detectors",
        type=int,
        default=defaults.detectors,
        help="detectors per visit, 1-9 (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--model",
        default=None,
        help="model file (default: the shipped lsst/meas/contextnet/data/contextnet.pt)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=defaults.processes,
        help="simulation processes (default: %(default)s)",
    )
    add_jobs_argument(parser, defaults.jobs)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the simulated repository of an earlier demo in OUTPUT (same --size, --visits, "
        "--detectors, --seed) instead of replacing it; the new classifications are added to "
        f"'{DEMO_COLLECTION}'",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show the simulation progress bar")
    parser.set_defaults(func=_run)
