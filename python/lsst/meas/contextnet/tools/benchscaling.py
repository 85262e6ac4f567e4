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

"""The benchmark's scaling table: run() time and peak memory against the number of sources."""

from __future__ import annotations

__all__ = []

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsst.meas.contextnet.tools.benchinputs import _classifier_config, make_bench_exposure
from lsst.meas.contextnet.tools.benchtiming import _RUN_STAGES, Timing

if TYPE_CHECKING:
    from lsst.meas.contextnet.tools.bench import BenchSettings


def _rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``), 0 where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _peak_rss_during(func: Callable[[], Any]) -> tuple[Any, int, float]:
    """Call ``func``; return its result, the peak RSS above the starting RSS, and the seconds."""
    import threading

    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = func()
    finally:
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
    peak[0] = max(peak[0], _rss_bytes())
    return result, peak[0] - base, elapsed


def _bench_scaling(
    model_path: Path, device: Any, settings: BenchSettings, log: Callable[[str], None]
) -> dict[str, Any]:
    """Time and peak memory of the task's run() for growing numbers of sources on one detector."""
    from lsst.meas.contextnet.classifier import ContextNetClassifierTask

    task = ContextNetClassifierTask(config=_classifier_config(model_path, str(device), settings.n_ensemble))
    config = task.config
    rows = []
    for n in settings.scaling_sources:
        log(f"scaling: {n} sources on a {settings.size}x{settings.size} synthetic detector")
        exposure = make_bench_exposure(settings.size, n, "synthetic", settings.seed + n)
        task.run(exposure.calexp, exposure.src, seed=settings.seed)  # warm-up (model loaded)
        seconds, peaks = [], []
        for _ in range(settings.repeat):
            _, peak, elapsed = _peak_rss_during(
                lambda exposure=exposure: task.run(exposure.calexp, exposure.src, seed=settings.seed)
            )
            seconds.append(elapsed)
            peaks.append(peak)
        timing = Timing(tuple(seconds))
        split = {key: float(task.metadata.get(f"timing.{key}", 0.0)) for key in _RUN_STAGES}
        rows.append(
            {
                "n_sources": n,
                **timing.to_dict(),
                "ms_per_source": 1e3 * timing.median / n,
                "peak_rss_increase_bytes": int(max(peaks)),
                "split_last_s": split,
                "n_sets": int(task.metadata["n_sets"]),
            }
        )
        del exposure
    return {
        "device": str(device),
        "detector_size": settings.size,
        "method": "ContextNetClassifierTask.run on a synthetic detector held in memory (the read, the "
        "same for every source count, is in 'quantum'); peak RSS above the RSS before the call, "
        "sampled every 2 ms",
        "batch_settings": {"batchSize": config.batchSize, "setBatchSize": config.setBatchSize},
        "rows": rows,
    }
