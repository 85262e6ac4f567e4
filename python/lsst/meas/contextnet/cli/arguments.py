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

"""Argument types shared by the ``contextnet`` subcommands."""

from __future__ import annotations

__all__ = ["add_jobs_argument", "add_repository_arguments", "float_list", "minutes", "positive_int_list"]

import argparse
import math


def positive_int_list(text: str) -> tuple[int, ...]:
    """Parse ``"16,32"`` into ``(16, 32)``; every value must be a positive integer.

    Parameters
    ----------
    text : `str`
        Comma-separated integers.

    Returns
    -------
    values : `tuple` [`int`, ...]
        The integers.
    """
    try:
        values = tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def float_list(text: str) -> tuple[float, ...]:
    """Parse ``"22,23.5"`` into ``(22.0, 23.5)`` (at least one number).

    Parameters
    ----------
    text : `str`
        Comma-separated numbers.

    Returns
    -------
    values : `tuple` [`float`, ...]
        The numbers.
    """
    try:
        values = tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    return values


def minutes(text: str) -> float | None:
    """Parse a positive number of minutes; ``"none"`` or ``"inf"`` mean no limit (`None`).

    Parameters
    ----------
    text : `str`
        The option's value.

    Returns
    -------
    value : `float` or `None`
        Minutes, or `None` for no limit.
    """
    if text.strip().lower() in ("none", "inf"):
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number of minutes or 'none', got {text!r}") from exc
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got {text!r}")
    return value


def add_jobs_argument(parser: argparse.ArgumentParser, default: int) -> None:
    """Add ``--jobs``, the ``pipetask run -j`` of a subcommand that runs ``pipetask``.

    Parameters
    ----------
    parser : `argparse.ArgumentParser`
        The subcommand's parser.
    default : `int`
        The default number of jobs.
    """
    parser.add_argument(
        "--jobs",
        type=int,
        default=default,
        help="pipetask run -j (default: %(default)s; 1 runs every quantum in one process, and every "
        "further job starts a process per quantum, which imports the task and its libraries again)",
    )


def add_repository_arguments(parser: argparse.ArgumentParser, holding: str) -> None:
    """Add ``--repo``, ``--collections`` and ``--output`` of a command that scores a repository.

    Parameters
    ----------
    parser : `argparse.ArgumentParser`
        The subcommand's parser.
    holding : `str`
        What the collections must hold, for the help text (e.g. ``"the classifications and the
        truth"``).
    """
    parser.add_argument("--repo", required=True, help="Butler repository (path or URI).")
    parser.add_argument(
        "--collections",
        required=True,
        nargs="+",
        metavar="C",
        help=f"collections holding {holding}, searched in order.",
    )
    parser.add_argument("--output", required=True, help="output directory (created if needed).")
