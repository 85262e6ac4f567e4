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

"""Figures of the ContextNet evaluation, in the style of Kennamer et al. (2018) Figures 5-7.

Every function returns a `matplotlib.figure.Figure` built without ``pyplot`` (no global state,
no display needed; ``figure.savefig`` renders with Agg), which is also what the Butler's ``Plot``
storage class writes.
"""

from __future__ import annotations

__all__ = [
    "CLASSIFIER_LABELS",
    "plot_magnitude_performance",
    "plot_probability_vs_size",
    "plot_probability_vs_truth",
    "plot_reliability_diagram",
]

from collections.abc import Mapping, Sequence

import numpy as np
from astropy.table import Table
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory
from numpy.typing import ArrayLike, NDArray

CLASSIFIER_LABELS: dict[str, str] = {
    "ContextNet": "ContextNet",
    "extendedness": "DM extendedness",
    "sizeExtendedness": "DM sizeExtendedness",
    "majority_class": "majority class",
    "magnitude_only": "magnitude only",
}
"""Legend labels of the classifier names used by `lsst.meas.contextnet.evaluation.scoring`."""

_CLASSIFIER_STYLES: dict[str, dict[str, str]] = {
    "ContextNet": {"color": "tab:blue", "marker": "o", "linestyle": "-"},
    "extendedness": {"color": "tab:green", "marker": "s", "linestyle": "-"},
    "sizeExtendedness": {"color": "tab:olive", "marker": "^", "linestyle": "-"},
    "majority_class": {"color": "0.5", "marker": "", "linestyle": ":"},
    "magnitude_only": {"color": "tab:gray", "marker": "", "linestyle": "--"},
}

_MAX_HORIZONTAL_COUNTS = 12  # more magnitude bins than this: counts written vertically
_GALAXY_COLOR = "purple"
_STAR_COLOR = "hotpink"


def _label(name: str) -> str:
    return CLASSIFIER_LABELS.get(name, name)


def _style(name: str, index: int) -> dict[str, str]:
    default = {"color": f"C{index % 10}", "marker": "o", "linestyle": "-"}
    return _CLASSIFIER_STYLES.get(name, default)


def _mag_label(band: str | None) -> str:
    return f"true {band}-band magnitude [AB mag]" if band else "true magnitude [AB mag]"


def _subsample(n: int, max_points: int | None, seed: int) -> NDArray[np.int64]:
    """Indices of at most ``max_points`` of ``n`` objects (all of them, in order, if fewer)."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def plot_magnitude_performance(
    mag: ArrayLike,
    is_galaxy: ArrayLike,
    binned: Table,
    *,
    classifiers: Sequence[str] | None = None,
    metric: str = "accuracy",
    band: str | None = None,
) -> Figure:
    """Figure 5 of the paper: magnitude distributions and a metric against magnitude.

    Parameters
    ----------
    mag : array-like of `float`
        True magnitude of every evaluated object.
    is_galaxy : array-like of `bool`
        True class of every evaluated object.
    binned : `astropy.table.Table`
        Output of `lsst.meas.contextnet.evaluation.metrics.compare_classifiers` (rows with ``bin >= 0``
        are plotted; ``meta["mag_bins"]`` gives the histogram edges when present).
    classifiers : `~collections.abc.Sequence` [`str`], optional
        Classifiers to draw, in order (default: every classifier in ``binned``).
    metric : `str`, optional
        Column of ``binned`` to plot on the right (default ``accuracy``).
    band : `str`, optional
        Band name for the axis label.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        Left: histograms of all objects, galaxies and stars. Right: ``metric`` per magnitude
        bin for each classifier, with the number of scored objects of each bin written above
        it.

    Raises
    ------
    ValueError
        Raised if ``metric`` or a requested classifier is not in ``binned``.

    """
    if metric not in binned.colnames:
        raise ValueError(f"metric {metric!r} is not a column of the binned table ({binned.colnames}).")
    names = list(dict.fromkeys(binned["classifier"])) if classifiers is None else list(classifiers)
    missing = [name for name in names if name not in set(binned["classifier"])]
    if missing:
        raise ValueError(f"classifiers {missing} are not in the binned table.")
    magnitudes = np.asarray(mag, dtype=np.float64)
    labels = np.asarray(is_galaxy, dtype=bool)
    per_bin = binned[binned["bin"] >= 0]
    if "mag_bins" in binned.meta:
        edges = np.asarray(binned.meta["mag_bins"], dtype=np.float64)
    else:
        first = per_bin[per_bin["classifier"] == names[0]] if names else per_bin
        edges = np.append(np.asarray(first["mag_lo"]), np.asarray(first["mag_hi"])[-1:])

    figure = Figure(figsize=(12.0, 4.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    finite = np.isfinite(magnitudes)
    left.hist(magnitudes[finite], bins=edges, histtype="step", color="tab:blue", lw=2, label="all")
    left.hist(
        magnitudes[finite & labels], bins=edges, histtype="step", color="tab:red", lw=1.5, label="galaxies"
    )
    left.hist(
        magnitudes[finite & ~labels], bins=edges, histtype="step", color="tab:green", lw=1.5, label="stars"
    )
    left.set_xlabel(_mag_label(band))
    left.set_ylabel("number of objects per bin")
    left.set_title("magnitude distribution")
    left.legend()

    for index, name in enumerate(names):
        rows = per_bin[per_bin["classifier"] == name]
        centers = 0.5 * (np.asarray(rows["mag_lo"]) + np.asarray(rows["mag_hi"]))
        style = _style(name, index)
        right.plot(centers, np.asarray(rows[metric], dtype=float), label=_label(name), **style)
    if names:
        _annotate_counts(right, per_bin[per_bin["classifier"] == names[0]])
    right.set_xlim(edges[0], edges[-1])
    right.set_ylim(0.0, 1.08)
    right.set_xlabel(_mag_label(band))
    right.set_ylabel(metric.replace("_", " ") + " (fraction)")
    right.set_title(
        f"{metric.replace('_', ' ')} by magnitude (scored objects per bin above)",
        pad=32 if len(edges) - 1 > _MAX_HORIZONTAL_COUNTS else 18,
    )
    right.grid(alpha=0.3)
    right.legend(loc="lower left")
    return figure


def _annotate_counts(ax: Axes, rows: Table) -> None:
    """Write the number of scored objects above each magnitude bin."""
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    rotation = 90 if len(rows) > _MAX_HORIZONTAL_COUNTS else 0
    for row in rows:
        center = 0.5 * (row["mag_lo"] + row["mag_hi"])
        ax.text(
            center,
            1.01,
            str(int(row["n"])),
            transform=transform,
            ha="center",
            va="bottom",
            fontsize=7,
            rotation=rotation,
            color="0.3",
        )


def _column(catalog: Table, name: str) -> NDArray[np.float64]:
    if name not in catalog.colnames:
        raise ValueError(f"column {name!r} is not in the catalog (columns: {catalog.colnames}).")
    column = catalog[name]
    values = np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)
    return np.asarray(values, dtype=np.float64)


def plot_probability_vs_truth(
    catalog: Table,
    *,
    prob_column: str = "classification_galaxyProb",
    class_column: str = "is_galaxy",
    size_column: str = "hlr_arcsec",
    mag_column: str = "mag",
    ellipticity_column: str = "ellipticity",
    rotation_column: str = "rotation_deg",
    max_points: int | None = 20000,
    seed: int = 0,
    band: str | None = None,
) -> Figure:
    """Figure 6 of the paper: P(galaxy) against the simulated size, magnitude, shape, rotation.

    Parameters
    ----------
    catalog : `astropy.table.Table`
        Classification joined with truth
        (`lsst.meas.contextnet.evaluation.matching.join_classification_truth`).
    prob_column, class_column, size_column, mag_column, ellipticity_column, rotation_column : `str`
        Column names of the probability, true class, half-light radius (arcsec), true
        magnitude, ellipticity and rotation angle (deg).
    max_points : `int` or `None`, optional
        Draw at most this many randomly chosen objects (`None`: all).
    seed : `int`, optional
        Seed of the random subsample.
    band : `str`, optional
        Band name for the magnitude axis label.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        Four panels sharing the P(galaxy) axis; galaxies purple, stars pink.

    Raises
    ------
    ValueError
        Raised if a column is missing.

    """
    prob = _column(catalog, prob_column)
    labels = np.asarray(catalog[class_column], dtype=bool)
    panels = [
        (size_column, "half-light radius [arcsec]"),
        (mag_column, _mag_label(band)),
        (ellipticity_column, "ellipticity |e| (dimensionless)"),
        (rotation_column, "rotation angle [deg]"),
    ]
    values = {name: _column(catalog, name) for name, _ in panels}
    keep = _subsample(len(catalog), max_points, seed)

    figure = Figure(figsize=(16.0, 4.2), layout="constrained")
    axes = figure.subplots(1, 4, sharey=True)
    for ax, (name, xlabel) in zip(axes, panels):
        x = values[name][keep]
        y = prob[keep]
        is_gal = labels[keep]
        for mask, color, label in ((is_gal, _GALAXY_COLOR, "galaxies"), (~is_gal, _STAR_COLOR, "stars")):
            ax.scatter(x[mask], y[mask], s=3, alpha=0.4, color=color, label=label, rasterized=True, lw=0)
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ContextNet P(galaxy)")
    axes[0].legend(loc="center right", markerscale=4)
    shown = f" ({keep.size} of {len(catalog)} objects shown)" if keep.size < len(catalog) else ""
    figure.suptitle(f"P(galaxy) against simulated parameters{shown}")
    return figure


def plot_probability_vs_size(
    catalog: Table,
    *,
    prob_column: str = "classification_galaxyProb",
    class_column: str = "is_galaxy",
    size_column: str = "hlr_arcsec",
    mag_column: str = "mag",
    psf_column: str = "psf_fwhm",
    zoom_max_size: float | None = None,
    max_points: int | None = 20000,
    seed: int = 0,
    band: str | None = None,
) -> Figure:
    """Figure 7 of the paper: P(galaxy) against size, colored by magnitude.

    Parameters
    ----------
    catalog : `astropy.table.Table`
        Classification joined with truth.
    prob_column, class_column, size_column, mag_column, psf_column : `str`
        Column names of the probability, true class, half-light radius (arcsec), true magnitude
        and PSF FWHM (arcsec) at the object.
    zoom_max_size : `float`, optional
        Largest half-light radius (arcsec) in the zoomed lower panel. Default: half the median
        PSF FWHM when ``psf_column`` exists (galaxies smaller than the PSF, the hard ones),
        otherwise the 25th percentile of galaxy sizes.
    max_points : `int` or `None`, optional
        Draw at most this many randomly chosen objects (`None`: all).
    seed : `int`, optional
        Seed of the random subsample.
    band : `str`, optional
        Band name for the color-bar label.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        Top: all objects, galaxies in yellow-red and stars in blue-green by magnitude. Bottom:
        galaxies with half-light radius up to ``zoom_max_size`` only.

    Raises
    ------
    ValueError
        Raised if a column is missing.

    """
    prob = _column(catalog, prob_column)
    labels = np.asarray(catalog[class_column], dtype=bool)
    size = _column(catalog, size_column)
    mag = _column(catalog, mag_column)
    if zoom_max_size is None:
        psf = _column(catalog, psf_column) if psf_column in catalog.colnames else np.array([np.nan])
        galaxy_sizes = size[labels & np.isfinite(size)]
        if np.any(np.isfinite(psf)):
            zoom_max_size = 0.5 * float(np.nanmedian(psf))
        elif galaxy_sizes.size:
            zoom_max_size = float(np.percentile(galaxy_sizes, 25))
        else:
            zoom_max_size = 1.0
    keep = _subsample(len(catalog), max_points, seed)
    finite_mag = mag[np.isfinite(mag)]
    vmin, vmax = (float(finite_mag.min()), float(finite_mag.max())) if finite_mag.size else (0.0, 1.0)

    figure = Figure(figsize=(9.0, 9.0), layout="constrained")
    top, bottom = figure.subplots(2, 1)
    x, y, m, gal = size[keep], prob[keep], mag[keep], labels[keep]
    galaxy_points = top.scatter(
        x[gal], y[gal], c=m[gal], cmap="YlOrRd_r", vmin=vmin, vmax=vmax, s=4, lw=0, rasterized=True
    )
    star_points = top.scatter(
        x[~gal], y[~gal], c=m[~gal], cmap="GnBu_r", vmin=vmin, vmax=vmax, s=4, lw=0, rasterized=True
    )
    top.set_xlabel("half-light radius [arcsec] (stars: 0)")
    top.set_ylabel("ContextNet P(galaxy)")
    top.set_title("all objects")
    figure.colorbar(galaxy_points, ax=top, label=f"galaxies: {_mag_label(band)}")
    figure.colorbar(star_points, ax=top, label=f"stars: {_mag_label(band)}")

    small = gal & (x <= zoom_max_size)
    zoom_points = bottom.scatter(
        x[small], y[small], c=m[small], cmap="YlOrRd_r", vmin=vmin, vmax=vmax, s=6, lw=0, rasterized=True
    )
    bottom.set_xlim(0.0, zoom_max_size)
    bottom.set_xlabel("half-light radius [arcsec]")
    bottom.set_ylabel("ContextNet P(galaxy)")
    bottom.set_title(
        f"galaxies with half-light radius <= {zoom_max_size:.2f} arcsec (n = {int(small.sum())})"
    )
    figure.colorbar(zoom_points, ax=bottom, label=f"galaxies: {_mag_label(band)}")
    for ax in (top, bottom):
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    return figure


def plot_reliability_diagram(reliability: Mapping[str, Table]) -> Figure:
    """Reliability diagram: observed galaxy fraction against predicted probability.

    Parameters
    ----------
    reliability : `~collections.abc.Mapping` [`str`, `astropy.table.Table`]
        Classifier name to its `lsst.meas.contextnet.evaluation.metrics.reliability_bins` table.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        Top: galaxy fraction against mean predicted probability per bin, with the diagonal of
        perfect calibration. Bottom: number of objects per probability bin (log scale).

    """
    figure = Figure(figsize=(6.5, 7.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="perfectly calibrated")
    for index, (name, bins) in enumerate(reliability.items()):
        style = _style(name, index)
        filled = np.asarray(bins["n"]) > 0
        top.plot(
            np.asarray(bins["mean_prob"])[filled],
            np.asarray(bins["galaxy_fraction"])[filled],
            label=_label(name),
            **style,
        )
        edges = np.append(np.asarray(bins["prob_lo"]), np.asarray(bins["prob_hi"])[-1:])
        bottom.stairs(np.asarray(bins["n"]), edges, color=style["color"], label=_label(name))
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("observed fraction of galaxies")
    top.set_title("reliability diagram")
    top.grid(alpha=0.3)
    top.legend(loc="upper left")
    if any(np.any(np.asarray(bins["n"]) > 0) for bins in reliability.values()):
        bottom.set_yscale("log")
    bottom.set_xlabel("predicted P(galaxy) (mean in bin)")
    bottom.set_ylabel("objects per bin")
    bottom.grid(alpha=0.3)
    return figure
