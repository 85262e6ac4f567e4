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

"""``contextnet simulate``: simulate LSST-like visits into a Butler repository."""

from __future__ import annotations

__all__ = ["add_subcommand"]

import argparse


def _fwhm_range(low: float | None, high: float | None) -> tuple[float, float] | None:
    """Return the FWHM range the options fix, or `None` for the world's."""
    if low is None and high is None:
        return None
    if low is None or high is None:
        raise SystemExit("error: give both --psf-fwhm-min and --psf-fwhm-max, or neither")
    return (low, high)


def _run(args: argparse.Namespace) -> int:
    from lsst.meas.contextnet.sim.exposure import SimulationConfig
    from lsst.meas.contextnet.sim.simulate import simulate_repo

    config = SimulationConfig(
        world=args.world,
        band=args.band,
        size=args.size,
        star_fraction=args.star_fraction,
        density_scale=args.density_scale,
        psf_fwhm_range=_fwhm_range(args.psf_fwhm_min, args.psf_fwhm_max),
        psf_variation=args.psf_variation,
        exposure_time=args.exposure_time,
    )
    summary = simulate_repo(
        args.repo,
        args.collection,
        visits=args.visits,
        config=config,
        seed=args.seed,
        detectors=args.detectors,
        first_visit=args.first_visit,
        processes=args.processes,
        progress=not args.no_progress,
    )
    per = summary.seconds / len(summary.data_ids)
    print(
        f"Wrote {len(summary.data_ids)} exposures ({sum(summary.n_sources)} sources) to "
        f"{summary.repo} collection {summary.collection!r} in {summary.seconds:.1f} s ({per:.1f} s each)."
    )
    for visit, fwhm in summary.visit_psf_fwhm.items():
        print(f"  visit {visit}: mean PSF FWHM {fwhm:.3f} arcsec")
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add ``contextnet simulate`` to the command-line parser.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        Subparsers of the ``contextnet`` parser.
    """
    from lsst.meas.contextnet.sim.exposure import SimulationConfig
    from lsst.meas.contextnet.sim.world import world_names

    defaults = SimulationConfig()
    parser = subparsers.add_parser(
        "simulate",
        help="simulate LSST-like visits into a Butler repository",
        description="Simulate LSST-like single-visit exposures with GalSim and write calexp, src and "
        "truth to a Butler repository (created if missing).",
    )
    parser.add_argument("--repo", required=True, help="Butler repository root (created if missing)")
    parser.add_argument("--collection", required=True, help="RUN collection to write (must be new)")
    parser.add_argument("--visits", type=int, default=1, help="number of visits (default: %(default)s)")
    parser.add_argument("--size", type=int, default=defaults.size, help="detector side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--world",
        default=defaults.world,
        choices=world_names(),
        help="world the visits' conditions are drawn from (default: %(default)s); the options below "
        "fix one of its distributions",
    )
    parser.add_argument("--band", default=None, help="band: u g r i z y (default: the world's; narrow: r)")
    parser.add_argument("--detectors", type=int, default=1, help="detectors per visit, 1-9")
    parser.add_argument("--first-visit", type=int, default=0, help="ID of the first visit")
    parser.add_argument(
        "--star-fraction",
        type=float,
        default=None,
        help="fraction of stars among detected sources (default: the world's; narrow: 0.4)",
    )
    parser.add_argument(
        "--density-scale",
        type=float,
        default=None,
        help="multiplier of the source density (1: 1200-2200 detections per 4096^2 detector; default: "
        "the world's, narrow: 1)",
    )
    parser.add_argument("--psf-fwhm-min", type=float, default=None, help="arcsec (narrow world: 0.5)")
    parser.add_argument("--psf-fwhm-max", type=float, default=None, help="arcsec (narrow world: 1.3)")
    parser.add_argument(
        "--psf-variation",
        choices=("none", "spatial", "full"),
        default=defaults.psf_variation,
        help="none: one PSF everywhere; spatial: varies across the detector only; full: also between "
        "visits (default: %(default)s)",
    )
    parser.add_argument(
        "--exposure-time", type=float, default=None, help="seconds per visit (narrow world: 30)"
    )
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.set_defaults(func=_run)
