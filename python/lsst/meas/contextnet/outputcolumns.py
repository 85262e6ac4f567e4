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

"""The columns of ``contextnet_classification``, the classifier task's output table."""

from __future__ import annotations

__all__ = ["CLASSIFICATION_COLUMNS", "COLUMN_UNITS", "OUTSIDE_TRAINING_COLUMN"]

COLUMN_UNITS: dict[str, str] = {"x": "pix", "y": "pix"}
"""Units of output columns that have one besides the coordinates (``coordUnit``) and baselines."""

OUTSIDE_TRAINING_COLUMN: str = "classification_flag_outsideTraining"
"""The flag of every row of an exposure outside the model's training conditions (not part of
``classification_flag``)."""

CLASSIFICATION_COLUMNS: dict[str, tuple[str, str]] = {
    "sourceId": ("int64", "Source ID, copied from the input catalog."),
    "coord_ra": ("float64", "Right ascension, copied from the input catalog."),
    "coord_dec": ("float64", "Declination, copied from the input catalog."),
    "x": ("float64", "Column position of the centroid, copied from the input catalog."),
    "y": ("float64", "Row position of the centroid, copied from the input catalog."),
    "classification_galaxyProb": (
        "float32",
        "ContextNet probability that the source is a galaxy: mean over the ensemble sets "
        "containing it; NaN (with classification_flag) if it could not be classified.",
    ),
    "classification_galaxyProbErr": (
        "float32",
        "Standard deviation of the galaxy probability over the ensemble sets containing the source; "
        "NaN if it was in one set only (a pooling model classifies all sources in one set by default).",
    ),
    "classification_nSets": ("int32", "Number of ensemble sets that contained the source."),
    "classification_flag": (
        "bool",
        "Any problem: edge, bad pixels, too few sources, too few good pixels (noData), or a centroid "
        "that is missing, not finite or off the image (those two: galaxyProb NaN).",
    ),
    "classification_flag_edge": (
        "bool",
        "The cutout extends beyond the image (missing pixels set to 0); also set for centroids "
        "off the image, which are not classified.",
    ),
    "classification_flag_badPixels": (
        "bool",
        "The cutout holds non-finite pixels or pixels in a bad mask plane (set to 0).",
    ),
    "classification_flag_fewSources": (
        "bool",
        "Fewer classifiable sources than the model's set size m: sets were filled with repeats "
        "(pooling models: fewer than minContextSources).",
    ),
    "classification_flag_noData": (
        "bool",
        "Fewer than minGoodPixelFraction of the cutout's pixels are good (in the image, finite, not "
        "in a bad mask plane): not classified, galaxyProb NaN.",
    ),
    OUTSIDE_TRAINING_COLUMN: (
        "bool",
        "The exposure's PSF FWHM or band lies outside the conditions of the model's training data "
        "(its model card): classified, but not validated there. Not part of classification_flag.",
    ),
}
"""Columns of the output table that do not depend on the configuration, with their dtypes and
descriptions; the configured baseline columns follow them."""
