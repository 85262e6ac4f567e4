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

"""The simulated camera ``SimCam`` that the ContextNet simulator writes Butler repositories for."""

from __future__ import annotations

__all__ = [
    "DEFAULT_N_DETECTORS",
    "SIMCAM_BANDS",
    "SimCam",
    "physical_filter_for_band",
]

from typing import TYPE_CHECKING

from lsst.pipe.base import Instrument
from lsst.utils.introspection import get_full_type_name

if TYPE_CHECKING:
    from lsst.daf.butler import DataId, Formatter, FormatterV2, Registry

SIMCAM_BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z", "y")
"""Bands of the SimCam filters, blue to red (`tuple` [`str`])."""

DEFAULT_N_DETECTORS: int = 9
"""Number of detectors SimCam registers when no count is given (`int`)."""

_VISIT_MAX = 100_000_000
_EXPOSURE_MAX = 100_000_000


def physical_filter_for_band(band: str) -> str:
    """Return the SimCam physical filter name for a band.

    Parameters
    ----------
    band : `str`
        One of ``u g r i z y``.

    Returns
    -------
    physical_filter : `str`
        ``"SimCam-<band>"``.

    Raises
    ------
    ValueError
        Raised if ``band`` is not a SimCam band.

    """
    if band not in SIMCAM_BANDS:
        raise ValueError(f"band={band!r} is not a SimCam band; expected one of {SIMCAM_BANDS}.")
    return f"{SimCam.getName()}-{band}"


class SimCam(Instrument):
    """A simulated LSST-like camera for the ContextNet simulator.

    SimCam has six physical filters, ``SimCam-u`` ... ``SimCam-y`` (bands
    ``u g r i z y``), and ``n_detectors`` science detectors with IDs
    ``0 .. n_detectors - 1``.  It has no raw data: the simulator writes
    calibrated images directly.

    Parameters
    ----------
    collection_prefix : `str`, optional
        Prefix for collection names to use instead of the instrument name.
    n_detectors : `int`, optional
        Number of detectors to register.  ``butler register-instrument``
        constructs the class without arguments and gets
        `DEFAULT_N_DETECTORS`.

    Raises
    ------
    ValueError
        Raised if ``n_detectors`` is not positive.

    Notes
    -----
    Register from the command line with::

        butler register-instrument REPO lsst.meas.contextnet.instrument.SimCam

    or programmatically with ``SimCam(n_detectors=N).register(butler.registry)``.
    Registering again with a larger count adds the missing detectors.

    """

    def __init__(self, collection_prefix: str | None = None, *, n_detectors: int = DEFAULT_N_DETECTORS):
        super().__init__(collection_prefix=collection_prefix)
        if n_detectors < 1:
            raise ValueError(f"n_detectors={n_detectors!r} must be at least 1.")
        self.n_detectors = int(n_detectors)

    @classmethod
    def getName(cls) -> str:
        """Return the instrument's dimension name, ``"SimCam"``.

        Returns
        -------
        name : `str`
            The short name used as the ``instrument`` value of data IDs.

        """
        return "SimCam"

    @property
    def physical_filters(self) -> dict[str, str]:
        """Mapping from physical filter name to band (`dict` [`str`, `str`])."""
        return {physical_filter_for_band(band): band for band in SIMCAM_BANDS}

    @staticmethod
    def detector_name(detector: int) -> str:
        """Return the full name of a detector.

        Parameters
        ----------
        detector : `int`
            Detector ID.

        Returns
        -------
        name : `str`
            ``"S<id>"`` with the ID zero-padded to two digits.

        """
        return f"S{detector:02d}"

    def register(self, registry: Registry, *, update: bool = False) -> None:
        """Insert the instrument, physical filter and detector records.

        Parameters
        ----------
        registry : `lsst.daf.butler.Registry`
            Registry client for the data repository to modify.
        update : `bool`, optional
            If `True`, update existing records that differ from the new ones.

        Raises
        ------
        lsst.daf.butler.registry.ConflictingDefinitionError
            Raised if an existing record differs and ``update`` is `False`.

        Notes
        -----
        Registration is atomic and idempotent per record.  The instrument's
        ``detector_max`` is the larger of the existing value and
        ``n_detectors``, so registering with fewer detectors than a previous
        call never conflicts.

        """
        name = self.getName()
        existing = [r for r in registry.queryDimensionRecords("instrument") if r.name == name]
        old_max = existing[0].detector_max if existing else None
        detector_max = max(self.n_detectors, old_max or 0)
        with registry.transaction():
            registry.syncDimensionData(
                "instrument",
                {
                    "name": name,
                    "visit_max": _VISIT_MAX,
                    "visit_system": 0,
                    "exposure_max": _EXPOSURE_MAX,
                    "detector_max": detector_max,
                    "class_name": get_full_type_name(self),
                },
                update=update or (old_max is not None and detector_max != old_max),
            )
            for physical_filter, band in self.physical_filters.items():
                registry.syncDimensionData(
                    "physical_filter",
                    {"instrument": name, "name": physical_filter, "band": band},
                    update=update,
                )
            for detector in range(self.n_detectors):
                registry.syncDimensionData(
                    "detector",
                    {
                        "instrument": name,
                        "id": detector,
                        "full_name": self.detector_name(detector),
                        "name_in_raft": self.detector_name(detector),
                        "raft": "R00",
                        "purpose": "SCIENCE",
                    },
                    update=update,
                )

    def getRawFormatter(self, dataId: DataId) -> type[Formatter | FormatterV2]:
        """Refuse: SimCam has no raw data.

        Parameters
        ----------
        dataId : `lsst.daf.butler.DataId`
            Data ID of the raw that was asked for.

        Raises
        ------
        NotImplementedError
            Always; the simulator writes calibrated images (``calexp``)
            directly and there is nothing to ingest.

        """
        raise NotImplementedError(
            f"SimCam has no raw data (asked for a raw formatter for {dataId}); "
            "simulated calexp datasets are written directly."
        )
