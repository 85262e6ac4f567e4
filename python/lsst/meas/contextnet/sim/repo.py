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

"""Butler side of the simulator: repository, dimension records, `VisitImage` assembly and I/O.

Everything here takes plain data (numpy arrays, astropy tables and WCS, a `piff.PSF`) so the
simulator can call, in order: `create_or_open_repo`, `check_collection_free`, `register_visit`,
`make_visit_image`, `put_visit_datasets`; `get_visit_datasets` reads the datasets back.
"""

from __future__ import annotations

__all__ = [
    "DATASET_TYPES",
    "DEFAULT_PIXEL_SCALE_ARCSEC",
    "DEFAULT_PSF_STAMP_SIZE",
    "LEGACY_MASK_PLANE_NAMES",
    "MASK_PLANES",
    "DatasetsExistError",
    "VisitDatasets",
    "check_collection_free",
    "create_or_open_repo",
    "day_obs_for",
    "detector_region",
    "get_visit_datasets",
    "make_detector",
    "make_tan_wcs",
    "make_visit_image",
    "put_visit_datasets",
    "register_dataset_types",
    "register_visit",
]

import dataclasses
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time, TimeDelta
from astropy.wcs import WCS
from lsst.meas.contextnet.instrument import DEFAULT_N_DETECTORS, SimCam, physical_filter_for_band
from lsst.meas.contextnet.sim.psf import PSF_MODEL_STAMP_SIZE
from lsst.meas.contextnet.sim.wcs import DEFAULT_PIXEL_SCALE_ARCSEC, detector_offset, make_tan_wcs

if TYPE_CHECKING:
    import piff
    from lsst.daf.butler import Butler, DatasetRef
    from lsst.images import VisitImage
    from lsst.images.cameras import CameraFrameSet, Detector
    from lsst.sphgeom import ConvexPolygon

DATASET_TYPES: dict[str, str] = {"calexp": "VisitImage", "src": "ArrowAstropy", "truth": "ArrowAstropy"}
"""Dataset types the simulator writes, with their storage classes (`dict` [`str`, `str`]).

All have dimensions ``{instrument, visit, detector}``.
"""

DIMENSIONS: tuple[str, ...] = ("instrument", "visit", "detector")

DEFAULT_PSF_STAMP_SIZE: int = PSF_MODEL_STAMP_SIZE
"""Side in pixels of the PSF images the attached Piff PSF draws (`int`)."""

_PIXEL_SIZE_MM = 0.01  # 10 micron LSST pixels.


def _mask_planes() -> dict[str, Any]:
    """Return the mask planes of DM visit images, keyed by lsst.images name."""
    from lsst.images import get_legacy_visit_image_mask_planes

    return {plane.name: plane for plane in get_legacy_visit_image_mask_planes().values()}


def _legacy_mask_plane_names() -> dict[str, str]:
    """Return the mapping from afw (legacy) mask plane name to lsst.images name."""
    from lsst.images import get_legacy_visit_image_mask_planes

    return {legacy: plane.name for legacy, plane in get_legacy_visit_image_mask_planes().items()}


MASK_PLANES: tuple[str, ...] = tuple(_mask_planes())
"""Mask planes of simulated images: those of DM visit images as ``lsst.images`` names them
(``BAD``, ``SATURATED``, ``DETECTION_EDGE``, ``NO_DATA``, ...), so code reading a simulated
``calexp`` and a DM ``visit_image`` read as `VisitImage` sees the same names.
"""

LEGACY_MASK_PLANE_NAMES: dict[str, str] = _legacy_mask_plane_names()
"""Mapping from afw mask plane name (``SAT``, ``EDGE``, ...) to the ``lsst.images`` name
(``SATURATED``, ``DETECTION_EDGE``, ...); `make_visit_image` accepts either.
"""


class DatasetsExistError(RuntimeError):
    """Raised when a RUN collection already holds simulator datasets that would be written again."""


@dataclasses.dataclass(frozen=True)
class VisitDatasets:
    """The simulator's datasets for one ``{instrument, visit, detector}`` data ID."""

    calexp: VisitImage
    """The calibrated image (`lsst.images.VisitImage`)."""

    src: Table
    """Detected sources (`astropy.table.Table`)."""

    truth: Table
    """True properties of every simulated object (`astropy.table.Table`)."""


REPO_SEED_CONFIG: dict[str, Any] = {
    "datastore": {
        "formatters": {
            "calexp": "lsst.meas.contextnet.formatters.VisitImageFormatter",
            "contextnet_classification": "lsst.meas.contextnet.formatters.ClassificationTableFormatter",
        }
    }
}
"""Configuration every new repository starts from: ``calexp`` files are written and read by
`lsst.meas.contextnet.formatters.VisitImageFormatter` (Piff read repairs, fast-reading planes),
``contextnet_classification`` by `~lsst.meas.contextnet.formatters.ClassificationTableFormatter`
(provenance kept on read)."""


def register_dataset_types(butler: Butler) -> None:
    """Register the ``calexp``, ``src`` and ``truth`` dataset types.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler.

    Raises
    ------
    lsst.daf.butler.registry.ConflictingDefinitionError
        Raised if a dataset type of the same name exists with another definition.

    """
    from lsst.daf.butler import DatasetType

    for name, storage_class in DATASET_TYPES.items():
        butler.registry.registerDatasetType(
            DatasetType(name, DIMENSIONS, storage_class, universe=butler.dimensions)
        )


def _check_writable(path: Path) -> None:
    """Raise `PermissionError`, naming the location, if a repository cannot be written there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".contextnet-write-check"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise PermissionError(
            f"cannot create a Butler repository at {str(path)!r}: {exc.strerror or exc}; choose a "
            "writable location for --repo"
        ) from exc


def create_or_open_repo(
    root: str | Path, *, n_detectors: int = DEFAULT_N_DETECTORS, run: str | None = None
) -> Butler:
    """Create an embedded Butler repository if missing, or open an existing one.

    A new repository gets the default configuration (SQLite registry, file datastore).  In both
    cases `SimCam` (with at least ``n_detectors`` detectors) and the simulator's dataset types
    are registered; both steps are idempotent.

    Parameters
    ----------
    root : `str` or `pathlib.Path`
        Repository directory.  It is created when it does not hold a ``butler.yaml``.
    n_detectors : `int`, optional
        Number of SimCam detectors to register.
    run : `str`, optional
        Default RUN collection of the returned Butler (puts go there).

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        A writeable Butler.

    Raises
    ------
    ValueError
        Raised if ``root`` exists and is a file, or is a non-empty directory without a
        ``butler.yaml``.
    PermissionError
        Raised if no repository can be created at ``root`` (read-only or forbidden location).

    """
    from lsst.daf.butler import Butler, Config

    path = Path(root)
    if path.is_file():
        raise ValueError(f"Repository root {str(path)!r} is a file, not a directory.")
    if not (path / "butler.yaml").exists():
        if path.is_dir() and any(path.iterdir()):
            raise ValueError(
                f"Repository root {str(path)!r} is a non-empty directory without a butler.yaml; "
                "refusing to create a repository there."
            )
        _check_writable(path)
        Butler.makeRepo(str(path), config=Config(REPO_SEED_CONFIG))
    butler = Butler.from_config(str(path), writeable=True, run=run)
    SimCam(n_detectors=n_detectors).register(butler.registry)
    register_dataset_types(butler)
    return butler


def detector_region(wcs: WCS, width: int, height: int) -> ConvexPolygon:
    """Return the sky region of a detector as a `lsst.sphgeom.ConvexPolygon`.

    Parameters
    ----------
    wcs : `astropy.wcs.WCS`
        WCS of the detector (0-based pixel coordinates on the astropy side).
    width, height : `int`
        Detector size in pixels.

    Returns
    -------
    region : `lsst.sphgeom.ConvexPolygon`
        Polygon through the outer corners of the corner pixels.

    """
    return _sky_hull([wcs], width, height)


def _sky_hull(wcs_list: Iterable[WCS], width: int, height: int) -> ConvexPolygon:
    """Return the convex hull on the sky of the detector corners mapped through several WCSs."""
    from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

    x = np.array([-0.5, width - 0.5, width - 0.5, -0.5])
    y = np.array([-0.5, -0.5, height - 0.5, height - 0.5])
    vertices = []
    for wcs in wcs_list:
        ra, dec = wcs.pixel_to_world_values(x, y)
        vertices.extend(
            UnitVector3d(LonLat.fromDegrees(float(a), float(d))) for a, d in zip(ra, dec, strict=True)
        )
    return ConvexPolygon(vertices)


def day_obs_for(begin: Time) -> int:
    """Return the observing day (``YYYYMMDD``, rolling over at 12:00 TAI) of a time.

    Parameters
    ----------
    begin : `astropy.time.Time`
        Start of the observation.

    Returns
    -------
    day_obs : `int`
        The ``day_obs`` dimension value.

    """
    shifted = begin.tai - TimeDelta(12 * 3600, format="sec")
    return int(shifted.strftime("%Y%m%d"))


def register_visit(
    butler: Butler,
    *,
    visit: int,
    band: str,
    exposure_time_s: float,
    begin: Time,
    detector_wcs: Mapping[int, WCS],
    width: int,
    height: int,
    target_name: str = "simulated",
    update: bool = False,
) -> None:
    """Insert the ``day_obs``, ``visit`` and ``visit_detector_region`` records of a visit.

    ``pipetask`` graph building needs ``visit_detector_region`` (KeyError without it), so give the
    WCS of every detector of the visit at once: the visit region is the convex hull of all of them.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler whose repository has `SimCam` registered (see `create_or_open_repo`).
    visit : `int`
        Visit ID (non-negative, below SimCam's ``visit_max``).
    band : `str`
        Band (``u g r i z y``); the physical filter is ``SimCam-<band>``.
    exposure_time_s : `float`
        Exposure time in seconds.
    begin : `astropy.time.Time`
        Start of the exposure; the visit timespan is ``[begin, begin + exposure_time_s)``.
    detector_wcs : `~collections.abc.Mapping` [`int`, `astropy.wcs.WCS`]
        WCS of each detector of the visit, keyed by detector ID.
    width, height : `int`
        Detector size in pixels.
    target_name : `str`, optional
        Field name stored in the visit record.
    update : `bool`, optional
        Replace existing records that differ instead of raising.

    Raises
    ------
    ValueError
        Raised if ``detector_wcs`` is empty or ``exposure_time_s`` is not positive.
    lsst.daf.butler.registry.ConflictingDefinitionError
        Raised if a record for this visit exists with different values and ``update`` is `False`.

    """
    from lsst.daf.butler import Timespan

    if not detector_wcs:
        raise ValueError(f"detector_wcs is empty for visit {visit}: give the WCS of every detector.")
    if not exposure_time_s > 0:
        raise ValueError(f"exposure_time_s={exposure_time_s!r} must be positive.")
    instrument = SimCam.getName()
    physical_filter = physical_filter_for_band(band)
    begin = begin.tai
    end = begin + TimeDelta(exposure_time_s, format="sec")
    day_obs = day_obs_for(begin)
    day_start = Time(
        f"{str(day_obs)[:4]}-{str(day_obs)[4:6]}-{str(day_obs)[6:]}T12:00:00", scale="tai", format="isot"
    )
    detector_regions = {int(det): detector_region(wcs, width, height) for det, wcs in detector_wcs.items()}
    visit_region = _sky_hull(detector_wcs.values(), width, height)
    with butler.registry.transaction():
        butler.registry.syncDimensionData(
            "day_obs",
            {
                "instrument": instrument,
                "id": day_obs,
                "timespan": Timespan(day_start, day_start + TimeDelta(86400, format="sec")),
            },
        )
        butler.registry.syncDimensionData(
            "visit",
            {
                "instrument": instrument,
                "id": int(visit),
                "name": f"{instrument}_{int(visit):08d}",
                "day_obs": day_obs,
                "physical_filter": physical_filter,
                "seq_num": int(visit),
                "exposure_time": float(exposure_time_s),
                "target_name": target_name,
                "observation_reason": "science",
                "science_program": "contextnet-sim",
                "azimuth": None,
                "zenith_angle": None,
                "region": visit_region,
                "timespan": Timespan(begin, end),
            },
            update=update,
        )
        for detector, region in detector_regions.items():
            butler.registry.syncDimensionData(
                "visit_detector_region",
                {"instrument": instrument, "visit": int(visit), "detector": detector, "region": region},
                update=update,
            )


def _camera_frame_set(detector: int, width: int, height: int, pixel_scale_arcsec: float) -> CameraFrameSet:
    """Build SimCam's camera frame set for one detector.

    Notes
    -----
    ``lsst.images`` keeps the `~lsst.images.cameras.CameraFrameSet` constructor private: an
    instance is only obtained by deserializing `~lsst.images.cameras.CameraFrameSetSerializationModel`
    (``instrument`` plus a Starlink AST FrameSet in AST's native text encoding) or from afw.  This
    is the one place that relies on that: it writes the FrameSet text with ``starlink.Ast.Channel``
    and deserializes it.  Frames: ``FOCAL_PLANE`` (mm), ``FIELD_ANGLE`` (rad) and
    ``DETECTOR_<id>`` (pixels, with Bottom/Top giving the detector bounding box).

    """
    import starlink.Ast as Ast
    from lsst.images.cameras import CameraFrameSetSerializationModel

    class _Sink:
        """Collects the lines `starlink.Ast.Channel` writes (it calls ``astsink(line)``)."""

        def __init__(self) -> None:
            self.lines: list[str] = []

        def astsink(self, line: str) -> None:
            self.lines.append(line)

    focal_plane = Ast.Frame(2, "Ident=FOCAL_PLANE,Domain=FOCAL_PLANE,Unit(1)=mm,Unit(2)=mm")
    field_angle = Ast.Frame(2, "Ident=FIELD_ANGLE,Domain=FIELD_ANGLE,Unit(1)=rad,Unit(2)=rad")
    pixels = Ast.Frame(2, f"Ident=DETECTOR_{detector},Domain=PIXEL")
    pixels.Bottom_1, pixels.Top_1 = 0.0, float(width)
    pixels.Bottom_2, pixels.Top_2 = 0.0, float(height)
    frame_set = Ast.FrameSet(focal_plane)
    radians_per_mm = math.radians(pixel_scale_arcsec / 3600.0) / _PIXEL_SIZE_MM
    frame_set.addframe(1, Ast.ZoomMap(2, radians_per_mm), field_angle)
    # Pixels -> focal plane: shift the detector centre to its nominal place in the grid, scale.
    center_mm = _detector_center_mm(detector, width, height)
    pixels_to_focal_plane = Ast.CmpMap(
        Ast.ShiftMap([-(width - 1) / 2.0, -(height - 1) / 2.0]),
        Ast.CmpMap(Ast.ZoomMap(2, _PIXEL_SIZE_MM), Ast.ShiftMap(list(center_mm)), True),
        True,
    )
    pixels_to_focal_plane.invert()  # addframe wants focal plane -> pixels.
    frame_set.addframe(1, pixels_to_focal_plane, pixels)
    sink = _Sink()
    Ast.Channel(None, sink).write(frame_set)
    text = "\n".join(sink.lines) + "\n"
    return CameraFrameSetSerializationModel(instrument=SimCam.getName(), ast=text).deserialize(None)


def _detector_center_mm(detector: int, width: int, height: int) -> tuple[float, float]:
    """Return the focal-plane position (mm) of a detector centre (the layout of `detector_offset`)."""
    dx, dy = detector_offset(detector, width)[0], detector_offset(detector, height)[1]
    return dx * _PIXEL_SIZE_MM, dy * _PIXEL_SIZE_MM


def make_detector(
    detector: int,
    width: int,
    height: int,
    *,
    visit: int | None = None,
    pixel_scale_arcsec: float = DEFAULT_PIXEL_SCALE_ARCSEC,
) -> Detector:
    """Make the `lsst.images.cameras.Detector` of a SimCam detector.

    Parameters
    ----------
    detector : `int`
        Detector ID.
    width, height : `int`
        Detector size in pixels.
    visit : `int`, optional
        Visit the detector geometry belongs to.
    pixel_scale_arcsec : `float`, optional
        Plate scale used for the focal plane to field angle transform.

    Returns
    -------
    detector : `lsst.images.cameras.Detector`
        Nominal geometry: 10 micron pixels, detectors on a 3-wide grid, no amplifiers.

    """
    from lsst.images import Box
    from lsst.images.cameras import Detector, DetectorAttributes, DetectorType, Orientation

    center_x, center_y = _detector_center_mm(detector, width, height)
    attributes = DetectorAttributes(
        name=SimCam.detector_name(detector),
        id=int(detector),
        type=DetectorType.SCIENCE,
        serial=f"SIM-{detector:04d}",
        bbox=Box.factory[0:height, 0:width],
        orientation=Orientation(
            focal_plane_x=center_x,
            focal_plane_y=center_y,
            focal_plane_z=0.0,
            pixel_reference_x=(width - 1) / 2.0,
            pixel_reference_y=(height - 1) / 2.0,
        ),
        pixel_size=_PIXEL_SIZE_MM,
        physical_type="SIM",
    )
    frames = _camera_frame_set(int(detector), width, height, pixel_scale_arcsec)
    return Detector(attributes, [], frames, visit=visit)


def _check_piff_psf(psf: piff.PSF) -> None:
    """Raise if ``psf`` cannot be drawn and serialized by `lsst.images.psfs.PiffWrapper`."""
    import galsim
    import piff

    if not isinstance(psf, piff.PSF):
        raise TypeError(f"psf must be a piff.PSF, not {type(psf).__name__}.")
    wcs = getattr(psf, "wcs", None)
    if not (
        isinstance(wcs, dict)
        and set(wcs) == {0}
        and isinstance(wcs[0], galsim.PixelScale)
        and getattr(psf, "pointing", None) is None
    ):
        raise ValueError(
            "psf must have the WCS map {0: galsim.PixelScale(...)} and no pointing, e.g. "
            "psf.wcs = {0: galsim.PixelScale(0.2)}; psf.pointing = None; lsst.images can only store that "
            f"(got wcs={wcs!r}, pointing={getattr(psf, 'pointing', None)!r})."
        )
    if getattr(psf, "bandpass", None) is not None:
        raise ValueError("psf has a bandpass (chromatic PSF); lsst.images cannot store it.")
    extra = set(psf.interp_property_names) - {"x", "y", "u", "v"}
    if extra:
        raise ValueError(f"psf interpolates over {sorted(extra)}; only x, y, u, v can be evaluated.")


def make_visit_image(
    image: np.ndarray,
    variance: np.ndarray,
    masks: Mapping[str, np.ndarray],
    wcs: WCS,
    psf: piff.PSF,
    *,
    visit: int,
    detector: int,
    band: str,
    exposure_time_s: float,
    begin: Time,
    psf_stamp_size: int = DEFAULT_PSF_STAMP_SIZE,
    pixel_scale_arcsec: float = DEFAULT_PIXEL_SCALE_ARCSEC,
    metadata: Mapping[str, int | float | str | bool] | None = None,
) -> VisitImage:
    """Assemble an `lsst.images.VisitImage` from plain arrays.

    Parameters
    ----------
    image : `numpy.ndarray`
        Sky-subtracted pixels in electrons, shape ``(height, width)``; stored as float32.
    variance : `numpy.ndarray`
        Variance in electrons squared, same shape; stored as float32.
    masks : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Boolean arrays (same shape) keyed by mask plane name, either the ``lsst.images`` name
        (`MASK_PLANES`: ``BAD``, ``SATURATED``, ``DETECTION_EDGE``, ...) or the afw name
        (``BAD``, ``SAT``, ``EDGE``, ...; see `LEGACY_MASK_PLANE_NAMES`).  Planes not given are
        all clear.
    wcs : `astropy.wcs.WCS`
        Celestial WCS of the image, e.g. from `make_tan_wcs`.
    psf : `piff.PSF`
        PSF model in pixel coordinates; it must draw with ``psf.draw(x, y)`` (a single-chip
        ``galsim.PixelScale`` WCS, no pointing).  It is attached as a
        `lsst.images.psfs.PiffWrapper`, which is kept by `VisitImage.to_legacy`.  An empty
        ``stars`` list is added to it if it has none (serialization needs the attribute).
    visit, detector : `int`
        Data ID values.
    band : `str`
        Band (``u g r i z y``).
    exposure_time_s : `float`
        Exposure time in seconds.
    begin : `astropy.time.Time`
        Start of the exposure.
    psf_stamp_size : `int`, optional
        Side of the (odd-sized) PSF images the PSF returns.
    pixel_scale_arcsec : `float`, optional
        Nominal pixel scale for the detector geometry.
    metadata : `~collections.abc.Mapping`, optional
        Scalar metadata to store with the image.

    Returns
    -------
    calexp : `lsst.images.VisitImage`
        The image with variance, mask, sky projection, PSF, detector and observation info.

    Raises
    ------
    ValueError
        Raised if array shapes differ, a mask plane is unknown, ``psf_stamp_size`` is not a
        positive odd number, or the PSF cannot be stored.
    TypeError
        Raised if ``psf`` is not a `piff.PSF`.

    """
    from astro_metadata_translator import ObservationInfo
    from lsst.images import Box, Image, Mask, MaskSchema, SkyProjection, VisitImage
    from lsst.images.psfs import PiffWrapper

    image = np.asarray(image)
    variance = np.asarray(variance)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-d, got shape {image.shape}.")
    if variance.shape != image.shape:
        raise ValueError(f"variance shape {variance.shape} differs from image shape {image.shape}.")
    if psf_stamp_size < 1 or psf_stamp_size % 2 == 0:
        raise ValueError(f"psf_stamp_size={psf_stamp_size!r} must be a positive odd number.")
    _check_piff_psf(psf)
    if not hasattr(psf, "stars"):
        psf.stars = []
    height, width = image.shape
    bbox = Box.factory[0:height, 0:width]

    planes = _mask_planes()
    schema = MaskSchema(planes.values())
    mask = Mask(0, schema=schema, bbox=bbox)
    for name, values in masks.items():
        plane = name if name in planes else LEGACY_MASK_PLANE_NAMES.get(name)
        if plane is None:
            raise ValueError(
                f"Unknown mask plane {name!r}; expected one of {sorted(planes)} "
                f"or an afw name in {sorted(LEGACY_MASK_PLANE_NAMES)}."
            )
        values = np.asarray(values)
        if values.shape != image.shape:
            raise ValueError(f"Mask plane {name!r} has shape {values.shape}, image has {image.shape}.")
        mask.set(plane, values.astype(bool))

    camera_detector = make_detector(
        detector, width, height, visit=visit, pixel_scale_arcsec=pixel_scale_arcsec
    )
    sky_projection = SkyProjection.from_fits_wcs(wcs, camera_detector.frame, pixel_bounds=bbox, x0=0, y0=0)
    begin = begin.tai
    center_ra, center_dec = wcs.pixel_to_world_values((width - 1) / 2.0, (height - 1) / 2.0)
    obs_info = ObservationInfo(
        telescope="SimCam",
        instrument=SimCam.getName(),
        physical_filter=physical_filter_for_band(band),
        exposure_id=int(visit),
        visit_id=int(visit),
        detector_num=int(detector),
        detector_name=SimCam.detector_name(detector),
        detector_unique_name=SimCam.detector_name(detector),
        detector_serial=camera_detector.serial,
        detector_exposure_id=int(visit) * 1000 + int(detector),
        datetime_begin=begin,
        datetime_end=begin + TimeDelta(exposure_time_s, format="sec"),
        exposure_time=float(exposure_time_s) * u.s,
        exposure_time_requested=float(exposure_time_s) * u.s,
        tracking_radec=SkyCoord(float(center_ra) * u.deg, float(center_dec) * u.deg, frame="icrs"),
        observation_type="science",
        observation_reason="science",
        observing_day=day_obs_for(begin),
        has_simulated_content=True,
        can_see_sky=True,
    )
    return VisitImage(
        Image(np.asarray(image, dtype=np.float32), bbox=bbox, unit=u.electron),
        mask=mask,
        variance=Image(np.asarray(variance, dtype=np.float32), bbox=bbox, unit=u.electron**2),
        sky_projection=sky_projection,
        obs_info=obs_info,
        psf=PiffWrapper(psf, bounds=bbox, stamp_size=psf_stamp_size),
        detector=camera_detector,
        band=band,
        metadata=dict(metadata) if metadata is not None else None,
    )


def _data_id(visit: int, detector: int) -> dict[str, Any]:
    return {"instrument": SimCam.getName(), "visit": int(visit), "detector": int(detector)}


def check_collection_free(butler: Butler, collection: str) -> None:
    """Raise if ``collection`` already holds any ``calexp``, ``src`` or ``truth`` dataset.

    Call it before simulating so a re-run with an existing collection fails at once.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the repository.
    collection : `str`
        Output RUN collection.

    Raises
    ------
    DatasetsExistError
        Raised if the collection holds simulator datasets.

    """
    from lsst.daf.butler import MissingCollectionError

    try:
        butler.collections.get_info(collection)
    except MissingCollectionError:
        return
    found = {}
    for name in DATASET_TYPES:
        refs = butler.query_datasets(
            name, collections=collection, find_first=False, explain=False, limit=None
        )
        if refs:
            found[name] = len(refs)
    if found:
        summary = ", ".join(f"{count} {name}" for name, count in found.items())
        raise DatasetsExistError(
            f"Collection {collection!r} already holds "
            f"simulated datasets ({summary}). Choose a new collection name, or remove this one with "
            f"'butler remove-runs REPO {collection}'."
        )


def put_visit_datasets(
    butler: Butler, run: str, calexp: VisitImage, src: Table, truth: Table
) -> dict[str, DatasetRef]:
    """Write ``calexp``, ``src`` and ``truth`` for one data ID into a RUN collection.

    The data ID is ``{instrument: SimCam, visit: calexp.detector.visit, detector: calexp.detector.id}``.
    The three puts happen in one transaction: all are written or none.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler; the visit must have been registered with `register_visit`.
    run : `str`
        RUN collection (created if missing).
    calexp : `lsst.images.VisitImage`
        Image from `make_visit_image`.
    src, truth : `astropy.table.Table`
        Source and truth tables.

    Returns
    -------
    refs : `dict` [`str`, `lsst.daf.butler.DatasetRef`]
        References of the written datasets, keyed by dataset type name.

    Raises
    ------
    ValueError
        Raised if ``calexp`` carries no visit.
    DatasetsExistError
        Raised, naming the collection, if it already holds any of these datasets for this data ID.

    """
    from lsst.daf.butler import CollectionType, MissingCollectionError

    visit = calexp.detector.visit
    if visit is None:
        raise ValueError("calexp.detector has no visit; build it with make_visit_image(visit=...).")
    data_id = _data_id(visit, calexp.detector.id)
    try:
        butler.collections.get_info(run)
    except MissingCollectionError:
        pass
    else:
        existing = [
            name for name in DATASET_TYPES if butler.find_dataset(name, data_id, collections=run) is not None
        ]
        if existing:
            raise DatasetsExistError(
                f"Collection {run!r} already holds {', '.join(existing)} for {data_id}; "
                "choose a new collection name (or remove it with 'butler remove-runs')."
            )
    butler.collections.register(run, CollectionType.RUN)
    refs: dict[str, DatasetRef] = {}
    with butler.transaction():
        for name, obj in (("calexp", calexp), ("src", src), ("truth", truth)):
            refs[name] = butler.put(obj, name, data_id, run=run)
    return refs


def get_visit_datasets(
    butler: Butler, collections: str | list[str], *, visit: int, detector: int
) -> VisitDatasets:
    """Read back ``calexp``, ``src`` and ``truth`` for one data ID.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the repository.
    collections : `str` or `list` [`str`]
        Collections to search.
    visit, detector : `int`
        Data ID values.

    Returns
    -------
    datasets : `VisitDatasets`
        The three datasets.

    """
    data_id = _data_id(visit, detector)
    return VisitDatasets(
        calexp=butler.get("calexp", data_id, collections=collections),
        src=butler.get("src", data_id, collections=collections),
        truth=butler.get("truth", data_id, collections=collections),
    )
