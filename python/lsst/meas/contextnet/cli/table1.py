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

"""``contextnet reproduce-table1``: the paper's Table 1 on our simulator."""

from __future__ import annotations

__all__ = ["add_subcommand"]

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsst.meas.contextnet.cli.arguments import float_list, minutes, positive_int_list

if TYPE_CHECKING:
    from lsst.meas.contextnet.tools.table1 import Table1Settings


def _settings_from_args(args: argparse.Namespace) -> Table1Settings:
    from lsst.meas.contextnet.tools.table1 import Table1Settings

    overrides: dict[str, Any] = {}
    for name in ("conv_channels", "n_local", "global_widths", "predict_widths"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    return Table1Settings(
        train_sets=args.train_sets,
        test_sets=args.test_sets,
        m=args.m,
        epochs=args.epochs,
        max_minutes_per_model=args.max_minutes_per_model,
        seed=args.seed,
        processes=args.processes,
        arch=args.arch,
        n_p=args.n_p,
        batch_sets=args.batch_sets,
        lr=args.lr,
        patience=args.patience,
        mag_edges=args.mag_edges,
        psf_fwhm_edges=args.psf_fwhm_edges,
        device=args.device,
        threads=args.threads,
        model_overrides=overrides,
        detector_size=args.detector_size,
        save_models=not args.no_save_models,
        keep_data=args.keep_data,
        progress=not args.no_progress,
    )


def _run(args: argparse.Namespace) -> int:
    """Run ``contextnet reproduce-table1`` from parsed arguments."""
    from lsst.meas.contextnet.tools.table1 import reproduce_table1
    from lsst.meas.contextnet.tools.table1report import format_markdown

    settings = _settings_from_args(args)
    result = reproduce_table1(args.output, settings, overwrite=args.overwrite)
    print(format_markdown(result))
    return 0


def add_subcommand(subparsers: Any) -> None:
    """Add the ``reproduce-table1`` subcommand to the ``contextnet`` command.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        The subparsers of the top-level parser.
    """
    from lsst.meas.contextnet.tools.table1 import _ARCHS, Table1Settings

    defaults = Table1Settings.__dataclass_fields__
    parser = subparsers.add_parser(
        "reproduce-table1",
        help="reproduce the paper's Table 1 (local-only CNN vs PSF variation, and ContextNet)",
        description=(
            "Train and test a local-only CNN with one PSF (a), a PSF varying across the detector "
            "(b), and a PSF varying across the detector and between visits (c), and ContextNet on "
            "(c) (d), on data from the fast training-data generator; write table1.json, "
            "table1.csv, table1.md and table1.rst to --output and print the table."
        ),
    )

    def default(name: str) -> Any:
        return defaults[name].default

    parser.add_argument("--output", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--train-sets",
        type=int,
        default=default("train_sets"),
        help="training sets (visits) per PSF variation (default: %(default)s)",
    )
    parser.add_argument(
        "--test-sets",
        type=int,
        default=default("test_sets"),
        help="test sets (visits) per PSF variation (default: %(default)s)",
    )
    parser.add_argument("--m", type=int, default=default("m"), help="sources per set (default: %(default)s)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=default("epochs"),
        help="maximum epochs per model (default: %(default)s)",
    )
    parser.add_argument(
        "--max-minutes-per-model",
        type=minutes,
        default=default("max_minutes_per_model"),
        help="training time limit per model in minutes, or 'none' (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=default("seed"), help="master seed (default: %(default)s)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=default("processes"),
        help="data generator processes (default: %(default)s)",
    )
    parser.add_argument(
        "--arch",
        choices=_ARCHS,
        default=default("arch"),
        help="local CNN of every model: light or the paper's (default: %(default)s)",
    )
    parser.add_argument(
        "--n-p",
        type=int,
        default=default("n_p"),
        help="ContextNet test sets per object (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-sets", type=int, default=default("batch_sets"), help="sets per step (default: %(default)s)"
    )
    parser.add_argument(
        "--lr", type=float, default=default("lr"), help="learning rate (default: %(default)s)"
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=default("patience"),
        help="early-stopping patience in epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--mag-edges",
        type=float_list,
        default=default("mag_edges"),
        help="inner magnitude bin edges (default: 22,23,24)",
    )
    parser.add_argument(
        "--psf-fwhm-edges",
        type=float_list,
        default=default("psf_fwhm_edges"),
        help="inner PSF FWHM bin edges in arcsec (default: 0.7,0.9,1.1)",
    )
    parser.add_argument(
        "--device", default=default("device"), help="auto, cpu, cuda or cuda:N (default: %(default)s)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--detector-size",
        type=int,
        default=default("detector_size"),
        help="detector side in pixels (default: %(default)s)",
    )
    parser.add_argument("--conv-channels", type=positive_int_list, default=None, help="override, e.g. 16,32")
    parser.add_argument("--n-local", type=int, default=None, help="override the local feature count")
    parser.add_argument(
        "--global-widths", type=positive_int_list, default=None, help="override, e.g. 256,256"
    )
    parser.add_argument("--predict-widths", type=positive_int_list, default=None, help="override, e.g. 64,64")
    parser.add_argument("--no-save-models", action="store_true", help="do not export the trained models")
    parser.add_argument(
        "--keep-data", action="store_true", help="keep (and reuse) the generated data in OUTPUT/data"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing table1.json")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=_run)
