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

"""The ``contextnet`` command line: simulate, make training data, train, evaluate, bench, demo."""

from __future__ import annotations

__all__ = ["EXTRA_OF_MODULE", "build_parser", "main"]

import argparse
import importlib
import sys
from collections.abc import Sequence

# One module per subcommand, each adding itself through ``add_subcommand(subparsers)``, with the
# optional dependency group ("extra") its library code needs.
_SUBCOMMANDS: tuple[tuple[str, str, str], ...] = (
    ("simulate", "lsst.meas.contextnet.cli.simulate", "sim"),
    ("make-training-data", "lsst.meas.contextnet.cli.make_training_data", "sim"),
    ("train", "lsst.meas.contextnet.cli.train", "train"),
    ("ingest-model", "lsst.meas.contextnet.cli.ingest_model", "all"),  # core only
    ("evaluate", "lsst.meas.contextnet.cli.evaluate", "eval"),
    ("train-peer", "lsst.meas.contextnet.cli.train_peer", "eval"),
    ("robustness", "lsst.meas.contextnet.cli.robustness", "all"),
    ("bayes-reference", "lsst.meas.contextnet.cli.bayes_reference", "all"),
    ("bench", "lsst.meas.contextnet.cli.bench", "all"),
    ("demo", "lsst.meas.contextnet.cli.demo", "all"),
    ("reproduce-table1", "lsst.meas.contextnet.cli.table1", "all"),
)


EXTRA_OF_MODULE: dict[str, str] = {
    "galsim": "sim",
    "scipy": "sim",
    "sep": "sim",
    "surveycodex": "sim",
    "starlink": "sim",
    "lsst.sphgeom": "sim",
    "h5py": "train",
    "tqdm": "train",
    "matplotlib": "eval",
    "sklearn": "eval",
    "parsl": "bps",
}
"""The optional dependency group ("extra") that installs each optional top-level module."""


def _add_unavailable(subparsers: argparse._SubParsersAction, command: str, extra: str, missing: str) -> None:
    """Register ``command`` as a subcommand that explains which extra to install."""

    def _fail(args: argparse.Namespace) -> int:
        raise RuntimeError(
            f"needs the Python package {missing!r}, which is not installed; "
            f"install it with: pip install 'lsst-meas-contextnet[{extra}]'"
        )

    parser = subparsers.add_parser(command, help=f"(unavailable: install the [{extra}] extra)")
    parser.set_defaults(func=_fail)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``contextnet`` argument parser with every available subcommand.

    Returns
    -------
    parser : `argparse.ArgumentParser`
        The top-level parser.
    """
    parser = argparse.ArgumentParser(
        prog="contextnet",
        description="ContextNet star/galaxy classification for LSST-like exposures.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, name, extra in _SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.startswith("lsst.meas.contextnet"):
                raise
            _add_unavailable(subparsers, command, extra, exc.name)
            continue
        module.add_subcommand(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``contextnet`` command.

    Parameters
    ----------
    argv : `~collections.abc.Sequence` [`str`], optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : `int`
        Process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.startswith("lsst.meas.contextnet"):
            raise
        extra = EXTRA_OF_MODULE.get(exc.name.split(".")[0], "all")
        print(
            f"contextnet {args.command}: error: needs the Python package {exc.name!r}, which is not "
            f"installed; install it with: pip install 'lsst-meas-contextnet[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"contextnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
