"""Conversion of results (numpy values, non-finite floats) to strict JSON-compatible values."""

from __future__ import annotations

__all__ = ["json_compatible"]

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def json_compatible(value: Any) -> Any:
    """Return ``value`` with numpy scalars and arrays made Python and NaN/inf made `None`.

    Parameters
    ----------
    value : `object`
        A scalar, a mapping, or a sequence (list, tuple, `numpy.ndarray`), nested to any depth.

    Returns
    -------
    converted : `object`
        The same structure with mapping keys as `str`, sequences as `list`, numpy scalars as
        Python numbers and non-finite floats as `None`, so that strict JSON (and YAML) accept it.
    """
    if isinstance(value, Mapping):
        return {str(key): json_compatible(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_compatible(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
