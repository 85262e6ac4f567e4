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

"""``contextnet train``: train a ContextNet on generated training data."""

from __future__ import annotations

__all__ = ["add_subcommand"]

import argparse
import logging
from pathlib import Path
from typing import Any

from lsst.meas.contextnet.cli.arguments import positive_int_list


def _run(args: argparse.Namespace) -> int:
    """Run ``contextnet train`` from parsed arguments."""
    from lsst.meas.contextnet.model import ContextNetConfig
    from lsst.meas.contextnet.training.trainer import TrainingOptions, run_training

    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{str(args.output)!r} exists; pass --overwrite to replace it")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {}
    for name in ("conv_channels", "global_widths", "predict_widths", "n_local", "inputs"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    shapes = {directory: _peek_shape(directory) for directory in args.data}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"training-data directories differ in (set size, cutout size): {shapes}")
    data_m, cutout_size = shapes[args.data[0]]
    preset_m = ContextNetConfig.preset(args.arch).m
    config = ContextNetConfig.preset(
        args.arch,
        m=args.m if args.m is not None else min(preset_m, data_m),
        cutout_size=cutout_size,
        **overrides,
    )
    options = TrainingOptions(
        epochs=args.epochs,
        batch_sets=args.batch_sets,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        val_fraction=args.val_fraction,
        patience=args.patience,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        max_minutes=args.max_minutes,
        augment=not args.no_augment,
        progress=not args.no_progress,
        init_from=args.init_from,
        bright_star_weight=args.bright_star_weight,
        bright_star_mag=args.bright_star_mag,
        bright_star_snr=args.bright_star_snr,
        blended_star_weight=args.blended_star_weight,
        blended_galaxy_weight=args.blended_galaxy_weight,
    )
    metadata = run_training(
        args.data, args.output, config, options, softening=args.softening, weights_dtype=args.weights_dtype
    )
    validation = metadata["metrics"].get("validation", {})
    print(
        f"wrote {args.output}: {metadata['architecture']} m={metadata['m']}, "
        f"{metadata['training']['epochs_run']} epochs, best epoch {metadata['training']['best_epoch']}, "
        f"validation accuracy {validation.get('accuracy')}"
    )
    return 0


def _peek_shape(directory: Path) -> tuple[int, int]:
    """Read the set size and cutout size of the first shard without loading it."""
    import h5py
    from lsst.meas.contextnet.training.shards import list_shards

    shards, _ = list_shards(directory)
    with h5py.File(shards[0], "r") as h5:
        if "cutouts" not in h5 or h5["cutouts"].ndim != 4:
            raise ValueError(f"shard {str(shards[0])!r} has no 4-d 'cutouts' dataset")
        shape = h5["cutouts"].shape
    return int(shape[1]), int(shape[2])


def add_subcommand(subparsers: Any) -> None:
    """Add the ``train`` subcommand to the ``contextnet`` command.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        The subparsers of the top-level parser.

    """
    from lsst.meas.contextnet.cutouts import DEFAULT_NORMALIZATION
    from lsst.meas.contextnet.model import ARCHITECTURES
    from lsst.meas.contextnet.psfinputs import INPUT_CHANNELS

    parser = subparsers.add_parser(
        "train",
        help="train ContextNet on simulated cutout sets and export the TorchScript model",
        description=(
            "Train ContextNet (or the local-only baseline) on training-data shards and write a "
            "TorchScript model file with its model card."
        ),
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        action="append",
        help="directory of shard_*.h5 training files (repeatable: the sets of every directory are joined)",
    )
    parser.add_argument("--output", type=Path, required=True, help="model file to write (MODEL.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        default="paper",
        help="architecture (lsst.meas.contextnet.model.ContextNetConfig.preset): the paper's, the paper's "
        "with a light local CNN, local-only (no context), light-pool (pooling context), psf-concat and "
        "psf-pool (PSF-aware inputs; psf-pool is the shipped model's)",
    )
    parser.add_argument(
        "--m",
        type=int,
        default=None,
        help="objects per set (default: the preset's, at most the shards' m; a pooling network "
        "accepts any number at inference)",
    )
    parser.add_argument("--conv-channels", type=positive_int_list, default=None, help="override, e.g. 16,32")
    parser.add_argument(
        "--n-local",
        type=int,
        default=None,
        help="override the local feature count (the preset's: 20, or 24 for light-pool and psf-*)",
    )
    parser.add_argument(
        "--inputs",
        nargs="+",
        choices=INPUT_CHANNELS,
        default=None,
        help="override the input channels, 'image' first (e.g. image psf psf_peak: the PSF at the "
        "centroid and at its best-fitting position); with --init-from, channels the model "
        "did not have start with zero weights",
    )
    parser.add_argument(
        "--global-widths", type=positive_int_list, default=None, help="override, e.g. 1000,1000,1000"
    )
    parser.add_argument(
        "--predict-widths", type=positive_int_list, default=None, help="override, e.g. 100,100"
    )
    parser.add_argument("--epochs", type=int, default=30, help="maximum number of epochs (default 30)")
    parser.add_argument("--batch-sets", type=int, default=8, help="sets per optimizer step (default 8)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="fraction of sets held out (default 0.1)"
    )
    parser.add_argument(
        "--patience", type=int, default=5, help="early-stopping patience in epochs (default 5)"
    )
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=None, help="write checkpoint.pt here each epoch"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir"
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help=(
            "start from this model file's weights instead of a random initialization: the same "
            "architecture, or one with a narrower local network, which is widened"
        ),
    )
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop training after this many minutes"
    )
    parser.add_argument(
        "--bright-star-weight",
        type=float,
        default=1.0,
        help="loss weight of stars brighter than --bright-star-mag (default 1: every object weighs the same)",
    )
    parser.add_argument(
        "--bright-star-mag",
        type=float,
        default=22.0,
        help=(
            "true magnitude, in each set's band, brighter than which a star (and, with "
            "--blended-galaxy-weight, a blended galaxy) is weighted (default 22)"
        ),
    )
    parser.add_argument(
        "--bright-star-snr",
        type=float,
        default=0.0,
        help=(
            "detection S/N below which a star (or blended galaxy) brighter than --bright-star-mag is "
            "not weighted (default 0)"
        ),
    )
    parser.add_argument(
        "--blended-star-weight",
        type=float,
        default=1.0,
        help=(
            "factor on the weight of a star weighted by --bright-star-weight whose object is blended "
            "with a neighbour (the data must record blends; default 1)"
        ),
    )
    parser.add_argument(
        "--blended-galaxy-weight",
        type=float,
        default=1.0,
        help=(
            "loss weight of a galaxy brighter than --bright-star-mag, with S/N at least "
            "--bright-star-snr, whose object is blended with a neighbour (the data must record blends; "
            "default 1)"
        ),
    )
    parser.add_argument(
        "--softening",
        type=float,
        default=float(DEFAULT_NORMALIZATION["softening"]),
        help="pixel normalization: arcsinh(pixel / (noise * softening)) (default 3)",
    )
    parser.add_argument(
        "--weights-dtype",
        choices=("float32", "float16"),
        default="float32",
        help="storage precision of the weights in the model file (default float32)",
    )
    parser.add_argument("--no-augment", action="store_true", help="disable the symmetry augmentation")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_run)
