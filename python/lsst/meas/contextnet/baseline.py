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

"""The LSST pipelines' extendedness star/galaxy baselines.

``extendedness`` follows ``lsst.meas.base`` ``ClassificationExtendednessAlgorithm`` with its
single-visit defaults (model flux = ``base_GaussianFlux``, ``fluxRatio = 0.95``,
``modelErrFactor = psfErrFactor = 0``)::

    extendedness = 0 if fluxRatio * (modelFlux + modelErrFactor * modelFluxErr)
                         < psfFlux + psfErrFactor * psfFluxErr
                   else 1

``sizeExtendedness`` compares the adaptive second moments ``T = Ixx + Iyy`` of the object and
of the PSF at its position::

    sizeExtendedness = 1 - exp(-chi2 / 2),  chi2 = ((T_obj - T_psf) / sqrt(T_psf))**2

Both return a flag, set (with a NaN value) wherever an input is not finite or ``T_psf`` is not
positive.
"""

from __future__ import annotations

__all__ = [
    "SINGLE_VISIT_FLUX_RATIO",
    "compute_extendedness",
    "compute_size_extendedness",
]

import numpy as np

SINGLE_VISIT_FLUX_RATIO: float = 0.95
"""``fluxRatio`` of meas_base's extendedness for single visits (model flux: Gaussian flux)."""


def compute_extendedness(
    psf_flux: np.ndarray,
    model_flux: np.ndarray,
    *,
    flux_ratio: float = SINGLE_VISIT_FLUX_RATIO,
    psf_flux_err: np.ndarray | None = None,
    model_flux_err: np.ndarray | None = None,
    psf_err_factor: float = 0.0,
    model_err_factor: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute meas_base's flux-ratio extendedness.

    Parameters
    ----------
    psf_flux : `numpy.ndarray`
        PSF flux.
    model_flux : `numpy.ndarray`
        Model flux (Gaussian flux for single visits), same units as ``psf_flux``.
    flux_ratio : `float`, optional
        ``fluxRatio``; an object is extended when ``flux_ratio * model_flux >= psf_flux``.
    psf_flux_err, model_flux_err : `numpy.ndarray`, optional
        Flux errors, used only with non-zero error factors.
    psf_err_factor, model_err_factor : `float`, optional
        Multiples of the errors added to each flux before comparing (meas_base defaults 0).

    Returns
    -------
    extendedness : `numpy.ndarray`
        float64, 0 (point-like) or 1 (extended), NaN where flagged.
    flag : `numpy.ndarray`
        bool, True where an input is not finite.

    Raises
    ------
    ValueError
        If ``flux_ratio`` is not positive, or an error factor is non-zero without its errors.
    """
    if not (np.isfinite(flux_ratio) and flux_ratio > 0):
        raise ValueError(f"flux_ratio must be positive, got {flux_ratio!r}")
    psf = np.asarray(psf_flux, dtype=np.float64)
    model = np.asarray(model_flux, dtype=np.float64)
    if psf_err_factor != 0.0:
        if psf_flux_err is None:
            raise ValueError("psf_err_factor is non-zero but psf_flux_err was not given")
        psf = psf + psf_err_factor * np.asarray(psf_flux_err, dtype=np.float64)
    if model_err_factor != 0.0:
        if model_flux_err is None:
            raise ValueError("model_err_factor is non-zero but model_flux_err was not given")
        model = model + model_err_factor * np.asarray(model_flux_err, dtype=np.float64)
    psf, model = np.broadcast_arrays(psf, model)
    flag = ~(np.isfinite(psf) & np.isfinite(model))
    value = np.where(flux_ratio * model < psf, 0.0, 1.0)
    value[flag] = np.nan
    return value, flag


def compute_size_extendedness(t_obj: np.ndarray, t_psf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute the moments-size extendedness.

    Parameters
    ----------
    t_obj : `numpy.ndarray`
        ``Ixx + Iyy`` of the object's adaptive moments (pixels squared).
    t_psf : `numpy.ndarray`
        ``Ixx + Iyy`` of the PSF's adaptive moments at the object's position.

    Returns
    -------
    size_extendedness : `numpy.ndarray`
        float64 in [0, 1), ``1 - exp(-chi2 / 2)``; NaN where flagged.
    flag : `numpy.ndarray`
        bool, True where an input is not finite or ``t_psf <= 0``.
    """
    t_obj, t_psf = np.broadcast_arrays(np.asarray(t_obj, np.float64), np.asarray(t_psf, np.float64))
    flag = ~(np.isfinite(t_obj) & np.isfinite(t_psf) & (t_psf > 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = (t_obj - t_psf) ** 2 / t_psf
        value = -np.expm1(-0.5 * chi2)
    value[flag] = np.nan
    return value, flag
