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

"""Render a simulated exposure: sources drawn with GalSim, Poisson noise, variance and mask.

Every source is drawn with GalSim into a stamp of the full image (``add_to_image``): stars are
the local PSF profile itself (`PsfField.galsim_profile`, the profile of the attached Piff model),
galaxies the bulge+disk profile convolved with it.  Pixel values are then Poisson draws of
sky plus sources; the returned image is sky-subtracted (electrons) and the variance plane is
the expected variance, sky plus source electrons.
"""

from __future__ import annotations

__all__ = [
    "RENDER_MASK_BITS",
    "RenderedImage",
    "render_exposure",
    "galaxy_profile",
    "stamp_half_width",
    "add_cosmic_rays",
]

import dataclasses

import galsim
import numpy as np
from astropy.table import Table
from lsst.meas.contextnet.sim.psf import RENDER_GSPARAMS, PsfField

RENDER_MASK_BITS: dict[str, int] = {
    "BAD": 0,
    "SAT": 1,
    "INTRP": 2,
    "CR": 3,
    "EDGE": 4,
    "DETECTED": 5,
    "DETECTED_NEGATIVE": 6,
    "SUSPECT": 7,
    "NO_DATA": 8,
}
"""Bits of the renderer's integer mask (afw plane names, in the order of the science pipelines' defaults);
`lsst.meas.contextnet.sim.repo.MASK_PLANES` are the planes of the visit image written from it."""


@dataclasses.dataclass
class RenderedImage:
    """Pixels of one simulated exposure.

    Attributes
    ----------
    image : `numpy.ndarray`
        Sky-subtracted pixel values in electrons, float32, shape (height, width).
    variance : `numpy.ndarray`
        Expected variance (sky plus source electrons), float32.
    mask : `numpy.ndarray`
        Bit mask, int32; bits from `RENDER_MASK_BITS`.
    sky_level : `float`
        Sky subtracted from every pixel, electrons.
    noise_sigma : `float`
        ``sqrt(median(variance))``, the background noise per pixel.
    """

    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    sky_level: float
    noise_sigma: float


def galaxy_profile(
    flux: float,
    hlr: float,
    ellipticity: float,
    rotation_deg: float,
    bulge_fraction: float,
    family: str = "bulge_disk",
    sersic_n: float = 0.0,
    knot_seed: int = 0,
) -> galsim.GSObject:
    """Return a galaxy before PSF convolution.

    Families (`~lsst.meas.contextnet.sim.world.GALAXY_FAMILIES`): ``"bulge_disk"`` (de
    Vaucouleurs bulge and exponential disk sharing the half-light radius), ``"sersic"`` (one
    Sersic profile of index ``sersic_n``) and ``"knots"`` (an exponential disk holding 20%-50%
    of its flux in 20-80 star-forming knots, `galsim.RandomKnots` of the same half-light radius,
    placed by ``knot_seed``).

    Parameters
    ----------
    flux : `float`
        Total flux.
    hlr : `float`
        Half-light radius in arcseconds, shared by bulge and disk.
    ellipticity : `float`
        ``|g| = (a - b) / (a + b)``.
    rotation_deg : `float`
        Position angle of the major axis, degrees counter-clockwise from +x.
    bulge_fraction : `float`
        Fraction of the flux in the de Vaucouleurs bulge (``"bulge_disk"``).
    family : `str`, optional
        Galaxy family.
    sersic_n : `float`, optional
        Sersic index (``"sersic"``).
    knot_seed : `int`, optional
        Seed of the knots' number, flux fraction and positions (``"knots"``).

    Returns
    -------
    profile : `galsim.GSObject`
        The galaxy, centred at the origin.

    Raises
    ------
    ValueError
        If ``family`` is unknown.
    """
    if family in ("sersic", "knots"):
        if family == "sersic":
            profile = galsim.Sersic(n=float(sersic_n), half_light_radius=hlr)
        else:
            rng = np.random.default_rng(int(knot_seed))
            fraction = float(rng.uniform(0.2, 0.5))
            deviate = galsim.BaseDeviate(int(knot_seed))
            knots = galsim.RandomKnots(
                int(rng.integers(20, 81)), half_light_radius=hlr, flux=fraction, rng=deviate
            )
            profile = galsim.Add([galsim.Exponential(half_light_radius=hlr, flux=1.0 - fraction), knots])
        if ellipticity > 0:
            profile = profile.shear(g=ellipticity, beta=rotation_deg * galsim.degrees)
        return profile.withFlux(flux)
    if family != "bulge_disk":
        raise ValueError(f"unknown galaxy family {family!r}")
    components = []
    if bulge_fraction > 0:
        components.append(galsim.DeVaucouleurs(half_light_radius=hlr, flux=bulge_fraction))
    if bulge_fraction < 1:
        components.append(galsim.Exponential(half_light_radius=hlr, flux=1.0 - bulge_fraction))
    profile = components[0] if len(components) == 1 else galsim.Add(components)
    if ellipticity > 0:
        profile = profile.shear(g=ellipticity, beta=rotation_deg * galsim.degrees)
    return profile.withFlux(flux)


def stamp_half_width(
    flux: float, fwhm: float, hlr: float, ellipticity: float, sky: float, beta: float, pixel_scale: float
) -> int:
    """Half-width of the stamp a source is drawn into.

    The PSF part extends to where the Moffat wing falls below 2% of the sky noise; a galaxy's
    stamp also covers 8 half-light radii along its major axis.

    Parameters
    ----------
    flux : `float`
        Source flux in electrons.
    fwhm : `float`
        PSF FWHM in arcseconds.
    hlr : `float`
        Half-light radius in arcseconds (0 for a star).
    ellipticity : `float`
        ``(a - b) / (a + b)``.
    sky : `float`
        Sky level in electrons per pixel.
    beta : `float`
        Moffat index.
    pixel_scale : `float`
        Arcseconds per pixel.

    Returns
    -------
    half_width : `int`
        Pixels, between 8 and 256.
    """
    rd = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    peak = flux * (beta - 1.0) / (np.pi * rd * rd) * pixel_scale**2
    floor = 0.02 * np.sqrt(sky)
    ratio = max(peak / floor, 1.0)
    r_psf = rd * np.sqrt(ratio ** (1.0 / beta) - 1.0) / pixel_scale
    r_gal = 8.0 * hlr * np.sqrt((1.0 + ellipticity) / (1.0 - ellipticity)) / pixel_scale if hlr > 0 else 0.0
    return int(np.clip(np.ceil(max(r_psf, r_gal, 2.0 * fwhm / pixel_scale)), 8, 256))


def add_cosmic_rays(image: np.ndarray, n_hits: int, rng: np.random.Generator) -> np.ndarray:
    """Add cosmic-ray tracks to images in place.

    Each hit is a straight track of 1-6 pixels in a random direction, each pixel given
    500-5000 electrons (a minimum-ionizing muon crossing a 100 um thick CCD deposits about 8000
    electrons over a few pixels).

    Parameters
    ----------
    image : `numpy.ndarray`
        Image of shape ``(H, W)``, or a stack ``(B, H, W)`` (the hits are spread over the stack).
    n_hits : `int`
        Number of hits.
    rng : `numpy.random.Generator`
        Random number generator.

    Returns
    -------
    hit : `numpy.ndarray`
        Boolean array of ``image``'s shape, true on the pixels hit.
    """
    hit = np.zeros(image.shape, dtype=bool)
    shape = image.shape
    for _ in range(int(n_hits)):
        start = [int(rng.integers(0, n)) for n in shape]
        length = int(rng.integers(1, 7))
        angle = rng.uniform(0.0, np.pi)
        steps = np.arange(length)
        rows = np.clip(np.round(start[-2] + steps * np.sin(angle)).astype(int), 0, shape[-2] - 1)
        cols = np.clip(np.round(start[-1] + steps * np.cos(angle)).astype(int), 0, shape[-1] - 1)
        index = (np.full(length, start[0]), rows, cols) if image.ndim == 3 else (rows, cols)
        image[index] += rng.uniform(500.0, 5000.0, size=length).astype(image.dtype)
        hit[index] = True
    return hit


def render_exposure(
    truth: Table,
    psf_field: PsfField,
    *,
    sky_level: float,
    rng: np.random.Generator,
    saturation: float = 1.0e5,
    edge_width: int = 8,
    n_bad_columns: int | None = None,
    n_bad_pixels: int | None = None,
    cosmic_ray_rate: float = 0.0,
    exposure_time: float = 30.0,
    bad_column_rate: float = 2.0,
) -> RenderedImage:
    """Render the sources of ``truth`` into a noisy, masked, sky-subtracted image.

    Parameters
    ----------
    truth : `astropy.table.Table`
        Sources (columns of `~lsst.meas.contextnet.sim.population.draw_population`).
    psf_field : `PsfField`
        PSF of the exposure; its size is the image size.
    sky_level : `float`
        Sky in electrons per pixel.
    rng : `numpy.random.Generator`
        Random number generator for the noise and the defects.
    saturation : `float`, optional
        Pixels whose electrons (sky included) exceed this are clipped to it and flagged SAT.
    edge_width : `int`, optional
        Width in pixels of the EDGE border.
    n_bad_columns : `int`, optional
        Number of bad (partial) columns; default a Poisson draw of mean ``bad_column_rate`` per
        4096 columns.
    n_bad_pixels : `int`, optional
        Number of isolated bad pixels; default a Poisson draw of mean 50 per 4096x4096 pixels.
    cosmic_ray_rate : `float`, optional
        Mean cosmic-ray hits per 4096x4096 pixels per 30 s (`add_cosmic_rays`); their pixels are
        masked CR, as the pipelines' repair step flags them.
    exposure_time : `float`, optional
        Seconds (scales the cosmic-ray rate).
    bad_column_rate : `float`, optional
        Mean bad columns per 4096 columns.

    Returns
    -------
    rendered : `RenderedImage`
        Image, variance, mask and noise level.  BAD pixels hold 0 (the background) and the
        sky variance.

    Raises
    ------
    ValueError
        If the sky level, saturation or edge width is not valid.
    """
    if not (np.isfinite(sky_level) and sky_level > 0):
        raise ValueError(f"sky_level must be positive, got {sky_level!r}")
    if not (saturation > sky_level):
        raise ValueError(f"saturation ({saturation!r}) must exceed the sky level ({sky_level!r})")
    if edge_width < 0:
        raise ValueError(f"edge_width must be >= 0, got {edge_width!r}")
    width, height = psf_field.width, psf_field.height
    scale = psf_field.pixel_scale
    model = np.zeros((height, width), dtype=np.float32)
    canvas = galsim.Image(model, xmin=0, ymin=0, scale=scale)
    columns = {
        name: np.asarray(truth[name]).tolist()
        for name in (
            "x_true",
            "y_true",
            "flux",
            "is_galaxy",
            "hlr_arcsec",
            "ellipticity",
            "rotation_deg",
            "bulge_fraction",
        )
    }
    n_rows = len(truth)
    for name, default in (("galaxy_family", "bulge_disk"), ("sersic_n", 0.0), ("knot_seed", 0)):
        columns[name] = np.asarray(truth[name]).tolist() if name in truth.colnames else [default] * n_rows
    for i in range(len(truth)):
        x, y, flux = columns["x_true"][i], columns["y_true"][i], columns["flux"][i]
        is_galaxy = columns["is_galaxy"][i]
        fwhm = float(psf_field.fwhm_at(x, y))
        hlr = columns["hlr_arcsec"][i] if is_galaxy else 0.0
        e = columns["ellipticity"][i] if is_galaxy else 0.0
        half = stamp_half_width(flux, fwhm, hlr, e, sky_level, psf_field.wing_beta, scale)
        ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        bounds = galsim.BoundsI(ix - half, ix + half, iy - half, iy + half) & canvas.bounds
        if not bounds.isDefined():
            continue
        psf = psf_field.galsim_profile(x, y)
        if is_galaxy:
            galaxy = galaxy_profile(
                flux,
                hlr,
                e,
                columns["rotation_deg"][i],
                columns["bulge_fraction"][i],
                columns["galaxy_family"][i],
                columns["sersic_n"][i],
                columns["knot_seed"][i],
            )
            obj = galsim.Convolve(galaxy, psf, gsparams=RENDER_GSPARAMS)
        else:
            obj = psf.withFlux(flux)
        obj.drawImage(canvas[bounds], add_to_image=True, center=(x, y))

    np.clip(model, 0.0, None, out=model)
    expected = model.astype(np.float64)
    expected += sky_level
    counts = rng.poisson(expected)
    mask = np.zeros((height, width), dtype=np.int32)
    saturated = counts >= saturation
    counts = np.minimum(counts, saturation)
    mask[saturated] |= 1 << RENDER_MASK_BITS["SAT"]
    image = (counts - sky_level).astype(np.float32)
    variance = expected.astype(np.float32)
    del counts, expected

    if cosmic_ray_rate > 0:
        n_hits = int(rng.poisson(cosmic_ray_rate * width * height / 4096.0**2 * exposure_time / 30.0))
        hit = add_cosmic_rays(image, n_hits, rng)
        mask[hit] |= 1 << RENDER_MASK_BITS["CR"]
    if n_bad_columns is None:
        n_bad_columns = int(rng.poisson(bad_column_rate * width / 4096.0))
    if n_bad_pixels is None:
        n_bad_pixels = int(rng.poisson(50.0 * width * height / 4096.0**2))
    bad = np.zeros((height, width), dtype=bool)
    for _ in range(n_bad_columns):
        column = int(rng.integers(0, width))
        start = int(rng.integers(0, height))
        if rng.uniform() < 0.5:
            bad[start:, column] = True
        else:
            bad[: start + 1, column] = True
    bad[rng.integers(0, height, n_bad_pixels), rng.integers(0, width, n_bad_pixels)] = True
    image[bad] = 0.0
    variance[bad] = sky_level
    mask[bad] |= 1 << RENDER_MASK_BITS["BAD"]

    if edge_width > 0:
        edge = np.zeros((height, width), dtype=bool)
        edge[:edge_width, :] = edge[-edge_width:, :] = True
        edge[:, :edge_width] = edge[:, -edge_width:] = True
        mask[edge] |= 1 << RENDER_MASK_BITS["EDGE"]

    return RenderedImage(
        image=image,
        variance=variance,
        mask=mask,
        sky_level=float(sky_level),
        noise_sigma=float(np.sqrt(np.median(variance))),
    )
