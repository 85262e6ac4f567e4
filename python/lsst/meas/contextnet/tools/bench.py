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

"""Benchmarks of ContextNet inference, Butler I/O and training: ``contextnet bench``.

`run_benchmark` measures, in one process and on the same inputs, everything the performance
claims of this package rest on, and returns absolute times labelled with the hardware they were
taken on:

1. ``classification``: `~lsst.meas.contextnet.classifier.ContextNetClassifierTask.run` on one
   detector, on the CPU and, when PyTorch sees one, on the GPU (and the ratio);
2. ``ensemble``: cached versus recomputed local features
   (`~lsst.meas.contextnet.ensemble.ensemble_predict` ``method="cached"`` / ``"recompute"``),
   with the largest difference between their outputs and the speed-up compared to ``n_p``;
3. ``cutouts``: vectorized versus per-source cutout extraction
   (`~lsst.meas.contextnet.cutouts.extract_cutouts` / ``extract_cutouts_loop``), checked equal;
4. ``quantum``: one classifier quantum run by `lsst.pipe.base.SimplePipelineExecutor` on a
   temporary Butler repository, against the time to read its ``calexp`` and ``src``, with the
   read / cutouts / model / write split the task stores in its metadata, and a profile of the
   ``calexp`` read (each component alone, plain astropy reads of the pixel planes, and the same
   image written with ``lsst.images``' default compression);
5. ``training``: `~lsst.meas.contextnet.training.trainer.train_model` throughput in cutouts per second;
6. ``scaling``: run() time and peak memory for 500, 2000, 8000 and 20000 sources on one detector;
7. ``flops``: model FLOPs per source (`~lsst.meas.contextnet.model.count_flops`) and the FLOP/s
   achieved by the local network and by the whole ensemble classification.

Every timing runs the measured call once untimed (warm-up) and reports the median of
``repeat`` timed calls (`time.perf_counter`), plus every individual time.
"""

from __future__ import annotations

__all__ = ["BENCH_FORMAT_VERSION", "BenchSettings", "BenchmarkCheckError", "format_summary", "run_benchmark"]

import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from lsst.meas.contextnet.serialization import json_compatible
from lsst.meas.contextnet.tools.benchinputs import (
    BenchExposure,
    _bad_mask_planes,
    _classifier_config,
    _pixel_planes,
    _task_inputs,
    make_bench_exposure,
)
from lsst.meas.contextnet.tools.benchio import _bench_quantum
from lsst.meas.contextnet.tools.benchscaling import _bench_scaling
from lsst.meas.contextnet.tools.benchtiming import (
    _RUN_STAGES,
    PAIRED_RATIO_METHOD,
    Timing,
    _synchronizer,
    hardware_info,
    paired_ratio,
    time_call,
    time_interleaved,
)

if TYPE_CHECKING:
    from lsst.meas.contextnet.modelio import LoadedModel

BENCH_FORMAT_VERSION = 2
"""Version of the layout of the JSON document `run_benchmark` returns."""
_ENSEMBLE_TOLERANCE = 1e-5  # float32 sums in another order may differ in the last bits


class BenchmarkCheckError(RuntimeError):
    """Raised when a benchmark's own check fails (e.g. two methods that must agree do not)."""


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """What `run_benchmark` measures and how often.

    Parameters
    ----------
    size : `int`
        Side of the square detector in pixels.
    sources : `int`
        Number of sources to classify.
    n_ensemble : `int`
        Minimum number of sets per source (the paper's ``n_p``).
    repeat : `int`
        Timed calls per measurement (the median is reported).
    warmup : `int`
        Untimed calls before the timed ones.
    device : `str`
        ``"auto"`` (CPU, plus the GPU when PyTorch sees one), ``"cpu"`` (CPU only), ``"cuda"`` or
        ``"cuda:N"`` (CPU and that GPU). The quantum and training run on the GPU when one is
        measured, else on the CPU.
    exposure : `str`
        ``"simulated"`` (the package's GalSim simulator, `simulate_exposure`) or
        ``"synthetic"`` (noise plus Gaussian sources, quick to make; isolates timing).
    seed : `int`
        Seed of the exposure, the ensemble sets and the training data.
    train_steps : `int`
        Optimizer steps per timed training run.
    train_batch_sets : `int`
        Sets per optimizer step.
    scaling_sources : `tuple` [`int`, ...]
        Source counts of the scaling table (one synthetic detector of ``size`` each).
    ratio_rounds : `int`
        Rounds of the interleaved comparisons whose ratios are reported (cutouts against the loop
        and the window reads, the Butler read against the plain reads): one call of each per
        round, the ratio taken round by round (`~lsst.meas.contextnet.tools.benchtiming.paired_ratio`).
    quick : `bool`
        Whether these are the ``--quick`` settings (recorded in the output).

    Raises
    ------
    ValueError
        If a count is out of range or ``exposure`` is unknown.

    """

    size: int = 4096
    sources: int = 2000
    n_ensemble: int = 5
    repeat: int = 3
    warmup: int = 1
    device: str = "auto"
    exposure: str = "simulated"
    seed: int = 1
    train_steps: int = 5
    train_batch_sets: int = 8
    scaling_sources: tuple[int, ...] = (500, 2000, 8000, 20000)
    ratio_rounds: int = 7
    quick: bool = False

    def __post_init__(self) -> None:
        minimum = {"size": 64, "sources": 1, "n_ensemble": 1, "repeat": 1, "warmup": 0}
        minimum |= {"seed": 0, "train_steps": 1, "train_batch_sets": 1, "ratio_rounds": 1}
        for name, lowest in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"{name} must be an integer >= {lowest}, got {value!r}")
        if not self.scaling_sources or any(n < 1 for n in self.scaling_sources):
            raise ValueError(f"scaling_sources must be positive counts, got {self.scaling_sources!r}")
        if self.exposure not in ("simulated", "synthetic"):
            raise ValueError(f"exposure must be 'simulated' or 'synthetic', got {self.exposure!r}")

    @classmethod
    def quick_settings(cls, **overrides: Any) -> BenchSettings:
        """Return the small settings of ``--quick`` (seconds, for tests and smoke runs).

        Parameters
        ----------
        **overrides
            Fields to change from the quick defaults.

        Returns
        -------
        settings : `BenchSettings`
            A 1024x1024 detector with 300 sources, one timed call per measurement, two training
            steps of two sets.

        """
        base: dict[str, Any] = {
            "size": 1024,
            "sources": 300,
            "repeat": 1,
            "warmup": 1,
            "train_steps": 2,
            "train_batch_sets": 2,
            "scaling_sources": (50, 200),
            "ratio_rounds": 1,
            "quick": True,
        }
        return cls(**(base | overrides))


def _bench_psf_inputs(
    exposure: BenchExposure, model_path: Path, settings: BenchSettings, log: Callable[[str], None]
) -> dict[str, Any]:
    """Time the PSF model at every source: the task's grid + interpolation against one draw each.

    Reports both times, the largest pixel difference of the interpolated images (relative to the
    PSF's peak) and, for a PSF-aware model, the largest change of P(galaxy) when the task's
    images are replaced by per-source ones.
    """
    from lsst.meas.contextnet.classifier import ContextNetClassifierTask
    from lsst.meas.contextnet.ensemble import ensemble_predict
    from lsst.meas.contextnet.psfinputs import (
        DEFAULT_PSF_GRID,
        embed_kernel,
        evaluate_psf_grid,
        interpolate_psf,
        model_inputs,
        needs_psf,
        subpixel_offsets,
    )

    task = ContextNetClassifierTask(config=_classifier_config(model_path, "cpu", settings.n_ensemble))
    loaded = task.load_model()
    calexp = exposure.calexp
    psf = calexp.psf
    frame = calexp.detector.bbox
    x = np.asarray(exposure.src["x"], dtype=np.float64) - frame.x.start
    y = np.asarray(exposure.src["y"], dtype=np.float64) - frame.y.start
    size = loaded.cutout_size
    width, height = frame.x.size, frame.y.size

    def kernel(px: float, py: float) -> np.ndarray:
        return psf.compute_kernel_image(x=px, y=py).array

    def grid() -> np.ndarray:
        table = evaluate_psf_grid(
            kernel, width, height, size, DEFAULT_PSF_GRID, x0=frame.x.start, y0=frame.y.start
        )
        return interpolate_psf(table, x, y, width, height)

    def per_source() -> np.ndarray:
        return np.stack(
            [embed_kernel(kernel(a + frame.x.start, b + frame.y.start), size) for a, b in zip(x, y)]
        ).astype(np.float32)

    log(f"psf inputs: {DEFAULT_PSF_GRID}x{DEFAULT_PSF_GRID} grid + interpolation vs one draw per source")
    grid_timing, from_grid = time_call(grid, settings.repeat, settings.warmup)
    direct_timing, direct = time_call(per_source, 1, 0)
    peak = float(direct.max(axis=(1, 2)).min()) if len(direct) else 1.0
    out: dict[str, Any] = {
        "n_sources": len(x),
        "grid_points": DEFAULT_PSF_GRID**2,
        "grid_interpolation": grid_timing.to_dict(),
        "per_source": direct_timing.to_dict(),
        "per_source_over_grid": direct_timing.median / grid_timing.median,
        "max_abs_pixel_diff_over_peak": float(np.max(np.abs(from_grid - direct)) / peak) if len(x) else 0.0,
    }
    if needs_psf(loaded.inputs) and len(x):
        prepared = task.prepare_inputs(calexp, exposure.src, loaded)
        valid = prepared.valid
        dx, dy = subpixel_offsets(np.asarray(exposure.src["x"])[valid], np.asarray(exposure.src["y"])[valid])
        swapped = model_inputs(
            prepared.cutouts.cutouts[valid],
            prepared.noise_sigma,
            loaded.metadata["normalization"],
            loaded.inputs,
            bad=prepared.cutouts.bad[valid],
            psf=direct[valid],
            dx=dx,
            dy=dy,
        )
        m, n_p, _ = task.ensemble_plan(loaded, len(prepared.inputs))
        a = ensemble_predict(loaded, prepared.inputs, prepared.positions, n_p, settings.seed, m=m)
        b = ensemble_predict(loaded, swapped, prepared.positions, n_p, settings.seed, m=m)
        out["max_abs_prob_diff"] = float(np.max(np.abs(a.mean - b.mean)))
    return out


def _ensemble_flops(flops: dict[str, float], n: int, m: int, n_p: int, method: str) -> float:
    """FLOPs of one ensemble classification of ``n`` objects."""
    if n == 0:
        return 0.0
    from lsst.meas.contextnet.ensemble import count_sets

    n_sets = count_sets(n, m, n_p)
    n_local = n if method == "cached" else n_sets * m
    per_set = flops["global_per_set"] + flops["predict_per_set"] + m * flops["predict_per_object"]
    return n_local * flops["local_per_cutout"] + n_sets * per_set


def _bench_classification(
    exposure: BenchExposure,
    model_path: Path,
    devices: Sequence[Any],
    settings: BenchSettings,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Time the task's run() on every device, on the same inputs."""
    from lsst.meas.contextnet.classifier import ContextNetClassifierTask

    out: dict[str, Any] = {"method": "ContextNetClassifierTask.run(calexp, src, seed)"}
    probabilities = {}
    for device in devices:
        log(f"classification: ContextNetClassifierTask.run on {device}")
        task = ContextNetClassifierTask(
            config=_classifier_config(model_path, str(device), settings.n_ensemble)
        )
        splits: dict[str, list[float]] = {key: [] for key in _RUN_STAGES}

        def run_once(task: Any = task, splits: dict[str, list[float]] = splits) -> Any:
            result = task.run(exposure.calexp, exposure.src, seed=settings.seed)
            for key in splits:
                splits[key].append(float(task.metadata.get(f"timing.{key}", 0.0)))
            return result

        timing, result = time_call(run_once, settings.repeat, settings.warmup, _synchronizer(device))
        table = result.classification
        probabilities[device.type] = np.asarray(table["classification_galaxyProb"], dtype=np.float64)
        n = len(table)
        split = {key: float(np.median(values[settings.warmup :])) for key, values in splits.items()}
        prepare = split["cutouts"] + split["psf"] + split["inputs"]
        out[device.type] = {
            "device": str(device),
            **timing.to_dict(),
            "sources_per_s": n / timing.median,
            "split_median_s": split,
            "prepare_inputs_s": prepare,
            "prepare_inputs_over_model": prepare / split["model"] if split["model"] > 0 else None,
            "n_sources": n,
            "n_classified": int(task.metadata["n_classified"]),
            "n_sets": int(task.metadata["n_sets"]),
        }
    if "cuda" in out and "cpu" in out:
        out["cpu_over_gpu"] = out["cpu"]["median_s"] / out["cuda"]["median_s"]
        diff = np.abs(probabilities["cpu"] - probabilities["cuda"])
        out["max_abs_diff_cpu_gpu"] = float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0
    return out


def _bench_ensemble(
    loaded_by_device: dict[str, LoadedModel],
    inputs: tuple[np.ndarray, np.ndarray],
    flops: dict[str, float] | None,
    settings: BenchSettings,
    log: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Time cached vs recomputed ensembling and the local network alone, on every device."""
    import torch
    from lsst.meas.contextnet.ensemble import ensemble_predict

    normalized, positions = inputs
    n = len(normalized)
    ensemble: dict[str, Any] = {"n_p": settings.n_ensemble, "n_objects": n}
    local: dict[str, Any] = {
        "n_cutouts": n,
        "batch": 4096,
        "method": "module.local_features on every cutout in batches, host-to-device copies included",
    }
    for name, loaded in loaded_by_device.items():
        sync = _synchronizer(loaded.device)
        results = {}
        entry: dict[str, Any] = {"device": str(loaded.device)}
        for method in ("cached", "recompute"):
            log(f"ensemble: method={method} on {loaded.device}")
            timing, results[method] = time_call(
                lambda method=method, loaded=loaded: ensemble_predict(
                    loaded, normalized, positions, settings.n_ensemble, settings.seed, method=method
                ),
                settings.repeat,
                settings.warmup,
                sync,
            )
            entry[method] = timing.to_dict()
            if flops is not None:
                total = _ensemble_flops(flops, n, loaded.m, settings.n_ensemble, method)
                entry[method]["flops"] = total
                entry[method]["flops_per_s"] = total / timing.median
        cached, recompute = results["cached"], results["recompute"]
        entry["recompute_over_cached"] = entry["recompute"]["median_s"] / entry["cached"]["median_s"]
        entry["speedup_over_n_p"] = entry["recompute_over_cached"] / settings.n_ensemble
        entry["max_abs_diff_mean"] = float(np.max(np.abs(cached.mean - recompute.mean), initial=0.0))
        entry["max_abs_diff_std"] = float(np.max(np.abs(cached.std - recompute.std), initial=0.0))
        entry["identical"] = bool(
            np.array_equal(cached.mean, recompute.mean)
            and np.array_equal(cached.std, recompute.std)
            and np.array_equal(cached.n_sets, recompute.n_sets)
        )
        entry["same_n_sets"] = bool(np.array_equal(cached.n_sets, recompute.n_sets))
        worst = max(entry["max_abs_diff_mean"], entry["max_abs_diff_std"])
        if not entry["same_n_sets"] or not worst <= _ENSEMBLE_TOLERANCE:
            raise BenchmarkCheckError(
                f"cached and recomputed ensembles differ on {name} (max |diff| {worst}, same sets: "
                f"{entry['same_n_sets']})"
            )
        ensemble[name] = entry

        log(f"local network forward on {loaded.device}")
        cutouts_t = torch.from_numpy(np.ascontiguousarray(normalized))
        positions_t = torch.from_numpy(positions)

        def forward(
            loaded: LoadedModel = loaded, cutouts: Any = cutouts_t, positions: Any = positions_t
        ) -> None:
            with torch.inference_mode():
                for start in range(0, n, 4096):
                    loaded.module.local_features(
                        cutouts[start : start + 4096].to(loaded.device),
                        positions[start : start + 4096].to(loaded.device),
                    )

        timing, _ = time_call(forward, settings.repeat, settings.warmup, sync)
        local[name] = {"device": str(loaded.device), **timing.to_dict(), "cutouts_per_s": n / timing.median}
        if flops is not None:
            local[name]["flops_per_s"] = flops["local_per_cutout"] * n / timing.median
    return ensemble, local


def _bench_cutouts(
    exposure: BenchExposure, size: int, settings: BenchSettings, log: Callable[[str], None]
) -> dict[str, Any]:
    """Time vectorized and looped cutout extraction with the task's variance and mask handling."""
    from lsst.meas.contextnet.cutouts import (
        extract_cutouts,
        extract_cutouts_loop,
        nearest_pixel,
        window_reads,
    )

    calexp = exposure.calexp
    x = np.asarray(exposure.src["x"], dtype=np.float64)
    y = np.asarray(exposure.src["y"], dtype=np.float64)
    kwargs = _pixel_planes(calexp)
    image = calexp.image.array
    out: dict[str, Any] = {
        "n_sources": len(x),
        "cutout_size": size,
        "with": "variance and mask planes " + ", ".join(_bad_mask_planes()) + " (the classifier's defaults)",
    }
    # For comparison: NumPy gathers of the same windows of the three planes (no checks, no flags),
    # the least that extraction by NumPy gathers costs.
    rows, cols = nearest_pixel(y) - size // 2, nearest_pixel(x) - size // 2
    planes = [image, kwargs.get("variance"), kwargs.get("mask")]
    planes = [plane for plane in planes if plane is not None]
    log(f"cutouts: vectorized, loop and window reads in {settings.ratio_rounds} interleaved rounds")
    timings, results = time_interleaved(
        {
            "vectorized": lambda: extract_cutouts(image, x, y, size, **kwargs),
            "loop": lambda: extract_cutouts_loop(image, x, y, size, **kwargs),
            "numpy_window_reads": lambda: [window_reads(plane, rows, cols, size) for plane in planes],
        },
        settings.ratio_rounds,
        settings.warmup,
    )
    for name, timing in timings.items():
        out[name] = timing.to_dict()
    out["loop_over_vectorized"] = paired_ratio(timings["loop"], timings["vectorized"])
    out["vectorized_over_numpy_window_reads"] = paired_ratio(
        timings["vectorized"], timings["numpy_window_reads"]
    )
    out["loop_over_numpy_window_reads"] = paired_ratio(timings["loop"], timings["numpy_window_reads"])
    out["ratio_method"] = PAIRED_RATIO_METHOD
    fields = ("cutouts", "edge", "bad_pixels", "off_image", "bad_centroid")
    out["identical"] = all(
        np.array_equal(getattr(results["vectorized"], f), getattr(results["loop"], f)) for f in fields
    )
    out["max_abs_diff"] = float(
        np.max(np.abs(results["vectorized"].cutouts - results["loop"].cutouts), initial=0.0)
    )
    if not out["identical"]:
        raise BenchmarkCheckError(
            f"vectorized and looped cutouts differ (max |diff| {out['max_abs_diff']}); "
            "not reporting the timing of a wrong result"
        )
    return out


def _bench_training(
    model_config: Any,
    softening: float,
    device: Any,
    flops: dict[str, float],
    settings: BenchSettings,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Time optimizer steps of train_model on sets from the training-data generator.

    The sets are written and read back with the package's one training-data writer and reader
    (`~lsst.meas.contextnet.sim.generator.write_training_data`,
    `~lsst.meas.contextnet.training.data.load_training_data`), so the inputs are those training builds.
    """
    from lsst.meas.contextnet.sim.generator import TrainingDataConfig, write_training_data
    from lsst.meas.contextnet.training.data import TrainingData, load_training_data
    from lsst.meas.contextnet.training.trainer import TrainingOptions, train_model

    m, size = model_config.m, model_config.cutout_size
    generator = TrainingDataConfig(m=m, cutout_size=size, sets_per_shard=64)

    def make_data(n_sets: int, first: int) -> TrainingData:
        with tempfile.TemporaryDirectory() as directory:
            write_training_data(directory, n_sets, generator, settings.seed * 1000 + first, progress=False)
            return load_training_data(directory, softening, inputs=model_config.inputs)

    options = TrainingOptions(
        epochs=1,
        batch_sets=settings.train_batch_sets,
        seed=settings.seed,
        device=str(device),
        val_fraction=0.0,
        progress=False,
    )
    quiet = lambda line: None  # noqa: E731
    n_sets = settings.train_steps * settings.train_batch_sets
    log(f"training: generating {n_sets} sets of {m} cutouts")
    start = time.perf_counter()
    data = make_data(n_sets, 0)
    generate_s = time.perf_counter() - start
    if settings.warmup:
        log(f"training: warm-up step on {device}")
        train_model(make_data(settings.train_batch_sets, n_sets), model_config, options, log=quiet)
    seconds, data_s, step_s = [], [], []
    for i in range(settings.repeat):
        log(f"training: {settings.train_steps} steps on {device} ({i + 1} of {settings.repeat})")
        result = train_model(data, model_config, options, log=quiet)
        record = result.history[0]
        seconds.append(float(record["seconds"]))
        data_s.append(float(record["data_s"]))
        step_s.append(float(record["step_s"]))
    timing = Timing(tuple(seconds))
    batches_s, optimizer_s = float(np.median(data_s)), float(np.median(step_s))
    rate = n_sets * m / timing.median
    return {
        "device": str(device),
        "method": "lsst.meas.contextnet.training.trainer.train_model, one epoch with no validation: "
        "set gathering, augmentation, forward, BCE loss, backward and Adam step",
        "data": "sets from lsst.meas.contextnet.sim.generator.generate_set (default generator "
        "configuration, the model's m and cutout size), normalized as load_training_data does",
        "generate_s": generate_s,
        "architecture": model_config.architecture,
        "m": m,
        "steps": settings.train_steps,
        "batch_sets": settings.train_batch_sets,
        "cutouts_per_step": settings.train_batch_sets * m,
        **timing.to_dict(),
        "cutouts_per_s": rate,
        "steps_per_s": settings.train_steps / timing.median,
        "batch_building_s": batches_s,
        "optimizer_step_s": optimizer_s,
        "batch_building_share": batches_s / (batches_s + optimizer_s),
        "batch_building_note": "gathering the sets' cutouts, their symmetries and the copy to the "
        "device, against forward + loss + backward + Adam (the trainer's own per-epoch split)",
        "approx_flops_per_s": 3.0 * flops["per_source"] * rate,
        "approx_flops_note": "forward FLOPs per source x 3 (backward counted as twice the forward)",
    }


def _default_log(message: str) -> None:
    print(f"contextnet bench: {message}", file=sys.stderr, flush=True)


def run_benchmark(
    model_path: str | os.PathLike[str],
    settings: BenchSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every benchmark and return the results.

    Parameters
    ----------
    model_path : `str` or `os.PathLike`
        ContextNet model file (`lsst.meas.contextnet.modelio.export_model`).
    settings : `BenchSettings`, optional
        Sizes, repeats and device (default: the full-size defaults).
    log : callable, optional
        Receives one progress line per step (default: printed to standard error).

    Returns
    -------
    results : `dict` [`str`, `~typing.Any`]
        JSON-ready document with the keys ``format_version``, ``created_utc``, ``hardware``
        (`hardware_info`), ``settings``, ``model``, ``exposure``, ``flops``,
        ``classification``, ``ensemble``, ``local_network``, ``cutouts``, ``quantum``,
        ``training`` and ``seconds_total``. Times are in seconds; each timed entry has
        ``median_s`` and ``seconds``. Devices are keyed by type (``"cpu"``, ``"cuda"``).

    Raises
    ------
    FileNotFoundError
        If the model file does not exist.
    lsst.meas.contextnet.modelio.ModelFileError
        If the model file is not a valid ContextNet model.
    RuntimeError
        If a CUDA device is requested but not available.

    """
    import torch
    from lsst.meas.contextnet.model import ContextNetConfig, count_flops, count_parameters
    from lsst.meas.contextnet.modelio import load_model, resolve_device

    settings = settings if settings is not None else BenchSettings()
    emit = log if log is not None else _default_log
    t_start = time.perf_counter()

    def progress(message: str) -> None:
        emit(f"[{time.perf_counter() - t_start:7.1f} s] {message}")

    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    requested = resolve_device(settings.device)
    devices = [torch.device("cpu")] + ([requested] if requested.type == "cuda" else [])
    primary = devices[-1]

    loaded_by_device = {device.type: load_model(path, device) for device in devices}
    metadata = loaded_by_device["cpu"].metadata
    model_config = ContextNetConfig.from_dict(metadata["config"]) if "config" in metadata else None
    flops = count_flops(model_config) if model_config is not None else None
    model_info = {
        "path": str(path.resolve()),
        "sha256": loaded_by_device["cpu"].sha256,
        "architecture": metadata.get("architecture"),
        "m": loaded_by_device["cpu"].m,
        "cutout_size": loaded_by_device["cpu"].cutout_size,
        "n_parameters": count_parameters(loaded_by_device["cpu"].module),
        "code_version": metadata.get("code_version"),
    }
    progress(
        f"model {path.name}: {model_info['architecture']}, m={model_info['m']}, "
        f"{model_info['n_parameters']} parameters; devices {[str(d) for d in devices]}"
    )

    progress(
        f"making a {settings.exposure} {settings.size}x{settings.size} exposure "
        f"with {settings.sources} sources"
    )
    exposure = make_bench_exposure(settings.size, settings.sources, settings.exposure, settings.seed)
    progress(
        f"exposure ready: {exposure.description['n_sources']} sources "
        f"({exposure.description['seconds_to_make']:.1f} s)"
    )

    results: dict[str, Any] = {
        "format_version": BENCH_FORMAT_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hardware": hardware_info(),
        "settings": {**dataclasses.asdict(settings), "devices": [str(d) for d in devices]},
        "model": model_info,
        "exposure": exposure.description,
    }
    results["classification"] = _bench_classification(exposure, path, devices, settings, progress)
    inputs = _task_inputs(exposure, path)
    results["ensemble"], results["local_network"] = _bench_ensemble(
        loaded_by_device, inputs, flops, settings, progress
    )
    results["cutouts"] = _bench_cutouts(exposure, model_info["cutout_size"], settings, progress)
    results["psf_inputs"] = _bench_psf_inputs(exposure, path, settings, progress)
    results["quantum"] = _bench_quantum(exposure, path, primary, settings, progress)
    results["scaling"] = _bench_scaling(path, primary, settings, progress)
    if model_config is not None and flops is not None:
        softening = float(metadata["normalization"]["softening"])
        results["training"] = _bench_training(model_config, softening, primary, flops, settings, progress)
        n = len(inputs[0])
        per_classification = _ensemble_flops(flops, n, model_config.m, settings.n_ensemble, "cached")
        results["flops"] = {
            **flops,
            "n_objects": n,
            "per_classification": per_classification,
            "per_classification_per_source": per_classification / n if n else 0.0,
            "local_network_flops_per_s": {
                name: entry.get("flops_per_s")
                for name, entry in results["local_network"].items()
                if isinstance(entry, dict)
            },
            "ensemble_cached_flops_per_s": {
                name: entry["cached"]["flops_per_s"]
                for name, entry in results["ensemble"].items()
                if isinstance(entry, dict)
            },
            "classification_run_flops_per_s": {
                name: per_classification / entry["median_s"]
                for name, entry in results["classification"].items()
                if isinstance(entry, dict)
            },
            "convention": "a multiply-add counts 2; activations, pooling and biases ignored",
        }
    else:
        reason = "the model metadata has no 'config' (architecture) entry"
        results["training"] = {"skipped": reason}
        results["flops"] = {"skipped": reason}
    results["seconds_total"] = time.perf_counter() - t_start
    progress("done")
    return json_compatible(results)


def format_summary(results: dict[str, Any]) -> str:
    """Summarize the main figures of a `run_benchmark` result in a few lines of text.

    Parameters
    ----------
    results : `dict` [`str`, `~typing.Any`]
        What `run_benchmark` returned.

    Returns
    -------
    summary : `str`
        One line per measurement, times in milliseconds or seconds.

    """
    hardware, exposure = results["hardware"], results["exposure"]
    lines = [
        f"hardware: {hardware['cpu_model']}, {hardware['cpu_count_usable']} usable CPUs, "
        f"torch {hardware['torch_version']} with {hardware['torch_threads']} threads, "
        f"GPU: {hardware['gpu_name'] or 'none'}",
        f"exposure: {exposure['kind']} {exposure['size']}x{exposure['size']}, "
        f"{exposure['n_sources']} sources; model {results['model']['architecture']} "
        f"m={results['model']['m']}, n_p={results['settings']['n_ensemble']}",
    ]
    classification = results["classification"]
    for name in ("cpu", "cuda"):
        if name in classification:
            entry = classification[name]
            lines.append(
                f"classification run() on {entry['device']}: {entry['median_s']:.3f} s "
                f"({entry['sources_per_s']:.0f} sources/s); preparing the inputs "
                f"{entry['prepare_inputs_s']:.3f} s = {entry['prepare_inputs_over_model']:.2f}x the model's "
                f"{entry['split_median_s']['model']:.3f} s"
            )
    if "cpu_over_gpu" in classification:
        lines.append(f"classification CPU / GPU: {classification['cpu_over_gpu']:.1f}x")
    for entry in results["ensemble"].values():
        if isinstance(entry, dict):
            lines.append(
                f"ensemble on {entry['device']}: cached {entry['cached']['median_s']:.3f} s, recompute "
                f"{entry['recompute']['median_s']:.3f} s ({entry['recompute_over_cached']:.2f}x, "
                f"max |diff| {entry['max_abs_diff_mean']:.2g})"
            )
    cutouts = results["cutouts"]
    lines.append(
        f"cutouts: vectorized {1e3 * cutouts['vectorized']['median_s']:.1f} ms, loop "
        f"{1e3 * cutouts['loop']['median_s']:.1f} ms ({cutouts['loop_over_vectorized']:.1f}x, "
        f"identical: {cutouts['identical']}); NumPy gathers of the same windows alone "
        f"{1e3 * cutouts['numpy_window_reads']['median_s']:.1f} ms (the loop is "
        f"{cutouts['loop_over_numpy_window_reads']:.1f}x that)"
    )
    quantum = results["quantum"]
    split = ", ".join(f"{key} {value:.3f}" for key, value in quantum["split_median_s"].items())
    lines.append(
        f"quantum: {quantum['quantum']['median_s']:.3f} s vs reading calexp "
        f"{quantum['read_calexp']['median_s']:.3f} s + src {quantum['read_src']['median_s']:.3f} s "
        f"({quantum['quantum_over_read']:.2f}x); split (s): {split}"
    )
    profile = quantum["read_profile"]
    for label in ("calexp", "lsst_images_default"):
        entry = profile[label]
        parts = ", ".join(f"{key} {value:.3f}" for key, value in entry["components"].items())
        lines.append(
            f"read {label} ({entry['file_bytes'] / 1e6:.0f} MB): butler.get "
            f"{entry['butler_get']['median_s']:.3f} s vs plain planes "
            f"{entry['plain_read_planes']['median_s']:.3f} s "
            f"({entry['butler_over_plain']:.1f}x), in native byte order "
            f"{entry['plain_read_planes_native']['median_s']:.3f} s "
            f"({entry['butler_over_plain_native']:.1f}x); "
            f"components (s): {parts}; mask with the "
            f"plane-by-plane merge {entry['mask_plane_by_plane']:.3f}"
        )
    scaling = results["scaling"]
    lines.append(
        "scaling run(): "
        + "; ".join(
            f"{row['n_sources']} sources {row['median_s']:.2f} s, "
            f"+{row['peak_rss_increase_bytes'] / 2**20:.0f} MiB"
            for row in scaling["rows"]
        )
    )
    training = results["training"]
    if "cutouts_per_s" in training:
        lines.append(
            f"training on {training['device']}: {training['cutouts_per_s']:.0f} cutouts/s; building batches "
            f"{100 * training['batch_building_share']:.0f}% of the step time"
        )
    flops = results["flops"]
    if "per_source" in flops:
        achieved = ", ".join(
            f"{name} local {value / 1e9:.1f} GFLOP/s"
            for name, value in flops["local_network_flops_per_s"].items()
        )
        lines.append(f"FLOPs per source: {flops['per_source'] / 1e6:.2f} M; {achieved}")
    return "\n".join(lines)
