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

"""``contextnet robustness``: score models on held-out simulated worlds."""

from __future__ import annotations

__all__ = ["add_subcommand"]

import argparse
import logging
from pathlib import Path

from lsst.meas.contextnet.cli.arguments import add_jobs_argument


def _model_pair(text: str) -> tuple[str, str | None, tuple[str, ...]]:
    label, _, rest = text.partition("=")
    path, *overrides = rest.split(",")
    if not label or not path or any("=" not in item for item in overrides):
        raise argparse.ArgumentTypeError(
            f"expected LABEL=PATH[,FIELD=VALUE...] (PATH 'shipped' for the shipped model), got {text!r}"
        )
    return label, None if path == "shipped" else path, tuple(overrides)


def _run(args: argparse.Namespace) -> int:
    from lsst.meas.contextnet.tools.robustness import (
        format_table,
        format_target_table,
        missed_targets,
        run_robustness,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    table, targets = run_robustness(
        args.repo,
        args.output,
        models=args.model or [("contextnet", None)],
        worlds=args.worlds,
        visits=args.visits,
        size=args.size,
        processes=args.processes,
        jobs=args.jobs,
        peer_visits=args.peer_visits,
        r_visits=args.r_visits,
        split=args.split,
        peer_path=args.peer,
    )
    print(format_table(table))
    print(format_target_table(targets))
    print(f"wrote {Path(args.output) / 'robustness.csv'}, robustness.md, robustness.json")
    missed = missed_targets(targets)
    if args.require_targets and missed:
        print(f"targets missed on {len(missed)} of {len(targets)} rows: " + "; ".join(missed))
        return 1
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add ``contextnet robustness`` to the command-line parser.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        Subparsers of the ``contextnet`` parser.
    """
    from lsst.meas.contextnet.sim.world import world_names
    from lsst.meas.contextnet.tools.robustness import DEFAULT_TEST_WORLDS, SPLIT_SEED_BASES

    parser = subparsers.add_parser(
        "robustness",
        help="score ContextNet, extendedness and the catalog peer on held-out test worlds (one table)",
        description="Simulate each test world with seeds never used for training, classify it with "
        "pipetask run, and write one table of accuracy, star and galaxy recall, AUC and ECE per world and "
        "magnitude bin for the models, extendedness, sizeExtendedness and the catalog-feature peer (the "
        "shipped one, --peer, or one trained on training-world visits with --peer-visits).",
    )
    parser.add_argument("--repo", required=True, help="Butler repository (created if missing)")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument(
        "--model",
        type=_model_pair,
        action="append",
        help="LABEL=PATH[,FIELD=VALUE...] of a model to score (repeatable; PATH 'shipped' is the shipped "
        "model; FIELD=VALUE set the classifier's configuration, e.g. poolSetSize=250; default: "
        "contextnet=shipped)",
    )
    parser.add_argument(
        "--worlds", nargs="+", default=list(DEFAULT_TEST_WORLDS), choices=world_names(), help="test worlds"
    )
    parser.add_argument("--visits", type=int, default=16, help="visits per world (default: %(default)s)")
    parser.add_argument(
        "--size", type=int, default=2048, help="detector side in pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="simulation processes (default: %(default)s)"
    )
    add_jobs_argument(parser, 1)
    parser.add_argument(
        "--peer-visits",
        type=int,
        default=0,
        help="simulate this many training-world visits into sim/peer-train and train the peer on the "
        "repository's sim/peer-train* collections (default: %(default)s, score --peer)",
    )
    parser.add_argument(
        "--peer",
        help="a trained peer (contextnet train-peer) to score (default: the shipped peer)",
    )
    parser.add_argument(
        "--r-visits",
        type=int,
        default=16,
        help="r-band visits of each world, scored as world '<world>-r' (star recall at r < 22 in the "
        "band it is stated in; 0: none; default: %(default)s)",
    )
    parser.add_argument(
        "--split",
        choices=sorted(SPLIT_SEED_BASES),
        default="test",
        help="seeds of the worlds: 'test' to report a model, 'validation' to choose between models "
        "(default: %(default)s; use one repository per split)",
    )
    parser.add_argument(
        "--require-targets",
        action="store_true",
        help="exit with status 1 if a model misses a target on any row (the Targets section of "
        "robustness.md), e.g. to accept a retrained model only if it holds them",
    )
    parser.set_defaults(func=_run)
