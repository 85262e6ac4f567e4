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

"""``contextnet make-training-data``: write training sets with the fast generator."""

from __future__ import annotations

__all__ = ["add_subcommand"]

import argparse
import json
import shlex
import sys


def _run(args: argparse.Namespace) -> int:
    from lsst.meas.contextnet.sim.generator import TrainingDataConfig, write_training_data

    config = TrainingDataConfig(
        world=args.world,
        band=args.band,
        m=args.m,
        cutout_size=args.cutout_size,
        detector_size=args.detector_size,
        psf_variation=args.psf_variation,
        star_fraction=args.star_fraction,
        sets_per_shard=args.sets_per_shard,
        centroids=args.centroids,
        labels=args.labels,
    )
    path = write_training_data(
        args.output,
        args.sets,
        config,
        args.seed,
        processes=args.processes,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        command=shlex.join(["contextnet", *sys.argv[1:]]),
    )
    manifest = json.loads(path.read_text())
    print(
        f"wrote {manifest['n_sets']} sets of {manifest['m']} cutouts "
        f"({manifest['n_stars']} stars, {manifest['n_galaxies']} galaxies) to {path.parent}"
    )
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``make-training-data`` subcommand.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        The ``contextnet`` parser's subparsers.
    """
    from lsst.meas.contextnet.sim.generator import CENTROIDS, LABELS
    from lsst.meas.contextnet.sim.psf import PSF_VARIATIONS
    from lsst.meas.contextnet.sim.world import TRAINING_WORLDS

    parser = subparsers.add_parser(
        "make-training-data",
        help="simulate training sets of source cutouts (HDF5 shards)",
        description=(
            "Simulate sets of detected-source cutouts, one simulated visit per set, without "
            "rendering full images, and write them as HDF5 shards with a manifest."
        ),
    )
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--sets", type=int, required=True, help="number of sets (visits)")
    parser.add_argument("--m", type=int, default=1000, help="sources per set (default: %(default)s)")
    parser.add_argument(
        "--world",
        default="narrow",
        choices=TRAINING_WORLDS,
        help="world the sets are drawn from (default: %(default)s)",
    )
    parser.add_argument("--band", default=None, help="LSST band (default: the world's; narrow: r)")
    parser.add_argument(
        "--psf-variation",
        default="full",
        choices=PSF_VARIATIONS,
        help="PSF variation across visits and the detector (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default: %(default)s)")
    parser.add_argument(
        "--cutout-size", type=int, default=28, help="cutout side in pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--detector-size", type=int, default=4096, help="detector side in pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--star-fraction",
        type=float,
        default=None,
        help="expected fraction of stars (default: the world's; narrow: 0.4)",
    )
    parser.add_argument(
        "--sets-per-shard", type=int, default=16, help="sets per shard (default: %(default)s)"
    )
    parser.add_argument(
        "--centroids",
        default="true",
        choices=CENTROIDS,
        help=(
            "where the PSF channel places each source: its true position, or the centroid the "
            "full-image simulator's detection measures on the stamp (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--labels",
        default="brightest",
        choices=LABELS,
        help=(
            "whose class labels a source: the brightest object within the truth-matching radius "
            "of its position (a neighbour when brighter and that close, as the full-image "
            "simulator labels a blend), or always its own (default: %(default)s)"
        ),
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing data in --output")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.set_defaults(func=_run)
