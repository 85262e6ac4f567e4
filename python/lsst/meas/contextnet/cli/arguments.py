"""Argument types shared by the ``contextnet`` subcommands."""

from __future__ import annotations

__all__ = ["float_list", "minutes", "positive_int_list"]

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
