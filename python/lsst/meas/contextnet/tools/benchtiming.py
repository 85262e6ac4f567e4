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

"""Timing helpers and hardware description for the benchmarks."""

from __future__ import annotations

__all__ = [
    "PAIRED_RATIO_METHOD",
    "Timing",
    "cpu_model_name",
    "hardware_info",
    "paired_ratio",
    "time_call",
    "time_interleaved",
]

import dataclasses
import os
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock times of repeated calls of one function."""

    seconds: tuple[float, ...]
    """Time of every timed call, in seconds."""

    @property
    def median(self) -> float:
        """Median time in seconds (`float`)."""
        return float(np.median(self.seconds))

    def to_dict(self) -> dict[str, Any]:
        """Return the median and every time, for JSON.

        Returns
        -------
        timing : `dict` [`str`, `~typing.Any`]
            ``median_s`` and ``seconds`` (the list of times).

        """
        return {"median_s": self.median, "seconds": list(self.seconds)}


def _check_counts(repeat: int, warmup: int) -> None:
    """Raise `ValueError` unless there is at least one timed call and no negative warm-up."""
    if repeat < 1 or warmup < 0:
        raise ValueError(f"need repeat >= 1 and warmup >= 0, got repeat={repeat}, warmup={warmup}")


def time_call(
    func: Callable[[], Any],
    repeat: int,
    warmup: int = 1,
    synchronize: Callable[[], None] | None = None,
) -> tuple[Timing, Any]:
    """Time a function: ``warmup`` untimed calls, then ``repeat`` timed ones.

    Parameters
    ----------
    func : callable
        Function of no arguments.
    repeat : `int`
        Number of timed calls (at least 1).
    warmup : `int`, optional
        Number of untimed calls first.
    synchronize : callable, optional
        Called before starting and before stopping the clock (e.g. `torch.cuda.synchronize`,
        so that queued GPU work is counted in the call that queued it).

    Returns
    -------
    timing : `Timing`
        The times of the timed calls.
    result : `~typing.Any`
        What the last call returned.

    Raises
    ------
    ValueError
        If ``repeat < 1`` or ``warmup < 0``.

    """
    _check_counts(repeat, warmup)
    sync = synchronize if synchronize is not None else (lambda: None)
    result = None
    for _ in range(warmup):
        result = func()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        sync()
        times.append(time.perf_counter() - start)
    return Timing(tuple(times)), result


def time_interleaved(
    funcs: Mapping[str, Callable[[], Any]], repeat: int, warmup: int = 1
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Time several functions in rounds, one call of each per round, so they share the machine's state.

    On a shared machine the speed can change by a factor of two from one second to the next; two
    functions timed one after the other may then each see a different machine. Called in turn, the
    calls of one round see nearly the same one, and `paired_ratio` compares them round by round.

    Parameters
    ----------
    funcs : `~collections.abc.Mapping` [`str`, callable]
        Functions of no arguments, by name. Round ``r`` calls them in this order rotated by ``r``
        (what ran just before a call, e.g. a large allocation freed, can change its time).
    repeat : `int`
        Number of timed rounds (at least 1).
    warmup : `int`, optional
        Number of untimed rounds first.

    Returns
    -------
    timings : `dict` [`str`, `Timing`]
        The times of every function, round by round.
    results : `dict` [`str`, `~typing.Any`]
        What each function returned on its last call.

    Raises
    ------
    ValueError
        If ``repeat < 1`` or ``warmup < 0``.
    """
    _check_counts(repeat, warmup)
    times: dict[str, list[float]] = {name: [] for name in funcs}
    results: dict[str, Any] = {}
    names = list(funcs)
    for round_index in range(warmup + repeat):
        # Each round starts one function later, so none always runs right after the same one.
        turn = round_index % len(names)
        for name in names[turn:] + names[:turn]:
            start = time.perf_counter()
            results[name] = funcs[name]()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: Timing(tuple(values)) for name, values in times.items()}, results


PAIRED_RATIO_METHOD = (
    "median over interleaved rounds (one call of each per round, the order rotated from round to "
    "round) of the per-round ratio"
)
"""How `paired_ratio` compares two timings, in words for the benchmarks' JSON."""


def paired_ratio(numerator: Timing, denominator: Timing) -> float:
    """Return the median over rounds of the ratio of two interleaved timings (`time_interleaved`).

    Parameters
    ----------
    numerator, denominator : `Timing`
        Times of the same rounds.

    Returns
    -------
    ratio : `float`
        Median of ``numerator.seconds[i] / denominator.seconds[i]``.

    Raises
    ------
    ValueError
        If the timings have different numbers of rounds.
    """
    if len(numerator.seconds) != len(denominator.seconds):
        raise ValueError(
            f"timings of {len(numerator.seconds)} and {len(denominator.seconds)} rounds cannot be paired"
        )
    return float(np.median(np.divide(numerator.seconds, denominator.seconds)))


def cpu_model_name(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> str:
    """Return the CPU model name.

    Parameters
    ----------
    cpuinfo : `str` or `os.PathLike`, optional
        File in the format of Linux's ``/proc/cpuinfo``.

    Returns
    -------
    name : `str`
        The first ``model name`` (x86) or ``Model`` / ``Hardware`` / ``CPU part`` (ARM) entry;
        `platform.processor` or ``"unknown"`` where the file is missing or has none.

    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields and value.strip():
            fields[key.strip()] = value.strip()
    for key in ("model name", "Model", "Hardware", "CPU part"):
        if key in fields:
            return fields[key]
    return platform.processor() or "unknown"


def hardware_info() -> dict[str, Any]:
    """Describe the machine and software the benchmark runs on.

    Returns
    -------
    info : `dict` [`str`, `~typing.Any`]
        ``cpu_model``, ``cpu_count`` (logical CPUs of the machine), ``cpu_count_usable`` (those
        this process may run on), ``torch_version``, ``torch_threads``, ``torch_interop_threads``,
        ``omp_num_threads`` (the environment variable, or `None`), ``cuda_available``,
        ``gpu_name`` (`None` without a GPU), ``gpu_count``, ``cuda_version``, ``cudnn_version``,
        ``python_version``, ``numpy_version`` and ``platform``.

    """
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cuda = bool(torch.cuda.is_available())
    cudnn = torch.backends.cudnn.version() if cuda and torch.backends.cudnn.is_available() else None
    return {
        "cpu_model": cpu_model_name(),
        "cpu_count": os.cpu_count(),
        "cpu_count_usable": usable,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cuda_available": cuda,
        "gpu_name": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "cuda_version": torch.version.cuda,
        "cudnn_version": cudnn,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "platform": platform.platform(),
    }


def _synchronizer(device: Any) -> Callable[[], None] | None:
    """Return `torch.cuda.synchronize` for a CUDA device, `None` otherwise."""
    import torch

    if device.type != "cuda":
        return None
    return lambda: torch.cuda.synchronize(device)


_TASK_LABEL = "contextnetClassifier"  # the classifier's label in the benchmark's pipelines
_TIMING_KEYS = ("read", "cutouts", "psf", "inputs", "model", "write")  # quantum stages in the metadata
_RUN_STAGES = ("cutouts", "psf", "inputs", "model")  # run()'s stages in the task metadata
