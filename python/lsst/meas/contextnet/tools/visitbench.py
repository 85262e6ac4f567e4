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

"""GPU benchmark of one LSST visit: 189 detectors x 2000 sources through the shipped model.

Runs on a bare machine with only PyTorch and NumPy (no Butler, no GalSim)::

    PYTHONPATH=python python3 -m lsst.meas.contextnet.tools.visitbench --output visit.json

It imports only `~lsst.meas.contextnet.model`, `~lsst.meas.contextnet.modelio`,
`~lsst.meas.contextnet.ensemble`, `~lsst.meas.contextnet.cutouts` and
`~lsst.meas.contextnet.psfinputs` (NumPy and PyTorch only). The inputs are built by the
classifier's own preprocessing (`~lsst.meas.contextnet.cutouts.extract_cutouts` and
`~lsst.meas.contextnet.psfinputs.model_inputs`) from synthetic detectors: Gaussian stars and
galaxies on Gaussian noise with a Gaussian PSF whose width changes from detector to detector.
They stand in for real pixels; the cost of the network does not depend on what the pixels show.

What is measured, per visit (the median of ``--repeat`` runs after one warm-up):

- ``visit_s``: every detector classified, from host inputs to host probabilities, one
  context set per detector (all its sources, as the task runs a pooling model), detectors
  batched ``--batch-detectors`` at a time;
- the split of that time into host-to-device copies, the local network, the context (global
  and prediction networks) and device-to-host copies, each timed with a device synchronization
  around it;
- ``sources_per_s`` and the achieved TFLOP/s (`~lsst.meas.contextnet.model.count_flops`)
  against the chip's bf16 dense peak when the chip is known;
- the same visit under ``torch.autocast`` in bfloat16 and float16 (on the eager network
  rebuilt from the model's weights), with the largest change of any probability against float32;
- the host preparation of one detector's inputs (cutouts, PSF channel, stretch) on the CPU,
  which in production runs in the per-detector quanta beside the GPU.
"""

from __future__ import annotations

__all__ = ["BF16_PEAK_TFLOPS", "VisitBenchSettings", "main", "run_visit_benchmark"]

import argparse
import dataclasses
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BF16_PEAK_TFLOPS: dict[str, float] = {
    "H200": 989.4,
    "H100 SXM": 989.4,
    "H100 NVL": 835.5,
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "GH200": 989.4,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10": 125.0,
}
"""Dense bf16 tensor-core peak (TFLOP/s) of known chips, matched as substrings of the device name
(first match in this order)."""

DETECTOR_SIZE = 4096
"""Side of a synthetic detector, in pixels."""


@dataclasses.dataclass(frozen=True)
class VisitBenchSettings:
    """Settings of `run_visit_benchmark`.

    Attributes
    ----------
    detectors : `int`
        Detectors in the visit (189 science detectors for LSSTCam).
    sources : `int`
        Sources per detector.
    batch_detectors : `int`
        Detectors classified in one batch on the device.
    distinct_detectors : `int`
        Synthetic detectors actually built; the visit cycles through them (building 189 on the
        host would measure the host, not the device).
    repeat : `int`
        Timed runs of the visit (after one warm-up).
    device : `str`
        ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
    seed : `int`
        Seed of the synthetic detectors.
    precisions : `tuple` [`str`, ...]
        Autocast precisions compared with float32.
    """

    detectors: int = 189
    sources: int = 2000
    batch_detectors: int = 16
    distinct_detectors: int = 4
    repeat: int = 3
    device: str = "auto"
    seed: int = 0
    precisions: tuple[str, ...] = ("bfloat16", "float16")

    def __post_init__(self) -> None:
        for name in ("detectors", "sources", "batch_detectors", "distinct_detectors", "repeat"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        unknown = set(self.precisions) - {"bfloat16", "float16"}
        if unknown:
            raise ValueError(f"unknown precisions {sorted(unknown)}; use bfloat16 and/or float16")


def _synthetic_detector(
    rng: np.random.Generator, n: int, size: int, cutout: int, psf_sigma: float
) -> tuple[np.ndarray, ...]:
    """One detector's sources: cutouts, bad pixels, PSF images, offsets, positions, labels.

    Only the ``n`` windows around the sources are drawn (into a sparse image of noise), so a
    4096x4096 detector costs the host a few tens of milliseconds.
    """
    from lsst.meas.contextnet.cutouts import extract_cutouts, scale_positions
    from lsst.meas.contextnet.psfinputs import subpixel_offsets

    x = rng.uniform(cutout, size - cutout, n)
    y = rng.uniform(cutout, size - cutout, n)
    galaxy = rng.random(n) < 0.5
    sigma = np.where(galaxy, psf_sigma * rng.uniform(1.1, 2.5, n), psf_sigma)
    flux = 10 ** rng.uniform(2.5, 5.0, n)
    image = np.zeros((size, size), np.float32)
    half = cutout // 2 + 4
    grid = np.arange(-half, half + 1)
    for k in range(n):
        cx, cy = int(round(x[k])), int(round(y[k]))
        gx = grid[None, :] + cx - x[k]
        gy = grid[:, None] + cy - y[k]
        stamp = flux[k] / (2 * np.pi * sigma[k] ** 2) * np.exp(-(gx**2 + gy**2) / (2 * sigma[k] ** 2))
        image[cy - half : cy + half + 1, cx - half : cx + half + 1] += stamp.astype(np.float32)
    cut = extract_cutouts(image, x, y, cutout)
    noise = rng.normal(0.0, 10.0, cut.cutouts.shape).astype(np.float32)
    cutouts = cut.cutouts + noise
    offsets = np.arange(cutout) - cutout // 2
    psf = np.exp(-(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * psf_sigma**2))
    psf_images = np.broadcast_to((psf / psf.sum()).astype(np.float32), cutouts.shape).copy()
    dx, dy = subpixel_offsets(x, y)
    positions = scale_positions(x, y, size, size)
    return cutouts, cut.bad, psf_images, dx, dy, positions, galaxy


def _peak_tflops(name: str | None) -> float | None:
    if not name:
        return None
    for key, value in BF16_PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


def run_visit_benchmark(
    model_path: str | Path,
    settings: VisitBenchSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Classify one synthetic visit with a model and time it (see the module docstring).

    Parameters
    ----------
    model_path : `str` or `pathlib.Path`
        Model file (`~lsst.meas.contextnet.modelio.load_model`).
    settings : `VisitBenchSettings`, optional
        Sizes, device and repetitions.
    log : callable, optional
        Receives progress lines (default: standard error).

    Returns
    -------
    results : `dict`
        JSON-compatible measurements.

    Raises
    ------
    RuntimeError
        If autocast changes a probability by more than 0.05 (the check fails loudly).
    """
    import torch
    from lsst.meas.contextnet.model import ContextNetConfig, build_model, count_flops
    from lsst.meas.contextnet.modelio import load_model, resolve_device
    from lsst.meas.contextnet.psfinputs import model_inputs

    settings = settings if settings is not None else VisitBenchSettings()
    emit = log if log is not None else (lambda line: print(line, file=sys.stderr, flush=True))
    device = resolve_device(settings.device)
    loaded = load_model(model_path, device)
    metadata = loaded.metadata
    config = ContextNetConfig.from_dict(metadata["config"])
    size, n = loaded.cutout_size, settings.sources
    softening = metadata["normalization"]

    emit(f"building {settings.distinct_detectors} synthetic detectors of {n} sources on the host")
    rng = np.random.default_rng(settings.seed)
    detectors, labels, prep_s = [], [], []
    for _ in range(settings.distinct_detectors):
        cutouts, bad, psf, dx, dy, positions, galaxy = _synthetic_detector(
            rng, n, DETECTOR_SIZE, size, psf_sigma=rng.uniform(1.2, 3.5)
        )
        start = time.perf_counter()
        inputs = model_inputs(cutouts, 10.0, softening, loaded.inputs, bad=bad, psf=psf, dx=dx, dy=dy)
        prep_s.append(time.perf_counter() - start)
        detectors.append((torch.from_numpy(inputs), torch.from_numpy(positions)))
        labels.append(galaxy)
    if device.type == "cuda":
        detectors = [(a.pin_memory(), b.pin_memory()) for a, b in detectors]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    order = [d % settings.distinct_detectors for d in range(settings.detectors)]
    batches = [
        order[i : i + settings.batch_detectors] for i in range(0, len(order), settings.batch_detectors)
    ]

    def classify(
        module: Any, autocast: torch.dtype | None, split: bool
    ) -> tuple[np.ndarray, dict[str, float]]:
        times = {"h2d": 0.0, "local": 0.0, "context": 0.0, "d2h": 0.0}
        out = []

        def stage(name: str, func: Callable[[], Any]) -> Any:
            if not split:
                return func()
            sync()
            t0 = time.perf_counter()
            value = func()
            sync()
            times[name] += time.perf_counter() - t0
            return value

        context = (
            torch.autocast(device_type=device.type, dtype=autocast)
            if autocast is not None
            else torch.autocast(device_type=device.type, enabled=False)
        )
        with torch.inference_mode(), context:
            for batch in batches:
                cut = stage(
                    "h2d",
                    lambda batch=batch: (
                        torch.cat([detectors[d][0] for d in batch]).to(device, non_blocking=True),
                        torch.cat([detectors[d][1] for d in batch]).to(device, non_blocking=True),
                    ),
                )
                features = stage("local", lambda cut=cut: module.local_features(cut[0], cut[1]))
                probs = stage(
                    "context",
                    lambda features=features, batch=batch: module.predict_sets(
                        features.reshape(len(batch), n, -1)
                    ),
                )
                out.append(stage("d2h", lambda probs=probs: probs.float().cpu()))
        sync()
        return torch.cat(out).numpy(), times

    def timed(module: Any, autocast: torch.dtype | None) -> tuple[np.ndarray, list[float]]:
        classify(module, autocast, split=False)  # warm-up
        seconds, probs = [], None
        for _ in range(settings.repeat):
            sync()
            t0 = time.perf_counter()
            probs, _ = classify(module, autocast, split=False)
            seconds.append(time.perf_counter() - t0)
        return probs, seconds

    emit(f"classifying {settings.detectors} detectors x {n} sources on {device} (float32)")
    probs32, seconds = timed(loaded.module, None)
    _, split = classify(loaded.module, None, split=True)
    visit_s = float(np.median(seconds))
    n_sources = settings.detectors * n
    flops = count_flops(config)
    total_flops = flops["per_source"] * n_sources
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or None
    peak = _peak_tflops(name) if device.type == "cuda" else None
    split_total = sum(split.values())
    truth = np.concatenate([labels[d] for d in order])
    results: dict[str, Any] = {
        "settings": dataclasses.asdict(settings),
        "device": {
            "type": device.type,
            "name": name,
            "torch_version": torch.__version__,
            "cuda": torch.version.cuda,
            "bf16_peak_tflops": peak,
        },
        "model": {
            "path": str(Path(model_path).resolve()),
            "sha256": loaded.sha256,
            "architecture": metadata.get("architecture"),
            "inputs": list(loaded.inputs),
            "global_kind": loaded.global_kind,
            "flops_per_source": flops["per_source"],
        },
        "n_sources": n_sources,
        "float32": {
            "visit_s": visit_s,
            "seconds": seconds,
            "sources_per_s": n_sources / visit_s,
            "tflops_achieved": total_flops / visit_s / 1e12,
            "fraction_of_bf16_peak": (total_flops / visit_s / 1e12 / peak) if peak else None,
            "split_s": split,
            "split_share": {k: v / split_total for k, v in split.items()} if split_total > 0 else None,
            "accuracy_on_synthetic": float(np.mean((probs32.ravel() >= 0.5) == truth)),
        },
        "host_prepare_per_detector_s": float(np.median(prep_s)),
        "target_visit_s": 2.0,
    }

    # Autocast runs on the eager network (TorchScript does not follow autocast), same weights.
    eager = build_model(config)
    eager.load_state_dict(loaded.module.state_dict())
    eager = eager.to(device).eval()
    eager_probs, _ = classify(eager, None, split=False)
    results["eager_float32_max_abs_diff"] = float(np.max(np.abs(eager_probs - probs32)))
    for precision in settings.precisions:
        dtype = getattr(torch, precision)
        if device.type == "cpu" and dtype == torch.float16:
            results[precision] = {"skipped": "float16 autocast is for GPUs"}
            continue
        emit(f"classifying under autocast {precision}")
        probs, seconds = timed(eager, dtype)
        change = float(np.max(np.abs(probs.astype(np.float64) - probs32)))
        results[precision] = {
            "visit_s": float(np.median(seconds)),
            "seconds": seconds,
            "sources_per_s": n_sources / float(np.median(seconds)),
            "max_abs_prob_change": change,
            "decisions_changed": int(np.sum((probs >= 0.5) != (probs32 >= 0.5))),
        }
        if not math.isfinite(change) or change > 0.05:
            raise RuntimeError(f"autocast {precision} changes a probability by {change:.3g} (> 0.05)")
    eager_diff = results["eager_float32_max_abs_diff"]
    if eager_diff > 1e-4:
        raise RuntimeError(f"the eager network differs from the TorchScript one by {eager_diff:.3g}")
    return results


def format_summary(results: dict[str, Any]) -> str:
    """Return a few lines summarizing `run_visit_benchmark` results."""
    f32 = results["float32"]
    lines = [
        f"device: {results['device']['type']} {results['device']['name']}",
        f"visit: {results['n_sources']} sources in {f32['visit_s']:.3f} s "
        f"({f32['sources_per_s']:.0f} sources/s, {f32['tflops_achieved']:.3f} TFLOP/s)",
        "split: " + ", ".join(f"{k} {v:.3f} s" for k, v in f32["split_s"].items()),
        f"host preparation per detector (CPU): {results['host_prepare_per_detector_s']:.3f} s",
    ]
    for precision in ("bfloat16", "float16"):
        entry = results.get(precision)
        if entry and "visit_s" in entry:
            lines.append(
                f"{precision}: {entry['visit_s']:.3f} s, max |dP| {entry['max_abs_prob_change']:.2g}, "
                f"{entry['decisions_changed']} decisions changed"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m lsst.meas.contextnet.tools.visitbench``."""
    defaults = VisitBenchSettings()
    parser = argparse.ArgumentParser(prog="visitbench", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped one)")
    parser.add_argument("--device", default=defaults.device, help="auto, cpu or cuda[:N]")
    parser.add_argument("--detectors", type=int, default=defaults.detectors)
    parser.add_argument("--sources", type=int, default=defaults.sources)
    parser.add_argument("--batch-detectors", type=int, default=defaults.batch_detectors)
    parser.add_argument("--distinct-detectors", type=int, default=defaults.distinct_detectors)
    parser.add_argument("--repeat", type=int, default=defaults.repeat)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    model = args.model or Path(__file__).resolve().parents[1] / "data" / "contextnet.pt"
    settings = VisitBenchSettings(
        detectors=args.detectors,
        sources=args.sources,
        batch_detectors=args.batch_detectors,
        distinct_detectors=args.distinct_detectors,
        repeat=args.repeat,
        device=args.device,
        seed=args.seed,
    )
    results = run_visit_benchmark(model, settings)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(format_summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
