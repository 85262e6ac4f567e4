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

"""The catalog-feature peer: gradient-boosted trees on four DM source-table columns.

What a user would pick instead of a CNN: scikit-learn's `HistGradientBoostingClassifier` on

* ``gaussianFlux / psfFlux`` (the ratio extendedness thresholds at 0.95),
* ``log10(psfFlux / psfFluxErr)`` (the signal-to-noise ratio),
* ``sizeExtendedness`` (the moments-based extendedness),
* ``log10(psfFlux)`` (the flux),

trained on the sources of simulated visits of the training world, never on a test set.  Missing
or non-finite values are passed as NaN, which the trees handle natively.  Every evaluation shows
it beside ContextNet, ``extendedness`` and ``sizeExtendedness``
(`lsst.meas.contextnet.evaluation.scoring.evaluate_catalog`).
"""

from __future__ import annotations

__all__ = [
    "CatalogPeer",
    "PEER_FEATURES",
    "VALIDATION_FRACTION",
    "catalog_features",
    "default_peer_path",
    "train_peer_from_butler",
]

import dataclasses
import importlib.resources
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from lsst.meas.contextnet.serialization import json_compatible

PEER_FEATURES: tuple[str, ...] = ("gaussian_over_psf_flux", "log10_snr", "sizeExtendedness", "log10_psf_flux")
"""Names of the peer's features, in column order of `catalog_features`."""

_FORMAT_VERSION = 1

VALIDATION_FRACTION = 0.15
"""Fraction of the training visits held out for the trees' early stopping."""


def default_peer_path() -> Path:
    """Return the path of the peer shipped with the package.

    Returns
    -------
    path : `pathlib.Path`
        ``lsst/meas/contextnet/data/catalog_peer.pkl``.
    """
    return Path(str(importlib.resources.files("lsst.meas.contextnet") / "data" / "catalog_peer.pkl"))


def catalog_features(catalog: Table) -> np.ndarray:
    """Compute the peer's features from source-table columns.

    Parameters
    ----------
    catalog : `astropy.table.Table`
        Sources with ``psfFlux``, ``psfFluxErr``, ``gaussianFlux`` and ``sizeExtendedness``.

    Returns
    -------
    features : `numpy.ndarray`
        ``(N, 4)`` float64 in the order of `PEER_FEATURES`; NaN where undefined.

    Raises
    ------
    ValueError
        If a column is missing.
    """
    needed = ("psfFlux", "psfFluxErr", "gaussianFlux", "sizeExtendedness")
    missing = [name for name in needed if name not in catalog.colnames]
    if missing:
        raise ValueError(f"the catalog peer needs the columns {missing}; the catalog has {catalog.colnames}")

    def column(name: str) -> np.ndarray:
        values = catalog[name]
        return np.asarray(values.filled(np.nan) if hasattr(values, "filled") else values, dtype=np.float64)

    psf, err, gauss, size = (column(name) for name in needed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = gauss / psf
        snr = np.log10(psf / err)
        flux = np.log10(psf)
    features = np.stack([ratio, snr, size, flux], axis=1)
    features[~np.isfinite(features)] = np.nan
    return features


@dataclasses.dataclass
class CatalogPeer:
    """A trained catalog-feature classifier.

    Attributes
    ----------
    model : `sklearn.ensemble.HistGradientBoostingClassifier`
        The fitted trees.
    card : `dict`
        What it was trained on (collections, counts, seed, options).
    """

    model: Any
    card: dict[str, Any]

    @classmethod
    def fit(
        cls,
        catalog: Table,
        is_galaxy: np.ndarray,
        visits: np.ndarray,
        *,
        seed: int = 0,
        card: dict[str, Any] | None = None,
    ) -> CatalogPeer:
        """Train the peer, stopping early on whole held-out visits.

        The sources of one visit share its seeing, PSF and depth, so a hold-out of random sources
        would measure the trees on visits they were fitted to.  Early stopping instead holds out
        ``VALIDATION_FRACTION`` of the visits (at least one), drawn with ``seed``.

        Parameters
        ----------
        catalog : `astropy.table.Table`
            Training sources (see `catalog_features`).
        is_galaxy : `numpy.ndarray`
            True class of each source.
        visits : `numpy.ndarray`
            Visit of each source.
        seed : `int`, optional
            Seed of the held-out visits and of the trees.
        card : `dict`, optional
            Description of the training data, stored with the model.

        Returns
        -------
        peer : `CatalogPeer`
            The trained peer.

        Raises
        ------
        ValueError
            If ``visits`` and ``is_galaxy`` differ in shape, the sources come from fewer than two
            visits, fewer than 20 sources or only one class remain outside the held-out visits,
            or the held-out visits hold only one class (the early stopping could not judge the
            trees).
        """
        from sklearn.ensemble import HistGradientBoostingClassifier

        labels = np.asarray(is_galaxy, dtype=bool)
        visit_of = np.asarray(visits)
        if visit_of.shape != labels.shape:
            raise ValueError(f"visits has shape {visit_of.shape}, is_galaxy {labels.shape}")
        names = np.unique(visit_of)
        if len(names) < 2:
            raise ValueError(f"the catalog peer needs sources of at least two visits, got {len(names)}")
        n_held = max(1, round(VALIDATION_FRACTION * len(names)))
        held = np.isin(visit_of, np.random.default_rng(seed).choice(names, size=n_held, replace=False))
        fitted, judged = labels[~held], labels[held]
        if len(fitted) < 20 or len(np.unique(fitted)) < 2:
            raise ValueError(
                f"the catalog peer needs at least 20 sources of both classes outside its {n_held} held-out "
                f"visit(s), got {len(fitted)}"
            )
        if len(np.unique(judged)) < 2:
            raise ValueError(
                f"the {n_held} visit(s) held out for the catalog peer's early stopping hold only one class; "
                "train it on more visits or with another seed"
            )
        features = catalog_features(catalog)
        model = HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.1, early_stopping=True, random_state=seed
        )
        model.fit(features[~held], fitted.astype(int), X_val=features[held], y_val=judged.astype(int))
        info = {
            "format_version": _FORMAT_VERSION,
            "features": list(PEER_FEATURES),
            "n_train": int(len(labels)),
            "n_visits_held_out": int(n_held),
            "n_held_out": int(held.sum()),
            "galaxy_fraction": float(labels.mean()),
            "n_iter": int(model.n_iter_),
            "seed": int(seed),
            **(card or {}),
        }
        return cls(model=model, card=info)

    def predict(self, catalog: Table) -> np.ndarray:
        """Return P(galaxy) for every source.

        Parameters
        ----------
        catalog : `astropy.table.Table`
            Sources (see `catalog_features`).

        Returns
        -------
        probability : `numpy.ndarray`
            ``(N,)`` float64 in [0, 1].
        """
        if len(catalog) == 0:
            return np.zeros(0)
        return self.model.predict_proba(catalog_features(catalog))[:, 1]

    def save(self, path: str | Path) -> Path:
        """Write the peer (a pickle of the model and its card).

        Parameters
        ----------
        path : `str` or `pathlib.Path`
            Output file.

        Returns
        -------
        path : `pathlib.Path`
            The file written.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as stream:
            pickle.dump({"card": json_compatible(self.card), "model": self.model}, stream)
        return target

    @classmethod
    def load(cls, path: str | Path | None = None) -> CatalogPeer:
        """Read a peer written by `save` (only files of this package: it is a pickle).

        Parameters
        ----------
        path : `str` or `pathlib.Path`, optional
            File; default `default_peer_path`.

        Returns
        -------
        peer : `CatalogPeer`
            The peer.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        ValueError
            If it is not a peer of a supported format.
        """
        source = Path(path) if path is not None else default_peer_path()
        if not source.is_file():
            raise FileNotFoundError(
                f"no catalog peer at {str(source)!r}; train one with 'contextnet train-peer'"
            )
        with open(source, "rb") as stream:
            data = pickle.load(stream)  # noqa: S301 - the package's own file
        if not isinstance(data, dict) or data.get("card", {}).get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"{str(source)!r} is not a catalog peer of format {_FORMAT_VERSION}")
        return cls(model=data["model"], card=data["card"])


def train_peer_from_butler(repo: str, collections: list[str], *, seed: int = 0) -> CatalogPeer:
    """Train the peer on the matched sources of simulated visits in a Butler repository.

    Parameters
    ----------
    repo : `str`
        Repository.
    collections : `list` [`str`]
        Collections holding ``src`` and ``truth`` (simulated training visits).
    seed : `int`, optional
        Seed of the held-out visits and of the trees (`CatalogPeer.fit`).

    Returns
    -------
    peer : `CatalogPeer`
        The trained peer; its card names the repository, collections and counts.
    """
    from lsst.daf.butler import Butler
    from lsst.meas.contextnet.evaluation.butler import load_from_butler

    butler = Butler.from_config(repo, writeable=False)
    joined, bands = load_from_butler(butler, collections, classification_type="src", src_type=None)
    catalog = joined.catalog
    card = {
        "repo": str(repo),
        "collections": list(collections),
        "bands": bands,
        "n_exposures": int(len(set(zip(catalog["visit"], catalog["detector"], strict=True)))),
    }
    labels = np.asarray(catalog["is_galaxy"], dtype=bool)
    return CatalogPeer.fit(catalog, labels, np.asarray(catalog["visit"]), seed=seed, card=card)
