"""The ``contextnet`` command line: simulate, make training data, train, evaluate, bench, demo."""

from __future__ import annotations

__all__ = ["build_parser", "main"]

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that each add one subcommand through ``add_subcommand(subparsers)``; heavy imports
# (torch, galsim) happen inside the subcommand's function, so ``--help`` stays fast.
_SUBCOMMAND_MODULES = (
    "lsst.meas.contextnet.sim.simulate",
    "lsst.meas.contextnet.sim.training",
    "lsst.meas.contextnet.train",
    "lsst.meas.contextnet.evaluate",
    "lsst.meas.contextnet.peer",
    "lsst.meas.contextnet.robustness",
    "lsst.meas.contextnet.bench",
    "lsst.meas.contextnet.demo",
    "lsst.meas.contextnet.experiments",
)


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
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
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
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        print(f"contextnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
