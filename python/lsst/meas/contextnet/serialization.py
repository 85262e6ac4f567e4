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

"""Conversion to JSON-compatible values: results (numpy values, non-finite floats) and the
frozen dataclasses of configurations (tuples as lists and back).
"""

from __future__ import annotations

__all__ = ["DictRoundTrip", "dataclass_from_dict", "dataclass_to_dict", "json_compatible", "table_rows"]

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astropy.table import Table


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
        Python numbers and non-finite floats and masked entries as `None`, so that strict JSON
        (and YAML) accept it.
    """
    if value is np.ma.masked:
        return None
    if isinstance(value, Mapping):
        return {str(key): json_compatible(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_compatible(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def table_rows(table: Table) -> list[dict[str, Any]]:
    """Return the rows of an astropy table as JSON-compatible dicts (`json_compatible`).

    Parameters
    ----------
    table : `astropy.table.Table`
        Any table; masked entries become `None`.

    Returns
    -------
    rows : `list` [`dict`]
        One mapping of column name to value per row.
    """
    return [{name: json_compatible(row[name]) for name in table.colnames} for row in table]


def dataclass_to_dict(obj: Any) -> dict[str, Any]:
    """Return a dataclass instance's fields as a dictionary, tuples as lists.

    Parameters
    ----------
    obj : dataclass instance
        A configuration whose fields are scalars and tuples.

    Returns
    -------
    data : `dict` [`str`, `typing.Any`]
        Field name to value.
    """
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}


def dataclass_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a dataclass instance written by `dataclass_to_dict`, lists as tuples.

    Parameters
    ----------
    cls : `type`
        The dataclass.
    data : `~collections.abc.Mapping` [`str`, `typing.Any`]
        Field name to value.

    Returns
    -------
    obj : ``cls``
        The instance (its own validation applies).
    """
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class DictRoundTrip:
    """Mixin giving a dataclass of scalars and tuples ``to_dict`` and ``from_dict``.

    ``to_dict`` returns the fields as a JSON-compatible dictionary (tuples as lists, see
    `dataclass_to_dict`); ``from_dict`` rebuilds the instance from it (`dataclass_from_dict`),
    running the dataclass's own validation.
    """

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-compatible dictionary (tuples as lists)."""
        return dataclass_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Rebuild an instance written by `to_dict`."""
        return dataclass_from_dict(cls, data)
