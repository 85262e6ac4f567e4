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
   read / cutouts / model / write split the task stores in its metadata;
5. ``training``: `~lsst.meas.contextnet.train.train_model` throughput in cutouts per second;
6. ``flops``: model FLOPs per source (`~lsst.meas.contextnet.model.count_flops`) and the FLOP/s
   achieved by the local network and by the whole ensemble classification.

Every timing runs the measured call once untimed (warm-up) and reports the median of
``repeat`` timed calls (`time.perf_counter`), plus every individual time.
"""

from __future__ import annotations

__all__ = [
    "BENCH_FORMAT_VERSION",
    "BenchExposure",
    "BenchSettings",
    "Timing",
    "add_subcommand",
    "cpu_model_name",
    "format_summary",
    "hardware_info",
    "make_bench_exposure",
    "run_benchmark",
    "time_call",
]

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astropy.table import Table
    from astropy.wcs import WCS
    from lsst.images import VisitImage

    from .modelio import LoadedModel

BENCH_FORMAT_VERSION = 1
"""Version of the layout of the JSON document `run_benchmark` returns."""

_BAND = "r"
_EXPOSURE_TIME_S = 30.0
_BEGIN = "2026-01-01T03:00:00"
_VISIT = 0
_DETECTOR = 0
_RUN = "bench/inputs"
_TASK_LABEL = "contextnetClassifier"
_TIMING_KEYS = ("read", "cutouts", "model", "write")


def _bad_mask_planes() -> tuple[str, ...]:
    """The classifier's default bad mask planes."""
    from .classifier import ContextNetClassifierConfig

    return tuple(ContextNetClassifierConfig().badMaskPlanes)


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
    quick: bool = False

    def __post_init__(self) -> None:
        minimum = {"size": 64, "sources": 1, "n_ensemble": 1, "repeat": 1, "warmup": 0}
        minimum |= {"seed": 0, "train_steps": 1, "train_batch_sets": 1}
        for name, lowest in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"{name} must be an integer >= {lowest}, got {value!r}")
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
            "quick": True,
        }
        return cls(**(base | overrides))


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
    if repeat < 1 or warmup < 0:
        raise ValueError(f"need repeat >= 1 and warmup >= 0, got repeat={repeat}, warmup={warmup}")
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


@dataclasses.dataclass
class BenchExposure:
    """The exposure and source table every measurement of `run_benchmark` uses."""

    calexp: VisitImage
    """The image as the Butler stores it (`lsst.images.VisitImage`, electrons)."""

    src: Table
    """The sources to classify (`astropy.table.Table`, the simulator's ``src`` columns)."""

    truth: Table
    """True properties of the sources (`astropy.table.Table`); written to the Butler beside ``src``."""

    wcs: WCS
    """WCS of the detector (`astropy.wcs.WCS`), needed to register the visit."""

    description: dict[str, Any]
    """How the exposure was made: ``kind``, ``size``, ``n_sources``, ``seconds`` (to make it), ..."""


def _simulated_exposure(size: int, sources: int, rng: np.random.Generator) -> dict[str, Any]:
    """Simulate an exposure with about 20% more detections than needed, then keep ``sources``."""
    from .sim.exposure import (
        DETECTIONS_PER_FULL_DETECTOR,
        FULL_DETECTOR_SIZE,
        SimulationConfig,
        simulate_exposure,
    )
    from .sim.repo import LEGACY_MASK_PLANE_NAMES, MASK_PLANES

    per_unit = DETECTIONS_PER_FULL_DETECTOR * (size / FULL_DETECTOR_SIZE) ** 2
    config = SimulationConfig(band=_BAND, size=size, density_scale=1.2 * sources / per_unit)
    seed = int(rng.integers(0, 2**31))
    sim = simulate_exposure(config, _VISIT, _DETECTOR, seed)
    src = sim.src
    if len(src) > sources:
        keep = np.sort(rng.choice(len(src), size=sources, replace=False))
        src = src[keep]
    truth = sim.truth.copy()
    dropped = ~np.isin(truth["sourceId"], src["sourceId"]) & (truth["sourceId"] >= 0)
    truth["sourceId"][dropped] = -1
    masks = {
        name: (sim.mask & (1 << bit)) != 0
        for name, bit in sim.mask_planes.items()
        if name in MASK_PLANES or name in LEGACY_MASK_PLANE_NAMES
    }
    return {
        "image": sim.image,
        "variance": sim.variance,
        "masks": masks,
        "wcs": sim.wcs,
        "psf": sim.psf_field.to_piff(),
        "src": src,
        "truth": truth,
        "details": {
            "simulator": "lsst.meas.contextnet.sim.exposure.simulate_exposure",
            "simulation_seed": seed,
            "n_detected": len(sim.src),
            "psf_fwhm_mean_arcsec": float(sim.psf_field.mean_fwhm()),
            "noise_sigma": float(sim.noise_sigma),
            "config": config.to_dict(),
        },
    }


def _synthetic_exposure(size: int, sources: int, rng: np.random.Generator) -> dict[str, Any]:
    """Sky noise plus ``sources`` circular Gaussian sources (40% PSF-like stars, 60% wider galaxies)."""
    from astropy.table import Table

    from .sim.psf import PsfField
    from .sim.repo import make_tan_wcs

    sky = 1200.0  # electrons per pixel, about an LSST r-band 30 s sky
    fwhm_arcsec, pixel_scale = 0.8, 0.2
    psf_sigma = fwhm_arcsec / pixel_scale / 2.3548
    x = rng.uniform(0.0, size - 1.0, sources)
    y = rng.uniform(0.0, size - 1.0, sources)
    is_galaxy = rng.random(sources) >= 0.4
    sigma = np.where(is_galaxy, psf_sigma * rng.uniform(1.2, 2.5, sources), psf_sigma)
    flux = 10.0 ** rng.uniform(3.0, 5.5, sources)

    model = np.zeros((size, size), dtype=np.float64)
    half = 12
    offsets = np.arange(-half, half + 1)
    for chunk in np.array_split(np.arange(sources), max(1, sources // 256)):
        col = np.floor(x[chunk] + 0.5).astype(np.int64)[:, None] + offsets
        row = np.floor(y[chunk] + 0.5).astype(np.int64)[:, None] + offsets
        dx = col - x[chunk, None]
        dy = row - y[chunk, None]
        s2 = 2.0 * sigma[chunk, None, None] ** 2
        stamps = np.exp(-(dy[:, :, None] ** 2 + dx[:, None, :] ** 2) / s2)
        stamps *= (flux[chunk] / (np.pi * s2[:, 0, 0]))[:, None, None]
        rows = np.broadcast_to(row[:, :, None], stamps.shape)
        cols = np.broadcast_to(col[:, None, :], stamps.shape)
        inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
        np.add.at(model, (rows[inside], cols[inside]), stamps[inside])
    variance = sky + model
    image = (model + rng.normal(0.0, 1.0, model.shape) * np.sqrt(variance)).astype(np.float32)
    edge = np.zeros((size, size), dtype=bool)
    edge[:8, :] = edge[-8:, :] = edge[:, :8] = edge[:, -8:] = True
    masks = {"EDGE": edge, "SAT": (model + sky) > 1.0e5}

    wcs = make_tan_wcs(150.0, 2.0, size, size)
    x_meas = x + rng.normal(0.0, 0.05, sources)
    y_meas = y + rng.normal(0.0, 0.05, sources)
    ra, dec = wcs.pixel_to_world_values(x_meas, y_meas)
    ids = np.arange(1, sources + 1, dtype=np.int64)
    flux_err = np.sqrt(flux + 4.0 * np.pi * sigma**2 * sky)
    ratio = (psf_sigma / sigma) ** 2
    src = Table(
        {
            "sourceId": ids,
            "coord_ra": np.asarray(ra, dtype=np.float64),
            "coord_dec": np.asarray(dec, dtype=np.float64),
            "x": x_meas,
            "y": y_meas,
            "psfFlux": flux * 2.0 * ratio / (1.0 + ratio),
            "psfFluxErr": flux_err,
            "gaussianFlux": flux,
            "gaussianFluxErr": flux_err,
            "extendedness": is_galaxy.astype(np.float64),
            "sizeExtendedness": 1.0 - np.exp(-0.5 * ((sigma / psf_sigma) ** 2 - 1.0) ** 2 * 25.0),
            "extendedness_flag": np.zeros(sources, dtype=bool),
            "sizeExtendedness_flag": np.zeros(sources, dtype=bool),
        }
    )
    truth = Table({"sourceId": ids, "is_galaxy": is_galaxy, "x_true": x, "y_true": y, "flux": flux})
    coeffs = np.array([fwhm_arcsec, 0.0, 0.0, 0.0, 0.0, 0.0])
    psf = PsfField(size, size, coeffs, np.zeros(6), np.zeros(6), pixel_scale=pixel_scale).to_piff()
    return {
        "image": image,
        "variance": variance.astype(np.float32),
        "masks": masks,
        "wcs": wcs,
        "psf": psf,
        "src": src,
        "truth": truth,
        "details": {
            "generator": "noise plus circular Gaussian sources at uniform random positions",
            "sky_electrons": sky,
            "psf_fwhm_arcsec": fwhm_arcsec,
            "noise_sigma": math.sqrt(sky),
        },
    }


def make_bench_exposure(size: int, sources: int, kind: str, seed: int) -> BenchExposure:
    """Make the exposure and source table the benchmark classifies.

    Parameters
    ----------
    size : `int`
        Side of the square detector in pixels.
    sources : `int`
        Sources wanted. A simulated exposure is drawn with about 20% more expected detections
        and a random subset of ``sources`` detections is kept (all of them when fewer were
        detected); a synthetic one has exactly ``sources``.
    kind : `str`
        ``"simulated"`` (`lsst.meas.contextnet.sim.exposure.simulate_exposure`: GalSim
        galaxies and stars, varying PSF, detection and measurement) or ``"synthetic"`` (sky
        noise plus Gaussian sources at random positions, a constant Moffat PSF model attached).
    seed : `int`
        Seed of every random draw.

    Returns
    -------
    exposure : `BenchExposure`
        The `~lsst.images.VisitImage` (visit 0, detector 0 of ``SimCam``, band r), ``src``,
        ``truth``, WCS and a description (kind, size, number of sources, seconds to make it).

    Raises
    ------
    ValueError
        If ``kind`` is unknown or a size is out of range.

    """
    from astropy.time import Time

    from .sim.repo import make_visit_image

    if kind not in ("simulated", "synthetic"):
        raise ValueError(f"kind must be 'simulated' or 'synthetic', got {kind!r}")
    if size < 64 or sources < 1:
        raise ValueError(f"need size >= 64 and sources >= 1, got size={size}, sources={sources}")
    rng = np.random.default_rng([seed, 17])
    start = time.perf_counter()
    made = (_simulated_exposure if kind == "simulated" else _synthetic_exposure)(size, sources, rng)
    calexp = make_visit_image(
        made["image"],
        made["variance"],
        made["masks"],
        made["wcs"],
        made["psf"],
        visit=_VISIT,
        detector=_DETECTOR,
        band=_BAND,
        exposure_time_s=_EXPOSURE_TIME_S,
        begin=Time(_BEGIN, scale="tai"),
    )
    seconds = time.perf_counter() - start
    description = {
        "kind": kind,
        "size": size,
        "n_sources": len(made["src"]),
        "n_sources_requested": sources,
        "band": _BAND,
        "seconds_to_make": seconds,
        **made["details"],
    }
    return BenchExposure(calexp, made["src"], made["truth"], made["wcs"], description)


def _synchronizer(device: Any) -> Callable[[], None] | None:
    """Return `torch.cuda.synchronize` for a CUDA device, `None` otherwise."""
    import torch

    if device.type != "cuda":
        return None
    return lambda: torch.cuda.synchronize(device)


def _pixel_planes(calexp: VisitImage) -> dict[str, Any]:
    """Variance, mask and bad-plane bits as the classifier passes them to the cutout extraction."""
    schema = calexp.mask.schema
    planes = [name for name in _bad_mask_planes() if name in schema.names]
    return {
        "variance": calexp.variance.array,
        "mask": calexp.mask.array if planes else None,
        "bad_mask_bits": schema.bitmask(*planes) if planes else None,
    }


def _task_inputs(exposure: BenchExposure, model_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs and positions of the classifiable sources, from the task's own preprocessing."""
    from .classifier import ContextNetClassifierTask

    task = ContextNetClassifierTask(config=_classifier_config(model_path, "cpu", 1))
    prepared = task.prepare_inputs(exposure.calexp, exposure.src, task.load_model())
    return prepared.inputs, prepared.positions


def _bench_psf_inputs(
    exposure: BenchExposure, model_path: Path, settings: BenchSettings, log: Callable[[str], None]
) -> dict[str, Any]:
    """Time the PSF model at every source: the task's grid + interpolation against one draw each.

    Reports both times, the largest pixel difference of the interpolated images (relative to the
    PSF's peak) and, for a PSF-aware model, the largest change of P(galaxy) when the task's
    images are replaced by per-source ones.
    """
    from .classifier import ContextNetClassifierTask
    from .ensemble import ensemble_predict
    from .psfinputs import DEFAULT_PSF_GRID, embed_kernel, evaluate_psf_grid, interpolate_psf

    calexp = exposure.calexp
    psf = calexp.psf
    frame = calexp.detector.bbox
    x = np.asarray(exposure.src["x"], dtype=np.float64) - frame.x.start
    y = np.asarray(exposure.src["y"], dtype=np.float64) - frame.y.start
    size = 28
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
    task = ContextNetClassifierTask(config=_classifier_config(model_path, "cpu", settings.n_ensemble))
    loaded = task.load_model()
    if "psf" in loaded.inputs and len(x):
        prepared = task.prepare_inputs(calexp, exposure.src, loaded)
        valid = prepared.valid
        from .psfinputs import model_inputs, subpixel_offsets

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
        m = len(prepared.inputs) if loaded.global_kind == "pool" else loaded.m
        n_p = 1 if loaded.global_kind == "pool" else settings.n_ensemble
        a = ensemble_predict(loaded, prepared.inputs, prepared.positions, n_p, settings.seed, m=m)
        b = ensemble_predict(loaded, swapped, prepared.positions, n_p, settings.seed, m=m)
        out["max_abs_prob_diff"] = float(np.max(np.abs(a.mean - b.mean)))
    return out


def _ensemble_flops(flops: dict[str, float], n: int, m: int, n_p: int, method: str) -> float:
    """FLOPs of one ensemble classification of ``n`` objects."""
    if n == 0:
        return 0.0
    n_sets = math.ceil(n_p * n / m) if n >= m else n_p
    n_local = n if method == "cached" else n_sets * m
    per_set = flops["global_per_set"] + flops["predict_per_set"] + m * flops["predict_per_object"]
    return n_local * flops["local_per_cutout"] + n_sets * per_set


def _classifier_config(model_path: Path, device: str, n_ensemble: int) -> Any:
    from .classifier import ContextNetClassifierConfig

    config = ContextNetClassifierConfig()
    config.modelPath = str(model_path)
    config.device = device
    config.nEnsemble = n_ensemble
    return config


def _bench_classification(
    exposure: BenchExposure,
    model_path: Path,
    devices: Sequence[Any],
    settings: BenchSettings,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Time the task's run() on every device, on the same inputs."""
    from .classifier import ContextNetClassifierTask

    out: dict[str, Any] = {"method": "ContextNetClassifierTask.run(calexp, src, seed)"}
    probabilities = {}
    for device in devices:
        log(f"classification: ContextNetClassifierTask.run on {device}")
        task = ContextNetClassifierTask(
            config=_classifier_config(model_path, str(device), settings.n_ensemble)
        )
        splits: dict[str, list[float]] = {"cutouts": [], "model": []}

        def run_once(task: Any = task, splits: dict[str, list[float]] = splits) -> Any:
            result = task.run(exposure.calexp, exposure.src, seed=settings.seed)
            for key in splits:
                splits[key].append(float(task.metadata[f"timing.{key}"]))
            return result

        timing, result = time_call(run_once, settings.repeat, settings.warmup, _synchronizer(device))
        table = result.classification
        probabilities[device.type] = np.asarray(table["classification_galaxyProb"], dtype=np.float64)
        n = len(table)
        out[device.type] = {
            "device": str(device),
            **timing.to_dict(),
            "sources_per_s": n / timing.median,
            "split_median_s": {
                key: float(np.median(values[settings.warmup :])) for key, values in splits.items()
            },
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

    from .ensemble import ensemble_predict

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
    from .cutouts import extract_cutouts, extract_cutouts_loop

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
    results = {}
    for name, func in (("vectorized", extract_cutouts), ("loop", extract_cutouts_loop)):
        log(f"cutouts: {name}")
        timing, results[name] = time_call(
            lambda func=func: func(image, x, y, size, **kwargs), settings.repeat, settings.warmup
        )
        out[name] = timing.to_dict()
    out["loop_over_vectorized"] = out["loop"]["median_s"] / out["vectorized"]["median_s"]
    fields = ("cutouts", "edge", "bad_pixels", "off_image", "bad_centroid")
    out["identical"] = all(
        np.array_equal(getattr(results["vectorized"], f), getattr(results["loop"], f)) for f in fields
    )
    out["max_abs_diff"] = float(
        np.max(np.abs(results["vectorized"].cutouts - results["loop"].cutouts), initial=0.0)
    )
    return out


def _metadata_value(metadata: Any, key: str) -> float | None:
    """Read ``<label>.<key>`` from a task metadata dataset, `None` when absent."""
    for name in (f"{_TASK_LABEL}.{key}", key):
        try:
            return float(metadata[name])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def _bench_quantum(
    exposure: BenchExposure,
    model_path: Path,
    device: Any,
    settings: BenchSettings,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Put the exposure in a temporary repository and time reads against a full quantum."""
    from astropy.time import Time
    from lsst.daf.butler import Butler
    from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

    from .classifier import ContextNetClassifierTask
    from .sim.repo import create_or_open_repo, put_visit_datasets, register_visit

    size = exposure.description["size"]
    data_id = {"instrument": "SimCam", "visit": _VISIT, "detector": _DETECTOR}
    out: dict[str, Any] = {"device": str(device), "data_id": data_id}
    with tempfile.TemporaryDirectory(prefix="contextnet-bench-") as tmp:
        root = str(Path(tmp) / "repo")
        log(f"quantum: writing a {size}x{size} visit to a temporary Butler repository")
        start = time.perf_counter()
        butler = create_or_open_repo(root, run=_RUN)
        register_visit(
            butler,
            visit=_VISIT,
            band=_BAND,
            exposure_time_s=_EXPOSURE_TIME_S,
            begin=Time(_BEGIN, scale="tai"),
            detector_wcs={_DETECTOR: exposure.wcs},
            width=size,
            height=size,
        )
        put_visit_datasets(butler, _RUN, exposure.calexp, exposure.src, exposure.truth)
        out["write_inputs_s"] = time.perf_counter() - start
        out["calexp_file_bytes"] = (
            Path(butler.getURI("calexp", data_id, collections=_RUN).ospath).stat().st_size
        )
        butler.close()

        reader = Butler.from_config(root, collections=[_RUN])
        try:
            for name in ("calexp", "src"):
                log(f"quantum: butler.get({name!r})")
                timing, _ = time_call(
                    lambda name=name: reader.get(name, data_id), settings.repeat, settings.warmup
                )
                out[f"read_{name}"] = timing.to_dict()
        finally:
            reader.close()
        out["read_s"] = out["read_calexp"]["median_s"] + out["read_src"]["median_s"]

        config = _classifier_config(model_path, str(device), settings.n_ensemble)
        totals: list[float] = []
        splits: dict[str, list[float]] = {key: [] for key in _TIMING_KEYS}
        for i in range(settings.warmup + settings.repeat):
            log(f"quantum: SimplePipelineExecutor run {i + 1} of {settings.warmup + settings.repeat}")
            output = f"bench/quantum{i}"
            qbutler = SimplePipelineExecutor.prep_butler(root, inputs=[_RUN], output=output)
            try:
                executor = SimplePipelineExecutor.from_task_class(
                    ContextNetClassifierTask, config=config, label=_TASK_LABEL, butler=qbutler
                )
                start = time.perf_counter()
                quanta = executor.run(register_dataset_types=True, save_versions=False)
                elapsed = time.perf_counter() - start
                if len(quanta) != 1:
                    raise RuntimeError(f"expected one classifier quantum, the executor ran {len(quanta)}")
                metadata = qbutler.get(f"{_TASK_LABEL}_metadata", data_id)
            finally:
                qbutler.close()
            if i < settings.warmup:
                continue
            totals.append(elapsed)
            for key in _TIMING_KEYS:
                value = _metadata_value(metadata, f"timing.{key}")
                if value is not None:
                    splits[key].append(value)
    total = Timing(tuple(totals))
    out["quantum"] = total.to_dict()
    out["quantum_method"] = (
        "lsst.pipe.base.SimplePipelineExecutor.run (one quantum: read calexp + src, run, write "
        "contextnet_classification and task metadata/log); graph building excluded"
    )
    split = {key: float(np.median(values)) for key, values in splits.items() if values}
    out["split_median_s"] = split
    out["split_source"] = "task metadata timing.read / timing.cutouts / timing.model / timing.write"
    if split:
        out["split_median_s"]["other"] = total.median - sum(split.values())
    out["quantum_over_read_calexp"] = total.median / out["read_calexp"]["median_s"]
    out["quantum_over_read"] = total.median / out["read_s"]
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
    (`~lsst.meas.contextnet.sim.training.write_training_data`,
    `~lsst.meas.contextnet.train.load_training_data`), so the inputs are those training builds.
    """
    from .sim.training import TrainingDataConfig, write_training_data
    from .train import TrainingData, TrainingOptions, load_training_data, train_model

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
    seconds = []
    for i in range(settings.repeat):
        log(f"training: {settings.train_steps} steps on {device} ({i + 1} of {settings.repeat})")
        result = train_model(data, model_config, options, log=quiet)
        seconds.append(float(result.history[0]["seconds"]))
    timing = Timing(tuple(seconds))
    rate = n_sets * m / timing.median
    return {
        "device": str(device),
        "method": "lsst.meas.contextnet.train.train_model, one epoch with no validation: "
        "set gathering, augmentation, forward, BCE loss, backward and Adam step",
        "data": "sets from lsst.meas.contextnet.sim.training.generate_set (default generator "
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
        "approx_flops_per_s": 3.0 * flops["per_source"] * rate,
        "approx_flops_note": "forward FLOPs per source x 3 (backward counted as twice the forward)",
    }


def _json_ready(value: Any) -> Any:
    """Convert numpy scalars and non-finite floats (to `None`) recursively for strict JSON."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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

    from .model import ContextNetConfig, count_flops, count_parameters
    from .modelio import load_model, resolve_device

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
    return _json_ready(results)


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
                f"({entry['sources_per_s']:.0f} sources/s)"
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
        f"identical: {cutouts['identical']})"
    )
    quantum = results["quantum"]
    split = ", ".join(f"{key} {value:.3f}" for key, value in quantum["split_median_s"].items())
    lines.append(
        f"quantum: {quantum['quantum']['median_s']:.3f} s vs reading calexp "
        f"{quantum['read_calexp']['median_s']:.3f} s + src {quantum['read_src']['median_s']:.3f} s "
        f"({quantum['quantum_over_read']:.2f}x); split (s): {split}"
    )
    training = results["training"]
    if "cutouts_per_s" in training:
        lines.append(f"training on {training['device']}: {training['cutouts_per_s']:.0f} cutouts/s")
    flops = results["flops"]
    if "per_source" in flops:
        achieved = ", ".join(
            f"{name} local {value / 1e9:.1f} GFLOP/s"
            for name, value in flops["local_network_flops_per_s"].items()
        )
        lines.append(f"FLOPs per source: {flops['per_source'] / 1e6:.2f} M; {achieved}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    """Run ``contextnet bench`` with parsed arguments."""
    from .classifier import default_model_path

    if args.model is None:
        model = default_model_path()
        if not model.is_file():
            raise FileNotFoundError(
                f"the shipped model {str(model)!r} does not exist (this checkout has no trained "
                "model); pass --model PATH with a model written by 'contextnet train' or "
                "lsst.meas.contextnet.modelio.export_model"
            )
    else:
        model = Path(args.model)
        if not model.is_file():
            raise FileNotFoundError(f"--model {str(model)!r} does not exist")
    explicit = {
        "size": args.size,
        "sources": args.sources,
        "n_ensemble": args.n_ensemble,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "train_steps": args.train_steps,
        "train_batch_sets": args.train_batch_sets,
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
