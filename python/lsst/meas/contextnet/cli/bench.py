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

"""``contextnet bench``: run the benchmarks and write their JSON."""

from __future__ import annotations

__all__ = ["add_subcommand"]

import argparse
import json
from pathlib import Path
from typing import Any


def _run(args: argparse.Namespace) -> int:
    """Run ``contextnet bench`` with parsed arguments."""
    from lsst.meas.contextnet.modelcheck import resolve_model
    from lsst.meas.contextnet.tools.bench import BenchSettings, _default_log, format_summary, run_benchmark

    model = resolve_model(args.model)
    explicit = {
        "size": args.size,
        "sources": args.sources,
        "n_ensemble": args.n_ensemble,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "train_steps": args.train_steps,
        "train_batch_sets": args.train_batch_sets,
        "ratio_rounds": args.ratio_rounds,
    }
    explicit = {key: value for key, value in explicit.items() if value is not None}
    common = {"device": args.device, "exposure": args.exposure, "seed": args.seed, **explicit}
    settings = BenchSettings.quick_settings(**common) if args.quick else BenchSettings(**common)
    results = run_benchmark(model, settings)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    for line in format_summary(results).splitlines():
        _default_log(line)
    _default_log(f"wrote {output}")
    return 0


def add_subcommand(subparsers: Any) -> None:
    """Add the ``bench`` subcommand to the ``contextnet`` command.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        The subparsers of the top-level parser.

    """
    parser = subparsers.add_parser(
        "bench",
        help="time classification (CPU/GPU), ensembling, cutouts, Butler I/O and training",
        description=(
            "Measure ContextNet inference and training on this machine and write the absolute "
            "times, labelled with the hardware, to a JSON file. Each measurement is warmed up "
            "once and reports the median of --repeat timed runs."
        ),
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model file (default: the shipped lsst/meas/contextnet/data/contextnet.pt)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CPU, and the GPU when PyTorch sees one), cpu, cuda or cuda:N (default auto)",
    )
    parser.add_argument("--size", type=int, default=None, help="detector side in pixels (default 4096)")
    parser.add_argument("--sources", type=int, default=None, help="sources to classify (default 2000)")
    parser.add_argument("--n-ensemble", type=int, default=None, help="sets per source, n_p (default 5)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per measurement (default 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 1)")
    parser.add_argument(
        "--ratio-rounds",
        type=int,
        default=None,
        help="interleaved rounds of the comparisons reported as ratios: cutouts against the loop, the "
        "Butler read against the plain read (default 7)",
    )
    parser.add_argument(
        "--exposure",
        choices=("simulated", "synthetic"),
        default="simulated",
        help="simulated with the package's GalSim simulator, or synthetic Gaussian sources "
        "(default simulated)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--train-steps", type=int, default=None, help="optimizer steps per timed run (default 5)"
    )
    parser.add_argument("--train-batch-sets", type=int, default=None, help="sets per step (default 8)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small and fast: 1024x1024, 300 sources, 1 timed run, 2 training steps of 2 sets "
        "(explicit options still apply)",
    )
    parser.set_defaults(func=_run)
